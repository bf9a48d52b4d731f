"""Learning: the 2D→3D network, its training and its use.

``model`` (the hourglass that reads depth as feature channels), ``train`` (training, validation,
checkpoints), ``averaging`` (the moving average of the weights a run may keep), ``acquisition`` (training
x-rays re-taken by physical acquisitions drawn at random), ``inference`` (x-ray
in, fused volume out), ``shipped`` (the trained network that comes with the package, in half precision,
with its manifest), ``provenance`` (the code and machine a run trained with).
"""
from xtomo._lazy import submodules

__all__ = ["model", "train", "averaging", "acquisition", "inference", "shipped", "provenance"]
__getattr__, __dir__ = submodules(__name__, __all__)
