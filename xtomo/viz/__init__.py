"""Pictures for people: the book's figures and the interactive explorers.

``figures`` (matplotlib panels and grids), ``architecture`` (the network drawn from the model object),
``explore`` (ipyvolume explorers and a slice viewer), ``realism_plots`` (a real skull's statistics among
the procedural crania's, and their curves).
"""
from xtomo._lazy import submodules

__all__ = ["figures", "architecture", "explore", "realism_plots"]
__getattr__, __dir__ = submodules(__name__, __all__)
