"""Fusion: every policy re-projects exactly and stays physical; closed forms; streamed files match memory."""
from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from xtomo.data.io import load_volume, save_volume
from xtomo.imaging import fusion
from xtomo.imaging.xray import composite

POLICIES = list(fusion.POLICIES)
FLOOR = fusion.alpha_floor(10.0)


def reprojection_error(fused, alpha, chi=10.0):
    return (composite(fused, chi) - alpha.clamp_min(fusion.alpha_floor(chi))).abs().max().item()


@st.composite
def cases(draw, max_density=4.0):
    """A predicted volume (zeros and empty rays included) and an x-ray (alpha 0 and 1 included)."""
    n, h, w = draw(st.integers(1, 12)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    density = st.one_of(st.just(0.0), st.floats(0, max_density, width=32))
    mu = draw(arrays(np.float32, (n, h, w), elements=density))
    empty = draw(arrays(np.bool_, (h, w)))
    mu[:, empty] = 0
    transparency = st.one_of(st.just(1.0), st.just(0.0), st.floats(0, 1, width=32))
    alpha = draw(arrays(np.float32, (h, w), elements=transparency))
    return torch.from_numpy(mu), torch.from_numpy(alpha)


# ---------------------------------------------------------------------------------------------
# exact and physical

@settings(max_examples=300, deadline=None)
@given(cases(), st.sampled_from(POLICIES), st.sampled_from([0.0, 1.0, 2.0, 3.5]))
# a subnormal density on an opaque ray: Delta / (sum of weights) overflowed, and inf * 0 gave NaN
@example((torch.tensor([[[1.4013e-45]], [[0.0]]]), torch.tensor([[0.0]])), "proportional", 1.0)
@example((torch.tensor([[[1.4013e-45]], [[0.0]]]), torch.tensor([[0.0]])), "scaled", 1.0)
def test_every_policy_reprojects_exactly_and_stays_non_negative(case, policy, beta):
    mu, alpha = case
    fused = fusion.fuse(mu, alpha, policy=policy, beta=beta)
    assert fused.shape == mu.shape and fused.dtype == mu.dtype
    assert (fused >= 0).all()
    assert reprojection_error(fused, alpha) < 1e-4
    assert (fused[:, alpha == 1] == 0).all()


@settings(max_examples=150, deadline=None)
@given(cases(max_density=1.0), st.sampled_from(POLICIES))
def test_fusing_a_volume_with_its_own_xray_is_the_identity(case, policy):
    mu, _ = case
    assert (fusion.fuse(mu, composite(mu), policy=policy) - mu).abs().max() < 1e-5


def test_batched_volumes_other_chi_and_numpy_input():
    g = torch.Generator().manual_seed(1)
    mu, alpha = torch.rand(3, 16, 6, 7, generator=g), torch.rand(3, 6, 7, generator=g)
    for policy in POLICIES:
        fused = fusion.fuse(mu, alpha, chi=4.0, policy=policy)
        assert (fused >= 0).all() and reprojection_error(fused, alpha, chi=4.0) < 1e-4
    assert torch.equal(fusion.fuse(mu.numpy(), alpha.numpy()), fusion.fuse(mu, alpha))


def test_clamped_removal_is_the_fixed_point_of_clamp_and_redistribute():
    """Large removals under Eq. 2 (beta = 2): the exact solve equals the paper-style iteration."""
    g = torch.Generator().manual_seed(2)
    mu = torch.rand(24, 9, 9, generator=g) ** 3
    alpha = torch.full((9, 9), 0.97)  # far lighter than the prediction: most density must go
    fused = fusion.proportional(mu, fusion.density_error(alpha, mu))
    assert (fused >= 0).all() and reprojection_error(fused, alpha) < 1e-5

    target = fusion.required_sum(alpha, n=24)
    active, weights = torch.ones_like(mu, dtype=torch.bool), mu.double() ** 2
    for _ in range(24):  # clamp negatives to 0, spread the remainder over the slices still positive
        level = ((mu * active).sum(0) - target) / (weights * active).sum(0)
        reference = torch.where(active, mu - level * weights, 0)
        active &= reference > 0
    assert (reference.clamp_min(0) - fused).abs().max() < 1e-5
    naive = mu - fusion.density_error(alpha, mu) * mu**2 / (mu**2).sum(0)
    assert (naive < 0).any(), "the case must exercise the clamping"


# ---------------------------------------------------------------------------------------------
# closed forms

def ray(values, alpha):
    return torch.tensor(values, dtype=torch.float32)[:, None, None], torch.tensor([[alpha]])


def alpha_of(total, n):
    return math.exp(-10.0 * total / n)


def test_even_adds_exactly_delta_over_n_while_non_negative():
    g = torch.Generator().manual_seed(3)
    mu = 0.5 + torch.rand(8, 4, 4, generator=g)
    alpha = composite(mu) * torch.empty(4, 4).uniform_(0.97, 1.03, generator=g)
    alpha = alpha.clamp(0, 1)
    delta = fusion.density_error(alpha, mu)
    assert (delta.abs() / 8 < 0.5).all()
    assert (fusion.fuse(mu, alpha, policy="even") - (mu - delta / 8)).abs().max() < 1e-5


def test_even_removal_beyond_a_slice_empties_it_and_levels_the_rest():
    mu, alpha = ray([0.1, 1.0, 2.0, 0.0], alpha_of(1.6, 4))  # remove 1.5: level 0.7 on the two dense ones
    fused = fusion.fuse(mu, alpha, policy="even")[:, 0, 0]
    assert torch.allclose(fused, torch.tensor([0.0, 0.3, 1.3, 0.0]), atol=1e-5)


def test_first_puts_the_whole_error_on_the_front_slice():
    mu, alpha = ray([0.1, 0.2, 0.4], alpha_of(0.7 + 0.05, 3))  # too light: add 0.05 in front
    assert torch.allclose(fusion.fuse(mu, alpha, policy="first")[:, 0, 0],
                          torch.tensor([0.15, 0.2, 0.4]), atol=1e-5)
    mu, alpha = ray([0.1, 0.2, 0.4], alpha_of(0.7 - 0.05, 3))  # too dense, within the front slice
    assert torch.allclose(fusion.fuse(mu, alpha, policy="first")[:, 0, 0],
                          torch.tensor([0.05, 0.2, 0.4]), atol=1e-5)
    mu, alpha = ray([0.1, 0.2, 0.4], alpha_of(0.7 - 0.2, 3))  # beyond it: carried front to back
    assert torch.allclose(fusion.fuse(mu, alpha, policy="first")[:, 0, 0],
                          torch.tensor([0.0, 0.1, 0.4]), atol=1e-5)


def test_proportional_is_equation_2_when_nothing_goes_negative():
    mu, alpha = ray([0.0, 1.0, 2.0, 1.0], alpha_of(4.0 - 0.6, 4))
    expected = torch.tensor([0.0, 1.0, 2.0, 1.0]) - 0.6 * torch.tensor([0.0, 1.0, 4.0, 1.0]) / 6
    assert torch.allclose(fusion.fuse(mu, alpha)[:, 0, 0], expected, atol=1e-5)
    cubic = 0.6 * torch.tensor([0.0, 1.0, 8.0, 1.0]) / 10
    assert torch.allclose(fusion.fuse(mu, alpha, beta=3)[:, 0, 0], expected + 0.6 * torch.tensor(
        [0.0, 1.0, 4.0, 1.0]) / 6 - cubic, atol=1e-5)


def test_proportional_can_erase_the_densest_slice_where_scaled_keeps_the_profile():
    mu, alpha = ray([0.2, 1.0, 0.2], alpha_of(0.2, 3))  # remove 1.2 of 1.4
    paper = fusion.fuse(mu, alpha, policy="proportional")[:, 0, 0]
    ours = fusion.fuse(mu, alpha, policy="scaled")[:, 0, 0]
    assert torch.allclose(paper, torch.tensor([0.1, 0.0, 0.1]), atol=1e-5)  # the bone is gone
    assert torch.allclose(ours, torch.tensor([0.2, 1.0, 0.2]) / 7, atol=1e-5)  # all scaled by 1/7


def test_scaled_undoes_a_global_overestimate_exactly():
    g = torch.Generator().manual_seed(4)
    truth = torch.rand(16, 8, 8, generator=g) * (torch.rand(16, 8, 8, generator=g) > 0.5)
    alpha = composite(truth)
    assert (fusion.fuse(truth * 1.4, alpha, policy="scaled") - truth).abs().max() < 1e-5
    assert (fusion.fuse(truth * 0.7, alpha, policy="scaled", beta=1.0) - truth).abs().max() < 1e-5
    paper = fusion.fuse(truth * 1.4, alpha, policy="proportional")
    assert (paper - truth).abs().mean() > 0.01


# ---------------------------------------------------------------------------------------------
# edge cases

@pytest.mark.parametrize("policy", ["even", "proportional", "scaled"])
def test_a_ray_the_prediction_left_empty_gets_its_density_evenly(policy):
    mu, alpha = ray([0.0] * 5, 0.5)
    fused = fusion.fuse(mu, alpha, policy=policy)[:, 0, 0]
    assert torch.allclose(fused, torch.full((5,), -math.log(0.5) / 10), atol=1e-6)


def test_empty_ray_under_first_policy_becomes_a_front_wall():
    mu, alpha = ray([0.0] * 5, 0.5)
    fused = fusion.fuse(mu, alpha, policy="first")[:, 0, 0]
    assert torch.allclose(fused, torch.tensor([5 * -math.log(0.5) / 10, 0, 0, 0, 0]), atol=1e-6)


@pytest.mark.parametrize("policy", POLICIES)
def test_alpha_one_empties_the_ray_and_alpha_zero_is_the_floor(policy):
    mu = torch.rand(6, 1, 2, generator=torch.Generator().manual_seed(5)) + 0.1
    alpha = torch.tensor([[1.0, 0.0]])
    fused = fusion.fuse(mu, alpha, policy=policy)
    assert (fused[:, 0, 0] == 0).all()
    assert math.isclose(composite(fused)[0, 1].item(), FLOOR, rel_tol=1e-4)
    assert math.isclose(fusion.required_sum(alpha, n=6)[0, 1].item(), 6 * fusion.MAX_DENSITY, rel_tol=1e-6)


# ---------------------------------------------------------------------------------------------
# density error: exact against the paper's expression

def test_density_error_is_the_exact_beer_lambert_residual():
    mu = torch.rand(10, 3, 3, generator=torch.Generator().manual_seed(6))
    alpha = torch.rand(3, 3, generator=torch.Generator().manual_seed(7)) * 0.9 + 0.05
    expected = mu.sum(0) + torch.log(alpha) * 10 / 10.0
    assert torch.allclose(fusion.density_error(alpha, mu), expected, atol=1e-5)
    assert torch.allclose(fusion.required_sum(alpha, n=10), -torch.log(alpha), atol=1e-6)


def test_paper_density_error_agrees_only_for_small_errors_on_light_rays():
    n = 64
    light = torch.full((n, 1, 1), 0.01)          # alpha_pred = exp(-0.1)
    small = composite(light) + 1e-4               # prediction slightly too dense
    exact, paper = fusion.density_error(small, light), fusion.paper_density_error(small, light)
    assert math.isclose(paper.item(), exact.item(), rel_tol=0.15)
    dense = torch.full((n, 1, 1), 0.3)            # alpha_pred = exp(-3) ~ 0.05
    brighter = torch.tensor([[0.2]])              # a large error on a bone ray
    exact, paper = fusion.density_error(brighter, dense), fusion.paper_density_error(brighter, dense)
    assert exact.item() > 0 and paper.item() > 0
    assert exact.item() / paper.item() > 5


# ---------------------------------------------------------------------------------------------
# high resolution: upsampling and the streamed file

def test_fuse_upsampled_of_laterally_constant_slices_is_one_ray_everywhere():
    profile = torch.tensor([0.0, 0.2, 0.9, 0.4, 0.0, 0.1])
    coarse = profile[:, None, None].expand(6, 3, 4).contiguous()
    alpha = torch.full((11, 13), 0.3)
    fused = fusion.fuse_upsampled(coarse, alpha)
    single = fusion.fuse(profile[:, None, None], alpha[:1, :1])
    assert fused.shape == (6, 11, 13)
    assert (fused - single).abs().max() < 1e-6


def test_fuse_upsampled_samples_like_bilinear_interpolate():
    coarse = torch.rand(8, 5, 6, generator=torch.Generator().manual_seed(8))
    upsampled = F.interpolate(coarse[None], size=(17, 23), mode="bilinear", align_corners=False)[0]
    fused = fusion.fuse_upsampled(coarse, composite(upsampled))
    assert (fused - upsampled).abs().max() < 1e-5


def read_nifti(path):
    """Voxels (z, y, x) as xtomo stores them, through nibabel's canonical orientation."""
    image = nib.as_closest_canonical(nib.load(path))
    return torch.from_numpy(np.asarray(image.dataobj, dtype=np.float32).transpose(2, 1, 0).copy())


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("policy", ["proportional", "scaled"])
def test_fuse_to_file_equals_fuse_upsampled(tmp_path, suffix, policy):
    """Equal to the last bit or two: depth sums of blocks of other widths round differently."""
    g = torch.Generator().manual_seed(9)
    coarse = torch.rand(12, 7, 6, generator=g) * (torch.rand(1, 7, 6, generator=g) > 0.2)
    alpha = torch.rand(37, 23, generator=g)
    alpha[:3] = 1.0
    path = fusion.fuse_to_file(coarse, alpha, tmp_path / f"fused{suffix}", tile=9, policy=policy,
                               progress=False)  # 3 rows per block: 37 does not divide
    expected = fusion.fuse_upsampled(coarse, alpha, policy=policy)
    assert (read_nifti(path) - expected).abs().max() <= 1e-6
    reference = save_volume(expected, tmp_path / f"reference{suffix}")
    assert np.allclose(nib.load(path).affine, nib.load(reference).affine)
    assert nib.load(path).header.get_zooms() == nib.load(reference).header.get_zooms()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, reference.name])


