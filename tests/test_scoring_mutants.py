"""Chapter 5's protocol, the behaviour mutation testing found untested, checked fast: an untrained
network's checkpoint (the protocol does not care how good the network is), a profile of three
samples at an extinction coefficient other than the default, the classical solver replaced by a
stand-in (it takes seconds; its own tests are elsewhere) and an injected clock. Every recorded field
is recomputed from its definition; an interrupted run resumes with only the missing samples; the
metrics, the re-projection error and the depth resampling are checked against closed forms."""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xtomo.evaluation import metrics, scoring, stats, wording
from xtomo.files import artifacts_dir, read_csv, write_csv
from xtomo.imaging import fusion, render, xray
from xtomo.learning.inference import reconstruct
from xtomo.learning.model import build_model
from xtomo.learning.train import CheckpointError, model_from_checkpoint, train_val_sets
from xtomo.methods import classical
from xtomo.methods.baselines import Match, SampleBank
from xtomo.profiles import get_profile
from xtomo.specimens import crania

P = get_profile("smoke").replace(eval_samples=3, classical_samples=2, chi=4.0)
K = 2
TICK = 0.123456  # what the injected clock advances per reading; a row keeps it to 4 decimals


def exactly(message):
    return "^" + re.escape(message) + "$"


SPAN = (0.001, 10.0)  # an exposure span every x-ray lies in: the stamp records it, inference leaves them alone


def _checkpoint(path, step=5):
    model = build_model(P.model, seed=P.seed)
    torch.save(dict(model=model.state_dict(), model_config=dataclasses.asdict(model.config),
                    profile=dataclasses.asdict(P), step=step, exposure=SPAN), path)
    return path


class _Bar:
    """A stand-in for tqdm that records how it was asked to show progress, and its updates."""

    def __init__(self, iterable=None, **kwargs):
        self.iterable, self.kwargs, self.updates, self.closed = iterable, kwargs, 0, False
        _Bar.made.append(self)

    def __iter__(self):
        return iter(self.iterable)

    def update(self, n=1):
        self.updates += n

    def close(self):
        self.closed = True


def _stand_ins(mp, solved):
    """The classical solver (records its arguments; answers a constant volume), a clock that ticks
    ``TICK`` per reading, and a recording progress bar."""
    import tqdm.auto

    def solve(alpha, direction, **kwargs):
        solved.append((alpha, direction, kwargs))
        return torch.full((kwargs["n_steps"], kwargs["size"], kwargs["size"]), 0.25)

    ticks = itertools.count()
    mp.setattr(classical, "solve", solve)
    mp.setattr(scoring, "time", types.SimpleNamespace(perf_counter=lambda: TICK * next(ticks)))
    mp.setattr(tqdm.auto, "tqdm", _Bar)
    _Bar.made = []


@pytest.fixture(scope="module")
def sets():
    return train_val_sets(P)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """One evaluation with progress shown, checkpoint given explicitly, chunks of 2."""
    out = tmp_path_factory.mktemp("eval")
    ck = _checkpoint(out / "model.pt")
    solved = []
    with pytest.MonkeyPatch.context() as mp:
        _stand_ins(mp, solved)
        paths = scoring.evaluate(P, checkpoint=ck, k=K, chunk=2, progress=True, out_dir=out)
        bars = _Bar.made
    return dict(out=out, paths=paths, rows=read_csv(paths["results"]), slices=read_csv(paths["slices"]),
                bars=bars, solved=solved, model=model_from_checkpoint(torch.load(ck, weights_only=True)))


def test_the_evaluation_subset_is_seeded_by_the_profile():
    """The subset is part of the results (rows name their sample; a resumed run must pick the same
    one): ``eval_samples`` distinct indices, a permutation drawn from ``seed + 13``."""
    for p in (P, P.replace(seed=3)):
        got = scoring.evaluation_indices(p, 50)
        g = torch.Generator().manual_seed(p.seed + 13)
        assert got == torch.randperm(50, generator=g)[:p.eval_samples].tolist()
        assert len(set(got)) == p.eval_samples and all(0 <= i < 50 for i in got)


def test_one_evaluation_recomputed_field_by_field(evaluated, sets):
    """Every check of the evaluation fixture in one test: mutmut credits a module fixture's work to
    the first test that uses it, so the checks must run in that test to see a mutant."""
    for check in (_paths_and_info_record_the_settings, _every_method_on_every_sample_described_by_its_view,
                  _seconds_come_from_the_clock_and_searches_are_not_timed, _nn_and_oracle_rows_are_their_matches_scored,
                  _our_rows_are_the_networks_output_scored_and_fused_at_the_profiles_chi,
                  _classical_gets_the_xray_at_the_volumes_resolution_and_the_profiles_settings,
                  _slice_study_of_the_unfused_output, _progress_is_one_bar_per_sample):
        check(evaluated, sets)


def _paths_and_info_record_the_settings(evaluated, sets):
    out, paths = evaluated["out"], evaluated["paths"]
    assert paths == dict(results=out / "evaluation.csv", slices=out / "slice_count.csv", info=out / "evaluation.json")
    bank = SampleBank(sets[0])
    info = json.loads(paths["info"].read_text())
    assert info == dict(profile="smoke", generator=crania.VERSION, inference="mirror-averaged, exposure-spanned",
                        step=5, samples=3, exposure=list(SPAN), k=K, level=0.1, classical_samples=2, shipped=None,
                        fields=scoring._FIELDS, policies={"ours_shipped_even": "even"},
                        bank_bytes=len(bank) * 32 * 32 * 2, full_bytes=bank.full_nbytes(), bank_samples=len(bank),
                        thumb=32)
    assert (out / scoring.BANK_FILE).exists()                           # the bank is cached next to the results


