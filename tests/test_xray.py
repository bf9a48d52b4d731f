"""The forward model against closed forms, its invariants and its camera conventions."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import xtomo._checks as checks
from xtomo.imaging import xray
from xtomo.specimens.phantoms import ball, ball_xray

N = 64


def image_coords(n):
    t = (torch.arange(n) + 0.5) / n - 0.5
    v, u = torch.meshgrid(t, t, indexing="ij")
    return u, v


def test_sphere_axis_aligned_matches_closed_form():
    """A uniform ball seen from the top: alpha = exp(-chi mu 2 sqrt(r^2 - rho^2)), to 1e-3.

    The volume is box-filtered (partial-volume voxels), so each pixel sees the chord averaged
    over its footprint; with that, the closed form holds at every pixel, rim included.
    """
    mu, r = 0.5, 0.3
    vol = ball(N, r, supersample=16) * mu
    alpha = xray.simulate(vol, xray.direction(0, 90), n_steps=N)
    exact = ball_xray(N, r, mu, supersample=16)
    assert (alpha - exact).abs().max() < 1e-3
    u, v = image_coords(N)
    pointwise = ball_xray(N, r, mu)
    assert (alpha - pointwise)[(u**2 + v**2).sqrt() < r - 3 / N].abs().max() < 1e-3


@pytest.mark.parametrize("az,el", [(30, 45), (77, 10), (200, 63)])
def test_sphere_oblique_conserves_mass_and_matches(az, el):
    """In any direction the ball keeps its optical mass and its closed form (to interpolation blur)."""
    mu, r = 0.5, 0.3
    vol = ball(N, r, supersample=8) * mu
    alpha = xray.simulate(vol, xray.direction(az, el), n_steps=N)
    u, v = image_coords(N)
    rho = (u**2 + v**2).sqrt()
    exact = torch.exp(-xray.CHI * mu * 2 * (r**2 - rho**2).clamp_min(0).sqrt())
    depth_sum = -torch.log(alpha).sum() / xray.CHI / N**2
    assert depth_sum.item() == pytest.approx(mu * 4 / 3 * math.pi * r**3, rel=1e-3)
    # Resampling blurs the sharp rim by about a voxel; away from it the closed form holds.
    assert (alpha - exact).abs().mean() < 5e-3
    assert (alpha - exact)[rho < r - 8 / N].abs().max() < 5e-3


@given(az=st.floats(0, 360), el=st.floats(0, 90))
@settings(max_examples=12, deadline=None)
def test_gaussian_blob_any_direction(az, el):
    """A smooth density has a smooth closed form: its x-ray is a 2-D Gaussian, to 1e-3."""
    s, a, n = 0.09, 0.6, 128
    t = (torch.arange(n) + 0.5) / n - 0.5
    z, y, x = torch.meshgrid(t, t, t, indexing="ij")
    vol = a * torch.exp(-(x**2 + y**2 + z**2) / (2 * s * s))
    alpha = xray.simulate(vol, xray.direction(az, el), n_steps=n)
    u, v = image_coords(n)
    exact = torch.exp(-xray.CHI * a * s * math.sqrt(2 * math.pi) * torch.exp(-(u**2 + v**2) / (2 * s * s)))
    assert (alpha - exact).abs().max() < 1e-3


def _slab_error(d, thick, mu, n=128):
    """Largest |alpha - exp(-chi mu T)| over the middle of a disc-shaped slab normal to ``d``."""
    d = d.double()
    t = (torch.arange(n, dtype=torch.float64) + 0.5) / n - 0.5
    z, y, x = torch.meshgrid(t, t, t, indexing="ij")
    along = x * d[0] + y * d[1] + z * d[2]
    across = (x**2 + y**2 + z**2 - along**2).clamp_min(0).sqrt()
    # Faces smoothed by an error function over 1.5 voxels still integrate to exactly the
    # thickness along the normal.
    w = 1.5 / n
    inside = 0.5 * (torch.erf((thick / 2 - along) / w) + torch.erf((thick / 2 + along) / w)) * (across < 0.35)
    alpha = xray.simulate((mu * inside).float(), d.float(), n_steps=2 * n)
    u, v = image_coords(n)
    centre = (u**2 + v**2) < 0.25**2
    return (alpha[centre] - math.exp(-xray.CHI * mu * thick)).abs().max().item()


@pytest.mark.parametrize("az,el", [(0, 90), (0, 0), (90, 0)])
def test_slab_axis_aligned(az, el):
    """A slab facing the ray has alpha = exp(-chi mu T), to 1e-3, seen along each axis."""
    assert _slab_error(xray.direction(az, el), 0.2, 0.6) < 1e-3


@given(az=st.floats(0, 360), el=st.floats(0, 90), thick=st.floats(0.05, 0.3), mu=st.floats(0.1, 1.0))
@settings(max_examples=10, deadline=None)
def test_slab_any_direction(az, el, thick, mu):
    """Seen obliquely, the same holds to 1.5e-3: bilinear resampling adds about 0.1 % of alpha."""
    assert _slab_error(xray.direction(az, el), thick, mu) < 1.5e-3


def test_simulate_is_composite_of_align():
    torch.manual_seed(0)
    vol = torch.rand(32, 32, 32)
    d = xray.direction(33, 21)
    aligned = xray.align(vol, d, n_steps=48, size=40)
    assert aligned.shape == (48, 40, 40)
    assert torch.equal(xray.simulate(vol, d, n_steps=48, size=40), xray.composite(aligned))
    expected = torch.exp(-xray.CHI * aligned.sum(0) / 48)
    assert torch.allclose(xray.composite(aligned), expected, atol=1e-6)


def test_composite_of_constant_volume():
    """Density c across the whole unit path gives exp(-chi c), whatever the step count."""
    for steps in (7, 64):
        alpha = xray.composite(torch.full((steps, 4, 5), 0.3), chi=10.0)
        assert torch.allclose(alpha, torch.full((4, 5), math.exp(-3.0)))


def _markers(n=N):
    """Three small balls: +y (front, value 1), +z (top, value 2), +x (side, value 3)."""
    return (ball(n, 0.06, centre=(0, 0.3, 0)) + 2 * ball(n, 0.06, centre=(0, 0, 0.3))
            + 3 * ball(n, 0.06, centre=(0.3, 0, 0)))


def _where(aligned, value):
    weights = (aligned - value).abs() < 0.3
    idx = weights.nonzero().float().mean(0)
    return idx / torch.tensor(aligned.shape, dtype=torch.float32)  # fractions of depth, rows, cols


def test_camera_conventions():
    """Depth runs front to back, rows top to bottom with +z up, and the image is not mirrored."""
    vol = _markers()
    top = xray.align(vol, xray.direction(0, 90), n_steps=N)
    assert _where(top, 2)[0] < 0.35          # the top marker is nearest the source
    assert _where(top, 1)[1] < 0.35          # the snout (+y) is up in a top view
    assert _where(top, 3)[2] > 0.65          # +x on the right, as seen from above
    front = xray.align(vol, xray.direction(90, 0), n_steps=N)
    assert _where(front, 1)[0] < 0.35        # the front marker is nearest the source
    assert _where(front, 2)[1] < 0.35        # dorsal is up
    assert _where(front, 3)[2] < 0.35        # facing the animal, its +x side is on our left
    side = xray.align(vol, xray.direction(0, 0), n_steps=N)
    assert _where(side, 3)[0] < 0.35 and _where(side, 2)[1] < 0.35 and _where(side, 1)[2] > 0.65


def test_opposite_directions_give_mirrored_xrays():
    """The paper's ambiguity: the x-ray along -d is the x-ray along d, mirrored."""
    torch.manual_seed(1)
    vol = torch.nn.functional.avg_pool3d(torch.rand(1, 1, 32, 32, 32), 3, 1, 1)[0, 0] * ball(32, 0.45)
    d = xray.direction(40, 35)
    a, b = xray.simulate(vol, d, n_steps=32), xray.simulate(vol, -d, n_steps=32)
    assert torch.allclose(b, xray.mirror(a), atol=1e-5)
    assert not torch.allclose(xray.align(vol, d, 32), xray.align(vol, -d, 32), atol=1e-3)


