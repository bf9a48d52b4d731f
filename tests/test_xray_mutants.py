"""The forward model, the behaviour mutation testing found untested: axis views as exact voxel
permutations in float64, angles far beyond one turn, the seeded hat-box draw, the view-class cone
at its edge, codecs and noise on out-of-range transparency, batches through ``turn``, defaults, and
the error messages that name the function."""
from __future__ import annotations

import math
import re
import warnings

import pytest
import torch

from xtomo.imaging import xray


def exactly(message):
    """A ``pytest.raises`` pattern that matches the whole message and nothing more."""
    return "^" + re.escape(message) + "$"


# ----------------------------------------------------------------------------- align, exactly

# Seen along an axis, the camera frame is the world frame permuted and flipped (module docstring:
# depth front to back, rows top to bottom with world +z up, or +y up from the top, columns left to
# right). Aligning at the volume's own resolution then samples every voxel centre exactly, so the
# aligned volume is the volume with its axes permuted and flipped: vol is [z, y, x].
AXIS_VIEWS = [
    # top, d = +z: depth from z max, up = +y, right = +x
    ((0.0, 0.0, 1.0), lambda v: v.flip(0, 1)),
    # front, d = +y: depth from y max, up = +z, right = -x
    ((0.0, 1.0, 0.0), lambda v: v.permute(1, 0, 2).flip(0, 1, 2)),
    # side, d = +x: depth from x max, up = +z, right = +y
    ((1.0, 0.0, 0.0), lambda v: v.permute(2, 0, 1).flip(0, 1)),
    # from behind, d = -y: depth from y min, up = +z, right = +x
    ((0.0, -1.0, 0.0), lambda v: v.permute(1, 0, 2).flip(1)),
    # from the other side, d = -x: depth from x min, up = +z, right = -y
    ((-1.0, 0.0, 0.0), lambda v: v.permute(2, 0, 1).flip(1, 2)),
]