def test_fuse_to_file_reads_back_through_load_volume(tmp_path):
    coarse = 0.1 + 0.5 * torch.rand(16, 8, 8, generator=torch.Generator().manual_seed(10))
    alpha = composite(F.interpolate(coarse[None], size=(16, 16), mode="bilinear")[0]) ** 1.05
    path = fusion.fuse_to_file(coarse, alpha, tmp_path / "fused.nii", tile=5, progress=False)
    expected = fusion.fuse_upsampled(coarse, alpha)
    assert expected.max() <= 1
    assert torch.allclose(load_volume(path, size=16, fit=False), expected, atol=1e-6)


def test_fuse_to_file_interrupted_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing(*args):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("interrupted")
        return upsample(*args)

    upsample = fusion._upsample_rows
    monkeypatch.setattr(fusion, "_upsample_rows", failing)
    with pytest.raises(RuntimeError, match="interrupted"):
        fusion.fuse_to_file(torch.rand(4, 4, 4), torch.rand(8, 8), tmp_path / "v.nii.gz", tile=4,
                            progress=False)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# bad input

@pytest.mark.parametrize("mu, alpha, kwargs, message", [
    (torch.rand(4, 3, 3), torch.full((3, 3), 1.5), {}, r"alpha must be transparency in \[0, 1\]"),
    (torch.rand(4, 3, 3), torch.full((3, 3), -0.1), {}, r"alpha must be transparency"),
    (torch.rand(4, 3, 3), torch.full((3, 3), float("nan")), {}, "alpha .* NaN"),
    (torch.full((4, 3, 3), float("nan")), torch.rand(3, 3), {}, "mu .* NaN"),
    (-torch.rand(4, 3, 3), torch.rand(3, 3), {}, "mu .* non-negative"),
    (torch.rand(4, 3, 3), torch.rand(3, 4), {}, r"needs an x-ray of shape \(3, 3\)"),
    (torch.rand(3, 3), torch.rand(3, 3), {}, r"\[..., n, H, W\]"),
    (torch.rand(4, 3, 3), torch.rand(3, 3), {"policy": "magic"}, "policy must be one of"),
    (torch.rand(4, 3, 3), torch.rand(3, 3), {"beta": -1}, "beta"),
    (torch.rand(4, 3, 3), torch.rand(3, 3), {"chi": 0}, "chi"),
])
def test_bad_input_to_fuse_is_named(mu, alpha, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fusion.fuse(mu, alpha, **kwargs)


def test_bad_input_to_the_high_resolution_paths_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"mu_coarse must be \[n, h, w\]"):
        fusion.fuse_upsampled(torch.rand(1, 4, 3, 3), torch.rand(8, 8))
    with pytest.raises(ValueError, match=r"alpha_full must be \[H, W\]"):
        fusion.fuse_upsampled(torch.rand(4, 3, 3), torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match=r"\.nii or \.nii\.gz"):
        fusion.fuse_to_file(torch.rand(4, 3, 3), torch.rand(8, 8), tmp_path / "v.npz")
    with pytest.raises(ValueError, match="tile"):
        fusion.fuse_to_file(torch.rand(4, 3, 3), torch.rand(8, 8), tmp_path / "v.nii", tile=0)
    with pytest.raises(TypeError, match="torch tensor or numpy array"):
        fusion.fuse([[[0.0]]], [[1.0]])
    assert list(tmp_path.iterdir()) == []
