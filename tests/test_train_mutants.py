"""Training, the behaviour mutation testing found untested, checked fast and in-process: a tiny network
(8^2 x-rays to 8^3 volumes, registered as a preset for these tests only) trained for a few steps on a
handful of random pairs, with an injected clock. The log, the schedule, the checkpoint, a run stopped
and resumed, the time budget, a stand-in for rank 0 of two DDP processes and the checkpoint errors are
checked against their definitions."""
from __future__ import annotations

import dataclasses
import itertools
import math
import re
import subprocess
import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_NETWORK as TINY
from conftest import random_pairs as pairs
from conftest import stop_after_checkpoint

from xtomo import __version__
from xtomo.files import artifacts_dir, read_csv
from xtomo.learning import exposure
from xtomo.learning import model as model_module
from xtomo.learning import provenance as V
from xtomo.learning import train as T
from xtomo.learning.model import build_model
from xtomo.profiles import get_profile
from xtomo.specimens import crania

P = get_profile("smoke").replace(model="tiny", xray_size=8, volume_size=8, batch_size=4, val_every=2,
                                 checkpoint_every=3, val_samples=3, steps=5, lr=0.01)
TICK = 1.0011  # seconds the injected clock advances per reading (the log keeps 2 decimals: 1.0)


def exactly(message):
    return "^" + re.escape(message) + "$"


DATA = (pairs(7, 0), pairs(5, 1))


pytestmark = pytest.mark.usefixtures("tiny_network")   # the preset "tiny"


class _Bar:
    """A stand-in for tqdm that records its arguments, postfixes and updates."""

    def __init__(self, iterable=None, **kwargs):
        self.kwargs, self.postfix, self.updates, self.closed = kwargs, [], 0, False
        _Bar.made.append(self)

    def set_postfix(self, **kwargs):
        self.postfix.append(kwargs)

    def update(self, n=1):
        self.updates += n

    def close(self):
        self.closed = True


def _clock_and_bar(mp):
    import tqdm.auto

    ticks = itertools.count(100)                                        # a clock that does not start at 0
    mp.setattr(T, "time", types.SimpleNamespace(perf_counter=lambda: TICK * next(ticks)))
    mp.setattr(tqdm.auto, "tqdm", _Bar)
    _Bar.made = []


def _losses(mp):
    """Record every step's loss as the run records it."""
    losses, step = [], T._step

    def recording(run, *args):
        n = step(run, *args)
        losses.append(run.running[-1])
        return n

    mp.setattr(T, "_step", recording)
    return losses


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    with pytest.MonkeyPatch.context() as mp:
        _clock_and_bar(mp)
        losses = _losses(mp)
        summary = T.train(P, out_dir=out, device="cpu", progress=True, data=DATA)
        bars = _Bar.made
    return dict(out=out, summary=summary, losses=losses, bar=bars[0], ck=T.load_checkpoint(out / "checkpoint.pt", P))


def lr(step, total=P.steps):
    """The documented schedule: a cosine from lr down to a tenth of it over the run."""
    return P.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / total)))


def test_one_run_checked_against_its_definitions(whole):
    """Every check of the fixture's run in one test: mutmut credits a module fixture's work to the
    first test that uses it, so the checks must run in that test to see a mutant."""
    for check in (_the_log_and_summary_follow_their_definitions,
                  _the_first_loss_is_the_l2_of_the_initial_network_on_the_first_batch,
                  _validation_and_baseline_are_recomputable, _the_checkpoint_holds_everything_a_resumed_run_needs,
                  _the_progress_bar):
        check(whole)


def _the_log_and_summary_follow_their_definitions(whole):
    s, losses, ck = whole["summary"], whole["losses"], whole["ck"]
    assert len(losses) == 5
    # validated every 2 steps and at the end; train_l2 is the mean loss since the last log
    expected = [(2, losses[0:2]), (4, losses[2:4]), (5, losses[4:5])]
    assert [h["step"] for h in s["history"]] == [2, 4, 5]
    for h, (step, since) in zip(s["history"], expected):
        assert h["samples"] == step * P.batch_size
        assert h["train_l2"] == pytest.approx(sum(since) / len(since), rel=1e-12)
        assert h["lr"] == pytest.approx(lr(step), rel=1e-9)
        assert h["seconds"] == round(TICK * step, 2)                    # the clock reads once per step
    assert set(s) == {"step", "total_steps", "val_l2", "baseline_l2", "checkpoint", "log", "history", "world_size"}
    assert (s["step"], s["total_steps"], s["world_size"]) == (5, 5, 1)
    assert s["checkpoint"] == whole["out"] / "checkpoint.pt" and s["log"] == whole["out"] / "training_log.csv"
    assert s["history"][-1]["val_l2"] == s["val_l2"] == ck["val_l2"]
    assert read_csv(s["log"]) == [{k: str(v) for k, v in h.items()} for h in s["history"]]
    assert list(read_csv(s["log"])[0]) == T.LOG_FIELDS


