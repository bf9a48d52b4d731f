"""Bilateral symmetry in a view's frame: the mid-sagittal plane of a view, the reflection across it,
the plane found from a volume, and reconstructions made symmetric."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xtomo.imaging import fusion, symmetry, xray

SIDE, N = 24, 24


def _grid(side: int = SIDE) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The cube's voxel-centre coordinates (z, y, x), each from -1 to 1."""
    c = (torch.arange(side) + 0.5) / side * 2 - 1
    return torch.meshgrid(c, c, c, indexing="ij")


def _world_x(side: int = SIDE) -> torch.Tensor:
    """The cube's x coordinate (-1 to 1 along the last axis): odd under the mirror x -> -x."""
    return _grid(side)[2].contiguous()


def _phantom(seed: int = 0, side: int = SIDE) -> torch.Tensor:
    """Random smooth blobs, mirrored about the world plane x = 0: a symmetric specimen."""
    g = torch.Generator().manual_seed(seed)
    z, y, x = _grid(side)
    v = torch.zeros(side, side, side)
    for centre, radius in zip(torch.rand(6, 3, generator=g) * 1.0 - 0.5, torch.rand(6, generator=g) * 0.15 + 0.1):
        for sx in (1, -1):
            v += torch.exp(-((x - sx * centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2) / radius ** 2)
    return v


def _angle(a: torch.Tensor, b: torch.Tensor) -> float:
    return math.degrees(math.acos(min(1.0, abs(float(a @ b)))))


def test_side_and_front_views_reflect_by_flipping_one_axis():
    """Seen from the side (d = x) the mid-sagittal plane is across the depth; from the front (d = y)
    it is across the columns. Voxel centres land on voxel centres: the reflection is the flip, to float rounding."""
    v = torch.rand(N, SIDE, SIDE)
    side, front = symmetry.mirror_normal(torch.tensor([1.0, 0, 0])), symmetry.mirror_normal(torch.tensor([0, 1.0, 0]))
    assert torch.allclose(side.abs(), torch.tensor([0, 0, 1.0]), atol=1e-6)
    assert torch.allclose(front.abs(), torch.tensor([1.0, 0, 0]), atol=1e-6)
    torch.testing.assert_close(symmetry.reflect(v, side), v.flip(-3), atol=1e-5, rtol=0)
    torch.testing.assert_close(symmetry.reflect(v, front), v.flip(-1), atol=1e-5, rtol=0)


def test_the_normal_is_world_x_in_the_views_frame():
    """Aligned along any view, the world's x coordinate is a linear ramp whose gradient is the
    normal: its reflection is its negative (in the ball the cube's turns keep), and the plane's
    normal is what a least-squares fit of the ramp finds."""
    dirs = torch.cat([xray.sample_directions(12, seed=4), torch.tensor([[0, 0, 1.0], [0.6, 0.0, 0.8]])])
    ramp = xray.align(_world_x().expand(len(dirs), -1, -1, -1), dirs, n_steps=N)
    normals = symmetry.mirror_normal(dirs)
    z, y, x = _grid()
    inner = (x ** 2 + y ** 2 + z ** 2) < 0.6 ** 2
    grid = torch.stack([x[inner], y[inner], z[inner]], 1)
    for a, n in zip(ramp, normals):
        assert torch.allclose(n.norm(), torch.tensor(1.0))
        fit = torch.linalg.lstsq(grid, a[inner][:, None]).solution[:, 0]
        assert _angle(fit / fit.norm(), n) < 1.0
        assert (symmetry.reflect(a, n)[inner] + a[inner]).abs().max() < 0.02


def test_a_symmetric_specimen_is_symmetric_about_its_planes_in_every_view():
    dirs = xray.sample_directions(6, seed=1)
    aligned = xray.align(_phantom().expand(len(dirs), -1, -1, -1), dirs, n_steps=N)
    right = symmetry.asymmetry(aligned, symmetry.mirror_normal(dirs))
    tilted = symmetry.mirror_normal(dirs) + 0.5 * torch.tensor([0.0, 1.0, 0.0])  # tilted by up to 27 degrees
    wrong = symmetry.asymmetry(aligned, tilted)
    assert (right < 0.01).all() and (wrong > 10 * right).all(), (right, wrong)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_plane_is_found_from_the_volume_alone(seed):
    d = xray.sample_directions(1, seed=seed + 10)[0]
    aligned = xray.align(_phantom(seed), d, n_steps=N)
    found = symmetry.estimate_normal(aligned)
    assert _angle(found, symmetry.mirror_normal(d)) < 4.0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 31 - 1), axis=st.sampled_from([(1.0, 0.0, 0.0), (0.0, 1.0, 0.0)]))
def test_symmetrizing_never_moves_an_estimate_away_from_a_symmetric_truth(seed, axis):
    """Where the reflection is exact (side and front views), averaging with it is the orthogonal
    projection onto the symmetric volumes, so a symmetric truth is no farther away afterwards."""
    g = torch.Generator().manual_seed(seed)
    n = symmetry.mirror_normal(torch.tensor(axis))
    truth = symmetry.symmetrize(torch.rand(8, 10, 10, generator=g), n)
    estimate = truth + torch.randn(8, 10, 10, generator=g)
    made = symmetry.symmetrize(estimate, n)
    assert symmetry.asymmetry(made, n) < 1e-12
    assert (made - truth).norm() <= (estimate - truth).norm() + 1e-6


def test_a_reconstruction_made_symmetric_still_reprojects_to_its_xray():
    """``reconstruct(symmetry=...)`` symmetrizes the network's coarse answer, then fuses: the
    fused volume re-projects to the x-ray exactly, whichever plane was used."""
    from xtomo.learning.inference import reconstruct, symmetric
    from xtomo.learning.model import build_model

    torch.manual_seed(0)
    model = build_model("smoke")
    alpha = xray.simulate(_phantom(), torch.tensor([0.6, 0.0, 0.8]), n_steps=N, size=32)
    for plane in (torch.tensor([0.6, 0.0, 0.8]), "estimate"):
        v = reconstruct(alpha, model, symmetry=plane)
        floor = fusion.alpha_floor(xray.CHI)
        torch.testing.assert_close(xray.composite(v), alpha.clamp_min(floor), atol=2e-4, rtol=1e-4)
    coarse = torch.rand(2, 8, 8, 8)
    both = symmetric(coarse, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
    torch.testing.assert_close(both, torch.stack([0.5 * (coarse[0] + coarse[0].flip(-3)),
                                                  0.5 * (coarse[1] + coarse[1].flip(-1))]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("call, message", [
    (lambda: symmetry.reflect(torch.rand(4, 4, 4), torch.zeros(3)), "reflect: plane normal must be non-zero"),
    (lambda: symmetry.reflect(torch.rand(4, 4, 4), torch.ones(2)), "reflect: plane normal must have 3 components"),
    (lambda: symmetry.reflect(torch.rand(3, 4, 4, 4), torch.ones(2, 3)), "reflect: 2 plane normals for a batch of 3"),
    (lambda: symmetry.estimate_normal(torch.rand(2, 4, 4, 4)), "estimate_normal: expected one volume"),
    (lambda: symmetry.mirror_normal(torch.tensor([0.0, 0.0, float("nan")])), "mirror_normal: view direction contains"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_an_unknown_symmetry_is_named():
    from xtomo.learning.inference import symmetric

    message = "reconstruct: symmetry must be one of estimate, lateral, frontal, got 'plane'"
    with pytest.raises(ValueError, match=message):
        symmetric(torch.rand(1, 4, 4, 4), "plane")
