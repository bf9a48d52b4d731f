"""The input checks every module shares: bad input is named with what was expected, never clipped.

Each check returns the value in the form the caller computes with (``int``, ``float``, a floating
tensor) or raises ``TypeError``/``ValueError`` with a message that starts with ``what`` (the call
being checked, e.g. ``"fusion.fuse"``) when given, then the parameter's name.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import torch

__all__ = ["device", "integer", "number", "positive", "nonnegative", "probability", "choice", "tensor", "alpha",
           "directions", "volume"]


def _prefix(what: str | None) -> str:
    return f"{what}: " if what else ""


def integer(value, name: str, minimum: int | None = None, maximum: int | None = None,
            what: str | None = None) -> int:
    """``value`` as an ``int`` (numpy integers too, never ``bool``) within [minimum, maximum]."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        bounds = " and ".join(s for s in (f">= {minimum}" if minimum is not None else "",
                                          f"<= {maximum}" if maximum is not None else "") if s)
        raise ValueError(f"{_prefix(what)}{name} must be an integer{' ' + bounds if bounds else ''}, got {value!r}")
    return int(value)


def number(value, name: str, minimum: float | None = None, maximum: float | None = None,
           what: str | None = None, above: float | None = None) -> float:
    """``value`` as a finite ``float`` (never ``bool``) within [minimum, maximum], and > ``above``."""
    real = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    ok = real and math.isfinite(value)
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    ok = ok and (above is None or value > above)
    if not ok:
        bounds = " and ".join(s for s in (f"> {above}" if above is not None else "",
                                          f">= {minimum}" if minimum is not None else "",
                                          f"<= {maximum}" if maximum is not None else "") if s)
        raise ValueError(f"{_prefix(what)}{name} must be a finite number{' ' + bounds if bounds else ''}, "
                         f"got {value!r}")
    return float(value)


def positive(value, name: str, what: str | None = None) -> float:
    """A finite number > 0 (a length, a scale, an extinction coefficient)."""
    return number(value, name, what=what, above=0)


def nonnegative(value, name: str, what: str | None = None) -> float:
    """A finite number >= 0 (a weight, a sharpness)."""
    return number(value, name, minimum=0, what=what)


def probability(value, name: str, what: str | None = None) -> float:
    """A number in [0, 1]."""
    return number(value, name, minimum=0, maximum=1, what=what)


def choice(value, name: str, options, what: str | None = None):
    """``value`` if it is one of ``options``, else an error listing them."""
    if value not in options:
        raise ValueError(f"{_prefix(what)}{name} must be one of {', '.join(map(str, options))}, got {value!r}")
    return value


def tensor(x, name: str, what: str | None = None, nonnegative: bool = False) -> torch.Tensor:
    """``x`` (a tensor or numpy array of finite reals, none below 0 if ``nonnegative``) as a floating-point tensor."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not torch.is_tensor(x):
        raise TypeError(f"{_prefix(what)}{name} must be a torch tensor or numpy array, got {type(x).__name__}")
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"{_prefix(what)}{name} must hold real numbers, got {x.dtype}")
    x = x if x.is_floating_point() else x.float()
    if not torch.isfinite(x).all():
        raise ValueError(f"{_prefix(what)}{name} holds NaN or inf")
    if nonnegative and x.numel() and x.min() < 0:
        raise ValueError(f"{_prefix(what)}{name} must be non-negative, got minimum {x.min().item()!r}")
    return x


def alpha(x, what: str | None = None) -> torch.Tensor:
    """An x-ray's transparency: finite reals in [0, 1] as a floating tensor (shapes are the caller's)."""
    x = tensor(x, "alpha (x-ray transparency)", what)
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{_prefix(what)}alpha must be transparency in [0, 1], got values in "
                         f"[{x.min().item()!r}, {x.max().item()!r}]")
    return x


def directions(d, what: str | None = None, dtype: torch.dtype = torch.float32,
               name: str = "view direction") -> torch.Tensor:
    """Directions ``[..., 3]`` (x, y, z; views by default, or the ``name``d light or plane normal) as unit vectors."""
    if isinstance(d, np.ndarray):
        d = torch.from_numpy(d)
    try:
        d = torch.as_tensor(d, dtype=dtype)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{_prefix(what)}{name} must be a 3-vector (x, y, z), got {d!r}") from None
    if d.shape[-1:] != (3,):
        raise ValueError(f"{_prefix(what)}{name} must have 3 components (x, y, z), "
                         f"got shape {tuple(d.shape)}")
    if not torch.isfinite(d).all():
        raise ValueError(f"{_prefix(what)}{name} contains NaN or inf")
    norm = d.norm(dim=-1)
    if (norm < 1e-6).any():
        raise ValueError(f"{_prefix(what)}{name} must be non-zero")
    return d / norm[..., None]


def batched(vectors: torch.Tensor, batch: int, what: str, items: str) -> torch.Tensor:
    """Checked 3-vectors ``[3]`` or ``[N, 3]`` as ``[batch, 3]``: one serves every item of the batch, else one each
    (``items`` names them in the error)."""
    vectors = vectors.reshape(-1, 3)
    if len(vectors) == 1 and batch > 1:
        vectors = vectors.expand(batch, 3)
    if len(vectors) != batch:
        raise ValueError(f"{what}: {len(vectors)} {items} for a batch of {batch} volumes")
    return vectors


def volume(v, what: str | None = None, min_side: int = 2) -> tuple[torch.Tensor, bool]:
    """A density volume ``[D, H, W]`` or batch ``[B, D, H, W]`` as ``([B, D, H, W], was_single)``."""
    if not torch.is_tensor(v):
        raise TypeError(f"{_prefix(what)}volume must be a torch tensor, got {type(v).__name__}")
    if v.dim() not in (3, 4):
        raise ValueError(f"{_prefix(what)}volume must be [D, H, W] or [B, D, H, W], got shape {tuple(v.shape)}")
    if not v.is_floating_point():
        raise ValueError(f"{_prefix(what)}volume must be floating point, got {v.dtype}")
    if min(v.shape[-3:]) < min_side:
        raise ValueError(f"{_prefix(what)}volume is too small along an axis: shape {tuple(v.shape)}")
    single = v.dim() == 3
    return (v[None] if single else v), single


def device(value, what: str | None = None) -> torch.device:
    """``value`` (``cpu``, ``cuda``, ``cuda:N`` or a torch.device) as a device this machine has."""
    try:
        found = torch.device(value)
    except (RuntimeError, TypeError):
        found = None
    if found is None or found.type not in ("cpu", "cuda"):
        raise ValueError(f"{_prefix(what)}unknown device {str(value)!r}; expected cpu, cuda or cuda:N")
    if found.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"{_prefix(what)}device {str(value)!r}: this machine has no CUDA GPU; use cpu")
        if found.index is not None and found.index >= count:
            raise ValueError(f"{_prefix(what)}device {str(value)!r}: this machine has {count} CUDA GPU(s), "
                             f"cuda:0 to cuda:{count - 1}")
    return found
