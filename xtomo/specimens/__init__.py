"""Specimens: the volumes the book learns from and tests on.

``sdf`` (signed-distance primitives and the supersampled grid every specimen is filled on),
``proportions`` (the documented proportions of each skull plan), ``skull_plan`` (where a skull's
parts go, and its teeth), ``crania`` (procedural mammalian skulls, the book's species),
``morphospace`` (species in shape space, and how near each held-out species' nearest training
twin is), ``mouse_plan`` and ``mice`` (procedural whole-body mice for the reality check),
``phantoms`` (analytic test objects).
"""
from xtomo._lazy import submodules

__all__ = ["sdf", "proportions", "skull_plan", "crania", "morphospace", "mouse_plan", "mice", "phantoms"]
__getattr__, __dir__ = submodules(__name__, __all__)