def _every_method_on_every_sample_described_by_its_view(evaluated, sets):
    rows, val_set = evaluated["rows"], sets[1]
    indices = scoring.evaluation_indices(P, len(val_set))
    plain = [i for i in indices if not val_set[i]["mirrored"]][:P.classical_samples]  # what classical runs on
    assert len(plain) == 2 < len(indices)                                # so that the count matters
    assert list(rows[0]) == scoring._FIELDS
    expected = [(i, m) for i in indices for m in ("ours", "ours_unfused", "nn", "oracle")
                + (("classical",) if i in plain else ())]
    assert [(int(r["sample"]), r["method"]) for r in rows] == expected
    for r in rows:
        item = val_set[int(r["sample"])]
        az, el = (float(a) for a in xray.angles(item["direction"]))
        assert (int(r["specimen"]), int(r["view"]), int(r["mirrored"])) == \
            (item["specimen"], item["view"], int(item["mirrored"]))
        assert r["species"] == val_set.bank.name(item["specimen"])
        assert (float(r["azimuth"]), float(r["elevation"])) == (round(az, 2), round(el, 2))
        assert r["view_class"] == xray.view_class(item["direction"])[0]


def _seconds_come_from_the_clock_and_searches_are_not_timed(evaluated, sets):
    """One clock interval per timed step: the network's answer, then (ours fused) its fusion."""
    for r in evaluated["rows"]:
        fused = r["method"].startswith("ours") and r["method"] != "ours_unfused"
        ticks = 0 if r["method"] in ("nn", "oracle") else 2 if fused else 1
        assert float(r["seconds"]) == round(ticks * TICK, 4), r["method"]


def _nn_and_oracle_rows_are_their_matches_scored(evaluated, sets):
    """The recorded match is the bank's answer with the evaluation's ``k``; its metrics are the
    regenerated volume scored against the truth (the same float32 operations: equal to rounding)."""
    rows, val_set = evaluated["rows"], sets[1]
    bank = SampleBank(sets[0], progress=False).build(evaluated["out"] / scoring.BANK_FILE)
    samples = sorted({int(r["sample"]) for r in rows})
    items = [val_set[i] for i in samples]
    found = dict(nn=bank.nn(torch.stack([it["xray"][0] for it in items]), k=K),
                 oracle=bank.oracle(torch.stack([it["volume"] for it in items]), k=K))
    for method, matches in found.items():
        for s, item, m in zip(samples, items, matches):
            (row,) = [r for r in rows if int(r["sample"]) == s and r["method"] == method]
            assert row["match"] == f"{m.specimen}/{m.view}/{int(m.mirrored)}"
            volume = bank.sample(m)[1]
            expected = scoring.score(volume, item["volume"])
            for key, value in expected.items():
                assert float(row[key]) == pytest.approx(value, rel=1e-6, abs=1e-9), (method, key)
            assert float(row["reprojection"]) == pytest.approx(
                scoring.reprojection(volume, item["xray"][0], P.chi), rel=1e-9)
    assert all(r["match"] == "" for r in rows if r["method"] not in ("nn", "oracle"))


def _our_rows_are_the_networks_output_scored_and_fused_at_the_profiles_chi(evaluated, sets):
    """Fusion at the profile's chi (4, not the default 10) makes the fused volume cast its x-ray:
    float32 rounding over 32 slices, ``4 * D * eps`` as in tests/test_evaluation.py."""
    rows, model, val_set = evaluated["rows"], evaluated["model"], sets[1]
    tolerance = 4 * P.volume_size * torch.finfo(torch.float32).eps
    for r in rows:
        item = val_set[int(r["sample"])]
        alpha, truth = item["xray"][0], item["volume"]
        if r["method"] == "ours":
            volume = reconstruct(alpha, model, fuse=True, chi=P.chi)
            assert float(r["reprojection"]) <= tolerance
        elif r["method"] == "ours_unfused":
            volume = reconstruct(alpha, model, fuse=False)
            assert float(r["reprojection"]) > 100 * tolerance
        elif r["method"] == "classical":
            volume = torch.full_like(truth, 0.25)                       # what the stand-in solver answers
        else:
            continue
        for key, value in scoring.score(volume, truth).items():
            assert float(r[key]) == pytest.approx(value, rel=1e-6, abs=1e-9), (r["method"], key)
        assert float(r["reprojection"]) == pytest.approx(scoring.reprojection(volume, alpha, P.chi),
                                                         rel=1e-6, abs=1e-12)


def _classical_gets_the_xray_at_the_volumes_resolution_and_the_profiles_settings(evaluated, sets):
    rows = [r for r in evaluated["rows"] if r["method"] == "classical"]
    assert len(evaluated["solved"]) == len(rows) == 2
    for (alpha, direction, kwargs), row in zip(evaluated["solved"], rows):
        item = sets[1][int(row["sample"])]
        assert torch.equal(direction, item["direction"]) and torch.equal(alpha, item["xray"][0])  # same size
        assert kwargs == dict(size=P.volume_size, n_steps=P.volume_size, chi=P.chi, seed=P.seed)


def _slice_study_of_the_unfused_output(evaluated, sets):
    model, val_set = evaluated["model"], sets[1]
    samples = [int(r["sample"]) for r in evaluated["rows"] if r["method"] == "ours"]
    got = [(int(r["sample"]), int(r["slices"])) for r in evaluated["slices"]]
    assert got == [(s, k) for s in samples for k in (8, 16, 32)]          # 64 > the 32 slices
    for r in evaluated["slices"]:
        item = val_set[int(r["sample"])]
        assert r["view_class"] == xray.view_class(item["direction"])[0]
        out = reconstruct(item["xray"][0], model, fuse=False)
        coarse = scoring.depth_resampled(out, int(r["slices"]))
        assert float(r["l2"]) == pytest.approx((coarse - out).square().mean().item(), rel=1e-5)
        dssim = metrics.dssim(render.iso(coarse, level=0.1), render.iso(out, level=0.1))
        assert float(r["dssim"]) == pytest.approx(dssim.item(), rel=1e-5, abs=1e-7)


