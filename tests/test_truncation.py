"""The cut augmentation (``augment.truncated``): a specimen cut from below by a plane, as a CT's field of
view cuts a head, is fitted into the cube again exactly as ``io.prepare_volume`` fits a real CT, so a
cut procedural skull is framed as a cut real one is. Checked on a ball, whose cut and fit are known
in closed form, against ``io.prepare_volume`` itself, and by symmetry."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xtomo.data import io
from xtomo.data.augment import truncated

N = 32


def ball(radius: float = 0.7, centre=(0.0, 0.0, 0.0), n: int = N) -> torch.Tensor:
    """A solid ball of density 0.8 (radius and centre in the cube's [-1, 1] units), sampled at voxel centres."""
    t = (torch.arange(n, dtype=torch.float64) + 0.5) * 2 / n - 1
    z, y, x = torch.meshgrid(t, t, t, indexing="ij")
    inside = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2
    return 0.8 * inside.to(torch.float64)


def occupied(v: torch.Tensor) -> torch.Tensor:
    """Voxel centres ``[M, 3]`` (z, y, x in [-1, 1]) of the voxels above 5 % of the densest."""
    n = v.shape[-1]
    return ((v > 0.05 * v.max()).nonzero().to(torch.float64) + 0.5) * 2 / n - 1


def test_no_cut_leaves_every_volume_as_it_is():
    v = torch.stack([ball(), ball(0.5, (0.1, -0.2, 0.0))])
    assert truncated(v, torch.zeros(2), torch.full((2,), 0.3)) is v
    out = truncated(v, torch.tensor([0.0, 0.5]), torch.zeros(2))
    assert torch.equal(out[0], v[0]) and not torch.equal(out[1], v[1])


def test_a_ball_cut_in_half_is_a_hemisphere_centred_and_fitted_to_the_sphere():
    """Half a ball of radius r (cut at its equator, flat face down) has the bounding box z in [0, r],
    y and x in [-r, r]: centred on that box, its farthest points, the equator's rim, lie at
    sqrt(r^2 + (r/2)^2) = r sqrt(5)/2, which the fit scales to 2 * FIT_RADIUS (the cube spans [-1, 1])."""
    out = truncated(ball(0.7)[None], torch.tensor([0.5]), torch.zeros(1))[0]
    pts = occupied(out)
    scale = 2 * io.FIT_RADIUS / (0.7 * math.sqrt(5) / 2)
    voxel = 2 / N
    low, high = pts.amin(0), pts.amax(0)
    # flat face down at z = -(r/2) * scale, dome top at +(r/2) * scale; round across y and x
    assert low[0] == pytest.approx(-0.35 * scale, abs=1.5 * voxel) and high[0] == pytest.approx(0.35 * scale,
                                                                                                abs=1.5 * voxel)
    for axis in (1, 2):
        assert low[axis] == pytest.approx(-0.7 * scale, abs=1.5 * voxel)
        assert high[axis] == pytest.approx(0.7 * scale, abs=1.5 * voxel)
    assert pts.norm(dim=1).max() <= 2 * io.FIT_RADIUS + voxel
    # the flat face: the lowest occupied slice is a full disc, the highest a small cap
    rows = (out > 0.4).sum((1, 2))
    lit = rows.nonzero()[:, 0]
    assert rows[lit[0]] > 4 * rows[lit[-1]]
    # densities kept (trilinear inside the solid), the mass times the cube of the magnification: the kept
    # upper half's voxel centres, centred on their box, reach to r_max, plus half a voxel's diagonal
    inner = out[out > 0.79]
    assert len(inner) > 0 and float(inner.max()) <= 0.8 + 1e-9
    kept = occupied(ball(0.7))
    kept = kept[kept[:, 0] > 0]
    reach = (kept - (kept.amin(0) + kept.amax(0)) / 2).norm(dim=1).max() + math.sqrt(3) / N
    magnification = 2 * io.FIT_RADIUS / float(reach)
    assert float(out.sum()) == pytest.approx(float(ball(0.7).sum()) / 2 * magnification**3, rel=0.01)


def test_a_cut_skull_is_framed_as_io_prepare_volume_frames_a_cut_ct():
    """The augmentation is the real path: cutting a volume by hand and fitting it with
    ``io.prepare_volume`` gives the same cube, up to how each resamples."""
    g = torch.Generator().manual_seed(3)
    v = ball(0.6, (0.05, 0.1, -0.05)) * (0.6 + 0.4 * torch.rand(N, N, N, generator=g, dtype=torch.float64))
    v = torch.maximum(v, 1.2 * ball(0.25, (-0.35, 0.3, 0.0)))  # a dense 'jaw' low in front (density 0.96)
    out = truncated(v[None], torch.tensor([0.3]), torch.zeros(1))[0]
    pts = occupied(v)
    z = pts[:, 0]
    level = z.min() + 0.3 * (z.max() - z.min())
    t = (torch.arange(N, dtype=torch.float64) + 0.5) * 2 / N - 1
    by_hand = io.prepare_volume(np.asarray(v * (t[:, None, None] >= level)), N).to(torch.float64)
    both = (out > 0.05 * out.max()) | (by_hand > 0.05 * by_hand.max())
    same = (out > 0.05 * out.max()) & (by_hand > 0.05 * by_hand.max())
    assert float(same.sum() / both.sum()) > 0.9
    assert float(out.sum()) == pytest.approx(float(by_hand.sum()), rel=0.01)  # densities and scale alike
    for dims in ((1, 2), (0, 2), (0, 1)):  # centres of mass within a hundredth of a voxel
        centre = [float((a.sum(dims) * t).sum() / a.sum()) for a in (out, by_hand)]
        assert centre[0] == pytest.approx(centre[1], abs=0.01 * 2 / N)


def test_the_plane_leans_forward_or_back_by_the_tilt_and_a_batch_cuts_each_volume_alone():
    """Mirroring front and back (y) turns a cut leaning forward into one leaning back; without a tilt a
    ball's cut is the same from every side, so the result is symmetric in y and in x."""
    v = ball(0.7)
    tilt = math.radians(20)
    batch = truncated(torch.stack([v, v, v]), torch.tensor([0.4, 0.4, 0.4]), torch.tensor([tilt, -tilt, 0.0]))
    torch.testing.assert_close(batch[1], batch[0].flip(1), rtol=0, atol=1e-6)
    torch.testing.assert_close(batch[2], batch[2].flip(1), rtol=0, atol=1e-6)
    torch.testing.assert_close(batch[2], batch[2].flip(2), rtol=0, atol=1e-6)
    assert not torch.allclose(batch[0], batch[2], atol=1e-3)
    # the normal leaning forward, the plane takes more from the back below: the rest's mass sits further
    # forward than with no lean
    y = (torch.arange(N, dtype=torch.float64) + 0.5) * 2 / N - 1
    mass_y = [float((b.sum((0, 2)) * y).sum() / b.sum()) for b in batch]
    assert mass_y[1] < mass_y[2] < mass_y[0]
    for i, (cut, lean) in enumerate(((0.4, tilt), (0.4, -tilt), (0.4, 0.0))):
        torch.testing.assert_close(batch[i], truncated(v[None], torch.tensor([cut]), torch.tensor([lean]))[0],
                                   rtol=0, atol=1e-6)


def test_more_cut_keeps_less_of_the_skull():
    v = ball(0.7)[None].repeat(3, 1, 1, 1)
    out = truncated(v, torch.tensor([0.1, 0.3, 0.5]), torch.zeros(3))
    extents = []
    for b in out:
        pts = occupied(b)
        extents.append(float((pts[:, 0].max() - pts[:, 0].min()) / (pts[:, 1].max() - pts[:, 1].min())))
    assert extents[0] > extents[1] > extents[2]  # flatter and flatter, relative to the width


def test_a_stretched_ball_is_the_ellipsoid_of_its_factors_fitted_to_the_sphere():
    """A ball stretched by (x 1.25, y 1, z 0.8) is an ellipsoid whose semi-axes keep those ratios; its
    longest axis (x) reaches the fit sphere, and a stretch of 1 everywhere leaves a volume as it is."""
    v = ball(0.6)[None]
    assert truncated(v, torch.zeros(1), torch.zeros(1), torch.ones(1, 3)) is v
    out = truncated(v, torch.zeros(1), torch.zeros(1), torch.tensor([[1.25, 1.0, 0.8]]))[0]
    pts = occupied(out)
    half = (pts.amax(0) - pts.amin(0)) / 2 + 1 / N  # semi-axes (z, y, x), to the voxels' outer faces
    voxel = 2 / N
    assert half[2] == pytest.approx(2 * io.FIT_RADIUS, abs=voxel)
    assert float(half[1] / half[2]) == pytest.approx(1 / 1.25, abs=0.05)
    assert float(half[0] / half[2]) == pytest.approx(0.8 / 1.25, abs=0.05)
    assert ((pts.amax(0) + pts.amin(0)) / 2).abs().max() <= voxel  # centred


def centroid(v: torch.Tensor) -> torch.Tensor:
    """The density-weighted centre (x, y, z in the cube's [-1, 1] units) of a volume ``[D, H, W]``."""
    n = v.shape[-1]
    t = (torch.arange(n, dtype=v.dtype) + 0.5) * 2 / n - 1
    w = v / v.sum()
    return torch.stack([(w.sum((0, 1)) * t).sum(), (w.sum((0, 2)) * t).sum(), (w.sum((1, 2)) * t).sum()])


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_turn_is_a_right_handed_rotation_of_the_pitch_roll_yaw_axes(axis):
    """``turning``: orthonormal, determinant 1, and each angle alone turns its two axes as documented
    (pitch: +y towards +z; roll: +z towards +x; yaw: +x towards +y)."""
    from xtomo.data.augment import turning

    angles = torch.zeros(1, 3, dtype=torch.float64)
    angles[0, axis] = math.radians(30)
    r = turning(angles)[0]
    torch.testing.assert_close(r @ r.T, torch.eye(3, dtype=torch.float64))
    assert float(torch.linalg.det(r)) == pytest.approx(1.0)
    start, towards = {0: (1, 2), 1: (2, 0), 2: (0, 1)}[axis]  # (x, y, z) indices
    moved = r[:, start]
    assert float(moved[start]) == pytest.approx(math.cos(math.radians(30)))
    assert float(moved[towards]) == pytest.approx(math.sin(math.radians(30)))
    assert float(r[axis, axis]) == pytest.approx(1.0)  # the axis itself stays
    composed = turning(torch.tensor([[0.2, -0.3, 0.5]], dtype=torch.float64))[0]
    torch.testing.assert_close(composed, turning(torch.tensor([[0, 0, 0.5]], dtype=torch.float64))[0]
                               @ turning(torch.tensor([[0, -0.3, 0]], dtype=torch.float64))[0]
                               @ turning(torch.tensor([[0.2, 0, 0]], dtype=torch.float64))[0])


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_turned_specimen_is_its_fit_rotated_about_the_cube_centre(axis):
    """Two balls on either side of the centre, along the axis the turn moves first: after the turn by
    40 degrees, the line between their centres makes 40 degrees with that axis, towards the documented
    one, and both stay inside the cube, as large as an unturned fit makes them (no turn changes the fit)."""
    start, towards = {0: (1, 2), 1: (2, 0), 2: (0, 1)}[axis]  # (x, y, z) indices
    offset = [0.0, 0.0, 0.0]
    offset[2 - start] = 0.45  # ball() takes (z, y, x)
    pair = torch.maximum(ball(0.25, tuple(offset), n=48), ball(0.25, tuple(-c for c in offset), n=48))
    pair = pair * (1 + 0.5 * (ball(0.25, tuple(offset), n=48) > 0))  # the + ball denser: tells them apart
    turns = torch.zeros(2, 3, dtype=torch.float64)
    turns[1, axis] = math.radians(40)
    fitted, turned = truncated(torch.stack([pair, pair]), torch.zeros(2), torch.zeros(2), None, turns)
    assert torch.equal(fitted, pair)  # no turn, no cut, no stretch: as it was
    heavy = (turned > 0.9).to(turned.dtype)  # the denser ball
    light = ((turned > 0.3) & (turned < 0.9)).to(turned.dtype)
    line = centroid(heavy) - centroid(light)
    angle = math.degrees(math.atan2(float(line[towards]), float(line[start])))
    assert angle == pytest.approx(40, abs=2.5)
    assert abs(float(line[axis])) < 0.02  # nothing moves along the axis turned about
    # a turn keeps the mass of the pair as fitted again (truncated refits a volume it changes, so a stretch of
    # 1.0001 stands for "no change, but refit" in the reference)
    refitted = truncated(pair[None], torch.zeros(1), torch.zeros(1), torch.ones(1, 3) * 1.0001)[0]
    assert float(turned.sum()) == pytest.approx(float(refitted.sum()), rel=0.03)
    assert occupied(turned).norm(dim=1).max() < io.FIT_RADIUS * 2 + 0.1  # still inside the fit sphere
