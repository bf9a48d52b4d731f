"""xtomo: single-image tomography (Henzler et al., 2018) as a library and an executable book.

Modules: ``xray`` (Beer–Lambert forward model), ``anatomy`` (procedural crania), ``io`` (real
volumes and radiographs), ``data`` (the on-the-fly dataset), ``model`` (the 2D→3D network),
``train`` (training and checkpoints), ``fusion`` (exact re-projection at any resolution),
``inference`` (``reconstruct``: x-ray to volume), ``render``, ``figures`` and ``explore``
(pictures and interactive views), ``metrics``, ``stats``, ``baselines``, ``classical`` and
``evaluation`` (chapter 5), ``realdata`` (real files to fetch), ``study`` (the 2AFC user
studies), ``mice``, ``microct``, ``tomography`` and ``reality`` (the reality check with mice),
``profiles`` (every scale setting), ``book`` and ``cli`` (the book and the ``xtomo`` command).
"""
__version__ = "0.1.0"

from . import anatomy, data, fusion, io, profiles, xray  # noqa: E402
from .inference import reconstruct  # noqa: E402
from .profiles import get_profile  # noqa: E402

__all__ = ["anatomy", "data", "fusion", "io", "profiles", "xray", "reconstruct", "get_profile", "__version__"]