def _progress_is_one_bar_per_sample(evaluated, sets):
    bar, search = evaluated["bars"]    # the bar opens before the search; ORACLE's builds the bank, so no bank bar
    assert search.kwargs == dict(desc="ORACLE search", unit="specimen", disable=False)
    assert bar.kwargs == dict(total=3, initial=0, desc="evaluation", unit="sample", disable=False)
    assert bar.updates == 3 and bar.closed


def test_an_interrupted_run_keeps_its_chunks_and_does_only_the_rest(evaluated, tmp_path, monkeypatch):
    """Stopped after its first chunk of one sample, then rerun: the rerun searches for the two
    missing samples only, adds no second classical row, and ends with the same rows (deterministic
    on a CPU, so equal)."""
    _checkpoint(tmp_path / "checkpoint.pt")
    solved = []
    _stand_ins(monkeypatch, solved)
    real = scoring._slice_study

    def dies_on_second(index, *args):
        if dies_on_second.calls == 1:
            raise KeyboardInterrupt
        dies_on_second.calls += 1
        return real(index, *args)

    dies_on_second.calls = 0
    monkeypatch.setattr(scoring, "_slice_study", dies_on_second)
    oracle, pools = SampleBank.oracle, []
    monkeypatch.setattr(SampleBank, "oracle", lambda self, truths, k: pools.append(k) or oracle(self, truths, k))
    with pytest.raises(KeyboardInterrupt):
        scoring.evaluate(P, k=K, chunk=1, progress=False, out_dir=tmp_path)
    assert pools == [K] and all(b.kwargs["disable"] for b in _Bar.made)  # no progress shown anywhere
    first = read_csv(tmp_path / "evaluation.csv")
    whole = evaluated["rows"]
    assert first == whole[:len(first)] and {r["sample"] for r in first} == {whole[0]["sample"]}
    assert len(read_csv(tmp_path / "slice_count.csv")) == 3
    monkeypatch.setattr(scoring, "_slice_study", real)
    searched = []
    nn = SampleBank.nn
    monkeypatch.setattr(SampleBank, "nn", lambda self, alphas, k: searched.append(len(alphas)) or nn(self, alphas, k))
    _Bar.made = []
    scoring.evaluate(P, k=K, chunk=1, progress=True, out_dir=tmp_path)
    assert searched == [2]
    (bar,) = [b for b in _Bar.made if b.kwargs.get("desc") == "evaluation"]
    assert bar.kwargs["initial"] == 1 and bar.updates == 2
    assert read_csv(tmp_path / "evaluation.csv") == whole
    assert read_csv(tmp_path / "slice_count.csv") == evaluated["slices"]
    # the interrupted second sample's classical run was lost with it and redone: one more, not two
    assert len(solved) == 3


@pytest.mark.parametrize("change", ["profile", "step", "samples", "k", "level", "classical_samples", "fields"])
def test_results_of_other_settings_are_not_resumed(tmp_path, change):
    paths = dict(results=tmp_path / "r.csv", slices=tmp_path / "s.csv", info=tmp_path / "i.json")
    stamp = dict(profile="smoke", step=5, samples=3, k=2, level=0.1, classical_samples=1, fields=["a"])
    paths["results"].write_text("a\n1\n")
    paths["slices"].write_text("b\n2\n")
    paths["info"].write_text(json.dumps(dict(stamp, thumb=32)))
    assert scoring._resume(paths, stamp) == ([{"a": "1"}], [{"b": "2"}])
    assert scoring._resume(paths, dict(stamp, **{change: "other"})) == ([], [])
    for name in paths:
        moved = tmp_path / "elsewhere"
        paths[name].rename(moved)
        assert scoring._resume(paths, stamp) == ([], [])
        moved.rename(paths[name])


def test_nothing_to_do_writes_nothing_new(evaluated, monkeypatch, tmp_path):
    before = {name: path.read_text() for name, path in evaluated["paths"].items()}
    monkeypatch.setattr(SampleBank, "build", lambda *a, **k: pytest.fail("built a bank with nothing to do"))
    scoring.evaluate(P, checkpoint=evaluated["out"] / "model.pt", k=K, progress=False, out_dir=evaluated["out"])
    assert {name: path.read_text() for name, path in evaluated["paths"].items()} == before
    # the same results stamped with the default k (16, chapter 5's): done, for a run with the defaults
    for path in evaluated["paths"].values():
        (tmp_path / path.name).write_text(path.read_text())
    info = json.loads(before["info"])
    (tmp_path / "evaluation.json").write_text(json.dumps(dict(info, k=16)))
    scoring.evaluate(P, checkpoint=evaluated["out"] / "model.pt", out_dir=tmp_path)
    assert (tmp_path / "evaluation.csv").read_text() == before["results"]


def test_a_missing_checkpoint_names_the_chapter(tmp_path):
    with pytest.raises(FileNotFoundError, match=exactly(
            f"{tmp_path / 'checkpoint.pt'} is missing: run chapter 3 (training) first (it writes this file)")):
        scoring.evaluate(P, out_dir=tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match=exactly(
            f"{tmp_path / 'evaluation.csv'} is missing: run chapter 5 (evaluation) first (it writes this file)")):
        scoring.read_results(P, out_dir=tmp_path)


