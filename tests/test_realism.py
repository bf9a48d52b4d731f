"""Realism statistics against shapes whose answers are known, and the machine observer of realism.

Analytic volumes are anti-aliased like the procedural crania: density ``clip(1/2 - d, 0, 1)`` of a
signed distance ``d`` in voxels, so the iso-surface at level 1/2 is exactly the shape's surface
and every error left is the statistic's own discretisation.
"""
from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from xtomo.evaluation import realism
from xtomo.study import observers
from xtomo.viz import realism_plots

matplotlib.use("Agg")
HALF = 0.5  # the iso-level at which the analytic shapes' surfaces lie exactly


def radius_field(n: int, centre) -> np.ndarray:
    z, y, x = np.meshgrid(*[np.arange(n) - c for c in centre], indexing="ij")
    return np.sqrt(x * x + y * y + z * z)


def density(distance: np.ndarray) -> np.ndarray:
    return np.clip(0.5 - distance, 0, 1).astype(np.float32)


def shell(n: int, inner: float, outer: float, centre=None) -> np.ndarray:
    r = radius_field(n, centre if centre is not None else [n / 2 + 0.3, n / 2 - 0.2, n / 2 + 0.1])
    return density(np.maximum(r - outer, inner - r))


def ball(n: int, radius: float, centre=None) -> np.ndarray:
    return shell(n, -1.0, radius, centre)


# ----------------------------------------------------------------------------- volumes

@pytest.mark.parametrize("t", [3.0, 6.0])
def test_a_spherical_shell_has_its_thickness(t):
    r1, r2 = 30.0, 30.0 + t
    s = realism.volume_stats(shell(96, r1, r2), level=HALF)
    # 2 V / S of a shell is (2/3) t (r1^2 + r1 r2 + r2^2) / (r1^2 + r2^2), within 1 % of t here; the
    # marching-cubes area of a smooth surface is within a fraction of a percent of the true area.
    exact = 2 / 3 * t * (r1**2 + r1 * r2 + r2**2) / (r1**2 + r2**2)
    assert s["thickness_mean"] * s["extent"] == pytest.approx(exact, rel=0.01)
    assert s["extent"] == pytest.approx(2 * r2, abs=0.2)
    # Chords through the medial ridge, ended by linear interpolation: a small fraction of a voxel off.
    for q in ("p10", "p50", "p90"):
        assert s[f"thickness_{q}"] * s["extent"] == pytest.approx(t, abs=0.4), q
    assert s["thickness_p50"] * s["extent"] == pytest.approx(t, abs=0.15)
    assert s["bone_fraction"] == pytest.approx(1 - (r1 / r2) ** 3, rel=0.01)
    assert s["roughness"] == pytest.approx(1.0, abs=0.005)


@settings(max_examples=5, deadline=None)
@given(radius=st.floats(10, 40), offset=st.tuples(*[st.floats(-0.5, 0.5)] * 3))
def test_a_solid_ball_has_surface_over_volume_three_over_its_radius(radius, offset):
    s = realism.volume_stats(ball(96, radius, [48 + o for o in offset]), level=HALF)
    assert s["surface"] / s["bone_volume"] == pytest.approx(3 / radius, rel=0.01)
    # (3 / r) x extent 2r; the extent comes from the mesh's extreme vertices, which can sit 1/6 voxel
    # out at a pole where the clipped density ramp bends (almost 1 % of 2r at r = 10)
    assert s["surface_to_volume"] == pytest.approx(6.0, rel=0.02)
    assert s["bone_fraction"] == pytest.approx(1.0, abs=0.01)      # a ball is its own convex hull
    assert s["thickness_p50"] == pytest.approx(1.0, abs=0.05)      # the ridge is the centre: a diameter


def test_a_rough_sphere_is_rougher_than_a_smooth_one():
    n, centre = 80, [40.3, 39.8, 40.1]
    r = radius_field(n, centre)
    relief = ndi.gaussian_filter(np.random.default_rng(0).normal(size=r.shape), 1.0)
    relief *= 1.0 / relief.std()  # relief of a voxel, a few voxels across
    smooth, rough, rougher = (realism.volume_stats(density(r - 28 - a * relief), level=HALF)["roughness"]
                              for a in (0.0, 0.5, 1.0))
    assert smooth == pytest.approx(1.0, abs=0.005)
    assert smooth < rough < rougher and rougher > smooth + 0.03


