"""Specimens: the volumes the book learns from and tests on.

``sdf`` (signed-distance primitives), ``crania`` (procedural mammalian skulls, the book's species),
``mice`` (procedural whole-body mice for the reality check), ``phantoms`` (analytic test objects).
"""
from xtomo._lazy import submodules

__all__ = ["sdf", "crania", "mice", "phantoms"]
__getattr__, __dir__ = submodules(__name__, __all__)
