"""Interactive 3-D views with ipyvolume: turn a volume in your hands, in the notebook or the book."""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

__all__ = ["volume"]


def volume(vol: torch.Tensor, levels=(0.12, 0.45, 0.8), opacities=(0.02, 0.12, 0.3),
           max_size: int = 64, width: int = 420, height: int = 420, azimuth: float = 60, elevation: float = 20):
    """An ipyvolume figure of a density volume, with transfer-function controls.

    The volume is averaged down to at most ``max_size`` voxels per edge, which keeps the widget
    state that the book embeds small (about 1 MB at 64^3).
    """
    import ipyvolume as ipv

    if vol.dim() != 3:
        raise ValueError(f"explore.volume needs a [D, H, W] volume, got shape {tuple(vol.shape)}")
    factor = max(1, -(-max(vol.shape) // max_size))
    if factor > 1:
        vol = F.avg_pool3d(vol[None, None].float(), factor)[0, 0]
    ipv.figure(width=width, height=height)
    with warnings.catch_warnings():  # ipyvolume normalises zero gradients of empty space to NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        ipv.volshow(vol.detach().cpu().float().numpy(), level=list(levels), opacity=list(opacities),
                    level_width=0.1, data_min=0.0, data_max=1.0, controls=True)
    ipv.view(azimuth, elevation)
    ipv.style.box_off()
    ipv.style.axes_off()
    return ipv.gcc()