def test_volumes_of_regenerates_the_recorded_volumes(evaluated, sets, monkeypatch, tmp_path):
    """From the profile's artifacts (results and checkpoint found there), the recorded matches
    regenerated; rows given explicitly are used instead of the file's."""
    monkeypatch.setenv("XTOMO_ARTIFACTS", str(tmp_path))
    home = artifacts_dir(P.name)
    with pytest.raises(FileNotFoundError, match=exactly(
            f"{home / 'checkpoint.pt'} is missing: run chapter 3 (training) first (it writes this file)")):
        scoring.volumes_of([0], P, rows=[])
    (home / "checkpoint.pt").write_bytes((evaluated["out"] / "model.pt").read_bytes())
    (home / "evaluation.csv").write_text(evaluated["paths"]["results"].read_text())
    rows, val_set = evaluated["rows"], sets[1]
    samples = sorted({int(r["sample"]) for r in rows})[:2]
    got = scoring.volumes_of(samples, P)                                # rows read from the artifacts
    assert set(got) == {"xrays", "ours", "nn", "oracle", "truth"} and all(len(v) == 2 for v in got.values())
    bank = SampleBank(sets[0], progress=False)
    tolerance = 4 * P.volume_size * torch.finfo(torch.float32).eps
    for i, s in enumerate(samples):
        item = val_set[s]
        assert torch.equal(got["xrays"][i], item["xray"][0]) and torch.equal(got["truth"][i], item["volume"])
        assert torch.equal(got["ours"][i], reconstruct(item["xray"][0], evaluated["model"], fuse=True, chi=P.chi))
        assert scoring.reprojection(got["ours"][i], item["xray"][0], P.chi) <= tolerance
        for method in ("nn", "oracle"):
            (row,) = [r for r in rows if int(r["sample"]) == s and r["method"] == method]
            specimen, view, mirrored = (int(x) for x in row["match"].split("/"))
            assert torch.equal(got[method][i], bank.sample(Match(specimen, view, bool(mirrored), 0.0))[1])
            assert metrics.l2(got[method][i], item["volume"]).item() == pytest.approx(float(row["l2"]), rel=1e-6)
    # given rows win over the file: every match pointed at the first training sample, mirrored
    first = sets[0].specimens[0]
    moved = [dict(r, match=f"{first}/0/1") if r["method"] in ("nn", "oracle") else r for r in rows]
    again = scoring.volumes_of(samples[:1], P, rows=moved)
    assert torch.equal(again["nn"][0], bank.sample(Match(first, 0, True, 0.0))[1])
    # a folder given wins over the artifacts: there the results are the moved ones, here the recorded
    other = tmp_path / "other"
    other.mkdir()
    for name in ("checkpoint.pt", "evaluation.csv"):
        (other / name).write_bytes((home / name).read_bytes())
    write_csv(home / "evaluation.csv", moved, scoring._FIELDS)
    here = scoring.volumes_of(samples[:1], P, out_dir=other)
    assert torch.equal(here["nn"][0], got["nn"][0]) and not torch.equal(here["nn"][0], again["nn"][0])
    # the checkpoint is checked against the profile
    with pytest.raises(CheckpointError, match="other settings"):
        scoring.volumes_of(samples[:1], P.replace(batch_size=2), rows=rows)


def test_the_default_profile_is_the_books_and_its_artifacts_the_default_folder(tmp_path, monkeypatch):
    """``quick`` is the profile the book is built with; every entry point defaults to it and to its
    artifacts folder (here under a temporary ``XTOMO_ARTIFACTS``)."""
    monkeypatch.setenv("XTOMO_ARTIFACTS", str(tmp_path))
    for profile, args in (("quick", ()), ("smoke", (P,))):
        missing = exactly(f"{tmp_path / profile / 'checkpoint.pt'} is missing: run chapter 3 (training) first "
                          "(it writes this file)")
        with pytest.raises(FileNotFoundError, match=missing):
            scoring.evaluate(*args, progress=False)
        with pytest.raises(FileNotFoundError, match=missing):
            scoring.volumes_of([], *args, rows=[])
    (artifacts_dir("quick") / "evaluation.csv").write_text("sample,method\n2,ours\n")
    assert scoring.read_results() == [dict(sample="2", method="ours")]


def test_a_checkpoint_of_other_settings_is_refused(tmp_path):
    _checkpoint(tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="other settings"):
        scoring.evaluate(P.replace(seed=1), out_dir=tmp_path, progress=False)


def test_classical_gets_the_xray_at_the_volumes_lateral_resolution_and_its_depth(monkeypatch):
    """An 8^2 x-ray for a volume of 6 slices of 4^2: the x-ray area-averaged to 4^2 (2x2 blocks),
    ``size`` the lateral side, ``n_steps`` the depth, chi and seed the profile's."""
    got = []
    monkeypatch.setattr(classical, "solve", lambda alpha, direction, **kw: got.append((alpha, direction, kw)) or 7)
    monkeypatch.setattr(scoring, "time", types.SimpleNamespace(perf_counter=itertools.count().__next__))
    alpha = torch.rand(8, 8, generator=torch.Generator().manual_seed(0))
    direction = torch.tensor([0.0, 0.0, 1.0])
    assert scoring._classical(alpha, direction, torch.zeros(6, 4, 4), P) == (7, 1)
    ((small, d, kwargs),) = got
    assert torch.allclose(small, alpha.reshape(4, 2, 4, 2).mean((1, 3)), atol=1e-7) and d is direction
    assert kwargs == dict(size=4, n_steps=6, chi=P.chi, seed=P.seed)


def test_read_results_from_the_profiles_artifacts(tmp_path, monkeypatch):
    monkeypatch.setenv("XTOMO_ARTIFACTS", str(tmp_path))
    (artifacts_dir("smoke") / "evaluation.csv").write_text("sample,method\n1,nn\n")
    assert scoring.read_results(P) == scoring.read_results("smoke") == [dict(sample="1", method="nn")]


def test_ours_is_averaged_down_to_the_volume_and_still_casts_its_xray(evaluated, sets):
    """Asked for 16^2 from 32^2 x-rays: the fused volume area-averaged laterally, which keeps its
    re-projection exact (``reprojection`` brings the x-ray down the same way)."""
    model, item = evaluated["model"], sets[1][0]
    alpha = item["xray"][0]
    got = scoring.our_volumes(alpha, model, 16, P.chi)
    fused = reconstruct(alpha, model, fuse=True, chi=P.chi)
    assert torch.allclose(got["ours"][0], F.avg_pool2d(fused, 2), atol=1e-7)
    assert torch.equal(got["ours_unfused"][0], reconstruct(alpha, model, fuse=False))
    assert scoring.reprojection(got["ours"][0], alpha, P.chi) <= 4 * P.volume_size * torch.finfo(torch.float32).eps
    assert set(got) == {"ours", "ours_unfused"}
    even = scoring.our_volumes(alpha, model, 16, P.chi, policy="even")["ours"][0]  # fused as asked, still exact
    assert torch.allclose(even, F.avg_pool2d(reconstruct(alpha, model, chi=P.chi, policy="even"), 2), atol=1e-7)
    assert not torch.allclose(even, got["ours"][0], atol=1e-5)
    assert scoring.reprojection(even, alpha, P.chi) <= 4 * P.volume_size * torch.finfo(torch.float32).eps