def test_mirror_is_the_xray_of_the_mirrored_specimen():
    torch.manual_seed(2)
    vol = torch.rand(32, 32, 32) * ball(32, 0.45)
    top = xray.direction(0, 90)
    mirrored = xray.simulate(vol.flip(-1), top, n_steps=32)
    assert torch.allclose(mirrored, xray.mirror(xray.simulate(vol, top, n_steps=32)))


def test_batch_equals_single():
    torch.manual_seed(3)
    vols = torch.rand(3, 24, 24, 24)
    dirs = xray.sample_directions(3, seed=5)
    batch = xray.align(vols, dirs, n_steps=24)
    for i in range(3):
        assert torch.allclose(batch[i], xray.align(vols[i], dirs[i], n_steps=24), atol=1e-6)


def test_directions_uniform_on_hemisphere():
    d = xray.sample_directions(4000, seed=7)
    assert torch.allclose(d.norm(dim=1), torch.ones(4000), atol=1e-5)
    assert (d[:, 2] >= 0).all()
    # z uniform in [0, 1) (equal area); azimuth uniform: compare quartiles
    quartiles = torch.tensor([0.25, 0.5, 0.75])
    assert torch.quantile(d[:, 2], quartiles).sub(quartiles).abs().max() < 0.03
    az, el = xray.angles(d)
    assert torch.quantile(az, torch.tensor([0.25, 0.5, 0.75])).sub(torch.tensor([-90.0, 0.0, 90.0])).abs().max() < 10
    assert torch.equal(d, xray.sample_directions(4000, seed=7))
    assert not torch.equal(d, xray.sample_directions(4000, seed=8))


