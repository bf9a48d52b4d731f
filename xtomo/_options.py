"""Parsers of the ``xtomo`` command's compound options (``--crop``, ``--pixel-size``, ``--view``, ``--tube``): the
value, or an error naming the option."""
from __future__ import annotations

import math


def box(text: str) -> tuple[int, int, int]:
    """``"100,40,512"`` as (top, left, side) in pixels, or an error naming ``--crop``."""
    try:
        top, left, side = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--crop expects TOP,LEFT,SIDE in pixels (e.g. 100,40,512), got {text!r}") from None
    return top, left, side


def mm(text: str) -> tuple[float, float]:
    """``"0.14"`` or ``"0.14,0.15"`` as (row, column) mm, or an error naming ``--pixel-size``."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"--pixel-size expects MM or ROW,COLUMN in mm, positive (e.g. 0.14), got {text!r}")
    return values[0], values[-1]


def view(text: str) -> tuple[float, float]:
    """``"30,20"`` as (azimuth, elevation) in degrees, or an error naming ``--view``."""
    parts = text.split(",")
    try:
        az, el = (float(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        az = el = None
    if az is None or not (math.isfinite(az) and math.isfinite(el) and -90 <= el <= 90):
        raise ValueError(f"--view expects AZ,EL in degrees with -90 <= EL <= 90 (e.g. 30,20), got {text!r}")
    return az, el


def tube(text: str) -> tuple[float, float]:
    """``"70"`` or ``"70,2.5"`` as (kVp, mm of aluminium; 2.5 unless given), or an error naming ``--tube``."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or not all(math.isfinite(v) and v >= 0 for v in values):
        raise ValueError(f"--tube expects KVP or KVP,MM (tube voltage, aluminium filter; e.g. 70 or 70,2.5), "
                         f"got {text!r}")
    return values[0], values[1] if len(values) == 2 else 2.5
