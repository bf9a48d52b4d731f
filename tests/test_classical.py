"""The classical (WENGER-like) baseline: exact re-projection, a converging fit, what symmetry does and does not add."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xtomo.imaging import xray
from xtomo.methods import classical
from xtomo.specimens import phantoms

N = 24
TOP, FRONT, SIDE = (0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)
OBLIQUE = tuple(xray.direction(45, 0).tolist())  # |dx| = 1/sqrt(2): the mirror view is 90 degrees away


def balls(size, left=1.0, right=1.0):
    """Two balls mirrored across x = 0 (densities ``left``, ``right``), off-centre in y and z, and one on the plane."""
    return (phantoms.ball(size, 0.11, left, centre=(-0.2, 0.12, 0.08))
            + phantoms.ball(size, 0.11, right, centre=(0.2, 0.12, 0.08))
            + phantoms.ball(size, 0.09, 0.6, centre=(0.0, -0.15, -0.12)))


def xray_of(volume, d, n=N):
    d = torch.tensor(d)
    truth = xray.align(volume, d, n, n)
    return truth, xray.composite(truth)


def mse(a, b):
    return (a - b).square().mean().item()


def asymmetry(v):
    return ((v - v.flip(-1)).norm() / v.norm()).item()


# ---------------------------------------------------------------------------------------------
# constraints

@pytest.mark.parametrize("d", [TOP, OBLIQUE, (0.3, -0.5, 0.8)])
def test_exact_result_reprojects_to_the_input_and_is_non_negative(d):
    truth, alpha = xray_of(balls(N, 1.0, 0.5), d)
    out = classical.solve(alpha, d)
    assert out.shape == (N, N, N) and out.dtype == torch.float32
    assert (out >= 0).all()
    assert (xray.composite(out) - alpha).abs().max() < 1e-4
    raw = classical.solve(alpha, d, exact=False)
    assert (raw >= 0).all() and (xray.composite(raw) - alpha).abs().max() > 1e-4  # fusion did work


def test_canonical_volume_is_non_negative_and_zero_outside_the_sphere():
    _, alpha = xray_of(balls(N), OBLIQUE)
    for init in classical.INITS:
        v = classical.optimise(alpha, OBLIQUE, sparsity=0.01, init=init, iterations=20)
        assert v.shape == (N, N, N) and (v >= 0).all()
        assert (v[classical.sphere_mask(N) == 0] == 0).all()


def test_the_fit_converges_far_below_the_starting_residual():
    _, alpha = xray_of(balls(N), OBLIQUE)
    p = classical.line_integrals(alpha)
    history = []
    out = classical.solve(alpha, OBLIQUE, exact=False)
    classical.optimise(alpha, OBLIQUE, history=history)
    start = p.square().mean().sqrt().item()  # residual of the zero volume
    assert history[0] == pytest.approx(start, rel=1e-5)
    assert history[-1] < 0.1 * start
    assert (out.sum(0) / N - p).square().mean().sqrt() < 0.1 * start


# ---------------------------------------------------------------------------------------------
# what the priors add

def test_front_view_of_a_symmetric_phantom_gives_a_mirror_symmetric_volume():
    _, alpha = xray_of(balls(N), FRONT)
    assert asymmetry(classical.optimise(alpha, FRONT)) < 1e-3


def test_the_symmetry_term_makes_an_asymmetric_fit_symmetric_about_x():
    _, alpha = xray_of(balls(N, 1.0, 0.4), FRONT)
    assert asymmetry(classical.optimise(alpha, FRONT, symmetry=0.0)) > 0.2
    assert asymmetry(classical.optimise(alpha, FRONT)) < 0.02


def test_symmetry_resolves_depth_for_oblique_views_but_not_for_side_views():
    vol = balls(N)
    truth, alpha = xray_of(vol, OBLIQUE)
    with_sym = mse(classical.solve(alpha, OBLIQUE), truth)
    without = mse(classical.solve(alpha, OBLIQUE, symmetry=0.0), truth)
    assert with_sym < 0.75 * without  # measured 0.65: the mirror image is a second view, 90 degrees away
    truth, alpha = xray_of(vol, SIDE)
    with_sym = mse(classical.solve(alpha, SIDE), truth)
    without = mse(classical.solve(alpha, SIDE, symmetry=0.0), truth)
    assert with_sym == pytest.approx(without, rel=0.02)  # the mirror maps each side ray onto itself


def test_small_ball_from_the_top_beats_zeros_and_the_extrusion():
    n = 32
    truth, alpha = xray_of(phantoms.ball(n, 0.2), TOP, n)
    rec = mse(classical.solve(alpha, TOP), truth)
    extruded = mse(classical.extrude(alpha, n), truth)
    zeros = mse(torch.zeros_like(truth), truth)
    assert extruded < zeros
    assert rec < 0.9 * extruded  # measured 0.87; the smoothness prior does most of it
    plain = mse(classical.solve(alpha, TOP, symmetry=0.0, smoothness=0.0), truth)
    assert plain < extruded  # measured 0.99: the sphere alone shortens the chords a little


def test_extrusion_baseline_reprojects_exactly():
    _, alpha = xray_of(balls(N), OBLIQUE)
    ext = classical.extrude(alpha, 16)
    assert ext.shape == (16, N, N)
    assert (xray.composite(ext) - alpha).abs().max() < 1e-5
    assert (ext == ext[:1]).all()


# ---------------------------------------------------------------------------------------------
# the solver's parts

def test_prox_solves_each_mirror_pair_exactly():
    z = torch.randn(3, 200, 2, dtype=torch.float64) * 2
    kappa = torch.tensor([0.0, 0.4, 30.0], dtype=torch.float64).view(3, 1, 1)
    x = classical._prox(z, kappa)
    grad = x - z + 2 * kappa * (x - x.flip(-1))  # of 1/2 |x - z|^2 + kappa (x1 - x2)^2
    assert (x >= 0).all()
    assert grad[x > 0].abs().max() < 1e-12      # stationary where free
    assert grad[x == 0].min() > -1e-12          # pushing against the bound where clamped
    assert (x == 0).any() and (x > 0).any()


def test_deterministic_for_a_seed_and_batched_like_single_views():
    _, a1 = xray_of(balls(N), OBLIQUE)
    _, a2 = xray_of(balls(N, 1.0, 0.5), TOP)
    one = classical.solve(a1, OBLIQUE, iterations=30)
    assert torch.equal(one, classical.solve(a1, OBLIQUE, iterations=30))
    r0 = classical.optimise(a1, OBLIQUE, iterations=5, init="random", seed=0)
    assert torch.equal(r0, classical.optimise(a1, OBLIQUE, iterations=5, init="random", seed=0))
    assert not torch.equal(r0, classical.optimise(a1, OBLIQUE, iterations=5, init="random", seed=1))
    both = classical.solve(torch.stack([a1, a2]), torch.tensor([OBLIQUE, TOP]), iterations=30)
    assert both.shape == (2, N, N, N)
    assert (both[0] - one).abs().max() < 1e-4
    assert (both[1] - classical.solve(a2, TOP, iterations=30)).abs().max() < 1e-4


def test_sizes_and_numpy_input():
    _, alpha = xray_of(balls(N), OBLIQUE)
    out = classical.solve(alpha.numpy(), np.array(OBLIQUE), size=16, n_steps=20, iterations=20)
    assert out.shape == (20, N, N)
    assert (xray.composite(out) - alpha).abs().max() < 1e-4
    assert classical.optimise(alpha, OBLIQUE, size=16, iterations=2).shape == (16, 16, 16)


# ---------------------------------------------------------------------------------------------
# bad input is named

@pytest.mark.parametrize("alpha, message", [
    (torch.full((8, 8), math.nan), "NaN"),
    (torch.full((8, 8), 1.5), r"\[0, 1\]"),
    (torch.full((8, 8), -0.1), r"\[0, 1\]"),
    (torch.ones(8), r"\[H, W\]"),
    (torch.ones(1, 1, 8, 8), r"\[H, W\]"),
    (torch.ones(1, 8), "too small"),
])
def test_bad_alpha_is_rejected(alpha, message):
    with pytest.raises(ValueError, match=message):
        classical.solve(alpha, TOP, iterations=1)


@pytest.mark.parametrize("direction, message", [
    ((0.0, 0.0, 0.0), "non-zero"),
    ((1.0, 0.0), "3 components"),
    ((math.nan, 0.0, 1.0), "NaN"),
    (torch.ones(3, 3), "3 directions for 2 x-rays"),
])
def test_bad_direction_is_rejected(direction, message):
    with pytest.raises(ValueError, match=message):
        classical.solve(torch.ones(2, 8, 8), direction, iterations=1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(symmetry=-1.0), "symmetry"), (dict(sparsity=math.inf), "sparsity"),
    (dict(smoothness=-1e-3), "smoothness"), (dict(iterations=-1), "iterations"),
    (dict(lr=0.0), "lr"), (dict(chi=0.0), "chi"), (dict(size=1), "size"),
    (dict(init="ones"), "init"), (dict(policy="wall"), "policy"),
])
def test_bad_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        classical.solve(torch.ones(8, 8), TOP, **kwargs)


def test_non_tensor_alpha_is_rejected():
    with pytest.raises(TypeError, match="alpha"):
        classical.solve([[1.0, 1.0], [1.0, 1.0]], TOP)