def _the_first_loss_is_the_l2_of_the_initial_network_on_the_first_batch(whole):
    """Before any update: the profile's network from its seed, in training mode, on the samples of
    ``step_indices(seed, 0)``. Same operations in another memory layout: equal to float32 rounding."""
    net = build_model(P.model, seed=P.seed).train()
    picks = T.step_indices(P.seed, 0, P.batch_size, len(DATA[0]))
    x = torch.stack([DATA[0][i]["xray"] for i in picks])
    y = torch.stack([DATA[0][i]["volume"] for i in picks])
    assert whole["losses"][0] == pytest.approx(F.mse_loss(net(x), y).item(), rel=1e-5)


def _validation_and_baseline_are_recomputable(whole):
    s, ck = whole["summary"], whole["ck"]
    val_idx = T.validation_indices(P, len(DATA[1]))
    net = T.model_from_checkpoint(ck, fused=False)
    # the same network in another memory layout: float32 rounding
    assert s["val_l2"] == pytest.approx(T.validation_l2(net, DATA[1], val_idx, P.batch_size, "cpu"), rel=1e-5)
    baseline = T.mean_volume_l2(DATA[0], DATA[1], val_idx, len(DATA[0]), P.seed)[1]  # min(256, 7) = 7 picks
    assert s["baseline_l2"] == baseline == ck["baseline_l2"]


def _the_checkpoint_holds_everything_a_resumed_run_needs(whole):
    ck = whole["ck"]
    assert set(ck) == {"model", "optimiser", "schedule", "step", "history", "baseline_l2", "val_l2", "total_steps",
                       "model_config", "profile", "seed", "code_version", "world_size", "running", "machine",
                       "generator", "init", "based_on", "exposure", "real", "ema"}
    assert ck["ema"] is None   # the profile keeps no moving average (test_averaging: one that does)
    assert (ck["step"], ck["total_steps"], ck["seed"], ck["world_size"], ck["init"], ck["based_on"], ck["real"]) == \
        (5, 5, P.seed, 1, None, None, None)
    assert ck["exposure"] == exposure.of_training(P, DATA[0])      # the span of its training x-rays
    assert ck["machine"] == V.machine() and ck["generator"] is None   # trained on given data, not the crania
    assert ck["model_config"] == dataclasses.asdict(TINY) and ck["profile"] == dataclasses.asdict(P)
    assert ck["code_version"] == V.code_version() and ck["running"] == []   # the last step was logged
    assert ck["history"] == whole["summary"]["history"]
    group = ck["optimiser"]["param_groups"][0]
    assert group["initial_lr"] == P.lr and group["lr"] == pytest.approx(lr(5), rel=1e-9)
    assert ck["schedule"]["last_epoch"] == 5
    assert not [p for p in whole["out"].iterdir() if ".part" in p.name]


def _the_progress_bar(whole):
    bar = whole["bar"]
    assert bar.kwargs == dict(total=5, initial=0, desc="training tiny", unit="step", disable=False)
    assert bar.updates == 5 and bar.closed
    # after step k: k batches of 4 samples in k clock ticks
    assert bar.postfix == [dict(loss=f"{loss:.4f}", samples_s=f"{4 / TICK:.1f}") for loss in whole["losses"]]


def test_a_run_stopped_after_a_checkpoint_resumes_to_the_same_weights(whole, tmp_path, monkeypatch):
    """Stopped right after the checkpoint of step 3 (between logs at 2 and 4, so the loss of step 3
    waits in ``running``), resumed: the same weights, optimiser, log and baseline as the run that was
    never stopped (deterministic on a CPU: equal)."""
    save = stop_after_checkpoint(monkeypatch, 3)
    versions = iter(["0.1+a"] + ["0.1+b"] * 9)   # the checkout changes after the run started
    monkeypatch.setattr(T, "code_version", lambda: next(versions))
    with pytest.raises(KeyboardInterrupt):
        T.train(P, out_dir=tmp_path, progress=False, data=DATA)
    stopped = T.load_checkpoint(tmp_path / "checkpoint.pt")
    assert stopped["step"] == 3 and stopped["running"] == [whole["losses"][2]]
    assert stopped["code_version"] == "0.1+a"    # the code it started with, not the checkout at the save
    monkeypatch.setattr(T, "_save", save)
    monkeypatch.setattr(T, "mean_volume_l2", lambda *a: pytest.fail("the baseline is in the checkpoint"))
    _clock_and_bar(monkeypatch)
    summary = T.train(P, resume=True, out_dir=tmp_path, progress=True, data=DATA)
    assert _Bar.made[0].kwargs["initial"] == 3 and _Bar.made[0].updates == 2
    ck, ref = T.load_checkpoint(tmp_path / "checkpoint.pt"), whole["ck"]
    for name, tensor in ref["model"].items():
        assert torch.equal(tensor, ck["model"][name]), name
    assert ck["optimiser"]["param_groups"] == ref["optimiser"]["param_groups"]
    for key, state in ref["optimiser"]["state"].items():
        assert all(torch.equal(v, ck["optimiser"]["state"][key][n]) for n, v in state.items())
    strip = lambda history: [dict(h, seconds=None) for h in history]  # noqa: E731
    assert strip(ck["history"]) == strip(ref["history"]) and summary["step"] == 5
    # the resumed run's clock goes on from its log (step 2's reading), one tick per step
    before = stopped["history"][-1]["seconds"]
    assert [h["seconds"] for h in ck["history"][1:]] == pytest.approx([before + TICK, before + 2 * TICK], abs=0.006)
    assert summary["baseline_l2"] == ref["baseline_l2"] and summary["val_l2"] == ref["val_l2"]
    assert ck["code_version"] == "0.1+a then 0.1+b from step 3"   # resumed by other code: both named
    assert T._resumed_code(ck["code_version"], "0.1+b", 4) == ck["code_version"]   # the same code again: no change
    assert T._resumed_code("0.1+a", "0.1+a.dirty", 2) == "0.1+a then 0.1+a.dirty from step 2"
    # resuming a finished run does nothing and reports its last validation
    again = T.train(P, resume=True, out_dir=tmp_path, progress=False, data=DATA)
    assert (again["step"], again["val_l2"], again["history"]) == (5, ref["val_l2"], ck["history"])
    # nor does a run resume from a checkpoint made with other settings
    with pytest.raises(T.CheckpointError, match="other settings"):
        T.train(P.replace(seed=1), resume=True, out_dir=tmp_path, progress=False, data=DATA)


