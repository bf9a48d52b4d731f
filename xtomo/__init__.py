"""xtomo: single-image tomography (Henzler et al., 2018) as a library and an executable book.

The front door, the calls a user starts with::

    xtomo.load_volume(path, size=128)      # a CT volume: NIfTI, MetaImage, NRRD, DICOM, TIFF, npy/npz, video
    xtomo.simulate(volume, direction)      # its Beer–Lambert x-ray (alpha, linear units)
    xtomo.align(volume, direction)         # the volume in that x-ray's camera frame, depth first
    xtomo.load_xray(path, gamma=None)      # a radiograph as alpha
    xtomo.load_model(checkpoint)           # a trained network (a checkpoint file, or a profile's)
    xtomo.reconstruct(alpha, model)        # x-ray in, fused volume out: re-projects exactly
    xtomo.get_profile("quick")             # every scale setting of a profile

The subpackages follow the book's pipeline, each using only those before it:
``specimens`` (procedural crania, mice, phantoms) → ``imaging`` (x-rays, fusion, micro-CT,
tomography, renders) → ``data`` (files, real data, training pairs) → ``learning`` (network,
training, inference) → ``methods`` (NN, ORACLE, classical) → ``evaluation`` (metrics, statistics,
chapter 5's protocol, chapter 8's reality check) → ``study`` (the 2AFC user studies) → ``viz``
(figures, explorers) → ``publish`` (chapters and the book). ``profiles``, ``files`` and ``geometry`` serve all;
``cli`` is the ``xtomo`` command. Every module loads when first used, by its full name
(``xtomo.evaluation.metrics``) or by its own (``xtomo.metrics``, the same module).
"""
__version__ = "0.1.0"

import importlib as _importlib  # noqa: E402

from xtomo._lazy import short_names  # noqa: E402
from xtomo.data.io import load_volume, load_xray  # noqa: E402
from xtomo.imaging.xray import align, simulate  # noqa: E402
from xtomo.learning.inference import reconstruct  # noqa: E402
from xtomo.learning.train import load_model  # noqa: E402
from xtomo.profiles import get_profile  # noqa: E402

SUBPACKAGES = ["specimens", "imaging", "data", "learning", "methods", "evaluation", "study", "viz", "publish",
               "profiles", "files", "geometry", "cli"]
__all__ = ["simulate", "align", "load_volume", "load_xray", "load_model", "reconstruct", "get_profile",
           "__version__", *SUBPACKAGES]
_SHORT: dict[str, str] = {}


def __getattr__(name: str):
    """A subpackage, or a module of one by its own name (``xtomo.metrics``), imported when first asked."""
    if name in SUBPACKAGES:
        return _importlib.import_module(f"{__name__}.{name}")
    if not name.startswith("_"):
        if not _SHORT:
            _SHORT.update(short_names(__name__, SUBPACKAGES))
        if name in _SHORT:
            return _importlib.import_module(_SHORT[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    if not _SHORT:
        _SHORT.update(short_names(__name__, SUBPACKAGES))
    return sorted(set(__all__) | set(globals()) | set(_SHORT))
