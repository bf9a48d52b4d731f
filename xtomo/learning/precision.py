"""The arithmetic a training step runs in: bf16 autocast where asked, or where the device computes it natively."""
from __future__ import annotations

from contextlib import nullcontext

import torch

import xtomo._checks as checks
from xtomo.profiles import PRECISIONS

__all__ = ["native_bf16", "mixed_precision"]


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 in hardware: any CUDA device here, or a CPU with
    AVX-512 BF16 or AMX (probed at run time; an older torch without the probes counts as no)."""
    if torch.device(device).type == "cuda":
        return True
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def mixed_precision(device: torch.device | str, precision: str):
    """The autocast context a training step runs under: bf16 for ``"bf16"``, and for ``"auto"``
    where the device computes bf16 natively; otherwise none (float32). Losses stay float32."""
    device = torch.device(device)
    checks.choice(precision, "precision", PRECISIONS, "mixed_precision")
    if precision == "bf16" or (precision == "auto" and native_bf16(device)):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()
