"""xtomo.data.pose: a skull turned any way in its scan is set upright and facing as the training skulls."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xtomo.data import io, pose
from xtomo.specimens import crania


def random_rotation(seed: int) -> torch.Tensor:
    """A rotation drawn uniformly (a random unit quaternion), array order."""
    a, b, c, d = (q := torch.randn(4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)) / q.norm()
    return torch.tensor([[a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                         [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
                         [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d]]).float()


def up_and_front_errors(found: torch.Tensor, applied: torch.Tensor) -> tuple[float, float]:
    """Degrees between where ``found`` puts the skull's up and front and where they belong, for a skull
    turned by ``applied``: ``found @ applied`` is the identity when the estimate undoes the turn."""
    both = (found.double() @ applied.double()).diagonal()
    return tuple(math.degrees(math.acos(min(1.0, float(c)))) for c in both[:2])


@pytest.fixture(scope="module")
def skulls():
    """Two species of different orders, at the size the pose is judged at (not templates: jittered, mixed)."""
    species = crania.catalog(175)
    return {species[i].name: crania.skull(species[i], size=pose.TEMPLATE_SIZE) for i in (40, 150)}


def test_a_quarter_turn_moves_voxels_exactly():
    """``rotated`` by a quarter turn about x (z towards y) puts voxel (j, S-1-i, k) at (i, j, k); the
    identity leaves the volume as it was."""
    v = torch.rand(12, 12, 12, generator=torch.Generator().manual_seed(0))
    quarter = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(pose.rotated(v, torch.eye(3)), v)
    torch.testing.assert_close(pose.rotated(v, quarter), v.flip(1).permute(1, 0, 2), atol=1e-5, rtol=0)
    assert pose.turn_angle(quarter) == pytest.approx(90.0)


def test_an_upright_skull_stays_upright(skulls):
    for name, v in skulls.items():
        assert pose.turn_angle(pose.estimate(v)) < 6.0, name


@pytest.mark.parametrize("seed", [1, 2])
def test_a_skull_turned_any_way_is_set_upright(skulls, seed):
    """Turned by a random rotation, each skull's estimated turn brings its vault up and its face forward
    again within 6 degrees (the procedural crania are judged within 1-5 degrees; RESULTS ``pose``)."""
    applied = random_rotation(seed)
    assert pose.turn_angle(applied) > 30
    for name, v in skulls.items():
        up, front = up_and_front_errors(pose.estimate(pose.rotated(v, applied)), applied)
        assert up < 6.0 and front < 6.0, (name, up, front)


def test_loading_upright_turns_the_skull_and_says_where_it_came_from(skulls, tmp_path):
    """``prepare_volume(upright=True)`` of a skull stored on its side reads as the skull stored upright;
    the affine of ``load_volume_affine`` says how far it turned (a quarter, give or take the estimate's few
    degrees) and still maps each voxel of the cube to where it lies in the file."""
    v = next(iter(skulls.values())).numpy()
    on_its_side = np.ascontiguousarray(v.transpose(2, 1, 0)[::-1])  # a quarter turn about y
    upright = io.prepare_volume(on_its_side, 64, upright=True)
    plain = io.prepare_volume(v, 64)
    assert float(np.corrcoef(upright.flatten(), plain.flatten())[0, 1]) > 0.9
    assert float(np.corrcoef(io.prepare_volume(on_its_side, 64).flatten(), plain.flatten())[0, 1]) < 0.5

    spot = np.zeros((40, 40, 40), np.float32)
    spot[30, 8, 12] = 1.0  # one dense voxel off-centre, with the skull's bulk elsewhere
    spot[10:14, 20:24, 25:30] = 0.6
    np.save(tmp_path / "spot.npy", spot)
    np.save(tmp_path / "side.npy", on_its_side)
    assert 80 < pose.affine_turn(io.load_volume_affine(tmp_path / "side.npy", 64, upright=True)[1]) < 100
    assert pose.affine_turn(io.load_volume_affine(tmp_path / "side.npy", 64)[1]) == pytest.approx(0, abs=1e-6)
    cube, affine = io.load_volume_affine(tmp_path / "spot.npy", 40, upright=True)
    index = np.unravel_index(int(cube.argmax()), cube.shape)  # (z, y, x) in the cube
    found = (affine @ np.array([*index[::-1], 1.0]))[:3][::-1]  # (x, y, z) in the file -> (z, y, x)
    assert np.abs(found - np.array([30, 8, 12])).max() < 1.5, found


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="upright needs fit=True"):
        io.prepare_volume(np.ones((8, 8, 8), np.float32), 8, fit=False, upright=True)
    with pytest.raises(ValueError, match="estimate: expected one cubic volume"):
        pose.estimate(torch.zeros(8, 8, 9))
    with pytest.raises(ValueError, match="estimate: empty volume"):
        pose.estimate(torch.zeros(8, 8, 8))
    with pytest.raises(ValueError, match="rotated: rotation must be orthonormal with determinant"):
        pose.rotated(torch.zeros(8, 8, 8), torch.diag(torch.tensor([1.0, 1.0, -1.0])))
    with pytest.raises(ValueError, match="rotated: rotation must be a finite 3 x 3 matrix"):
        pose.rotated(torch.zeros(8, 8, 8), torch.eye(4))