def test_direction_angles_round_trip():
    d = xray.direction([10.0, 100.0, -45.0], [5.0, 60.0, 89.0])
    az, el = xray.angles(d)
    assert torch.allclose(az, torch.tensor([10.0, 100.0, -45.0]), atol=1e-3)
    assert torch.allclose(el, torch.tensor([5.0, 60.0, 89.0]), atol=1e-3)
    assert xray.view_class(xray.direction([0, 90, 0, 45], [90, 0, 0, 45])) == ["top", "front", "side", "other"]


def test_gamma_and_noise():
    alpha = torch.linspace(0, 1, 101)
    assert torch.allclose(xray.decode_gamma(xray.encode_gamma(alpha, 2.2), 2.2), alpha, atol=1e-5)
    assert (xray.encode_gamma(alpha, 2.2) <= alpha + 1e-7).all()  # display encoding brightens opacity
    noisy = xray.poisson_noise(torch.full((200, 200), 0.4), photons=1000, seed=0)
    assert noisy.mean().item() == pytest.approx(0.4, abs=2e-3)
    assert noisy.std().item() == pytest.approx(math.sqrt(0.4 * 1000) / 1000, rel=0.05)
    assert torch.equal(noisy, xray.poisson_noise(torch.full((200, 200), 0.4), photons=1000, seed=0))


@pytest.mark.parametrize("bad,match", [
    (torch.rand(4, 4), "D, H, W"),
    (torch.randint(0, 2, (8, 8, 8)), "floating point"),
])
def test_bad_volumes(bad, match):
    with pytest.raises(ValueError, match=match):
        xray.simulate(bad, xray.direction(0, 90))


@pytest.mark.parametrize("bad,match", [([0, 0, 0], "non-zero"), ([1, 0], "3 components"),
                                        ([math.nan, 0, 1], "NaN")])
def test_bad_directions(bad, match):
    with pytest.raises(ValueError, match=match):
        xray.simulate(torch.rand(8, 8, 8), torch.tensor(bad, dtype=torch.float32))


