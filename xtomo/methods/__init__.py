"""Methods the network is compared with.

``baselines`` (NN and ORACLE: the memorising baselines), ``classical`` (a WENGER-like convex
single-view reconstruction).
"""
from xtomo._lazy import submodules

__all__ = ["baselines", "classical"]
__getattr__, __dir__ = submodules(__name__, __all__)
