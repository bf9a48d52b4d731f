"""Publishing the book: run chapters with papermill, build the HTML book that works offline.

``chapters`` (find, parameterise and execute chapters), ``cache`` (which chapters a build reruns),
``website`` (stage the executed chapters
and build the HTML book with jupyter-book), ``vendor`` (the JavaScript the book serves itself:
npm bundles, widget modules, the offline configuration), ``apidoc`` (the API reference page).
"""
from xtomo._lazy import submodules

__all__ = ["chapters", "cache", "website", "vendor", "apidoc"]
__getattr__, __dir__ = submodules(__name__, __all__)
