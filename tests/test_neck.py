"""The neck below a head CT's skull: found in the upright skull, cut away before the fit frames it, and nothing
else is (no procedural cranium, no jaw or tusk in front, no short stub)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import require

from xtomo.data import io, neck, realdata
from xtomo.specimens import crania

BELOW = 24  #: slices of room under the skull


@pytest.fixture(scope="module")
def skull() -> torch.Tensor:
    """A procedural ape's skull, upright as made, with ``BELOW`` empty slices under it."""
    ape = next(s for s in crania.catalog(175) if s.name == "Pongidae sp. 01")
    return torch.cat([torch.zeros(BELOW, 64, 64), crania.skull(ape, size=64)])


def _bone_rows(volume: torch.Tensor) -> tuple[int, int]:
    rows = (volume > 0.05 * volume.max()).sum((1, 2)).nonzero()[:, 0]
    return int(rows[0]), int(rows[-1])


def _with_column(skull: torch.Tensor, length: int, forward: float = 0.0) -> torch.Tensor:
    """The skull over a square rod of bone as wide as a fifth of the skull, ``length`` slices long, ending at the
    skull's lowest bone, under its middle or ``forward`` of its length in front of it (a spine; a tusk)."""
    bone = skull > 0.05 * skull.max()
    ys, xs = bone.any(0).any(1).nonzero()[:, 0], bone.any(0).any(0).nonzero()[:, 0]
    low = _bone_rows(skull)[0]
    half = max(1, int(xs[-1] - xs[0] + 1) // 10)
    y = int((ys[0] + ys[-1]) / 2 + forward * (ys[-1] - ys[0] + 1))
    x = int(xs[0] + xs[-1]) // 2
    out = skull.clone()
    out[low - length:low, y - half:y + half, x - half:x + half] = 0.8
    return out


def test_a_column_under_the_skull_is_a_neck_and_its_top_is_the_level(skull):
    low, high = _bone_rows(skull)
    necked = _with_column(skull, length=BELOW)
    assert neck.top(necked) == low
    assert neck.top(skull) == 0, "a skull alone has no neck"


def test_a_short_stub_or_a_column_in_front_is_not_a_neck(skull):
    low, high = _bone_rows(skull)
    stub = int(neck.LEAST * (high + 1 - low) / 2)
    assert neck.top(_with_column(skull, length=stub)) == 0
    assert neck.top(_with_column(skull, length=BELOW, forward=0.3)) == 0, "a tusk hangs in front"


def test_no_procedural_cranium_has_a_neck():
    """Every walrus (tusks: narrow and long, but in front) and a spread of the other species."""
    species = [s for i, s in enumerate(crania.catalog(175)) if s.name.startswith("Odobenidae") or i % 25 == 0]
    assert not [s.name for s in species if neck.top(crania.skull(s, size=64))]


def test_without_empties_what_lies_below_the_level_and_keeps_the_skull(skull):
    """In a cube set upright by ``rotation`` (here none), everything under the neck's top goes and the skull stays;
    a skull without a neck comes back as the same array."""
    low, high = _bone_rows(skull)
    necked = _with_column(skull, length=BELOW).numpy()
    centre, side = np.array(necked.shape) / 2, float(max(necked.shape))
    cut = torch.from_numpy(neck.without(necked, np.ones(3), centre, side, np.eye(3)))
    assert _bone_rows(cut)[0] >= low - 1
    assert float(cut[low:].sum()) >= 0.99 * float(skull[low:].sum())
    alone = np.ascontiguousarray(skull.numpy())
    assert neck.without(alone, np.ones(3), centre, side, np.eye(3)) is alone


def test_the_phantom_head_is_read_without_its_neck(monkeypatch):
    """The fetched head phantom runs down to the fifth cervical vertebra: read upright, its spine is gone and the
    skull fills more of the cube than it does read with its neck."""
    file = realdata.PHANTOM_HEAD["file"]
    require((realdata.data_dir() / file).exists(), "the phantom head is missing: run `xtomo fetch-data`")
    read, _, found = io.load_volume_pose(realdata.path(file), 64, upright=True)
    assert neck.top(read) == 0
    assert found.neck and found.told(0.0).endswith("; the neck below it cut away (xtomo.data.neck)")
    monkeypatch.setattr(neck, "LEAST", 1.0)   # no run of slices is that long: the neck stays
    with_neck, _, kept = io.load_volume_pose(realdata.path(file), 64, upright=True)
    assert not kept.neck
    monkeypatch.undo()
    top = neck.top(with_neck)
    assert top > _bone_rows(with_neck)[0] + 5
    low, high = _bone_rows(read)
    assert high + 1 - low > 1.1 * (_bone_rows(with_neck)[1] + 1 - top)   # the skull drawn larger (1.18 measured)
