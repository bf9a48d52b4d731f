"""xtomo.data.pose: a skull turned any way in its scan is set upright and facing as the training skulls."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from xtomo.data import io, pose
from xtomo.specimens import crania


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


def test_random_rotations_are_rotations_drawn_uniformly():
    """Each draw is orthonormal with determinant +1 and the same for the same seed; over 2,000 draws the mean
    matrix is zero and a share (pi/2 - 1)/pi = 0.18 of them turn by at most 90 degrees, as a uniform draw over
    all turns gives (the angle's density is (1 - cos t)/pi)."""
    draws = torch.stack([pose.random_rotation(seed) for seed in range(2000)]).double()
    torch.testing.assert_close(draws @ draws.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(2000, 3, 3),
                               atol=1e-5, rtol=0)
    assert torch.allclose(torch.linalg.det(draws), torch.ones(2000, dtype=torch.float64), atol=1e-5)
    torch.testing.assert_close(pose.random_rotation(7), pose.random_rotation(7), rtol=0, atol=0)
    assert draws.mean(0).abs().max() < 0.06
    angles = torch.tensor([pose.turn_angle(r) for r in draws])
    assert abs(float((angles <= 90).double().mean()) - (math.pi / 2 - 1) / math.pi) < 0.03


def test_a_quarter_turn_moves_voxels_exactly():
    """``rotated`` by a quarter turn about x (z towards y) puts voxel (j, S-1-i, k) at (i, j, k); the
    identity leaves the volume as it was."""
    v = torch.rand(12, 12, 12, generator=torch.Generator().manual_seed(0))
    quarter = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(pose.rotated(v, torch.eye(3)), v)
    torch.testing.assert_close(pose.rotated(v, quarter), v.flip(1).permute(1, 0, 2), atol=1e-5, rtol=0)
    assert pose.turn_angle(quarter) == pytest.approx(90.0)


def test_an_upright_skull_stays_upright_and_its_pose_is_sure(skulls):
    """Each skull stays within 6 degrees of upright; its best turn stands clearly above the median turn
    (``margin``, 0.14 or more for every skull of RESULTS ``pose-match``) and resembles a template."""
    for name, v in skulls.items():
        found = pose.find(v)
        assert pose.turn_angle(found.rotation) < 6.0, name
        assert found.margin > pose.SURE_MARGIN + 0.1 and found.match > 0.5, (name, found.margin, found.match)
        assert found.family in {f for order in crania.ORDERS.values() for f in order["families"]}
        torch.testing.assert_close(pose.estimate(v), found.rotation)


def ball_and_box(size: int = pose.TEMPLATE_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """A solid ball and a solid box, centred: shapes with no up, front or mid-sagittal plane of a skull's."""
    z, y, x = torch.meshgrid(*[torch.linspace(-1, 1, size)] * 3, indexing="ij")
    box = (z.abs() < 0.5) & (y.abs() < 0.3) & (x.abs() < 0.6)
    return (z * z + y * y + x * x < 0.5).float(), box.float()


def test_a_shape_without_a_front_is_no_sure_pose():
    """A ball matches every turn alike, a box one turn in four: neither has a margin near a skull's."""
    for name, shape in zip(("ball", "box"), ball_and_box()):
        assert pose.find(shape).margin < pose.SURE_MARGIN / 2, name


def test_an_unsure_pose_is_read_as_scanned_with_a_warning(tmp_path):
    """``prepare_volume(upright=True)`` keeps a box as it lies (bit for bit) and says why; ``load_volume_pose``
    returns the unsure pose it judged."""
    box = ball_and_box()[1].numpy()
    with pytest.warns(UserWarning, match="not set upright: no turn of it resembles a skull template"):
        kept = io.prepare_volume(box, 32, upright=True)
    torch.testing.assert_close(kept, io.prepare_volume(box, 32), rtol=0, atol=0)
    np.save(tmp_path / "box.npy", box)
    with pytest.warns(UserWarning, match="not set upright"):
        _, affine, found = io.load_volume_pose(tmp_path / "box.npy", 32, upright=True)
    assert found.margin < pose.SURE_MARGIN and not found.sure and pose.affine_turn(affine) == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_skull_turned_any_way_is_set_upright(skulls, seed):
    """Turned by a random rotation, each skull's estimated turn brings its vault up and its face forward
    again within 6 degrees (the procedural crania are judged within 1-5 degrees; RESULTS ``pose``)."""
    applied = pose.random_rotation(seed)
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

    np.save(tmp_path / "side.npy", on_its_side)
    assert 80 < pose.affine_turn(io.load_volume_affine(tmp_path / "side.npy", 64, upright=True)[1]) < 100
    assert pose.affine_turn(io.load_volume_affine(tmp_path / "side.npy", 64)[1]) == pytest.approx(0, abs=1e-6)
    _, _, found = io.load_volume_pose(tmp_path / "side.npy", 64, upright=True)  # the pose that turned it
    assert found.sure and found.margin >= pose.SURE_MARGIN and 80 < pose.turn_angle(found.rotation) < 100, found
    assert io.load_volume_pose(tmp_path / "side.npy", 64)[2] is None
    marked = 0.5 * on_its_side
    spot = np.array(np.unravel_index(int(on_its_side.argmax()), marked.shape))  # in the bone, off-centre
    marked[tuple(slice(i - 1, i + 2) for i in spot)] = 1.0  # one dense 3^3 block, the skull's bulk elsewhere
    np.save(tmp_path / "marked.npy", marked)
    cube, affine = io.load_volume_affine(tmp_path / "marked.npy", 64, upright=True)
    assert pose.affine_turn(affine) > 80
    index = np.unravel_index(int(cube.argmax()), cube.shape)  # (z, y, x) in the cube
    found = (affine @ np.array([*index[::-1], 1.0]))[:3][::-1]  # (x, y, z) in the file -> (z, y, x)
    assert np.abs(found - spot).max() < 1.5, (found, spot)


def test_the_templates_are_built_once_and_kept_where_the_cache_says(monkeypatch):
    """The templates are written to ``templates_path`` (under ``$XTOMO_CACHE``) and read back by the next
    process; a cached file that is damaged or of another shape is built again and replaced."""
    built = pose._templates()
    path = pose.templates_path()
    assert path.parent == Path(os.environ["XTOMO_CACHE"]).resolve() and crania.VERSION in path.name
    try:
        np.save(path, (built * 0 + 0.5).numpy())
        pose._templates.cache_clear()
        assert bool((pose._templates() == 0.5).all())  # read from the file, not built
        monkeypatch.setattr(pose, "_built_templates", lambda: built.clone())
        for damaged in (b"not a numpy file", np.zeros((3, 3))):
            np.save(path, damaged) if isinstance(damaged, np.ndarray) else path.write_bytes(damaged)
            pose._templates.cache_clear()
            torch.testing.assert_close(pose._templates(), built, rtol=0, atol=0)
            torch.testing.assert_close(torch.from_numpy(np.load(path)), built, rtol=0, atol=0)
    finally:
        pose._templates.cache_clear()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="upright needs fit=True"):
        io.prepare_volume(np.ones((8, 8, 8), np.float32), 8, fit=False, upright=True)
    with pytest.raises(ValueError, match="find: expected one cubic volume"):
        pose.estimate(torch.zeros(8, 8, 9))
    with pytest.raises(ValueError, match="find: empty volume"):
        pose.find(torch.zeros(8, 8, 8))
    with pytest.raises(ValueError, match="rotated: rotation must be orthonormal with determinant"):
        pose.rotated(torch.zeros(8, 8, 8), torch.diag(torch.tensor([1.0, 1.0, -1.0])))
    with pytest.raises(ValueError, match="rotated: rotation must be a finite 3 x 3 matrix"):
        pose.rotated(torch.zeros(8, 8, 8), torch.eye(4))
