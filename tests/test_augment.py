"""Training on smoother, lighter or denser specimens (a profile's ``blur`` and ``gain``) and from given
weights (``init``): the blur is a normalised, cut Gaussian with the variance it should have, the gain a
log-uniform factor clipped to the density range, both seeded per sample, applied to training samples
only and alike by the dataset and the device pipeline; a fine-tuning run starts from exactly the weights
it was given, and records them."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from xtomo.data.augment import CUT_TILT, augmented, blurred, truncated, unchanged
from xtomo.data.datasets import ProceduralBank, XrayDataset, make_sample
from xtomo.data.pipeline import DevicePipeline
from xtomo.learning import model as model_module
from xtomo.learning import train as T
from xtomo.learning.model import ModelConfig
from xtomo.profiles import get_profile

P = get_profile("smoke").replace(n_species=5, n_val_species=2, n_views=6, volume_size=8, xray_size=8, blur=1.5,
                                 gain=1.5, cut=0.4, pose=20)


def kernel(sigma):
    """The 1-D kernel ``blurred`` must use: exp(-x^2 / 2 sigma^2) for |x| <= ceil(3 sigma), normalised."""
    r = math.ceil(3 * sigma)
    w = torch.tensor([math.exp(-x * x / (2 * sigma * sigma)) for x in range(-r, r + 1)], dtype=torch.float64)
    return w / w.sum()


@pytest.mark.parametrize("sigma", [0.4, 1.0, 1.7])
def test_a_blurred_point_is_the_cut_gaussian(sigma):
    """A unit voxel in the middle becomes the outer product of the 1-D kernel: its mass 1, its centre
    k(0)^3 and its variance along each axis sum x^2 k(x): below sigma^2, as the tails are cut."""
    v = torch.zeros(1, 21, 21, 21, dtype=torch.float64)
    v[0, 10, 10, 10] = 1
    out = blurred(v, torch.tensor([sigma], dtype=torch.float64))[0]
    k = kernel(sigma)
    r = (len(k) - 1) // 2
    assert out.sum().item() == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(out[10 - r:11 + r, 10, 10], k * k[r] ** 2)
    x = torch.arange(21, dtype=torch.float64) - 10
    variance = (out.sum((1, 2)) * x**2).sum().item()
    assert variance == pytest.approx(float((k * torch.arange(-r, r + 1) ** 2).sum()), rel=1e-9)
    assert variance < sigma**2
    if sigma >= 1:  # sampled on the voxel grid, a narrower Gaussian loses more than its cut tails (1 %)
        assert variance > 0.95 * sigma**2


def test_a_batch_blurs_each_volume_as_it_would_alone_and_zero_leaves_it():
    g = torch.Generator().manual_seed(0)
    v = torch.rand(3, 10, 10, 10, generator=g)
    sigmas = torch.tensor([0.0, 0.6, 1.4])
    together = blurred(v, sigmas)
    assert torch.equal(together[0], v[0]) and torch.equal(blurred(v, torch.zeros(3)), v)
    for i in (1, 2):
        torch.testing.assert_close(together[i], blurred(v[i:i + 1], sigmas[i:i + 1])[0], rtol=0, atol=1e-6)
        assert not torch.allclose(together[i], v[i])


@pytest.fixture(scope="module")
def sets():
    bank = ProceduralBank(P, cache_dir=None)
    return XrayDataset(bank, [0, 1, 2], P, augment=True), XrayDataset(bank, [0, 1, 2], P)


def test_blur_and_gain_are_seeded_per_sample_within_the_profiles_ranges(sets):
    train_set, plain = sets
    everything = list(range(len(train_set)))
    sigmas, gains, cuts, tilts, stretches, turns = train_set.augmentation(everything)
    again = train_set.augmentation(everything)
    assert all(torch.equal(a, b) for a, b in zip((sigmas, gains, cuts, tilts), again))
    assert len(set(sigmas.tolist())) == len(everything) and len(set(gains.tolist())) == len(everything)
    assert 0 <= sigmas.min() and sigmas.max() <= P.blur and sigmas.max() > P.blur / 2
    # log-uniform in [1/gain, gain]: its logarithm uniform around 0, lighter and denser alike
    logs = gains.log() / math.log(P.gain)
    assert -1 <= logs.min() < -0.5 and 0.5 < logs.max() <= 1 and abs(float(logs.mean())) < 0.25
    # half the samples whole, the others cut by up to `cut` on a plane leaning up to CUT_TILT
    assert 0.3 < float((cuts == 0).float().mean()) < 0.7 and 0 <= cuts.min() and P.cut / 2 < cuts.max() <= P.cut
    assert tilts.abs().max() <= CUT_TILT and tilts.min() < 0 < tilts.max()
    # half the samples turned, each angle within `pose` degrees, both signs
    turned = (turns != 0).any(1)
    assert 0.3 < float(turned.float().mean()) < 0.7 and bool((turns[turned] != 0).all())
    assert turns.abs().max() <= math.radians(P.pose) and turns.min() < 0 < turns.max()
    assert turns.abs().max() > math.radians(P.pose) / 2
    unturned = XrayDataset(train_set.bank, [0, 1, 2], P.replace(pose=0.0), augment=True).augmentation(everything)
    assert torch.equal(unturned.turn, torch.zeros_like(turns))  # no pose, no turn; and the other draws stay put
    assert all(torch.equal(a, b) for a, b in zip(unturned[:5], (sigmas, gains, cuts, tilts, stretches), strict=True))
    nothing = unchanged(len(everything))
    assert all(torch.equal(a, b) for a, b in zip(plain.augmentation(everything), nothing, strict=True))
    no_blur = XrayDataset(train_set.bank, [0, 1, 2], P.replace(blur=0.0), augment=True)
    assert torch.equal(no_blur.augmentation(everything).blur, torch.zeros(len(everything)))
    assert torch.equal(no_blur.augmentation(everything).gain, gains)  # the gain does not depend on the blur
    assert torch.equal(no_blur.augmentation(everything).cut, cuts)  # nor does the cut
    neither = XrayDataset(train_set.bank, [0, 1, 2], P.replace(blur=0.0, gain=1.0), augment=True)
    assert torch.equal(neither.augmentation(everything).gain, torch.ones(len(everything)))
    assert torch.equal(neither.augmentation(everything).cut, cuts)
    uncut = XrayDataset(train_set.bank, [0, 1, 2], P.replace(cut=0.0), augment=True).augmentation(everything)
    assert torch.equal(uncut.blur, sigmas) and torch.equal(uncut.gain, gains)
    assert torch.equal(uncut.cut, torch.zeros_like(cuts))
    train, val_set = T.train_val_sets(P)
    assert train.augment and not val_set.augment


def test_a_gain_scales_densities_and_clips_them_to_the_unit_range():
    v = torch.tensor([0.0, 0.2, 0.5, 0.9]).repeat(3, 4, 4, 1)
    out = augmented(v, torch.zeros(3), torch.tensor([1.0, 0.5, 2.0]))
    assert torch.equal(out[0], v[0])
    torch.testing.assert_close(out[1], v[1] * 0.5, rtol=0, atol=0)
    torch.testing.assert_close(out[2, ..., :3], v[2, ..., :3] * 2, rtol=0, atol=0)
    assert torch.equal(out[2, ..., 3], torch.ones(4, 4))  # 1.8 is beyond the densest bone
    assert augmented(v, torch.zeros(3), torch.ones(3)) is v


def test_an_augmented_sample_is_made_from_the_changed_specimen_by_both_paths(sets):
    train_set, plain = sets
    index = next(i for i in range(0, len(train_set), 2) if train_set.augmentation([i]).cut > 0)  # a cut one
    s = train_set.locate(index)
    assert not s.mirrored
    sigma, gain, cut, tilt, stretch, turn = train_set.augmentation([index])
    specimen = truncated(train_set.bank.volume(s.specimen)[None], cut, tilt, stretch, turn)
    specimen = (blurred(specimen, sigma)[0] * gain).clamp(0, 1)
    alpha, volume = make_sample(specimen, train_set.directions(s.specimen)[s.view], P)
    item = train_set[index]
    torch.testing.assert_close(item["xray"][0], alpha)
    torch.testing.assert_close(item["volume"], volume)
    assert not torch.allclose(item["volume"], plain[index]["volume"])
    indices = [5, 2, 17, 30, 2, index]
    assert 0 < int((train_set.augmentation(indices).cut > 0).sum()) < len(indices)  # cut and whole in one batch
    batch = DevicePipeline(train_set).batch(indices)
    items = [train_set[i] for i in indices]
    torch.testing.assert_close(batch["xray"], torch.stack([it["xray"] for it in items]), rtol=0, atol=1e-6)
    torch.testing.assert_close(batch["volume"], torch.stack([it["volume"] for it in items]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("blur", [-0.5, 8, float("nan"), "1"])
def test_a_profiles_blur_is_checked(blur):
    with pytest.raises(ValueError, match=r"profile 'smoke': blur must be a number of voxels in \[0, 8\)"):
        P.replace(blur=blur)


@pytest.mark.parametrize("gain", [0.5, 0, 4.5, float("nan"), float("inf"), "2"])
def test_a_profiles_gain_is_checked(gain):
    with pytest.raises(ValueError, match=r"profile 'smoke': gain must be a density factor in \[1, 4\]"):
        P.replace(gain=gain)


TINY = ModelConfig(in_size=8, slices=8, width=4, stem_width=2, levels=1, units_per_level=0, bottom_units=1,
                   up_units=0, stride=1)
@pytest.mark.parametrize("cut", [-0.1, 0.61, float("nan"), "0.2"])
def test_a_profiles_cut_is_checked(cut):
    with pytest.raises(ValueError, match=r"profile 'smoke': cut must be a fraction of the specimen's height"):
        P.replace(cut=cut)


RUN = P.replace(model="tiny-augment", batch_size=4, steps=2, val_every=2, checkpoint_every=2, val_samples=3)


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(model_module.PRESETS, "tiny-augment", TINY)
    monkeypatch.setitem(model_module.PRESETS, "tiny-other", dataclasses.replace(TINY, width=6))


def test_a_fine_tuning_run_starts_from_the_weights_it_is_given(tiny, tmp_path):
    first = T.train(RUN, out_dir=tmp_path / "first", progress=False)
    given = T.load_checkpoint(first["checkpoint"])["model"]
    run = T._start(RUN, 2, 0, 1, torch.device("cpu"), None, init=first["checkpoint"])
    assert all(torch.equal(run.model.state_dict()[k], w) for k, w in given.items())
    fresh = T._start(RUN, 2, 0, 1, torch.device("cpu"), None)
    assert not all(torch.equal(fresh.model.state_dict()[k], w) for k, w in given.items())
    tuned = T.train(RUN, out_dir=tmp_path / "tuned", progress=False, init=first["checkpoint"])
    assert T.load_checkpoint(tuned["checkpoint"])["init"] == str(first["checkpoint"])
    resumed = T._start(RUN, 2, 0, 1, torch.device("cpu"), tuned["checkpoint"], init=tmp_path / "absent.pt")
    assert resumed.step == 2 and resumed.init == str(first["checkpoint"])  # a resumed run keeps its own weights
    with pytest.raises(T.CheckpointError, match=r"^init: .*first/checkpoint.pt holds another network"):
        T._start(RUN.replace(model="tiny-other"), 2, 0, 1, torch.device("cpu"), None, init=first["checkpoint"])


def test_a_run_resumes_only_with_its_own_blur_and_gain(tiny, tmp_path):
    done = T.train(RUN, out_dir=tmp_path, progress=False)
    with pytest.raises(T.CheckpointError, match=r"blur: 1.5 there, 0.5 here"):
        T.load_checkpoint(done["checkpoint"], RUN.replace(blur=0.5), resuming=True)
    with pytest.raises(T.CheckpointError, match=r"gain: 1.5 there, 2.0 here"):
        T.load_checkpoint(done["checkpoint"], RUN.replace(gain=2.0), resuming=True)
    with pytest.raises(T.CheckpointError, match=r"cut: 0.4 there, 0.2 here"):
        T.load_checkpoint(done["checkpoint"], RUN.replace(cut=0.2), resuming=True)
    with pytest.raises(T.CheckpointError, match=r"stretch: 1.0 there, 1.2 here"):
        T.load_checkpoint(done["checkpoint"], RUN.replace(stretch=1.2), resuming=True)
    T.load_checkpoint(done["checkpoint"], RUN.replace(blur=0.0, gain=1.0, cut=0.0))  # evaluating it needs none
    old = T.load_checkpoint(done["checkpoint"])
    del old["profile"]["blur"], old["profile"]["gain"], old["profile"]["cut"]  # from before them: without them
    torch.save(old, tmp_path / "old.pt")
    T.load_checkpoint(tmp_path / "old.pt", RUN.replace(blur=0.0, gain=1.0, cut=0.0), resuming=True)
    with pytest.raises(T.CheckpointError,
                       match=r"blur: 0.0 there, 1.5 here; gain: 1.0 there, 1.5 here; cut: 0.0 there, 0.4 here"):
        T.load_checkpoint(tmp_path / "old.pt", RUN, resuming=True)
    with pytest.raises(T.CheckpointError, match=r"blur: 1.5 there, 0.0 here"):
        T.train(RUN.replace(blur=0.0), resume=True, out_dir=tmp_path, progress=False)


def test_the_train_command_passes_init_blur_and_gain(monkeypatch):
    from xtomo.cli import main

    seen = []
    monkeypatch.setattr(T, "train", lambda profile, **kw: seen.append((profile.blur, profile.gain, profile.cut,
                                                                       profile.stretch, profile.pose, kw["init"])) or
                        dict(world_size=1, step=1, total_steps=1, val_l2=0.5, baseline_l2=1.0, checkpoint="ck.pt"))
    main(["train", "--profile", "smoke", "--init", "shipped", "--blur", "1.2", "--gain", "1.6", "--cut", "0.3",
          "--stretch", "1.2", "--pose", "15"])
    main(["train", "--profile", "smoke"])
    smoke = get_profile("smoke")
    assert seen == [(1.2, 1.6, 0.3, 1.2, 15.0, "shipped"),
                    (smoke.blur, smoke.gain, smoke.cut, smoke.stretch, smoke.pose, None)]


def test_a_stretch_is_seeded_per_sample_and_both_paths_make_the_same_sample(sets):
    """``stretch``: each specimen scaled along x, y and z by factors log-uniform in [1/stretch, stretch],
    drawn apart from the other augmentations (which stay what they were), and applied the same way by
    the dataset and the device pipeline."""
    train_set, _ = sets
    stretched = XrayDataset(train_set.bank, [0, 1, 2], P.replace(stretch=1.3), augment=True)
    everything = list(range(len(stretched)))
    *others, factors, turns = stretched.augmentation(everything)
    assert all(torch.equal(a, b) for a, b in zip(others, train_set.augmentation(everything)[:4], strict=True))
    assert torch.equal(turns, train_set.augmentation(everything).turn)
    assert torch.equal(factors, stretched.augmentation(everything).stretch) and factors.shape == (len(everything), 3)
    logs = factors.log() / math.log(1.3)
    assert -1 <= logs.min() < -0.5 and 0.5 < logs.max() <= 1 and abs(float(logs.mean())) < 0.25
    assert len(set(factors[:, 0].tolist())) == len(everything) and not torch.equal(factors[:, 0], factors[:, 2])
    assert torch.equal(train_set.augmentation(everything).stretch, torch.ones(len(everything), 3))
    index = 4
    s = stretched.locate(index)
    sigma, gain, cut, tilt, factor, turn = stretched.augmentation([index])
    specimen = truncated(stretched.bank.volume(s.specimen)[None], cut, tilt, factor, turn)
    specimen = (blurred(specimen, sigma)[0] * gain).clamp(0, 1)
    alpha, volume = make_sample(specimen, stretched.directions(s.specimen)[s.view], P)
    torch.testing.assert_close(stretched[index]["volume"], volume)
    torch.testing.assert_close(stretched[index]["xray"][0], alpha)
    indices = [5, 2, 17, 30, index]
    batch = DevicePipeline(stretched).batch(indices)
    items = [stretched[i] for i in indices]
    torch.testing.assert_close(batch["xray"], torch.stack([it["xray"] for it in items]), rtol=0, atol=1e-6)
    torch.testing.assert_close(batch["volume"], torch.stack([it["volume"] for it in items]), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="stretch must be a factor in"):
        P.replace(stretch=2.0)
    with pytest.raises(ValueError, match="pose must be an angle in degrees"):
        P.replace(pose=60)
