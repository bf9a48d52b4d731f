"""From an x-ray to a volume with a trained network."""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["reconstruct", "to_network_input"]


def to_network_input(alpha: torch.Tensor, size: int) -> torch.Tensor:
    """An x-ray of any shape as the network's ``[B, 1, size, size]`` input.

    Non-square images are padded to a square with empty background (alpha = 1), centred, then
    resampled with an anti-aliased bilinear filter.
    """
    if not torch.is_tensor(alpha):
        raise TypeError(f"x-ray must be a torch tensor, got {type(alpha).__name__}")
    x = alpha.float()
    if x.dim() == 2:
        x = x[None, None]
    elif x.dim() == 3:
        x = x[:, None]
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"x-ray must be [H, W], [B, H, W] or [B, 1, H, W], got shape {tuple(alpha.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x-ray contains NaN or inf")
    if x.min() < 0 or x.max() > 1:
        raise ValueError(f"x-ray must be transparency in [0, 1], got values in [{x.min():.3g}, {x.max():.3g}]")
    h, w = x.shape[-2:]
    if h != w:
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        x = F.pad(x, (left, side - w - left, top, side - h - top), value=1.0)
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=x.shape[-1] > size,
                          align_corners=False)
    return x


@torch.no_grad()
def reconstruct(alpha: torch.Tensor, model) -> torch.Tensor:
    """The view-aligned density volume ``[D, H, W]`` (or ``[B, D, H, W]``) that ``model`` infers.

    The volume has the network's resolution (the coarse volume of the paper's Sec. 4.1). The
    network's output layer is linear, so it can dip slightly below zero; density cannot, and
    those values are set to zero here.
    """
    single = alpha.dim() == 2
    device = next(model.parameters()).device
    x = to_network_input(alpha, model.config.in_size).to(device)
    model.eval()
    out = model(x).float().clamp_min(0).cpu()
    return out[0] if single else out
