"""Metrics, the behaviour mutation testing found untested: defaults, keyword pass-through, the error
messages that name the input, and batches whose items sit at very different brightness."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from xtomo.evaluation import metrics


def images(shape, seed=0, dtype=torch.float64):
    """Two related random images (or volumes) in [0, 1]: the second is the first plus noise."""
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=g, dtype=dtype)
    return a, (a + 0.2 * torch.randn(shape, generator=g, dtype=dtype)).clamp(0, 1)


def skimage_ssim(a, b, **kwargs):
    kwargs = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 1.0, **kwargs}
    return structural_similarity(a.numpy(), b.numpy(), **kwargs)


def exactly(message):
    """A ``pytest.raises`` pattern that matches the whole message and nothing more."""
    return "^" + re.escape(message) + "$"


def test_mse_and_rmse_default_to_volumes():
    truth = torch.zeros(2, 3, 4, 5, dtype=torch.float64)
    pred = truth + torch.tensor([0.1, 0.2], dtype=torch.float64).reshape(2, 1, 1, 1)
    assert torch.allclose(metrics.mse(pred, truth), torch.tensor([0.01, 0.04], dtype=torch.float64))
    assert torch.allclose(metrics.rmse(pred, truth), torch.tensor([0.1, 0.2], dtype=torch.float64))
    # ndim=2 scores each 2-D image of the batch on its own
    assert torch.allclose(metrics.rmse(pred[:, 0], truth[:, 0], ndim=2), torch.tensor([0.1, 0.2], dtype=torch.float64))
    assert metrics.rmse(pred, truth, ndim=2).shape == (2, 3)


def test_gaussian_window_defaults_are_the_ssim_window():
    # 11 taps of sigma 1.5: exp(-x²/(2·1.5²)) at x = -5..5, normalised (Wang et al. 2004)
    x = np.arange(11) - 5.0
    expected = np.exp(-x ** 2 / (2 * 1.5 ** 2))
    g = metrics.gaussian_window()
    assert g.dtype == torch.float64
    np.testing.assert_allclose(g.numpy(), expected / expected.sum(), rtol=1e-12)
    assert metrics.gaussian_window(1).tolist() == [1.0]  # one tap is the identity
    assert metrics.gaussian_window(5, dtype=torch.float32).dtype == torch.float32
    assert metrics.gaussian_window(5, device="meta").device.type == "meta"


@pytest.mark.parametrize("window", [0, -1, 2.0])
def test_gaussian_window_rejects_a_bad_window_by_name(window):
    with pytest.raises(ValueError, match=r"^window must be "):
        metrics.gaussian_window(window)


def test_gaussian_window_rejects_a_bad_sigma_by_name():
    with pytest.raises(ValueError, match=exactly("sigma must be a finite number > 0, got 0.0")):
        metrics.gaussian_window(11, 0.0)


def test_ssim_with_another_sigma_matches_skimage():
    # skimage's Gaussian window has radius int(3.5 sigma + 0.5): 15 taps for sigma = 2
    a, b = images((40, 36), seed=5)
    ours = metrics.ssim(a, b, sigma=2.0, window=15).item()
    assert ours == pytest.approx(skimage_ssim(a, b, sigma=2.0), abs=1e-12)
    assert abs(ours - metrics.ssim(a, b).item()) > 1e-3  # sigma matters


def test_dssim_passes_its_options_to_ssim():
    a, b = (x * 255 for x in images((32, 30), seed=6))
    expected = (1 - skimage_ssim(a, b, data_range=255.0)) / 2
    assert metrics.dssim(a, b, data_range=255.0).item() == pytest.approx(expected, abs=1e-12)
    va, vb = (x * 255 for x in images((14, 15, 16), seed=7))
    expected3 = (1 - skimage_ssim(va, vb, data_range=255.0)) / 2
    assert metrics.dssim3d(va, vb, data_range=255.0).item() == pytest.approx(expected3, abs=1e-12)


def test_dssim3d_is_half_of_one_minus_ssim():
    va, vb = images((14, 15, 16), seed=8)
    s = skimage_ssim(va, vb)
    assert 0.05 < s < 0.95
    assert metrics.dssim3d(va, vb).item() == pytest.approx((1 - s) / 2, abs=1e-12)


def test_batched_ssim_is_exact_for_items_far_apart_in_brightness():
    # each item is shifted by its own mean before E[x²] - E[x]²: an item near 1000 next to one near 0
    # must not cost the dim one its float32 precision
    a, b = images((24, 26), seed=9, dtype=torch.float32)
    batch_a, batch_b = torch.stack([a, a + 1000]), torch.stack([b, b + 1000])
    out = metrics.ssim(batch_a, batch_b, data_range=1.0)
    single = metrics.ssim(a, b).item()
    assert out[0].item() == pytest.approx(single, abs=1e-5)
    assert out[1].item() == pytest.approx(skimage_ssim(a.double() + 1000, b.double() + 1000), abs=1e-3)


def test_half_precision_ssim_is_computed_in_float32():
    a, b = images((20, 22), seed=10, dtype=torch.float16)
    out = metrics.ssim(a, b)
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(skimage_ssim(a.double(), b.double()), abs=1e-6)


def test_error_messages_name_the_argument():
    good = torch.rand(12, 12)
    with pytest.raises(ValueError, match=exactly("pred and truth must have the same shape, "
                                                 "got (2, 4, 4, 4) and (4, 4, 4)")):
        metrics.l2(torch.rand(2, 4, 4, 4), torch.rand(4, 4, 4))
    with pytest.raises(TypeError, match=exactly("a must be a floating-point tensor, got dtype torch.uint8")):
        metrics.ssim((good * 255).to(torch.uint8), good)
    with pytest.raises(TypeError, match=exactly("b must be a floating-point tensor, got dtype torch.int64")):
        metrics.ssim(good, torch.zeros(12, 12, dtype=torch.int64))
    with pytest.raises(ValueError, match=exactly("data_range must be a finite number > 0, got 0")):
        metrics.ssim(good, good, data_range=0)
    with pytest.raises(ValueError, match=exactly("data_range must be a finite number > 0, got -1.0")):
        metrics.psnr(torch.rand(4, 4, 4), torch.rand(4, 4, 4), data_range=-1.0)
    assert metrics.psnr(torch.zeros(4, 4, 4), torch.zeros(4, 4, 4)).item() == math.inf
