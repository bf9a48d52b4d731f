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


def _numbers(text: str) -> list[float]:
    """The comma-separated finite numbers of ``text``, or ``[]`` where any is not one."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        return []
    return values if all(math.isfinite(v) for v in values) else []


def mm(text: str) -> tuple[float, float]:
    """``"0.14"`` or ``"0.14,0.15"`` as (row, column) mm, or an error naming ``--pixel-size``."""
    values = _numbers(text)
    if len(values) not in (1, 2) or not all(v > 0 for v in values):
        raise ValueError(f"--pixel-size expects MM or ROW,COLUMN in mm, positive (e.g. 0.14), got {text!r}")
    return values[0], values[-1]


def view(text: str) -> tuple[float, float]:
    """``"30,20"`` as (azimuth, elevation) in degrees, or an error naming ``--view``."""
    values = _numbers(text)
    if len(values) != 2 or not -90 <= values[1] <= 90:
        raise ValueError(f"--view expects AZ,EL in degrees with -90 <= EL <= 90 (e.g. 30,20), got {text!r}")
    return values[0], values[1]


def tube(text: str) -> tuple[float, float | None]:
    """``"70"`` or ``"70,2.5"`` as (kVp, mm of aluminium; ``None`` where not given), or an error naming ``--tube``."""
    values = _numbers(text)
    if len(values) not in (1, 2) or not all(v >= 0 for v in values):
        raise ValueError(f"--tube expects KVP or KVP,MM (tube voltage, aluminium filter; e.g. 70 or 70,2.5), "
                         f"got {text!r}")
    return values[0], values[1] if len(values) == 2 else None
