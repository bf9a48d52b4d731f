"""An x-ray's exposure level, a network's training span, and x-rays brought into it before inference."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xtomo.imaging import xray
from xtomo.learning import exposure
from xtomo.learning.inference import infer, reconstruct
from xtomo.learning.model import build_model
from xtomo.learning.train import load_checkpoint, model_from_checkpoint, train, train_val_sets
from xtomo.profiles import get_profile

SMOKE = get_profile("smoke")


def _slabs(densities, depth=32, side=16, chi=xray.CHI):
    """The x-ray of a view-aligned volume whose columns, one image column per entry of ``densities``,
    hold that density through the front half of the depth; the rest is air."""
    volume = torch.zeros(depth, side, side)
    for j, mu in enumerate(densities):
        volume[: depth // 2, :, j] = mu
    return xray.composite(volume, chi=chi)


def test_the_level_is_the_median_line_integral_over_the_specimen():
    """Columns of density mu through half the depth have line integral mu / 2: the level is the median
    of those over the specimen, whatever the air around it; an empty x-ray has level 0."""
    alpha = _slabs([0.1, 0.2, 0.4])
    assert exposure.level(alpha).item() == pytest.approx(0.2 / 2, rel=1e-5)
    assert exposure.level(_slabs([0.1, 0.2, 0.4, 0.0, 0.0, 0.0, 0.0])).item() == pytest.approx(0.1, rel=1e-5)
    assert exposure.level(torch.ones(8, 8)).item() == 0
    batch = torch.stack([_slabs([0.1]), _slabs([0.6])])[:, None]
    torch.testing.assert_close(exposure.level(batch), torch.tensor([0.05, 0.3]), rtol=1e-5, atol=0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.02, 1.0), min_size=1, max_size=8), st.floats(0.3, 3.0))
def test_a_denser_specimen_raises_the_level_in_proportion(densities, k):
    """alpha ** k is the x-ray of the specimen k times as dense: its level is k times the level."""
    alpha = _slabs(densities)
    assert exposure.level(alpha ** k).item() == pytest.approx(k * exposure.level(alpha).item(), rel=1e-4)


def test_the_gain_brings_each_level_into_the_span_and_leaves_it_alone_inside():
    alpha = torch.stack([_slabs([mu]) for mu in (0.02, 0.1, 0.5)])[:, None]   # levels 0.01, 0.05, 0.25
    g = exposure.gain(alpha, (0.04, 0.08))
    torch.testing.assert_close(g, torch.tensor([4.0, 1.0, 0.32]), rtol=1e-4, atol=0)
    torch.testing.assert_close(exposure.level(alpha ** g[:, None, None, None]), torch.tensor([0.04, 0.05, 0.08]),
                               rtol=1e-4, atol=0)
    assert torch.equal(exposure.gain(alpha, None), torch.ones(3))
    assert exposure.gain(torch.ones(8, 8), (0.04, 0.08)).item() == 1   # nothing to scale
    for bad in ((0.0, 0.1), (0.2, 0.1), (-1.0, 0.1)):
        with pytest.raises(ValueError, match="exposure span"):
            exposure.gain(alpha, bad)


def test_the_span_is_the_quantiles_of_the_levels():
    levels = torch.linspace(0.01, 0.2, 101)
    alpha = torch.stack([_slabs([2 * lv.item()]) for lv in levels])[:, None]
    lo, hi = exposure.span([alpha[:50], alpha[50:], torch.ones(3, 1, 16, 16)], quantiles=(0.1, 0.9))
    assert lo == pytest.approx(torch.quantile(levels, 0.1).item(), rel=1e-4)
    assert hi == pytest.approx(torch.quantile(levels, 0.9).item(), rel=1e-4)
    with pytest.raises(ValueError, match="none of the x-rays"):
        exposure.span(torch.ones(4, 1, 8, 8))


def _spanned_model(span):
    model = build_model("smoke", seed=0)
    model(torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0)))  # running statistics, not trivial
    model.eval()
    model.exposure = span
    return model


@torch.no_grad()
def test_inference_reconstructs_a_light_specimen_as_one_inside_the_span_scaled_back():
    """Two x-rays of one specimen at densities below the span are both answered from the same x-ray
    inside it, so their reconstructions differ by the ratio of their densities, as the physics says;
    inside the span (or without one) nothing changes; the fused volume still re-projects to its x-ray."""
    alpha = _slabs([0.1 + 0.02 * j for j in range(32)], depth=32, side=32)   # levels 0.05 to 0.36
    model = _spanned_model((0.3, 0.5))
    light, lighter = (alpha ** k for k in (0.5, 0.25))
    torch.testing.assert_close(reconstruct(light, model, fuse=False) / 0.5,
                               reconstruct(lighter, model, fuse=False) / 0.25, rtol=1e-4, atol=1e-5)
    plain = _spanned_model(None)
    assert not torch.allclose(reconstruct(light, plain, fuse=False) / 0.5,
                              reconstruct(lighter, plain, fuse=False) / 0.25, rtol=1e-3, atol=1e-4)
    inside = _spanned_model((0.01, 1.0))
    x = alpha[None, None]
    torch.testing.assert_close(infer(inside, x), infer(plain, x), rtol=0, atol=0)
    fused = reconstruct(lighter, model, fuse=True)
    torch.testing.assert_close(xray.composite(fused), lighter, rtol=1e-4, atol=1e-5)


def test_training_measures_its_span_and_the_network_carries_it(tmp_path):
    """A run stores the exposure span of its (augmented) training x-rays in its checkpoint; a resumed run
    keeps it; the network read back from the checkpoint carries it into inference."""
    p = SMOKE.replace(gain=1.5)
    train(p, steps=2, out_dir=tmp_path, progress=False)
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    expected = exposure.of_training(p, train_val_sets(p)[0])
    assert ck["exposure"] == pytest.approx(expected) and 0 < expected[0] < expected[1]
    assert exposure.of_training(p) == pytest.approx(expected)
    assert exposure.of_training(SMOKE) != pytest.approx(expected)   # the gain widens what training sees
    train(p, steps=3, out_dir=tmp_path, progress=False, resume=True)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["exposure"] == ck["exposure"]
    assert model_from_checkpoint(ck).exposure == pytest.approx(expected)
    assert model_from_checkpoint(dict(ck, exposure=None)).exposure is None
