"""Publishing the book: run chapters with papermill, build the HTML book that works offline.

``chapters`` (find, parameterise and execute chapters).
"""
from xtomo._lazy import submodules

__all__ = ["chapters"]
__getattr__, __dir__ = submodules(__name__, __all__)