def _ship(folder, profile, seed=1):
    """An untrained network of ``profile``'s preset exported as the package's shipped model into ``folder``."""
    from xtomo.learning import shipped

    model = build_model(profile.model, seed=seed)
    path = folder / "trained.pt"
    torch.save(dict(model=model.state_dict(), model_config=dataclasses.asdict(model.config), history=[],
                    profile=dataclasses.asdict(profile), step=7, generator=crania.VERSION), path)
    return shipped.export(path, folder=folder)


def test_the_shipped_model_is_scored_beside_ours_when_trained_on_the_same_data(evaluated, sets, tmp_path,
                                                                               monkeypatch):
    from xtomo.learning import shipped

    monkeypatch.setattr(shipped, "FOLDER", tmp_path / "package")
    with pytest.raises(ValueError, match="the shipped model was asked for, but there is no shipped model in"):
        scoring.evaluate(P, checkpoint=evaluated["out"] / "model.pt", k=K, progress=False, out_dir=tmp_path,
                         shipped=True)
    assert shipped.for_profile(P) == (None, None)
    (tmp_path / "package").mkdir()
    info = _ship(tmp_path / "package", P.replace(volume_size=16, xray_size=16))   # other data: left out
    assert shipped.for_profile(P) == (None, None)
    with pytest.raises(ValueError, match="trained on other data than profile 'smoke'"):
        shipped.for_profile(P, True)
    info = _ship(tmp_path / "package", P)
    assert shipped.for_profile(P, False) == (None, None)
    solved = []
    with pytest.MonkeyPatch.context() as mp:
        _stand_ins(mp, solved)
        paths = scoring.evaluate(P, checkpoint=evaluated["out"] / "model.pt", k=K, progress=False,
                                 out_dir=tmp_path)
    rows = read_csv(paths["results"])
    assert json.loads(paths["info"].read_text())["shipped"] == info["sha256"]
    # the other methods' rows are those of the evaluation without it; ours_shipped is its network, fused by the
    # paper's rule, ours_shipped_even the same answer spread evenly along each ray, which re-projects as exactly
    timeless = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert timeless(r for r in rows if not r["method"].startswith("ours_shipped")) == timeless(evaluated["rows"])
    model = shipped.load()
    for policy, method in (("proportional", "ours_shipped"), ("even", "ours_shipped_even")):
        for r in (r for r in rows if r["method"] == method):
            item = sets[1][int(r["sample"])]
            volume = scoring.our_volumes(item["xray"][0], model, P.volume_size, P.chi, policy=policy)["ours"][0]
            assert float(r["l2"]) == pytest.approx(float(metrics.l2(volume, item["volume"])), rel=1e-5)
            assert float(r["reprojection"]) < 1e-4
        assert len([r for r in rows if r["method"] == method]) == P.eval_samples
    assert [float(r["l2"]) for r in rows if r["method"] == "ours_shipped"] != \
        [float(r["l2"]) for r in rows if r["method"] == "ours_shipped_even"]
    assert scoring.ours_methods(rows) == ["ours", "ours_shipped", "ours_shipped_even"]
    assert scoring.ours_methods(evaluated["rows"]) == ["ours"]
    assert json.loads(paths["info"].read_text())["policies"] == {"ours_shipped_even": "even"}
    (tmp_path / "checkpoint.pt").write_bytes((evaluated["out"] / "model.pt").read_bytes())
    first = int(rows[0]["sample"])
    shown = scoring.volumes_of([first], P, rows, out_dir=tmp_path)
    for policy, method in (("proportional", "ours_shipped"), ("even", "ours_shipped_even")):
        expected = scoring.our_volumes(sets[1][first]["xray"][0], model, P.volume_size, P.chi, policy=policy)
        assert torch.equal(shown[method][0], expected["ours"][0])
    only = scoring.volumes_of([first], P, [r for r in rows if r["method"] != "ours_shipped_even"], out_dir=tmp_path)
    assert "ours_shipped" in only and "ours_shipped_even" not in only     # what the rows scored, no more
    monkeypatch.setattr(shipped, "FOLDER", tmp_path / "gone")      # scored, then taken away: said, not skipped
    with pytest.raises(shipped.ShippedModelError, match="the shipped model was asked for"):
        scoring.volumes_of([first], P, rows, out_dir=tmp_path)