@pytest.mark.parametrize("d, permuted", AXIS_VIEWS)
def test_axis_views_are_exact_voxel_permutations_in_float64(d, permuted):
    # n = 20 is not a power of two, so the sample coordinates (2i + 1) / n - 1 are not dyadic:
    # only a grid built in the volume's dtype (float64) hits the voxel centres to ~1e-15 of a
    # voxel; float32 coordinates miss by ~1e-7 of a voxel, i.e. ~1e-7 of a unit density step.
    n = 20
    vol = torch.rand(n, n, n, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    aligned = xray.align(vol, torch.tensor(d), n_steps=n)
    assert aligned.dtype == torch.float64
    assert (aligned - permuted(vol)).abs().max() < 1e-12


@pytest.mark.parametrize("b", [2, 3])
def test_one_direction_serves_a_whole_batch(b):
    vols = torch.rand(b, 10, 10, 10, generator=torch.Generator().manual_seed(14))
    d = xray.direction(35.0, 20.0)
    batch = xray.align(vols, d, n_steps=10)
    assert batch.shape == (b, 10, 10, 10)
    for i in range(b):
        assert torch.allclose(batch[i], xray.align(vols[i], d, n_steps=10), atol=1e-6)


def test_align_takes_a_rectangular_size_and_a_single_step():
    vol = torch.rand(8, 8, 8, generator=torch.Generator().manual_seed(15))
    assert xray.align(vol, xray.direction(20.0, 30.0), n_steps=5, size=(6, 9)).shape == (5, 6, 9)
    # one depth step across the unit cube: the middle slice seen from the top, alpha = exp(-chi mu)
    one = xray.align(torch.full((8, 8, 8), 0.25), xray.direction(0, 90), n_steps=1)
    assert one.shape == (1, 8, 8)
    assert torch.allclose(xray.composite(one)[2:6, 2:6], torch.full((4, 4), math.exp(-2.5)), atol=1e-6)


def test_align_warns_about_nothing():
    # grid_sample warns when align_corners is left to its default
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xray.align(torch.rand(6, 6, 6), xray.direction(30.0, 40.0))


def test_composite_names_itself_and_takes_any_positive_chi():
    with pytest.raises(ValueError, match=exactly("composite: aligned volume must be [..., D, H, W], got (4, 4)")):
        xray.composite(torch.rand(4, 4))
    for chi in (0.0, -1.0):
        with pytest.raises(ValueError, match=exactly(f"composite: chi must be positive, got {chi!r}")):
            xray.composite(torch.rand(4, 4, 4), chi=chi)
    # chi below 1 is as valid as above: density 0.3 across the unit path gives exp(-0.5 * 0.3)
    assert torch.allclose(xray.composite(torch.full((5, 2, 2), 0.3), chi=0.5), torch.full((2, 2), math.exp(-0.15)))


def test_align_names_itself_in_its_errors():
    with pytest.raises(ValueError, match=exactly("align: 2 directions for a batch of 3 volumes")):
        xray.align(torch.rand(3, 4, 4, 4), xray.sample_directions(2))
    with pytest.raises(ValueError, match=r"^align: volume must be \[D, H, W\]"):
        xray.align(torch.rand(4, 4), xray.direction(0, 90))
    with pytest.raises(ValueError, match=exactly("align: view direction must be non-zero")):
        xray.align(torch.rand(4, 4, 4), torch.zeros(3))
    with pytest.raises(ValueError, match=exactly("align: n_steps must be an integer >= 1, got 0")):
        xray.align(torch.rand(4, 4, 4), xray.direction(0, 90), n_steps=0)


# ----------------------------------------------------------------------------- direction and angles

def test_direction_is_computed_in_float64_so_many_turns_keep_their_precision():
    # 36000.7 degrees as a float32 is off by ~2e-3 degree (ulp 3.9e-3), i.e. ~4e-5 rad; in float64
    # it is exact to 1e-11 degree. The float32 result then only carries its own rounding (6e-8).
    az, el = 36000.7, 36000.0 + 20.3   # 100 turns on both angles
    d = xray.direction(az, el)
    a, e = math.radians(0.7), math.radians(20.3)
    expected = torch.tensor([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
    assert d.dtype == torch.float32
    assert (d - expected).abs().max() < 1e-6


def test_direction_broadcasts_its_angles_over_a_grid():
    az = torch.tensor([[0.0], [90.0]])       # [2, 1]
    el = torch.tensor([0.0, 30.0, 90.0])     # [3]
    d = xray.direction(az, el)
    assert d.shape == (2, 3, 3)
    assert torch.allclose(d[1, 1], torch.tensor([0.0, math.cos(math.pi / 6), 0.5]), atol=1e-7)


def test_angles_names_itself_in_its_errors():
    with pytest.raises(ValueError, match=exactly("angles: view direction must be non-zero")):
        xray.angles(torch.zeros(3))


# ----------------------------------------------------------------------------- sample_directions

def test_sample_directions_is_the_hat_box_map_of_the_seeded_float64_stream():
    """The documented construction, draw for draw: ``z`` then the azimuth, each ``n`` uniforms in
    float64 from ``torch.Generator().manual_seed(seed)``, rounded once to float32. Pinning the
    stream keeps seeded view sets (datasets, chapters) reproducible."""
    for n, seed in [(1, 0), (7, 3), (500, 12345)]:
        g = torch.Generator().manual_seed(seed)
        z = torch.rand(n, generator=g, dtype=torch.float64)
        phi = 2 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
        r = (1 - z * z).sqrt()
        expected = torch.stack([r * phi.cos(), r * phi.sin(), z], dim=1).float()
        assert torch.equal(xray.sample_directions(n, seed=seed), expected)
    assert torch.equal(xray.sample_directions(9), xray.sample_directions(9, seed=0))  # the default seed


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_sample_directions_rejects_a_bad_count_by_name(n):
    with pytest.raises(ValueError, match=exactly(f"sample_directions: n must be an integer >= 1, got {n!r}")):
        xray.sample_directions(n)


# ----------------------------------------------------------------------------- view_class

def test_view_class_cone_edges():
    # 29.5 and 30.5 degrees off each axis, either side of the default 30-degree cone
    inside, outside = math.radians(29.5), math.radians(30.5)
    near = [(0.0, math.sin(inside), math.cos(inside)), (0.0, -math.cos(inside), math.sin(inside)),
            (-math.cos(inside), 0.0, math.sin(inside))]
    far = [(math.sin(outside), 0.0, math.cos(outside)), (0.0, math.cos(outside), math.sin(outside)),
           (math.cos(outside), math.sin(outside), 0.0)]
    assert xray.view_class(torch.tensor(near)) == ["top", "front", "side"]
    assert xray.view_class(torch.tensor(far)) == ["other"] * 3
    assert xray.view_class(torch.tensor(far), cone_deg=31.0) == ["top", "front", "side"]
    # a zero cone holds its axis exactly (cos 0 = 1 is exact): the boundary belongs to the cone
    axes = torch.tensor([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.6, 0.8]])
    assert xray.view_class(axes, cone_deg=0.0) == ["top", "front", "side", "other"]


def test_view_class_names_itself_in_its_errors():
    with pytest.raises(ValueError, match=exactly("view_class: view direction must be non-zero")):
        xray.view_class(torch.zeros(2, 3))


# ----------------------------------------------------------------------------- turn and mirror

def test_turn_of_a_batch_turns_every_volume():
    g = torch.Generator().manual_seed(12)
    vols = torch.rand(3, 12, 12, 12, generator=g)
    turned = xray.turn(vols, 25.0, -10.0)
    assert turned.shape == vols.shape
    for i in range(3):
        assert torch.allclose(turned[i], xray.turn(vols[i], 25.0, -10.0), atol=1e-6)


def test_turn_quarter_turn_is_an_exact_rotation_of_a_cube():
    # 90 degrees of azimuth on a cube of even side maps voxel centres onto voxel centres: the
    # camera orbits to the right, so the old right-hand side faces it (depth <- columns).
    vol = torch.rand(8, 8, 8, generator=torch.Generator().manual_seed(13), dtype=torch.float64)
    turned = xray.turn(vol, 90.0)
    assert turned.dtype == torch.float64
    # affine_grid reads input (x, y, z) = R_az(90) @ output = (-z, y, x): turned[k, i, j] = vol[j, i, n-1-k]
    assert (turned - vol.permute(2, 1, 0).flip(0)).abs().max() < 1e-12  # cos 90 deg = 6e-17, not 0


def test_turn_warns_about_nothing():
    # affine_grid and grid_sample warn when align_corners is left to its default
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xray.turn(torch.rand(6, 6, 6), 10.0, 5.0)


def test_turn_names_itself_in_its_errors():
    with pytest.raises(ValueError, match=r"^turn: volume must be \[D, H, W\]"):
        xray.turn(torch.rand(4, 4))


def test_mirror_flips_only_the_columns_of_a_volume():
    vol = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    assert torch.equal(xray.mirror(vol), vol[:, :, [3, 2, 1, 0]])


# ----------------------------------------------------------------------------- gamma codecs

@pytest.mark.parametrize("codec", [xray.encode_gamma, xray.decode_gamma])
def test_codecs_read_out_of_range_transparency_as_its_nearest_valid_value(codec):
    alpha = torch.tensor([-0.5, -1e-3, 0.0, 0.3, 1.0, 1.0 + 1e-3, 1.5])
    assert torch.equal(codec(alpha), codec(alpha.clamp(0, 1)))
    assert torch.isfinite(codec(alpha)).all()


def test_codecs_are_the_power_laws_on_opacity_with_gamma_2_2_by_default():
    alpha = torch.linspace(0, 1, 11, dtype=torch.float64)
    opacity = 1 - alpha
    assert torch.allclose(xray.encode_gamma(alpha), 1 - opacity ** (1 / 2.2), atol=1e-15)
    assert torch.allclose(xray.decode_gamma(alpha), 1 - opacity ** 2.2, atol=1e-15)
    assert torch.allclose(xray.encode_gamma(alpha, 0.5), 1 - opacity ** 2, atol=1e-15)  # gamma below 1 is valid
    assert torch.allclose(xray.decode_gamma(alpha, 0.5), 1 - opacity ** 0.5, atol=1e-15)


@pytest.mark.parametrize("codec", [xray.encode_gamma, xray.decode_gamma])
@pytest.mark.parametrize("gamma", [0.0, -1.0, math.nan, math.inf])
def test_codecs_reject_a_gamma_that_is_not_positive(codec, gamma):
    message = f"{codec.__name__}: gamma must be a finite number > 0, got {gamma!r}"
    with pytest.raises(ValueError, match=exactly(message)):
        codec(torch.full((2,), 0.5), gamma)


# ----------------------------------------------------------------------------- noise

def test_noise_reads_out_of_range_transparency_as_its_nearest_valid_value():
    alpha = torch.tensor([-0.5, 0.0, 0.5, 1.0, 1.5]).repeat(200)
    noisy = xray.poisson_noise(alpha, photons=100, seed=4)
    assert torch.equal(noisy, xray.poisson_noise(alpha.clamp(0, 1), photons=100, seed=4))


def test_noise_never_brightens_past_full_transparency():
    # Poisson(100) exceeds its mean half the time (P(X > 100) = 0.47); such counts read as 1
    noisy = xray.poisson_noise(torch.ones(2000), photons=100, seed=5)
    assert noisy.max() == 1.0 and (noisy == 1.0).float().mean() > 0.4
    assert noisy.min() >= 0


def test_noise_defaults_to_seed_0_and_takes_fractional_photon_counts():
    alpha = torch.full((50,), 0.5)
    assert torch.equal(xray.poisson_noise(alpha, 40.0), xray.poisson_noise(alpha, 40.0, seed=0))
    half = xray.poisson_noise(torch.ones(20000), photons=0.5, seed=1)
    # 0.5 photons: counts Poisson(0.5), read as count / 0.5 clamped to 1: 0 with P = e^-0.5,
    # 1 otherwise; 20000 draws give the fraction of zeros to about 4 standard errors (0.014)
    assert set(half.unique().tolist()) <= {0.0, 1.0}
    assert (half == 0).float().mean().item() == pytest.approx(math.exp(-0.5), abs=0.014)


@pytest.mark.parametrize("photons", [0.0, -5.0])
def test_noise_rejects_a_photon_count_that_is_not_positive(photons):
    with pytest.raises(ValueError, match=exactly(f"photons must be positive, got {photons!r}")):
        xray.poisson_noise(torch.full((2,), 0.5), photons)