def test_volume_statistics_are_dimensionless_and_agree_across_resolutions():
    coarse = realism.volume_stats(shell(48, 15, 19), level=HALF)
    fine = realism.volume_stats(shell(96, 30, 38, [48.6, 47.6, 48.2]), level=HALF)
    for key in ("bone_fraction", "thickness_mean", "thickness_p50", "surface_to_volume"):
        assert coarse[key] == pytest.approx(fine[key], rel=0.03), key
    assert coarse["roughness"] == pytest.approx(fine["roughness"], abs=0.01)


def test_volume_statistics_do_not_depend_on_the_axis_order():
    z, y, x = np.meshgrid(*[np.arange(56) - 28.2] * 3, indexing="ij")
    ellipsoid = density(np.sqrt((x / 20) ** 2 + (y / 14) ** 2 + (z / 9) ** 2) * 11 - 11)
    a = realism.volume_stats(ellipsoid)
    b = realism.volume_stats(torch.from_numpy(ellipsoid.transpose(2, 0, 1).copy()))
    for key in realism.STATISTICS:
        if key in a:
            # marching cubes resolves ambiguous cubes, and the ridge chords follow the nearest empty
            # voxel whose ties break, in an order that depends on the axes
            assert a[key] == pytest.approx(b[key], rel=0.01 if key.startswith("thickness_p") else 1e-3), key


def test_the_density_statistics_read_the_bone_voxels():
    v = ball(48, 16)
    v[v >= 1] = np.where(np.arange(int((v >= 1).sum())) % 2, 0.4, 0.8)  # half the core at 0.4, half at 0.8
    s = realism.volume_stats(v)
    assert s["density_p10"] == pytest.approx(0.4, abs=0.02) and s["density_p90"] == pytest.approx(0.8, abs=0.02)
    assert s["density_histogram"].sum() == pytest.approx(1.0) and len(s["density_bins"]) == realism.HISTOGRAM_BINS + 1


def test_bad_volumes_are_named():
    with pytest.raises(ValueError, match="volume must have 3 dimensions"):
        realism.volume_stats(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="volume has no bone"):
        realism.volume_stats(np.full((8, 8, 8), 0.1, dtype=np.float32))
    with pytest.raises(ValueError, match="volume holds NaN"):
        realism.volume_stats(np.full((8, 8, 8), np.nan))
    with pytest.raises(ValueError, match="level"):
        realism.volume_stats(ball(24, 8), level=-1)


# ----------------------------------------------------------------------------- x-rays

def power_law_images(beta: float, n: int = 128, count: int = 8, seed: int = 0) -> np.ndarray:
    """Gaussian random fields whose power falls as ``1 / f^beta``."""
    f = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    f[0, 0] = 1.0
    amplitude = f ** (-beta / 2)
    amplitude[0, 0] = 0.0
    noise = np.random.default_rng(seed).normal(size=(count, n, n))
    return np.fft.ifft2(amplitude * np.fft.fft2(noise)).real


@settings(max_examples=8, deadline=None)
@given(beta=st.floats(0.5, 3.5), seed=st.integers(0, 2**16))
def test_a_power_law_image_has_its_spectral_slope(beta, seed):
    # One 128-px field's slope scatters by about 0.075; eight average it down to about 0.03.
    _, _, slope = realism.power_spectrum(power_law_images(beta, seed=seed))
    assert slope == pytest.approx(-beta, abs=0.15)


def test_the_xray_spectrum_slope_is_the_power_law_of_opacity():
    field = power_law_images(2.0, count=4, seed=3)
    opacity = 0.5 + 0.4 * field / np.abs(field).max()  # an affine map leaves the slope alone
    s = realism.xray_stats(torch.from_numpy(1 - opacity))
    assert s["spectrum_slope"] == pytest.approx(-2.0, abs=0.2) and s["coverage"] == 1.0