def test_chapter_3s_surface_run_is_scored_as_ours_surface(evaluated, sets, tmp_path, monkeypatch):
    """A surface-objective checkpoint in ``SURFACE_RUN`` beside the evaluation is scored as
    ``ours_surface`` (fused), named in the stamp by its step, shown by ``volumes_of`` and put in the
    grid after ours; a checkpoint there that was trained on L2 is refused."""
    from xtomo.learning import shipped

    monkeypatch.setattr(shipped, "FOLDER", tmp_path / "no-package")
    run = tmp_path / scoring.SURFACE_RUN
    run.mkdir()
    surface = build_model(P.model, seed=P.seed + 1)
    torch.save(dict(model=surface.state_dict(), model_config=dataclasses.asdict(surface.config),
                    profile=dataclasses.asdict(P.replace(objective="surface")), step=7), run / "checkpoint.pt")
    nets, versions = scoring.other_networks(P, tmp_path)
    assert list(nets) == ["ours_surface"] and versions == {"shipped": None, "surface_step": 7}
    monkeypatch.setenv("XTOMO_ARTIFACTS", str(tmp_path / "book"))          # by default: the profile's artifacts
    assert scoring.other_networks(P)[1] == {"shipped": None}
    (artifacts_dir(P.name) / scoring.SURFACE_RUN).mkdir(parents=True)
    (artifacts_dir(P.name) / scoring.SURFACE_RUN / "checkpoint.pt").write_bytes((run / "checkpoint.pt").read_bytes())
    assert scoring.other_networks(P)[1] == {"shipped": None, "surface_step": 7}
    with pytest.MonkeyPatch.context() as mp:
        _stand_ins(mp, [])
        paths = scoring.evaluate(P, checkpoint=evaluated["out"] / "model.pt", k=K, progress=False, out_dir=tmp_path)
    rows = read_csv(paths["results"])
    assert json.loads(paths["info"].read_text())["surface_step"] == 7
    assert scoring.ours_methods(rows) == ["ours", "ours_surface"]
    model = model_from_checkpoint(torch.load(run / "checkpoint.pt", weights_only=True))
    first = int(rows[0]["sample"])
    expected = scoring.our_volumes(sets[1][first]["xray"][0], model, P.volume_size, P.chi)["ours"][0]
    got = next(r for r in rows if r["method"] == "ours_surface" and int(r["sample"]) == first)
    assert float(got["l2"]) == pytest.approx(float(metrics.l2(expected, sets[1][first]["volume"])), rel=1e-5)
    (tmp_path / "checkpoint.pt").write_bytes((evaluated["out"] / "model.pt").read_bytes())
    shown = scoring.volumes_of([first], P, rows, out_dir=tmp_path)
    assert torch.equal(shown["ours_surface"][0], expected)
    assert list(scoring.grid_columns(shown, {"NN": 0})) == ["ours", "ours, surface", "NN"]
    torch.save(dict(torch.load(run / "checkpoint.pt", weights_only=True), profile=dataclasses.asdict(P)),
               run / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="objective: 'l2' there, 'surface' here"):
        scoring.other_networks(P, tmp_path)

# --- metrics, re-projection and depth resampling, in closed form ------------------------------

def _blob(size=16, shift=0):
    v = torch.zeros(size, size, size)
    v[4:12, 5 + shift:11 + shift, 3:13] = 0.8
    return v


def test_score_is_the_four_metrics_of_the_definition():
    truth = _blob()
    pred = _blob(shift=2) * 1.5 - 0.1                                     # -0.1 to 1.1: PSNR clamps both ends
    got = scoring.score(pred, truth)
    assert got["l2"] == pytest.approx((pred - truth).square().mean().item(), rel=1e-6)
    assert got["psnr"] == pytest.approx(-10 * math.log10((pred.clamp(0, 1) - truth).square().mean().item()),
                                        rel=1e-6)
    assert got["ssim3d"] == pytest.approx(metrics.ssim3d(pred, truth).item(), rel=1e-6)
    for level in (0.1, 0.9):
        images = [render.iso(v, level=level) for v in (pred, truth)]
        expected = metrics.dssim(images[0], images[1]).item()
        # batched and single renders agree to float32 rounding
        assert scoring.score(pred, truth, level=level)["dssim"] == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert got["dssim"] == pytest.approx(scoring.score(pred, truth, level=0.1)["dssim"], abs=0)
    assert got["dssim"] != pytest.approx(scoring.score(pred, truth, level=0.9)["dssim"], rel=1e-3)
    assert set(got) == {"l2", "dssim", "psnr", "ssim3d"} and all(type(v) is float for v in got.values())


def test_reprojection_in_closed_form():
    """A volume of constant density ``c`` over any number of slices casts ``exp(-chi c)``; an x-ray
    twice the volume's side is brought down by averaging its optical depth over 2x2 blocks (the
    geometric mean of the transparencies); transparencies below the floor count as the floor."""
    c, chi = 0.25, 3.0
    volume = torch.full((5, 2, 2), c)
    blocks = torch.tensor([[0.2, 0.8, 0.5, 0.5], [0.9, 0.9, 0.9, 0.9], [0.3, 0.3, 0.6, 0.6], [0.1, 0.4, 0.4, 0.1]],
                          dtype=torch.float64)
    alpha = blocks.reshape(2, 2, 2, 2).permute(0, 2, 1, 3).reshape(4, 4)   # block (i, j) holds row 2i + j
    geometric = blocks.log().mean(1).exp()
    expected = (geometric - math.exp(-chi * c)).abs().max().item()
    assert scoring.reprojection(volume, alpha, chi) == pytest.approx(expected, rel=1e-12)
    assert scoring.reprojection(volume, alpha.float(), chi) == pytest.approx(expected, rel=1e-6)
    # default chi: 10
    assert scoring.reprojection(volume, alpha) == pytest.approx((geometric - math.exp(-2.5)).abs().max().item(),
                                                                rel=1e-12)
    floor = fusion.alpha_floor(chi)
    dark = torch.zeros(2, 2, dtype=torch.float64)                       # float64: the floor kept exactly
    assert scoring.reprojection(torch.zeros(3, 2, 2), dark, chi) == pytest.approx(1 - floor, rel=1e-12)
    assert scoring.reprojection(torch.full((3, 2, 2), 1.0), dark, chi) == pytest.approx(0, abs=1e-15)


def test_reprojection_is_computed_in_double_precision():
    """A float32 volume and a float64 x-ray equal to its transparency (computed in float64) meet
    to float64 rounding, far below float32's 6e-8."""
    g = torch.Generator().manual_seed(0)
    volume = torch.rand(8, 6, 6, generator=g)
    alpha = torch.exp(-10.0 * volume.double().mean(0))
    assert scoring.reprojection(volume, alpha) < 1e-14