def two_balls(n):
    z, y, x = torch.meshgrid(*[(torch.arange(n) + 0.5) / n * 2 - 1] * 3, indexing="ij")
    return ((((x - 0.3) ** 2 + (y + 0.2) ** 2 + (z - 0.1) ** 2) < 0.08).float()
            + (((x + 0.2) ** 2 + (y - 0.25) ** 2 + (z + 0.3) ** 2) < 0.03).float())


@pytest.mark.parametrize("az", [0.0, 70.0, 200.0])
def test_turn_orbits_the_camera_like_a_new_view(az):
    """Turning a view-aligned volume equals aligning it from the orbited direction."""
    n = 40
    v = two_balls(n)
    level = xray.align(v, xray.direction(az, 0.0), n_steps=n)
    assert torch.allclose(xray.turn(level), level, atol=1e-5)
    for s in (8.0, -8.0):                           # azimuth: about the image's vertical
        turned = xray.turn(level, s)
        same = (turned - xray.align(v, xray.direction(az + s, 0.0), n_steps=n)).abs().mean()
        other = (turned - xray.align(v, xray.direction(az - s, 0.0), n_steps=n)).abs().mean()
        assert same < other / 3
    tilted = xray.align(v, xray.direction(az, 30.0), n_steps=n)   # elevation: about the horizontal
    same = (xray.turn(tilted, 0.0, 8.0) - xray.align(v, xray.direction(az, 38.0), n_steps=n)).abs().mean()
    other = (xray.turn(tilted, 0.0, -8.0) - xray.align(v, xray.direction(az, 38.0), n_steps=n)).abs().mean()
    assert same < other / 3


@settings(max_examples=10, deadline=None)
@given(st.floats(-180, 180), st.floats(-80, 80))
def test_turned_ball_keeps_its_xray(az, el):
    """A centred ball looks the same from every side, so its x-ray survives any turn."""
    aligned = ball(N, 0.3)
    turned = xray.turn(aligned, az, el)
    diff = (xray.composite(turned) - xray.composite(aligned)).abs()
    u, v = image_coords(N)
    inside = (u ** 2 + v ** 2).sqrt() < 0.27              # trilinear resampling blurs the rim only
    assert diff.mean() < 0.005 and diff[inside].max() < 0.02
    assert torch.allclose(turned.sum(), aligned.sum(), rtol=0.01)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    torch.manual_seed(4)
    vols = torch.rand(2, 32, 32, 32)
    dirs = xray.sample_directions(2, seed=1)
    cpu = xray.simulate(vols, dirs, n_steps=32)
    gpu = xray.simulate(vols.cuda(), dirs.cuda(), n_steps=32).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-5)


@pytest.mark.parametrize("bad,error,match", [
    ([[0.5]], TypeError, "torch tensor or numpy array"),
    (torch.ones(2, 2, dtype=torch.bool), ValueError, "real numbers"),
    (torch.tensor([[0.5, float("nan")]]), ValueError, "NaN or inf"),
    (torch.tensor([[0.5, 1.5]]), ValueError, r"transparency in \[0, 1\]"),
])
def test_the_xray_check_names_what_was_wrong(bad, error, match):
    with pytest.raises(error, match=f"the input: alpha.*{match}|the input: .*{match}"):
        checks.alpha(bad, "the input")


def test_the_xray_check_accepts_numpy_and_integers():
    import numpy as np
    assert checks.alpha(np.full((2, 2), 0.5), "x").dtype == torch.float64
    assert checks.alpha(torch.ones(2, 2, dtype=torch.int64), "x").dtype == torch.float32


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_turn_and_cut_on_cuda_match_cpu():
    from xtomo.imaging import render
    torch.manual_seed(5)
    v = torch.rand(24, 24, 24)
    assert torch.allclose(xray.turn(v.cuda(), 20.0, 10.0).cpu(), xray.turn(v, 20.0, 10.0), atol=1e-5)
    assert torch.allclose(render.cut(v.cuda(), (1, 0, -1), 0.1).cpu(), render.cut(v, (1, 0, -1), 0.1), atol=1e-6)