def band_image(wiggle: float, n: int = 128) -> np.ndarray:
    """Opacity 0.6 in a slanted band whose two edges are straight (``wiggle = 0``) or wavy."""
    y, x = np.mgrid[0:n, 0:n].astype(float)
    top = np.clip(0.5 + y - 40 - 0.3 * x - wiggle * np.sin(2 * np.pi * x / 10), 0, 1)
    bottom = np.clip(0.5 + 90 - y + wiggle * np.sin(2 * np.pi * x / 13), 0, 1)
    return 0.6 * top * bottom


def test_straight_edges_score_straighter_than_wiggly_ones():
    straight = realism.xray_stats(1 - band_image(0.0))
    wiggly = realism.xray_stats(1 - band_image(4.0))
    assert straight["edge_straightness"] > 0.95
    assert wiggly["edge_straightness"] < straight["edge_straightness"] - 0.3
    assert wiggly["edge_density"] > straight["edge_density"] > 0  # longer edges
    assert straight["opacity_mean"] == pytest.approx(0.6, abs=0.02)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_xray_statistics_do_not_depend_on_the_image_orientation(seed):
    blobs = ndi.gaussian_filter(np.random.default_rng(seed).uniform(size=(2, 64, 64)), (0, 3, 3))
    opacity = np.clip((blobs - blobs.min()) / np.ptp(blobs), 0, 1)
    a = realism.xray_stats(1 - opacity)
    b = realism.xray_stats(1 - np.ascontiguousarray(np.rot90(opacity, axes=(1, 2))))
    for key in realism.STATISTICS:
        if key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), key


def test_bad_xrays_are_named():
    with pytest.raises(ValueError, match="alphas must be x-rays"):
        realism.xray_stats(np.ones((1, 1, 64, 64)))
    with pytest.raises(ValueError, match="alpha must be transparency"):
        realism.xray_stats(np.full((64, 64), 1.5))
    blank = np.ones((2, 64, 64))
    blank[0, 20:40, 20:40] = 0.5
    with pytest.raises(ValueError, match=r"view\(s\) \[1\] show no specimen"):
        realism.xray_stats(blank)
    with pytest.raises(ValueError, match="band"):
        realism.power_spectrum(np.zeros((32, 32)))  # 24 cycles need 48 pixels


# ----------------------------------------------------------------------------- the table and its figures

@pytest.fixture(scope="module")
def specimens() -> dict[str, dict]:
    shapes = {"real": shell(48, 14, 17), "thin": shell(48, 15, 17), "thick": shell(48, 12, 18),
              "ball": ball(48, 18)}
    return {name: realism.volume_stats(v, level=HALF) for name, v in shapes.items()}


def test_the_table_places_the_real_value_among_the_procedural_ones(specimens):
    real, procedural = specimens["real"], {k: v for k, v in specimens.items() if k != "real"}
    table = realism.realism_table(real, procedural)
    assert list(table.index) == [k for k in realism.STATISTICS if k in real]
    row = table.loc["thickness_mean"]
    assert row.procedural_min == min(p["thickness_mean"] for p in procedural.values())
    assert row.procedural_max == max(p["thickness_mean"] for p in procedural.values())
    assert row.within and 0 <= row.position <= 1
    outside = realism.realism_table(real, {"thin": specimens["thin"]}, statistics=["thickness_mean"])
    assert not outside.loc["thickness_mean"].within and outside.loc["thickness_mean"].position == np.inf


def test_the_table_rejects_what_it_cannot_compare(specimens):
    with pytest.raises(ValueError, match="procedural must be a non-empty dict"):
        realism.realism_table(specimens["real"], {})
    with pytest.raises(ValueError, match="'spectrum_slope'.*missing or not a number in real"):
        realism.realism_table(specimens["real"], {"a": specimens["thin"]}, statistics=["spectrum_slope"])