def test_resume_without_a_checkpoint_starts_afresh(whole, tmp_path):
    summary = T.train(P, resume=True, steps=2, out_dir=tmp_path, progress=False, data=DATA)
    assert summary["step"] == 2 and summary["total_steps"] == 2
    assert summary["history"][0]["train_l2"] == pytest.approx(sum(whole["losses"][:2]) / 2, rel=1e-12)


def test_the_time_budget_stops_at_the_first_step_past_it(tmp_path, monkeypatch):
    """With a clock of one second per step, a budget of 3.99 s ends the run after step 4 (4 s > 3.99 s),
    validated, logged and saved, though neither falls due at step 4 (every 6 and every 5)."""
    _clock_and_bar(monkeypatch)
    p = P.replace(val_every=6, checkpoint_every=5)
    summary = T.train(p, steps=20, minutes=3.99 / 60, out_dir=tmp_path, progress=False, data=DATA)
    assert summary["step"] == 4 and summary["total_steps"] == 20
    assert [h["step"] for h in summary["history"]] == [4] and summary["val_l2"] is not None
    assert T.load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 4


def test_checkpoints_fall_every_checkpoint_every_steps_and_at_the_end(tmp_path, monkeypatch):
    saved, save = [], T._save
    monkeypatch.setattr(T, "_save", lambda run, *args: saved.append(run.step) or save(run, *args))
    T.train(P, steps=7, out_dir=tmp_path, progress=False, data=DATA)
    assert saved == [3, 6, 7]
    T.train(P, steps=7, out_dir=tmp_path, progress=False, data=DATA, overwrite=True)  # not resumed: from 0
    assert saved == [3, 6, 7, 3, 6, 7]


def test_a_stand_in_for_rank_0_of_two_processes(tmp_path, monkeypatch):
    """Two processes: each takes every second sample of a batch, counts the samples of both, and
    checks the ranks agree and waits for them at the end. DDP itself is replaced (no process group)."""
    calls = []
    monkeypatch.setattr(T, "_distributed", lambda: (0, 2))
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", lambda m: calls.append(("ddp", m)) or m)
    monkeypatch.setattr(T, "_check_in_sync", lambda m: calls.append(("sync", m)))
    monkeypatch.setattr(T.dist, "barrier", lambda: calls.append(("barrier", None)))
    _clock_and_bar(monkeypatch)
    sizes, step = [], T._step
    monkeypatch.setattr(T, "_step", lambda run, net, batch, autocast: sizes.append(len(batch["xray"]))
                        or step(run, net, batch, autocast))
    summary = T.train(P, steps=2, out_dir=tmp_path, data=DATA)         # progress shown by default
    assert sizes == [2, 2] and summary["world_size"] == 2
    assert [c[0] for c in calls] == ["ddp", "sync", "barrier"] and calls[0][1] is calls[1][1]
    assert _Bar.made[0].kwargs["disable"] is False
    assert T.load_checkpoint(tmp_path / "checkpoint.pt")["world_size"] == 2
    assert [p["samples_s"] for p in _Bar.made[0].postfix] == ["4.0", "4.0"]       # 2 x 2 samples per tick
    monkeypatch.setattr(T, "_distributed", lambda: (0, 3))
    with pytest.raises(ValueError, match=exactly("train: batch size 4 must divide among 3 processes")):
        T.train(P, steps=2, out_dir=tmp_path, progress=False, data=DATA)


