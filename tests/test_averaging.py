"""The moving average of the weights: its arithmetic, and that a run validates, saves, resumes, exports and
fine-tunes from it."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import random_pairs, stop_after_checkpoint
from hypothesis import given, settings
from hypothesis import strategies as st

from xtomo.learning import shipped
from xtomo.learning import train as T
from xtomo.learning.averaging import WeightAverage, evaluated_weights
from xtomo.profiles import get_profile

P = get_profile("smoke").replace(model="tiny", xray_size=8, volume_size=8, batch_size=4, val_every=2,
                                 checkpoint_every=3, val_samples=3, steps=6, lr=0.01, ema=0.6)


DATA = (random_pairs(7, 0), random_pairs(5, 1))


pytestmark = pytest.mark.usefixtures("tiny_network")   # the preset "tiny"


def scalar_network(value: float) -> torch.nn.Module:
    net = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False), torch.nn.BatchNorm1d(1))
    with torch.no_grad():
        net[0].weight.fill_(value)
    return net


@settings(max_examples=40, deadline=None)
@given(decay=st.floats(0.05, 0.999), values=st.lists(st.floats(-10, 10), min_size=1, max_size=30))
def test_the_average_follows_its_recursion_with_the_ramped_decay(decay, values):
    """a_0 = w_0; a_{n+1} = d_n a_n + (1 - d_n) w_{n+1}, d_n = min(decay, (1 + n) / (10 + n)): written out in
    float64 against the float32 average; integer buffers are copied, not averaged."""
    net = scalar_network(values[0])
    average = WeightAverage(net, decay)
    expected = values[0]
    for n, value in enumerate(values[1:]):
        with torch.no_grad():
            net[0].weight.fill_(value)
        net[1].num_batches_tracked.fill_(n + 7)
        average.update(net)
        d = min(decay, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * value
        assert int(average.model[1].num_batches_tracked) == n + 7
    assert average.updates == len(values) - 1
    assert average.model[0].weight.item() == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_the_first_updates_forget_the_start_and_a_steady_network_is_its_own_average():
    net, average = scalar_network(0.0), WeightAverage(scalar_network(0.0), 0.999)
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    for _ in range(100):
        average.update(net)
    # 0.9, 0.818..., ... : after 100 updates the start weighs prod (1 + n) / (10 + n) = 9! 100! / 109!
    start_weight = 1.0
    for n in range(100):
        start_weight *= (1 + n) / (10 + n)
    assert average.model[0].weight.item() == pytest.approx(1 - start_weight, abs=1e-6)
    assert start_weight < 1e-10                        # where a plain 0.999 would still keep 0.905 of it
    assert average.model.training is False and not any(p.requires_grad for p in average.model.parameters())


@pytest.mark.parametrize("decay", [0, 1, -0.5, 1.5, float("nan"), "0.9"])
def test_a_decay_outside_the_open_unit_interval_is_refused(decay):
    with pytest.raises(ValueError, match="WeightAverage: decay must be in"):
        WeightAverage(scalar_network(0.0), decay)


@pytest.mark.parametrize("ema", [1.0, -0.1, float("nan"), "0.9"])
def test_a_profiles_ema_is_checked(ema):
    with pytest.raises(ValueError, match=r"profile 'smoke': ema must be a decay per step in \[0, 1\)"):
        get_profile("smoke").replace(ema=ema)


@pytest.fixture(scope="module")
def averaged(tmp_path_factory):
    out = tmp_path_factory.mktemp("averaged")
    summary = T.train(P, out_dir=out, progress=False, data=DATA)
    return out, summary, T.load_checkpoint(out / "checkpoint.pt")


def test_a_run_keeps_the_average_and_validates_it(averaged):
    _, summary, ck = averaged
    assert ck["ema"]["updates"] == P.steps and ck["ema"]["decay"] == P.ema
    raw, mean = ck["model"], ck["ema"]["weights"]
    assert raw.keys() == mean.keys()
    assert any(not torch.equal(raw[k], mean[k]) for k in raw if raw[k].is_floating_point())
    assert evaluated_weights(ck) is mean and evaluated_weights(dict(ck, ema=None)) is raw
    unfused = T.model_from_checkpoint(ck, fused=False)
    assert all(torch.equal(unfused.state_dict()[k], w) for k, w in mean.items())
    val = DATA[1]
    recomputed = T.validation_l2(unfused, val, T.validation_indices(P, len(val)), P.batch_size, "cpu")
    assert summary["val_l2"] == pytest.approx(recomputed, rel=1e-6)   # the log is the average's
    raw_net = T.model_from_checkpoint(dict(ck, ema=None), fused=False)
    assert T.validation_l2(raw_net, val, T.validation_indices(P, len(val)), P.batch_size, "cpu") != pytest.approx(
        recomputed, rel=1e-6)


def test_fine_tuning_and_export_take_the_average(averaged, tmp_path):
    out, _, ck = averaged
    net = T.build_model(P.model, seed=1)
    start = T.initial_weights(out / "checkpoint.pt", net)
    assert all(torch.equal(start[k], w) for k, w in ck["ema"]["weights"].items())
    shipped.export(out / "checkpoint.pt", name="averaged", folder=tmp_path, command="xtomo train ...")
    stored = torch.load(tmp_path / "averaged.pt", weights_only=True)["model"]
    for k, w in ck["ema"]["weights"].items():
        assert torch.equal(stored[k], w.half() if w.is_floating_point() else w), k
    assert "Its weights are the moving average of its last run's (decay 0.6 a step)." in shipped.how_made(
        shipped.manifest("averaged", folder=tmp_path))


def test_a_stopped_run_resumes_to_the_same_average_and_only_with_its_decay(averaged, tmp_path, monkeypatch):
    _, _, whole = averaged
    save = stop_after_checkpoint(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        T.train(P, out_dir=tmp_path, progress=False, data=DATA)
    assert T.load_checkpoint(tmp_path / "checkpoint.pt")["ema"]["updates"] == 3
    monkeypatch.setattr(T, "_save", save)
    with pytest.raises(T.CheckpointError, match=r"ema: 0.6 there, 0.9 here"):
        T.train(P.replace(ema=0.9), resume=True, out_dir=tmp_path, progress=False, data=DATA)
    T.train(P, resume=True, out_dir=tmp_path, progress=False, data=DATA)
    ck = T.load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck["ema"]["updates"] == P.steps
    for k, w in whole["ema"]["weights"].items():
        assert torch.equal(ck["ema"]["weights"][k], w), k


def test_a_run_without_ema_keeps_no_average_and_the_command_names_a_changed_one(tmp_path):
    T.train(P.replace(ema=0.0), steps=2, out_dir=tmp_path, progress=False, data=DATA)
    assert T.load_checkpoint(tmp_path / "checkpoint.pt")["ema"] is None
    tuned = get_profile("tuned")
    other = tuned.replace(ema=0.995 if tuned.ema != 0.995 else 0.99)
    assert f" --ema {other.ema:g}" in shipped._train_command(dataclasses.asdict(other), 2500, "shipped")
    assert "--ema" not in shipped._train_command(dataclasses.asdict(tuned), 2500, "shipped")