def test_the_figures_draw_the_table_and_the_curves(specimens):
    real, procedural = specimens["real"], {k: v for k, v in specimens.items() if k != "real"}
    fig = realism_plots.statistic_ranges(real, procedural)
    assert len(fig.axes) == len(realism.realism_table(real, procedural))
    both = {name: s | realism.xray_stats(1 - band_image(w)) for name, s, w in zip(specimens, specimens.values(),
                                                                                     (0, 1, 2, 3))}
    fig = realism_plots.realism_curves(both, real="real")
    assert len(fig.axes) == 3 and fig.axes[2].get_xscale() == "log"
    with pytest.raises(ValueError, match="real must name one of"):
        realism_plots.realism_curves(both, real="nobody")
    matplotlib.pyplot.close("all")


# ----------------------------------------------------------------------------- the machine observer of realism

def blob_xrays(n: int, seed: int, texture: float = 0.0, size: int = 48) -> np.ndarray:
    """Alphas of ellipses of random size, place and opacity, plain or with fine grain (``texture``)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size - 0.5
    images = []
    for _ in range(n):
        (cx, cy), (a, b) = rng.uniform(-0.1, 0.1, 2), rng.uniform(0.2, 0.35, 2)
        inside = ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 < 1
        images.append(1 - np.clip(inside * (rng.uniform(0.3, 0.6) + texture * rng.normal(size=x.shape)), 0, 1))
    return np.stack(images)


@pytest.fixture
def one_thread():
    """The CNN trains on one thread: on a busy 2-core machine, two threads fight and run far slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("observer", ["gradient", "cnn"])
def test_the_discriminator_tells_trivially_different_xrays_apart(observer, one_thread):
    real, procedural = blob_xrays(40, seed=1, texture=0.15), blob_xrays(40, seed=2)
    result = observers.realism_discriminator(real, procedural, observer=observer, seed=0, pixels=48, steps=120) \
        if observer == "cnn" else observers.realism_discriminator(real, procedural, observer=observer, seed=0)
    assert result.trials == 10 and result.accuracy >= 0.9 and result.ci.low > 0.5 and result.p < 0.05
    assert not set(result.train_views) & set(result.test_views)
    assert sorted(result.train_views + result.test_views) == list(range(40))


@pytest.mark.parametrize("observer", ["gradient", "spectrum"])
def test_the_discriminator_is_at_chance_on_one_distribution(observer):
    real, procedural = blob_xrays(64, seed=3, texture=0.15), blob_xrays(64, seed=4, texture=0.15)
    result = observers.realism_discriminator(real, procedural, observer=observer, seed=0)
    assert result.trials == 16 and result.ci.low <= 0.5 <= result.ci.high
    assert result == observers.realism_discriminator(real, procedural, observer=observer, seed=0)  # seeded


def test_the_discriminator_holds_out_whole_views():
    real = blob_xrays(12, seed=5, texture=0.15)
    procedural = blob_xrays(36, seed=6)  # three procedural skulls, each seen from the same 12 views
    views = np.tile(np.arange(12), 3)
    result = observers.realism_discriminator(real, procedural, procedural_views=views, holdout=0.25,
                                             observer="histogram", seed=2)
    assert len(result.test_views) == 3 and result.trials == 3  # one real image per held-out view
    assert not set(result.train_views) & set(result.test_views)
    assert "held-out trials correct" in str(result)


def test_the_discriminator_rejects_bad_input():
    real, procedural = blob_xrays(8, seed=1), blob_xrays(8, seed=2)
    with pytest.raises(ValueError, match="real_alphas must be x-rays"):
        observers.realism_discriminator(real[0], procedural)
    with pytest.raises(ValueError, match="one image size"):
        observers.realism_discriminator(real, blob_xrays(8, seed=2, size=32))
    with pytest.raises(ValueError, match="view labels of procedural_alphas"):
        observers.realism_discriminator(real, procedural, procedural_views=[0, 1])
    with pytest.raises(ValueError, match="leaves a class without"):
        observers.realism_discriminator(real, procedural, holdout=1.0)
    with pytest.raises(ValueError, match="observer must be"):
        observers.realism_discriminator(real, procedural, observer="colour")
    with pytest.raises(ValueError, match=r"options \['steps'\] are for observer='cnn'"):
        observers.realism_discriminator(real, procedural, observer="gradient", steps=10)