def test_only_rank_0_shows_progress_validates_and_saves(tmp_path, monkeypatch):
    """Rank 1 of 2 takes the second half of every batch, and neither validates nor saves."""
    monkeypatch.setattr(T, "_distributed", lambda: (1, 2))
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", lambda m: m)
    monkeypatch.setattr(T, "_check_in_sync", lambda m: None)
    monkeypatch.setattr(T.dist, "barrier", lambda: None)
    monkeypatch.setattr(T, "validation_l2", lambda *a: pytest.fail("rank 1 validated"))
    _clock_and_bar(monkeypatch)
    seen, step = [], T._step
    monkeypatch.setattr(T, "_step", lambda run, net, batch, autocast: seen.append(batch["xray"])
                        or step(run, net, batch, autocast))
    summary = T.train(P, steps=2, out_dir=tmp_path, progress=True, data=DATA)
    for s, xrays in enumerate(seen):
        picks = T.step_indices(P.seed, s, P.batch_size, len(DATA[0]))[1::2]
        assert torch.equal(xrays, torch.stack([DATA[0][i]["xray"] for i in picks]))
    assert _Bar.made[0].kwargs["disable"] is True
    assert [h["val_l2"] for h in summary["history"]] == [None] and summary["val_l2"] is None
    assert not (tmp_path / "checkpoint.pt").exists()


def test_steps_are_checked_by_name():
    with pytest.raises(ValueError, match=exactly("train: steps must be an integer >= 1, got 0")):
        T.train(P, steps=0, progress=False, data=DATA)
    with pytest.raises(ValueError, match=exactly("train: steps must be an integer >= 1, got 0")):
        T.train(steps=0)                                                # the default profile, quick, exists


def test_a_preset_that_does_not_fit_the_profile_is_refused(tmp_path):
    with pytest.raises(ValueError, match=exactly(
            "profile 'smoke': model preset 'tiny' maps 8^2 to 8x8^2, but the data are 16^2 x-rays and 8^3 volumes")):
        T.train(P.replace(xray_size=16), steps=1, out_dir=tmp_path, progress=False, data=DATA)
    for changed in (dict(volume_size=16, xray_size=8), dict(volume_size=16, xray_size=16)):
        with pytest.raises(ValueError, match="model preset 'tiny' maps 8\\^2 to 8x8\\^2"):
            T.train(P.replace(**changed), steps=1, out_dir=tmp_path, progress=False, data=DATA)


def test_a_preset_with_other_slices_than_its_output_side_is_refused(tmp_path, monkeypatch):
    """8^2 x-rays to 16 slices of 8^2: right for 8^3 volumes laterally, wrong in depth."""
    monkeypatch.setitem(model_module.PRESETS, "tall", dataclasses.replace(TINY, slices=16))
    with pytest.raises(ValueError, match="model preset 'tall' maps 8\\^2 to 16x8\\^2"):
        T.train(P.replace(model="tall"), steps=1, out_dir=tmp_path, progress=False, data=DATA)


def test_the_loader_uses_the_profiles_workers(tmp_path, monkeypatch):
    """The worker count is passed on (checked on the loader's arguments; the loader itself then runs
    in this process, as worker processes would cost seconds)."""
    made, real = [], torch.utils.data.DataLoader

    def loader(dataset, **kwargs):
        made.append(kwargs)
        return real(dataset, **dict(kwargs, num_workers=0, persistent_workers=False))

    monkeypatch.setattr(torch.utils.data, "DataLoader", loader)
    T.train(P.replace(workers=3), steps=1, out_dir=tmp_path, progress=False, data=DATA)
    assert made[0]["num_workers"] == 3 and made[0]["persistent_workers"] is False


