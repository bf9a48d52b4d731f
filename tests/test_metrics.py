"""Metrics: L2 is the per-voxel mean squared error, PSNR known values, SSIM equals scikit-image's."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.metrics import structural_similarity

from xtomo.evaluation import metrics


def skimage_ssim(a, b, data_range=1.0):
    a, b = (x.numpy() if torch.is_tensor(x) else x for x in (a, b))
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=data_range)


def structured(shape, seed=0, dtype=torch.float64):
    """A smooth ramp, a bright ball and a thin shell: edges, flat regions and texture at once."""
    g = torch.Generator().manual_seed(seed)
    axes = torch.meshgrid(*[torch.linspace(-1, 1, s, dtype=dtype) for s in shape], indexing="ij")
    r = torch.sqrt(sum(x * x for x in axes))
    img = 0.3 * (axes[-1] + 1) / 2 + 0.6 * (r < 0.5) + 0.3 * ((r - 0.8).abs() < 0.05)
    return (img + 0.02 * torch.randn(shape, generator=g, dtype=dtype)).clamp(0, 1)


def degraded(x, seed=1):
    """Noisier, blurred, shifted in brightness: a plausible reconstruction of x."""
    g = torch.Generator().manual_seed(seed)
    blurred = 0.5 * x + 0.25 * (x.roll(1, -1) + x.roll(-1, -1))
    return (0.9 * blurred + 0.05 + 0.08 * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(0, 1)


# ----------------------------------------------------------------------------- L2, RMSE, PSNR

def test_l2_is_the_mean_squared_error_per_voxel():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 4, 5, 6, generator=g), torch.rand(3, 4, 5, 6, generator=g)
    out = metrics.l2(a, b)
    assert out.shape == (3,)
    for i in range(3):
        assert out[i].item() == pytest.approx(((a[i] - b[i]) ** 2).mean().item(), rel=1e-6)
    assert metrics.l2(a[0], b[0]).shape == ()
    assert metrics.l2(a[0], b[0]).item() == pytest.approx(((a[0] - b[0]) ** 2).mean().item(), rel=1e-6)
    # a constant error of 0.1 everywhere gives 0.01, whatever the volume's size: a mean, not a sum
    big = torch.zeros(2, 8, 8, 8, dtype=torch.float64)
    assert torch.allclose(metrics.l2(big + 0.1, big), torch.full((2,), 0.01, dtype=torch.float64))


def test_rmse_and_psnr_known_values():
    truth = torch.zeros(2, 4, 4, 4, dtype=torch.float64)
    pred = truth + 0.1  # MSE 0.01
    assert torch.allclose(metrics.rmse(pred, truth), torch.full((2,), 0.1, dtype=torch.float64))
    assert torch.allclose(metrics.psnr(pred, truth), torch.full((2,), 20.0, dtype=torch.float64))
    assert metrics.psnr(pred[0], truth[0], data_range=2.0).item() == pytest.approx(20 + 20 * math.log10(2))
    assert metrics.psnr(truth, truth).tolist() == [math.inf, math.inf]
    # 2-D images through ndim=2
    assert metrics.psnr(pred[0, 0], truth[0, 0], ndim=2).item() == pytest.approx(20.0)


def test_metric_keeps_leading_batch_shape_and_promotes_half():
    a = torch.rand(2, 3, 4, 4, 4).half()
    out = metrics.l2(a, torch.zeros_like(a))
    assert out.shape == (2, 3) and out.dtype == torch.float32


# ----------------------------------------------------------------------------- SSIM against scikit-image

@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("shape", [(40, 37), (11, 11), (64, 48)])
def test_ssim_2d_matches_skimage_random(shape, dtype, tol):
    g = torch.Generator().manual_seed(shape[0])
    a = torch.rand(shape, generator=g, dtype=dtype)
    b = (a + 0.2 * torch.randn(shape, generator=g, dtype=dtype)).clamp(0, 1)
    assert metrics.ssim(a, b).item() == pytest.approx(skimage_ssim(a, b), abs=tol)


@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_ssim_2d_matches_skimage_structured(data_range):
    a = structured((64, 80)) * data_range
    b = degraded(structured((64, 80))) * data_range
    ours = metrics.ssim(a, b, data_range=data_range).item()
    assert ours == pytest.approx(skimage_ssim(a, b, data_range), abs=1e-10)
    assert 0.2 < ours < 0.95  # a meaningful case, neither identical nor unrelated
    # float32 with a large offset: the per-item shift keeps the variances accurate
    a32, b32 = (x.float() + 100 * data_range for x in (a, b))
    assert metrics.ssim(a32, b32, data_range=data_range).item() == pytest.approx(
        skimage_ssim(a + 100 * data_range, b + 100 * data_range, data_range), abs=1e-4)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_ssim_3d_matches_skimage(dtype, tol):
    g = torch.Generator().manual_seed(3)
    a = torch.rand(20, 24, 22, generator=g, dtype=dtype)
    b = (a + 0.1 * torch.randn(a.shape, generator=g, dtype=dtype)).clamp(0, 1)
    assert metrics.ssim3d(a, b).item() == pytest.approx(skimage_ssim(a, b), abs=tol)
    s, d = structured((24, 28, 26), dtype=dtype), degraded(structured((24, 28, 26), dtype=dtype))
    assert metrics.ssim3d(s, d).item() == pytest.approx(skimage_ssim(s, d), abs=tol)


def test_ssim_batched_equals_per_item():
    g = torch.Generator().manual_seed(4)
    a = torch.rand(2, 3, 16, 20, generator=g, dtype=torch.float64)
    b = torch.rand(2, 3, 16, 20, generator=g, dtype=torch.float64)
    out = metrics.ssim(a, b)
    assert out.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert out[i, j].item() == pytest.approx(metrics.ssim(a[i, j], b[i, j]).item(), abs=1e-12)
            assert out[i, j].item() == pytest.approx(skimage_ssim(a[i, j], b[i, j]), abs=1e-10)
    va = torch.rand(2, 3, 12, 13, 14, generator=g, dtype=torch.float64)
    vb = torch.rand(2, 3, 12, 13, 14, generator=g, dtype=torch.float64)
    out3 = metrics.ssim3d(va, vb)
    assert out3.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert out3[i, j].item() == pytest.approx(metrics.ssim3d(va[i, j], vb[i, j]).item(), abs=1e-12)


def test_ssim_of_identical_images_is_one_and_dssim_zero():
    x = structured((32, 32))
    assert metrics.ssim(x, x).item() == pytest.approx(1.0, abs=1e-12)
    assert metrics.dssim(x, x).item() == pytest.approx(0.0, abs=1e-12)
    v = structured((16, 16, 16))
    assert metrics.dssim3d(v, v).item() == pytest.approx(0.0, abs=1e-12)
    # an inverted image is anti-correlated: SSIM below zero, DSSIM above one half
    assert metrics.dssim(x, 1 - x).item() > 0.5


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 31 - 1), mix=st.floats(-1, 1), h=st.integers(11, 24), w=st.integers(11, 24))
def test_dssim_bounded_and_symmetric(seed, mix, h, w):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(h, w, generator=g, dtype=torch.float64)
    noise = torch.rand(h, w, generator=g, dtype=torch.float64)
    b = (mix * a + (1 - abs(mix)) * noise) % 1.0  # from anti-correlated through unrelated to identical
    d = metrics.dssim(a, b).item()
    assert -1e-12 <= d <= 1.0 + 1e-12  # SSIM lies in [-1, 1]; rounding may cross by an ulp
    assert d == pytest.approx(metrics.dssim(b, a).item(), abs=1e-12)
    assert d == pytest.approx((1 - skimage_ssim(a, b)) / 2, abs=1e-10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_metrics_on_cuda_match_cpu():
    a, b = structured((2, 20, 20, 20)).float(), degraded(structured((2, 20, 20, 20))).float()
    for f in (metrics.l2, metrics.psnr, metrics.ssim3d, metrics.dssim):
        gpu = f(a.cuda(), b.cuda())
        assert gpu.device.type == "cuda"
        assert torch.allclose(gpu.cpu(), f(a, b), atol=1e-5)


# ----------------------------------------------------------------------------- errors

def test_clear_errors():
    a = torch.rand(12, 12)
    with pytest.raises(ValueError, match="same shape"):
        metrics.ssim(a, torch.rand(12, 13))
    with pytest.raises(ValueError, match="same shape"):
        metrics.l2(torch.rand(2, 4, 4, 4), torch.rand(4, 4, 4))
    with pytest.raises(TypeError, match="floating-point"):
        metrics.ssim(a, (a * 255).to(torch.uint8))
    with pytest.raises(TypeError, match="floating-point"):
        metrics.l2(np.zeros((4, 4, 4), dtype=np.int64), np.zeros((4, 4, 4), dtype=np.int64))
    bad = a.clone()
    bad[3, 4] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        metrics.ssim(bad, a)
    with pytest.raises(ValueError, match="NaN"):
        metrics.psnr(torch.full((4, 4, 4), math.inf), torch.zeros(4, 4, 4))
    with pytest.raises(ValueError, match="smaller than the 11-tap"):
        metrics.ssim(torch.rand(10, 30), torch.rand(10, 30))
    with pytest.raises(ValueError, match="smaller than the 11-tap"):
        metrics.ssim3d(torch.rand(30, 30, 8), torch.rand(30, 30, 8))
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        metrics.l2(a, a)
    with pytest.raises(ValueError, match="odd"):
        metrics.ssim(a, a, window=10)
    with pytest.raises(ValueError, match="data_range"):
        metrics.ssim(a, a, data_range=0)
    with pytest.raises(ValueError, match="data_range"):
        metrics.psnr(torch.rand(4, 4, 4), torch.rand(4, 4, 4), data_range=-1.0)
