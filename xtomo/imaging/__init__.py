"""Imaging: how a volume becomes an image, and an image becomes consistent with a volume.

``xray`` (Beer–Lambert x-rays, views, alignment), ``fusion`` (exact re-projection at any
resolution), ``microct`` (a polychromatic scanner with scatter, noise and blur), ``tomography``
(radon, FBP, SART), ``render`` (iso-surfaces, DVR, MIP, anaglyphs: the pictures metrics compare),
``shading`` (the surfaces, environment lighting and ambient occlusion that ``render`` uses),
``symmetry`` (a skull's mid-sagittal plane in a view's frame, and volumes made symmetric about it).
"""
from xtomo._lazy import submodules

__all__ = ["xray", "fusion", "microct", "tomography", "render", "shading", "symmetry"]
__getattr__, __dir__ = submodules(__name__, __all__)