def test_a_time_budget_met_exactly_is_not_yet_spent(tmp_path, monkeypatch):
    """A clock of exactly one second per step and a budget of exactly 4 s: the run goes on after
    step 4 (4 s is not past 4 s) and stops after step 5."""
    _clock_and_bar(monkeypatch)
    ticks = itertools.count(100)
    monkeypatch.setattr(T, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    assert 60 * (4 / 60) == 4.0
    summary = T.train(P.replace(val_every=6, checkpoint_every=6), steps=20, minutes=4 / 60, out_dir=tmp_path,
                      progress=False, data=DATA)
    assert summary["step"] == 5


def test_training_writes_into_the_profiles_artifacts_by_default():
    summary = T.train(P, steps=1, progress=False, data=DATA, overwrite=True)
    assert summary["checkpoint"] == artifacts_dir(P.name) / "checkpoint.pt" and summary["checkpoint"].exists()


# --- the pieces, on their own -------------------------------------------------------------------

def test_step_indices_and_validation_indices_are_their_seeded_draws():
    """Pinned to their definitions: a resumed run replays these draws, so they must not change."""
    g = torch.Generator().manual_seed(3 * 1_000_003 + 17)
    assert T.step_indices(3, 17, 6, 50) == torch.randint(50, (6,), generator=g).tolist()
    for p in (P, P.replace(seed=4)):
        g = torch.Generator().manual_seed(p.seed + 7)
        assert T.validation_indices(p, 40) == torch.randperm(40, generator=g)[:p.val_samples].tolist()


def test_steps_sampler_gives_each_rank_its_share_of_each_step():
    sampler = T._Steps(5, 2, 6, 6, 30, rank=1, world=3)
    assert len(sampler) == 4
    assert list(sampler) == [T.step_indices(5, s, 6, 30)[1::3] for s in range(2, 6)]
    assert list(T._Steps(5, 0, 2, 4, 30)) == [T.step_indices(5, s, 4, 30) for s in range(2)]
    assert len(T._Steps(5, 3, 10, 4, 30)) == 7


@pytest.mark.parametrize("seed", [0, 3])
def test_train_val_sets_split_the_species(seed):
    p = get_profile("smoke").replace(seed=seed)
    train_set, val_set = T.train_val_sets(p)
    expected = crania.split(train_set.bank.species, p.n_val_species, seed=p.seed)
    assert (train_set.specimens, val_set.specimens) == expected
    assert train_set.bank is val_set.bank and train_set.profile == val_set.profile == p
    assert len(val_set.specimens) == p.n_val_species
    assert not set(train_set.specimens) & set(val_set.specimens)


class _Constant(torch.nn.Module):
    """Predicts ``c`` everywhere; remembers the batch sizes it saw and whether it ran in training mode."""

    def __init__(self, c):
        super().__init__()
        self.c, self.seen = torch.nn.Parameter(torch.tensor(c)), []

    def forward(self, x):
        self.seen.append((x.shape[0], self.training))
        return self.c.expand(x.shape[0], 8, 8, 8).double()


def test_validation_l2_is_the_mean_over_every_voxel_of_every_sample():
    val = pairs(5, 2)
    indices = [4, 0, 3, 1, 2]
    for was_training in (True, False):
        net = _Constant(0.3).train(was_training)
        got = T.validation_l2(net, val, indices, 2, "cpu")
        expected = torch.stack([(v["volume"].double() - 0.3).square() for v in val]).mean().item()
        assert got == pytest.approx(expected, rel=1e-6)                   # float32 sums of 512 values per sample
        assert net.seen == [(2, False), (2, False), (1, False)] and net.training is was_training
    batches = list(T._batches(val, [3, 1, 4], 2))
    assert [len(x) for x, _ in batches] == [2, 1]
    assert torch.equal(batches[0][0][1], val[1]["xray"]) and torch.equal(batches[1][1][0], val[4]["volume"])


class _Counted(list):
    """Pairs that count how often each is made."""

    def __init__(self, items):
        super().__init__(items)
        self.made = []

    def __getitem__(self, i):
        self.made.append(i)
        return super().__getitem__(i)


def test_validation_samples_are_made_once_and_kept_when_small(tmp_path):
    val = _Counted(pairs(5, 2))
    kept = T._kept_validation(val, P)
    assert isinstance(kept, T.Kept) and len(kept) == 5
    first = T.validation_l2(_Constant(0.3), kept, [4, 0, 3], 2, "cpu")
    assert T.validation_l2(_Constant(0.3), kept, [4, 0, 3], 2, "cpu") == first
    assert first == T.validation_l2(_Constant(0.3), pairs(5, 2), [4, 0, 3], 2, "cpu") and val.made == [4, 0, 3]
    per_sample = 4 * (P.volume_size ** 3 + P.xray_size ** 2)
    assert T._kept_validation(val, P.replace(val_samples=T.KEEP_VALIDATION_BYTES // per_sample)) is not val
    assert T._kept_validation(val, P.replace(val_samples=T.KEEP_VALIDATION_BYTES // per_sample + 1)) is val
    pipeline = T.DevicePipeline.__new__(T.DevicePipeline)
    assert T._kept_validation(pipeline, P) is pipeline


def test_mean_volume_l2_against_its_definition():
    train_set, val_set = pairs(6, 3), pairs(4, 4)
    g = torch.Generator().manual_seed(9 + 11)
    picks = torch.randint(6, (5,), generator=g).tolist()
    mean = torch.stack([train_set[i]["volume"] for i in picks]).double().mean(0)
    expected = torch.stack([(mean - val_set[i]["volume"].double()).square() for i in (1, 3)]).mean().item()
    got_mean, got = T.mean_volume_l2(train_set, val_set, [1, 3], 5, seed=9)
    assert torch.allclose(got_mean.double(), mean, atol=1e-7) and got_mean.shape == (8, 8, 8)
    assert got == pytest.approx(expected, rel=1e-6)                       # float32 sums of 512 values


def test_distributed_reads_the_world_from_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert T._distributed() == (0, 1)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert T._distributed() == (0, 1)
    started = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(T.dist, "is_initialized", lambda: bool(started))
    monkeypatch.setattr(T.dist, "init_process_group", lambda backend: started.append(backend))
    monkeypatch.setattr(T.dist, "get_rank", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert T._distributed() == (1, 2) and started == ["gloo"]
    assert T._distributed() == (1, 2) and started == ["gloo"]            # initialised once
    started.clear()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert T._distributed() == (1, 2) and started == ["nccl"]


def test_device_defaults_to_this_processs_gpu_or_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert T._device(None) == torch.device("cpu")
    with pytest.raises(ValueError, match="train: unknown device 'meta'; expected cpu, cuda or cuda:N"):
        T._device("meta")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        T._device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    with pytest.raises(ValueError, match=r"has 4 CUDA GPU\(s\), cuda:0 to cuda:3"):
        T._device("cuda:4")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert T._device(None) == torch.device("cuda:0")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert T._device(None) == torch.device("cuda:3")


def test_ranks_in_sync_compare_weight_checksums(monkeypatch):
    torch.manual_seed(0)  # the same weights whatever ran before
    net = torch.nn.Linear(3, 2)
    flat = torch.cat([p.detach().flatten() for p in net.parameters()]).double()
    sent = []

    def all_gather(into, checksum, offsets=(0.0, 0.0)):
        sent.append(checksum.clone())
        for slot, offset in zip(into, offsets):
            slot.copy_(checksum + offset)

    monkeypatch.setattr(T.dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(T.dist, "all_gather", all_gather)
    T._check_in_sync(net)
    assert sent[0].dtype == torch.float64
    # float32 weights summed: within float32 rounding of the absolute sum (the plain sum may cancel to near 0)
    assert torch.allclose(sent[0], torch.stack([flat.sum(), flat.abs().sum()]), rtol=1e-6,
                          atol=1e-6 * float(flat.abs().sum()))
    monkeypatch.setattr(T.dist, "all_gather", lambda into, c: all_gather(into, c, (0.0, 1.0)))
    with pytest.raises(RuntimeError, match=r"^DDP ranks diverged: weight checksums \[\["):
        T._check_in_sync(net)
    monkeypatch.setattr(T.dist, "get_world_size", lambda: 3)             # one slot per rank
    monkeypatch.setattr(T.dist, "all_gather", lambda into, c: all_gather(into, c, (0.0, 0.0, 0.5)))
    with pytest.raises(RuntimeError, match="diverged"):
        T._check_in_sync(net)


def test_code_version_names_the_commit_when_in_a_checkout(monkeypatch):
    here = Path(V.__file__).parent
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=here).stdout.strip()
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                             text=True, cwd=here).stdout.strip()
    assert V.code_version() == (f"{__version__}+{commit}{'.dirty' if changed else ''}" if commit else __version__)

    def fails(*args, **kwargs):
        raise OSError("no git")

    monkeypatch.setattr(V.subprocess, "run", fails)
    assert V.code_version() == __version__

    def times_out(*args, **kwargs):
        raise subprocess.TimeoutExpired("git", 5)

    monkeypatch.setattr(V.subprocess, "run", times_out)
    assert V.code_version() == __version__
    monkeypatch.setattr(V.subprocess, "run", lambda *a, **k: types.SimpleNamespace(stdout="  \n"))
    assert V.code_version() == __version__
    for status, suffix in (("\n", ""), (" M xtomo/specimens/crania.py\n", ".dirty")):
        seen = []
        replies = {"rev-parse": "abc1234\n", "status": status}
        monkeypatch.setattr(V.subprocess, "run", lambda args, seen=seen, replies=replies, **k:
                            seen.append((args, k)) or types.SimpleNamespace(stdout=replies[args[1]]))
        assert V.code_version() == f"{__version__}+abc1234{suffix}"
        assert [args for args, _ in seen] == [["git", "rev-parse", "--short", "HEAD"],
                                              ["git", "status", "--porcelain", "--untracked-files=no"]]
        assert all(k["cwd"] == here and k["text"] is True for _, k in seen)


# --- checkpoints ----------------------------------------------------------------------------------

def _save_checkpoint(path, **changes):
    net = build_model(P.model, seed=P.seed)
    ck = dict(model=net.state_dict(), model_config=dataclasses.asdict(net.config), profile=dataclasses.asdict(P),
              step=0)
    ck.update(changes)
    torch.save(ck, path)
    return net


class _NotWeights:
    """An object a weights-only load refuses (unpickling it would run arbitrary code)."""


def test_checkpoint_errors_say_what_is_wrong(tmp_path):
    path = tmp_path / "ck.pt"
    with pytest.raises(FileNotFoundError, match=exactly(f"checkpoint {path} does not exist")):
        T.load_checkpoint(path)
    path.write_bytes(b"not a checkpoint")
    unreadable = re.escape(f"checkpoint {path} cannot be read (UnpicklingError: ")
    with pytest.raises(T.CheckpointError, match="(?s)^" + unreadable + ".*"
                       + re.escape("); it may be truncated or not an xtomo checkpoint") + "$"):
        T.load_checkpoint(path)
    torch.save({"model": {}, "model_config": {}, "profile": {}, "step": 0, "code": _NotWeights()}, path)
    with pytest.raises(T.CheckpointError, match="cannot be read"):      # read with weights_only: no code
        T.load_checkpoint(path)
    torch.save([1, 2], path)
    with pytest.raises(T.CheckpointError, match=exactly(
            f"checkpoint {path} is not an xtomo checkpoint: it lacks ['everything']")):
        T.load_checkpoint(path)
    torch.save({"step": 1, "model": {}}, path)
    with pytest.raises(T.CheckpointError, match=exactly(
            f"checkpoint {path} is not an xtomo checkpoint: it lacks ['model_config', 'profile']")):
        T.load_checkpoint(path)


@pytest.mark.parametrize("key, value", [("model", "smoke"), ("volume_size", 16), ("xray_size", 16),
                                        ("batch_size", 2), ("seed", 1), ("chi", 5.0), ("objective", "surface"),
                                        ("surface_weight", 0.5)])
def test_a_checkpoint_of_other_settings_is_refused(tmp_path, key, value):
    path = tmp_path / "ck.pt"
    _save_checkpoint(path, profile=dict(dataclasses.asdict(P), **{key: value}))
    assert T.load_checkpoint(path)["step"] == 0                          # without a profile: no check
    with pytest.raises(T.CheckpointError, match=exactly(
            f"checkpoint {path} was made with other settings ({key}: {value!r} there, {getattr(P, key)!r} here); "
            "resume with the same profile")):
        T.load_checkpoint(path, P)


def test_every_changed_setting_is_named(tmp_path):
    path = tmp_path / "ck.pt"
    _save_checkpoint(path, profile=dict(dataclasses.asdict(P), seed=1, chi=5.0))
    with pytest.raises(T.CheckpointError, match=re.escape("(seed: 1 there, 0 here; chi: 5.0 there, 10.0 here)")):
        T.load_checkpoint(path, P)
    _save_checkpoint(path, profile=dict(dataclasses.asdict(P), lr=0.5, steps=99))  # not part of the network
    assert T.load_checkpoint(path, P)["step"] == 0


def test_a_checkpoint_from_before_objectives_resumes_as_l2(tmp_path):
    """Checkpoints written before the profile had ``objective`` and ``surface_weight`` trained on L2."""
    path = tmp_path / "ck.pt"
    old = dataclasses.asdict(P)
    del old["objective"], old["surface_weight"]
    _save_checkpoint(path, profile=old)
    assert T.load_checkpoint(path, P)["step"] == 0
    with pytest.raises(T.CheckpointError, match=re.escape("(objective: 'l2' there, 'surface' here)")):
        T.load_checkpoint(path, P.replace(objective="surface"))


def test_a_step_minimises_the_profiles_objective_at_its_weight():
    """The loss a step records is ``objective_loss`` of the batch at the profile's objective and
    ``surface_weight``; the surface term counts voxels strictly above the level as bone."""
    import copy
    from contextlib import nullcontext

    p = P.replace(objective="surface", surface_weight=0.5)
    run = T._start(p, 5, 0, 1, torch.device("cpu"), None)
    batch = {key: torch.stack([d[key] for d in DATA[0][:4]]) for key in ("xray", "volume")}
    before = copy.deepcopy(run.model)
    with torch.no_grad():
        expected = T.objective_loss(before(batch["xray"]).float(), batch["volume"], "surface", 0.5)
    assert T._step(run, run.model, batch, nullcontext()) == 4
    assert run.running[-1] == pytest.approx(expected.item(), rel=1e-5)
    at_level = torch.full((2, 2), T.SURFACE_LEVEL)
    above = at_level + 0.1                                   # logit 4: as empty space it costs log(1 + e^4)
    assert float(T.objective_loss(above, at_level, "surface", 1.0)) == pytest.approx(
        0.1 ** 2 + math.log1p(math.exp(4.0)), rel=1e-5)      # a truth at the level is not bone
    assert torch.equal(T.objective_loss(above, at_level), F.mse_loss(above, at_level))      # default: the paper's
    assert torch.equal(T.objective_loss(above, at_level, "surface"),
                       T.objective_loss(above, at_level, "surface", P.surface_weight))     # default: the profile's
    with pytest.raises(ValueError, match=exactly("objective_loss: objective must be one of l2, surface, got 'l1'")):
        T.objective_loss(above, at_level, "l1")


def has_batch_norm(net):
    return any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_models_from_checkpoints_are_in_eval_mode_and_agree(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    net = _save_checkpoint(path).eval()
    ck = T.load_checkpoint(path)
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    plain, fused = T.model_from_checkpoint(ck, fused=False), T.model_from_checkpoint(ck)
    assert not plain.training and not fused.training
    assert has_batch_norm(plain) and not has_batch_norm(fused)          # folded by default
    with torch.no_grad():
        expected = net(x)
        assert torch.equal(plain(x), expected)
        # batch norm folded into the convolutions: float32 rounding
        assert torch.allclose(fused(x), expected, rtol=1e-4, atol=1e-5)
        monkeypatch.setenv("XTOMO_ARTIFACTS", str(tmp_path / "artifacts"))
        home = artifacts_dir(P.name) / "checkpoint.pt"
        home.write_bytes(path.read_bytes())
        for source in (P, path, str(path)):
            assert torch.equal(T.load_model(source, fused=False)(x), expected), source
            assert not has_batch_norm(T.load_model(source)), source
    home.unlink()
    with pytest.raises(FileNotFoundError, match=exactly(f"{home} is missing: run chapter 3 (training) first "
                                                        "(it writes this file)")):
        T.load_model(P)
    with pytest.raises(FileNotFoundError, match="run chapter 3"):         # a profile's name works as well
        T.load_model("smoke")
    _save_checkpoint(home, profile=dict(dataclasses.asdict(P), seed=1))
    with pytest.raises(T.CheckpointError, match="other settings"):        # a profile's checkpoint is checked
        T.load_model(P)


def test_without_data_it_trains_on_the_profiles_own_sets(tmp_path, monkeypatch):
    """``train_val_sets(p)`` stands in for the profile's crania (a bank of 300 random pairs, made
    fast); the baseline averages 256 training volumes when there are more."""
    sets = (pairs(300, 5), pairs(5, 6))
    asked = []
    monkeypatch.setattr(T, "train_val_sets", lambda p: asked.append(p) or sets)
    summary = T.train(P, steps=1, out_dir=tmp_path, progress=False)
    assert asked == [P]
    expected = T.mean_volume_l2(*sets, T.validation_indices(P, len(sets[1])), 256, P.seed)[1]
    assert summary["baseline_l2"] == expected


def test_machine_names_the_cpu_model_its_cores_and_torch(monkeypatch):
    """Checkpoints say where they were trained: the first ``model name`` of /proc/cpuinfo, else the
    platform's processor or architecture; then the logical cores and the torch build."""
    import os

    monkeypatch.setattr(V.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(V, "_cpuinfo", lambda: ["processor\t: 0", "model name\t: Test CPU 9000 ", "model name\t: B"])
    assert V.machine() == f"Test CPU 9000, {os.cpu_count()} logical cores, torch {torch.__version__}"
    monkeypatch.setattr(V, "_cpuinfo", lambda: ["processor\t: 0"])
    monkeypatch.setattr(V.platform, "processor", lambda: "")
    monkeypatch.setattr(V.platform, "machine", lambda: "riscv64")
    assert V.machine() == f"riscv64, {os.cpu_count()} logical cores, torch {torch.__version__}"
    monkeypatch.setattr(V.platform, "processor", lambda: "sparc")
    assert V.machine().startswith("sparc, ")
    monkeypatch.setattr(V, "_cpuinfo", lambda: ["model name\t: Vendor: Model 7: rev 2"])   # colons in the name
    assert V.machine().startswith("Vendor: Model 7: rev 2, ")
    monkeypatch.setattr(T.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(T.torch.cuda, "get_device_name", lambda *a: "Test GPU 80GB")
    assert V.machine().startswith("Test GPU 80GB, ")


def test_native_bf16_probes_each_cpu_feature_and_trusts_cuda(monkeypatch):
    """CUDA counts as native whatever the CPU; on the CPU either probe (AVX-512 BF16, AMX) suffices,
    and a torch without a probe counts it as absent; the default device is the CPU."""
    for avx, amx in ((False, False), (True, False), (False, True)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda avx=avx: avx)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda amx=amx: amx)
        assert T.native_bf16() is T.native_bf16("cpu") is (avx or amx)
        assert T.native_bf16("cuda") is True
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert T.native_bf16("cpu") is False
    with pytest.raises(ValueError, match=exactly("mixed_precision: precision must be one of fp32, bf16, auto, "
                                                 "got 'fp16'")):
        T.mixed_precision("cpu", "fp16")


def test_cpuinfo_is_the_lines_of_proc_cpuinfo_or_nothing(monkeypatch):
    info = Path("/proc/cpuinfo")
    assert V._cpuinfo() == (info.read_text().splitlines() if info.exists() else [])

    class Unreadable:
        def __init__(self, *args):
            pass

        def read_text(self):
            raise OSError("no such file")

    monkeypatch.setattr(V, "Path", Unreadable)
    assert V._cpuinfo() == []


def test_load_model_without_a_checkpoint_is_the_shipped_model(monkeypatch):
    from xtomo.learning import shipped

    monkeypatch.setattr(shipped, "load", lambda fused=True: ("shipped", fused))
    assert T.load_model() == ("shipped", True) and T.load_model(fused=False) == ("shipped", False)
