"""xtomo: single-image tomography (Henzler et al., 2018) as a library and an executable book.

Modules: ``xray`` (Beer–Lambert forward model), ``anatomy`` (procedural crania), ``io`` (real
volumes and radiographs), ``data`` (the on-the-fly dataset), ``profiles`` (every scale setting).
"""
from . import anatomy, data, io, profiles, xray
from .profiles import get_profile

__version__ = "0.1.0"
__all__ = ["anatomy", "data", "io", "profiles", "xray", "get_profile", "__version__"]