def _reference_depth_resampled(volume, slices):
    """Area average over equal depth bins, then linear interpolation back along depth at the
    half-pixel-aligned positions ``(i + 0.5) * slices / D - 0.5`` (clamped at the ends)."""
    v = volume.double().numpy()
    d = v.shape[0]
    low = v.reshape(slices, d // slices, *v.shape[1:]).mean(1)
    out = np.empty_like(v)
    for i in range(d):
        x = min(max((i + 0.5) * slices / d - 0.5, 0.0), slices - 1)
        j = min(int(math.floor(x)), slices - 2) if slices > 1 else 0
        w = x - j
        out[i] = low[j] * (1 - w) + low[min(j + 1, slices - 1)] * w
    return out


@pytest.mark.parametrize("slices", [1, 2, 4, 8])
def test_depth_resampling_against_a_reference(slices):
    g = torch.Generator().manual_seed(slices)
    volume = torch.rand(8, 3, 5, generator=g)                          # lateral sizes unequal and untouched
    got = scoring.depth_resampled(volume, slices)
    assert got.shape == volume.shape
    # float32 interpolation of values in [0, 1]: rounding about 1e-7
    np.testing.assert_allclose(got.numpy(), _reference_depth_resampled(volume, slices), atol=1e-6)


def test_slice_study_keeps_the_counts_up_to_the_depth():
    output = torch.rand(16, 12, 12, generator=torch.Generator().manual_seed(0))
    rows = scoring._slice_study(7, "side", output)
    assert [r["slices"] for r in rows] == [8, 16]
    full = render.iso(output, level=0.1)
    for r in rows:
        coarse = scoring.depth_resampled(output, r["slices"])
        assert (r["sample"], r["view_class"]) == (7, "side")
        assert r["l2"] == pytest.approx((coarse - output).square().mean().item(), rel=1e-6)
        assert r["dssim"] == pytest.approx(metrics.dssim(render.iso(coarse, level=0.1), full).item(), abs=1e-7)
    assert rows[1]["l2"] == 0.0                                          # 16 of 16 slices is the output itself


# --- the statistics and tables on hand-made rows ------------------------------------------------

def _rows(values, metric="l2"):
    return [dict(sample=str(s), method=m, **{metric: str(v)}) for m, vs in values.items()
            for s, v in enumerate(vs) if v is not None]


def test_by_method_keeps_the_known_methods_in_table_order():
    rows = _rows({"oracle": [1, 2], "mystery": [5], "ours": [3, None, 4]})
    got = scoring.by_method(rows, "l2")
    assert list(got) == ["ours", "oracle"]
    assert got == {"ours": {0: 3.0, 2: 4.0}, "oracle": {0: 1.0, 1: 2.0}}


def test_summary_intervals_at_the_requested_level_and_single_values():
    rows = _rows({"ours": [1.0, 2.0, 4.0], "nn": [2.5]})
    for level in (0.95, 0.8):
        ours, nn = scoring.summary(rows, "l2", level=level) if level != 0.95 else scoring.summary(rows, "l2")
        ci = stats.mean_ci([1.0, 2.0, 4.0], level=level)
        assert ours == dict(method="ours", label="ours (fused)", n=3, mean=ci.mean, low=ci.low, high=ci.high)
        assert nn["method"] == "nn" and nn["label"] == "NN" and nn["n"] == 1 and nn["mean"] == 2.5
        assert math.isnan(nn["low"]) and math.isnan(nn["high"])
    first_single = scoring.summary(_rows({"ours": [1.0], "nn": [2.0, 3.0]}), "l2")
    assert [r["method"] for r in first_single] == ["ours", "nn"] and first_single[1]["n"] == 2
    wide, narrow = (scoring.summary(rows, "l2", level=x)[0] for x in (0.99, 0.5))
    assert wide["high"] - wide["low"] > narrow["high"] - narrow["low"]


def test_paired_tests_use_the_common_samples_against_any_method():
    rows = _rows({"ours": [1.0, 2.0, 3.0, 4.0], "nn": [2.0, None, 4.5, 5.0, 9.0], "oracle": [None, None, 1.0],
                  "classical": [3.0, 1.0]})
    tests = scoring.paired_tests(rows, "l2")
    assert [t["method"] for t in tests] == ["nn", "classical"]               # oracle shares one sample only
    nn = tests[0]
    t = stats.paired_t([1.0, 3.0, 4.0], [2.0, 4.5, 5.0])
    assert nn == dict(method="nn", label="NN", n=3, ours=8 / 3, other=11.5 / 3, ratio=8 / 11.5, t=t.t, p=t.p,
                      p_less=t.p_less, result=str(t))
    (against,) = [x for x in scoring.paired_tests(rows, "l2", against="classical") if x["method"] == "ours"]
    assert against["ours"] == 2.0 and against["other"] == 1.5 and against["ratio"] == pytest.approx(4 / 3)


def test_beside_paper_in_full():
    rows = []
    for s, (ours, nn, oracle) in enumerate([(1.0, 2.0, 4.0), (3.0, 2.0, 4.0)]):
        for method, value in (("ours", ours), ("nn", nn), ("oracle", oracle)):
            rows.append(dict(sample=s, method=method, l2=value, dssim=value / 10))
    l2, dssim = scoring.beside_paper(rows)
    assert l2 == {"metric": "l2", "ours": 2.0, "NN": 2.0, "ORACLE": 4.0, "ours / NN": 1.0, "ours / ORACLE": 0.5,
                  "paper: ours": 0.051, "paper: NN": 0.067, "paper: ORACLE": 0.060,
                  "paper: ours / NN": 0.051 / 0.067, "paper: ours / ORACLE": 0.051 / 0.060}
    assert dssim["metric"] == "dssim" and dssim["ours"] == pytest.approx(0.2)
    assert dssim["paper: ORACLE"] == 0.110 and dssim["paper: ours / ORACLE"] == 0.097 / 0.110


def test_verdict_defaults_and_two_sided_at_the_boundary():
    test = dict(method="nn", label="NN", n=5, ratio=0.5, p=0.01, p_less=0.005)
    assert wording.verdict(test) == wording.verdict(test, 0.01, "less") == "ours is better at p < .01"
    assert wording.verdict(dict(test, p_less=0.01)) == "ours is not better at p < .01"   # p < alpha, strictly
    assert wording.verdict(dict(test, ratio=1.0)) == "ours is not better at p < .01"
    assert wording.verdict(test, 0.05, "two") == "significantly smaller error"
    assert wording.verdict(test, 0.01, "two") == "no significant difference"
    assert wording.verdict(dict(test, ratio=1.0), 0.05, "two") == "significantly larger error"
    assert wording.verdict(test, alpha=0.5) == "ours is better at p < .5"
    assert wording.verdict(test, alpha=2) == "ours is better at p < 2"
    with pytest.raises(ValueError, match=exactly("verdict: sided must be 'less' or 'two', got 'one'")):
        wording.verdict(test, sided="one")
    assert wording.verdict_line(test, "L2") == wording.verdict_line(test, "L2", 0.01, "less")
    assert wording.verdicts([test], "L2") == [wording.verdict_line(test, "L2", 0.01, "less")]
    assert wording.verdicts([test], "L2", 0.05, "two") == [wording.verdict_line(test, "L2", 0.05, "two")]
    assert wording.verdicts([test], "L2", methods=("oracle",)) == []


def test_tables_name_their_rows_and_columns():
    values = {"ours": [1.0, 2.0, 3.0, 4.0], "ours_unfused": [1.5, 2.5, 3.0, 5.0], "nn": [2.0, 2.5, 4.5, 5.0],
              "oracle": [1.0, 2.5, 2.0, 4.5]}
    rows = [dict(r, dssim=str(float(r["l2"]) / 10)) for r in _rows(values)]
    summary = scoring.summary_table(rows, level=0.5)
    ci = stats.mean_ci(values["nn"], level=0.5)
    l2 = scoring.METRIC_LABELS["l2"]
    assert summary.loc["NN", (l2, "low")] == ci.low and list(summary[l2].columns) == ["n", "mean", "low", "high"]
    grouped = scoring.summary_table({"g": rows}, level=0.5)
    assert grouped.loc["NN", ("g", l2, "high")] == ci.high
    assert list(grouped.columns.get_level_values(1).unique()) == list(scoring.METRIC_LABELS.values())
    tests = scoring.tests_table(rows)
    assert list(tests.columns.get_level_values(0).unique()) == list(scoring.METRIC_LABELS.values())
    assert tests.loc["NN", (l2, "p (ours smaller)")] == scoring.paired_tests(rows, "l2")[1]["p_less"]
    fusion_t = scoring.fusion_table(rows, {"dssim": "D"})
    assert list(fusion_t.index) == ["D"] and fusion_t.loc["D", "not fused"] == pytest.approx(0.3)
    assert fusion_t.loc["D", "result"] == scoring.paired_tests(rows, "dssim")[0]["result"]
    paper = scoring.beside_paper_table(rows, {"l2": "L", "dssim": "S"})
    assert list(paper.columns) == ["L", "S"] and paper.loc["ORACLE", "L"] == pytest.approx(2.5)
    assert list(paper.index)[:3] == ["ours", "NN", "ORACLE"]


def test_classical_comparison_and_views_in_detail():
    views = ("top", "front", "other")
    rows = [dict(r, dssim=str(float(r["l2"]) / 10), seconds="2.0", view_class=views[int(r["sample"])])
            for r in _rows({"ours": [1.0, 2.0, 3.0], "nn": [2.0, 4.0, 6.0], "classical": [None, 5.0, 7.0]})]
    rows[-1]["seconds"] = "4.0"
    ran, seconds, frame = scoring.classical_comparison(rows)
    assert ran == 2 and seconds == 3.0                                    # (2 + 4) / 2
    once = [r for r in rows if not (r["method"] == "classical" and r["sample"] == "1")]
    assert scoring.classical_comparison(once)[:2] == (1, 4.0)             # one run: its own seconds
    assert list(frame.index) == ["ours (fused)", "NN", "classical (WENGER-like)"]
    assert list(frame.columns) == ["L2", "DSSIM"]
    assert frame.loc["ours (fused)", "L2"] == 2.5 and frame.loc["NN", "DSSIM"] == pytest.approx(0.5)
    groups = scoring.by_view(rows)                                        # DSSIM of ours, NN, ORACLE by default
    assert list(groups) == ["top", "front", "other"]
    assert groups["front"] == {"ours": [0.2], "nn": [0.4], "oracle": []}
    assert scoring.by_view(rows, "l2", methods=("classical",))["other"] == {"classical": [7.0]}
    views = scoring.view_table(rows, "nn")
    assert list(views.index) == ["front", "other", "top"] and views.loc["top", ("l2", "mean")] == 2.0
    assert scoring.view_table(rows).loc["other", ("dssim", "mean")] == pytest.approx(0.3)


def test_slice_table_counts_means_and_standard_errors():
    rows = [dict(sample=str(s), view_class="top", slices=str(k), dssim=str(d), l2="0")
            for s, (k, d) in enumerate([(8, 0.1), (8, 0.3), (16, 0.05), (16, 0.07), (16, 0.09)])]
    table = scoring.slice_table(rows)
    assert list(table.index) == [8, 16]
    assert table.loc[8, "mean"] == pytest.approx(0.2) and table.loc[8, "sem"] == pytest.approx(0.1)
    assert table.loc[16, "count"] == 3 and table.loc[16, "sem"] == pytest.approx(0.02 / math.sqrt(3))


def test_reprojection_table_keeps_unknown_methods_by_key():
    rows = [dict(method="ours", reprojection="1e-7"), dict(method="new", reprojection="0.5"),
            dict(method="ours", reprojection="3e-7"), dict(method="nn")]
    table = scoring.reprojection_table(rows)
    assert list(table.index) == ["ours (fused)", "new"]
    assert table.loc["ours (fused)", "mean"] == pytest.approx(2e-7) and table.loc["new", "largest"] == 0.5


def test_grid_columns_put_ours_then_the_shipped_model_then_the_others():
    assert list(scoring.grid_columns({"ours": 1, "nn": 2}, {"NN": 2})) == ["ours", "NN"]
    assert scoring.grid_columns({"ours": 1, "ours_shipped": 3}, {"NN": 2}) == {"ours": 1, "ours, shipped": 3, "NN": 2}
