"""Evaluation: how well a reconstruction matches the truth, and how sure we are.

``metrics`` (L2, PSNR, SSIM/DSSIM), ``stats`` (intervals and tests), ``scoring`` (chapter 5's
protocol: every method on held-out samples), ``wording`` (paired tests in words), ``novelviews`` (its
picture metric from cameras the x-ray never had), ``realcase`` (a real skull as an evaluation case),
``reality`` (chapter 8's check with mice), ``realism`` (how close procedural crania come to a real
skull: volume and x-ray statistics).
"""
from xtomo._lazy import submodules

__all__ = ["metrics", "stats", "scoring", "wording", "novelviews", "realcase", "reality", "realism"]
__getattr__, __dir__ = submodules(__name__, __all__)
