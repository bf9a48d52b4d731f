"""Image and volume metrics: the paper's volume L2 and image DSSIM, plus RMSE, PSNR and SSIM.

Every function is batched torch (``[..., H, W]`` images, ``[..., D, H, W]`` volumes), runs on the
inputs' device and returns one value per leading item, so chapter 5 can score a whole test set in a
call and later x-ray→CT work can be compared in its usual units.
"""
from __future__ import annotations

import torch

import xtomo._checks as checks

__all__ = ["mse", "l2", "rmse", "psnr", "ssim", "ssim3d", "dssim", "dssim3d", "gaussian_window"]


def _pair(a, b, ndim: int, names=("pred", "truth")) -> tuple[torch.Tensor, torch.Tensor]:
    """Check two inputs and return them as tensors of one float dtype (float32 or wider)."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    for x, name in zip((a, b), names):
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
        if x.dim() < ndim:
            raise ValueError(f"{name} must have at least {ndim} dimensions (the last {ndim} form one item), "
                             f"got shape {tuple(x.shape)}")
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")
    for x, name in zip((a, b), names):
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} contains NaN or infinite values")
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
    return a.to(dtype), b.to(dtype)


def mse(pred, truth, ndim: int = 3) -> torch.Tensor:
    """Mean squared error over the last ``ndim`` axes: one value per leading item (shape ``[...]``)."""
    pred, truth = _pair(pred, truth, ndim)
    return (pred - truth).square().mean(dim=tuple(range(-ndim, 0)))


def l2(pred, truth) -> torch.Tensor:
    """The paper's volume L2: the MEAN squared error per voxel, ``((pred - truth)**2).mean()``.

    Not a sum and not a root: exactly the per-voxel mean that training minimises, so a training loss
    and this metric are the same number. ``[..., D, H, W]`` → ``[...]``.
    """
    return mse(pred, truth, ndim=3)


def rmse(pred, truth, ndim: int = 3) -> torch.Tensor:
    """Root mean squared error over the last ``ndim`` axes (volumes by default): ``sqrt(mse)``."""
    return mse(pred, truth, ndim).sqrt()


def psnr(pred, truth, data_range: float = 1.0, ndim: int = 3) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range² / mse)``; ``+inf`` for identical inputs."""
    data_range = checks.positive(data_range, "data_range")
    return 10.0 * torch.log10(data_range ** 2 / mse(pred, truth, ndim))


def gaussian_window(window: int = 11, sigma: float = 1.5, dtype=torch.float64, device=None) -> torch.Tensor:
    """The 1-D Gaussian of ``window`` taps (odd), summing to one, as scipy.ndimage builds it."""
    window = checks.integer(window, "window", minimum=1)
    if window % 2 == 0:
        raise ValueError(f"window must be a positive odd integer, got {window!r}")
    sigma = checks.positive(sigma, "sigma")
    x = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return (g / g.sum()).to(dtype=dtype, device=device)


def _blur_valid(x: torch.Tensor, g: torch.Tensor, ndim: int) -> torch.Tensor:
    """Separable 'valid' convolution of ``x`` with the 1-D kernel ``g`` along each of its last ``ndim`` axes.

    Each pass is a weighted sum of ``len(g)`` shifted views (a loop over taps, not pixels): on a
    CPU this runs about four times faster than ``conv3d`` with a one-channel ``(k, 1, 1)`` kernel.
    """
    weights = g.tolist()
    for axis in range(x.dim() - ndim, x.dim()):
        length = x.shape[axis] - len(weights) + 1
        out = x.narrow(axis, 0, length) * weights[0]
        for k, w in enumerate(weights[1:], start=1):
            out.add_(x.narrow(axis, k, length), alpha=w)
        x = out
    return x


def _ssim(a, b, ndim, data_range, window, sigma, k1, k2) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004) over the valid region of the last ``ndim`` axes, per leading item."""
    a, b = _pair(a, b, ndim, names=("a", "b"))
    data_range = checks.positive(data_range, "data_range")
    g = gaussian_window(window, sigma, dtype=a.dtype, device=a.device)
    spatial = a.shape[-ndim:]
    if min(spatial) < window:
        raise ValueError(f"images of size {tuple(spatial)} are smaller than the {window}-tap SSIM window")
    lead = a.shape[:-ndim]
    a, b = a.reshape(-1, *spatial), b.reshape(-1, *spatial)
    # Shift both by a common per-item constant: variances and covariance are shift-free, and
    # E[x²] - E[x]² then loses less precision to cancellation.
    shift = 0.5 * (a + b).flatten(1).mean(1).reshape(-1, *[1] * ndim)
    x, y = a - shift, b - shift
    mx, my, mxx, myy, mxy = _blur_valid(torch.stack([x, y, x * x, y * y, x * y], 1), g, ndim).unbind(1)
    vx, vy, vxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    mx, my = mx + shift, my + shift
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = (2 * mx * my + c1) * (2 * vxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).reshape(lead)


def ssim(a, b, data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Mean SSIM of 2-D images ``[..., H, W]`` → ``[...]``, Gaussian window, statistics where it fits.

    Equals scikit-image's ``structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=...)`` for the default window (11 taps = skimage's
    radius ``int(3.5 sigma + 0.5)``); skimage crops its reflect-padded map by the same radius.
    """
    return _ssim(a, b, 2, data_range, window, sigma, k1, k2)


def ssim3d(a, b, data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
           k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Mean SSIM of volumes ``[..., D, H, W]`` → ``[...]``, a 3-D Gaussian window (see :func:`ssim`)."""
    return _ssim(a, b, 3, data_range, window, sigma, k1, k2)


def dssim(a, b, **kwargs) -> torch.Tensor:
    """Structural dissimilarity ``(1 - SSIM) / 2`` of 2-D images, the paper's image metric; 0 is identical."""
    return (1.0 - ssim(a, b, **kwargs)) / 2.0


def dssim3d(a, b, **kwargs) -> torch.Tensor:
    """Structural dissimilarity ``(1 - SSIM) / 2`` of volumes (see :func:`ssim3d`)."""
    return (1.0 - ssim3d(a, b, **kwargs)) / 2.0
