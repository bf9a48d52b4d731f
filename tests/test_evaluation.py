"""Chapter 5's protocol: every method scored per sample, resumable, statistics that are right."""
import pytest
import torch

from xtomo.evaluation import scoring, wording
from xtomo.files import read_csv
from xtomo.learning.train import train, train_val_sets
from xtomo.profiles import get_profile

SMOKE = get_profile("smoke")
K = 16  # the candidates NN and ORACLE compare at full size, as chapter 5 (and evaluate's default) sets it


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    train(SMOKE, out_dir=out, progress=False)
    paths = scoring.evaluate(SMOKE, out_dir=out, k=K, chunk=4, progress=False)
    return out, paths


def test_every_method_on_every_sample(evaluated):
    _, paths = evaluated
    rows = read_csv(paths["results"])
    samples = {int(r["sample"]) for r in rows}
    assert len(samples) == SMOKE.eval_samples
    by = scoring.by_method(rows, "l2")
    for method in ("ours", "ours_unfused", "nn", "oracle"):
        assert set(by[method]) == samples
    assert len(by["classical"]) == SMOKE.classical_samples
    assert all(float(r["l2"]) >= 0 and 0 <= float(r["dssim"]) <= 1 for r in rows)
    assert all(r["match"].count("/") == 2 for r in rows if r["method"] in ("nn", "oracle"))
    slices = read_csv(paths["slices"])
    assert {int(r["slices"]) for r in slices} == {8, 16, 32}           # 64 > the smoke volume's 32 slices
    assert len(slices) == 3 * SMOKE.eval_samples


def test_recorded_scores_can_be_reproduced(evaluated):
    """The NN row's L2 equals the L2 of the regenerated match against the regenerated truth."""
    out, paths = evaluated
    rows = read_csv(paths["results"])
    first = int(rows[0]["sample"])
    vols = scoring.volumes_of([first], SMOKE, rows, out_dir=out)
    truth = vols["truth"][0]
    for method in ("nn", "oracle"):
        row = next(r for r in rows if int(r["sample"]) == first and r["method"] == method)
        again = scoring.score(vols[method][0], truth)
        assert again["l2"] == pytest.approx(float(row["l2"]), rel=1e-5)
        assert again["dssim"] == pytest.approx(float(row["dssim"]), abs=1e-6)


def test_oracle_is_never_worse_than_nn_and_the_l2_is_the_mean_squared_error(evaluated):
    """Per sample, ORACLE's L2 <= NN's, and every recorded L2 is ``((pred - truth)**2).mean()``.

    ORACLE returns the training volume nearest to the truth among all training samples (coarse
    ranking, then the best ``oracle_pool * K`` compared exactly); NN returns one training volume, chosen by its
    x-ray. Both search the same bank, so if ORACLE's search is right, its L2 is the minimum over a
    set that holds NN's pick: ``oracle <= nn``, with equality when both pick the same sample. Both
    rows come from one float32 L2 of the same truth; where the picks differ, the order was decided
    by ``SampleBank`` with float32 means over 32^3 voxels, whose rounding error (pairwise sums:
    about ``log2(32^3) * 6e-8`` = 1e-6 relative) a relative slack of 1e-5 covers ten times over.

    The recorded L2 is checked against the definition, computed independently in float64 from the
    regenerated volumes (float32 rounding again, 1e-5), so a biased or rescaled metric fails here
    even where it keeps every ordering.
    """
    out, paths = evaluated
    rows = read_csv(paths["results"])
    l2 = scoring.by_method(rows, "l2")
    worse = {s: (l2["oracle"][s], l2["nn"][s]) for s in l2["nn"] if l2["oracle"][s] > l2["nn"][s] * (1 + 1e-5)}
    assert not worse, f"ORACLE worse than NN (sample: (oracle, nn)): {worse}"
    samples = sorted(l2["nn"])
    vols = scoring.volumes_of(samples, SMOKE, rows, out_dir=out)
    for method in ("ours", "nn", "oracle"):
        for s, volume, truth in zip(samples, vols[method], vols["truth"]):
            exact = (volume.double() - truth.double()).square().mean().item()
            assert l2[method][s] == pytest.approx(exact, rel=1e-5), (method, s)


def test_fused_result_reprojects_to_its_input(evaluated):
    """Fusion inside the protocol: our fused volume casts its input x-ray, per sample.

    Bound: the fused column's depth sum hits the target optical mass up to float32 rounding, at
    most ``D * eps`` relative over ``D`` = 32 slices (eps = 1.2e-7); in the transparency that is
    ``alpha * tau * D * eps <= D * eps / e`` (``tau = -ln alpha``; ``alpha tau`` peaks at ``1/e``).
    Four times ``D * eps``, 1.5e-5, leaves room for the policy's own arithmetic. The truth must
    meet the same bound (it checks the measure); the unfused output must not (it checks that the
    measure can fail: a network at smoke scale is far from its x-ray).
    """
    _, paths = evaluated
    rows = read_csv(paths["results"])
    tolerance = 4 * SMOKE.volume_size * torch.finfo(torch.float32).eps
    error = scoring.by_method(rows, "reprojection")
    assert max(error["ours"].values()) <= tolerance, error["ours"]
    assert min(error["ours_unfused"].values()) > 100 * tolerance, error["ours_unfused"]
    val_set = train_val_sets(SMOKE)[1]
    for s in error["ours"]:
        item = val_set[s]
        assert scoring.reprojection(item["volume"], item["xray"][0], SMOKE.chi) <= tolerance


def test_resume_skips_what_is_done(evaluated, monkeypatch):
    out, paths = evaluated
    before = paths["results"].read_text()
    monkeypatch.setattr(scoring.SampleBank, "nn", lambda *a, **k: pytest.fail("redid finished work"))
    scoring.evaluate(SMOKE, out_dir=out, k=K, chunk=4, progress=False)
    assert paths["results"].read_text() == before


def test_an_interrupted_run_completes(evaluated, tmp_path):
    out, paths = evaluated
    for name in ("checkpoint.pt", "evaluation.json", scoring.BANK_FILE):
        (tmp_path / name).write_bytes((out / name).read_bytes())
    rows = read_csv(paths["results"])
    kept = {int(r["sample"]) for r in rows[:5]}
    lines = paths["results"].read_text().splitlines()
    (tmp_path / "evaluation.csv").write_text("\n".join(lines[:1] + [line for line, r in zip(lines[1:], rows)
                                                                    if int(r["sample"]) in kept]) + "\n")
    (tmp_path / "slice_count.csv").write_text(paths["slices"].read_text())
    scoring.evaluate(SMOKE, out_dir=tmp_path, k=K, chunk=4, progress=False)
    again = read_csv(tmp_path / "evaluation.csv")
    key = lambda r: (int(r["sample"]), r["method"])
    ref = {key(r): r for r in rows}
    assert {key(r) for r in again} == set(ref)
    for r in again:
        assert float(r["l2"]) == pytest.approx(float(ref[key(r)]["l2"]), rel=1e-5)


def test_depth_resampling():
    flat = torch.rand(1, 12, 12).expand(32, -1, -1).contiguous()      # constant along depth
    for slices in (8, 16, 32):
        assert torch.allclose(scoring.depth_resampled(flat, slices), flat, atol=1e-6)
    ramp = torch.linspace(0, 1, 32)[:, None, None].expand(-1, 4, 4).contiguous()
    coarse = scoring.depth_resampled(ramp, 8)
    assert coarse.sum().item() == pytest.approx(ramp.sum().item(), rel=1e-2)
    assert (coarse - ramp).abs().max() < 0.05                            # a ramp survives interpolation


def test_score_of_a_perfect_prediction():
    v = torch.zeros(32, 32, 32)
    v[8:24, 10:22, 6:26] = 0.6
    s = scoring.score(v, v.clone())
    assert s["l2"] == 0 and s["dssim"] == pytest.approx(0, abs=1e-6) and s["ssim3d"] == pytest.approx(1, abs=1e-6)
    worse = scoring.score(v.roll(3, dims=1), v)
    assert worse["l2"] > 0 and worse["dssim"] > 0.01


def test_summary_and_paired_tests_on_known_values():
    rows = []
    ours, other = [1.0, 2.0, 3.0, 4.0], [2.0, 2.5, 4.5, 5.0]
    for s, (a, b) in enumerate(zip(ours, other)):
        rows += [dict(sample=s, method="ours", l2=a), dict(sample=s, method="nn", l2=b)]
    summary = {r["method"]: r for r in scoring.summary(rows, "l2")}
    assert summary["ours"]["mean"] == pytest.approx(2.5) and summary["ours"]["n"] == 4
    assert summary["ours"]["low"] < 2.5 < summary["ours"]["high"]
    (test,) = scoring.paired_tests(rows, "l2")
    d = torch.tensor(ours) - torch.tensor(other)                        # -1, -0.5, -1.5, -1
    t = d.mean() / (d.std() / 2)
    assert test["t"] == pytest.approx(t.item(), rel=1e-6)
    assert test["ratio"] == pytest.approx(10 / 14) and test["p_less"] < test["p"]


def test_beside_paper_ratios():
    rows = []
    for s, (ours, nn, oracle) in enumerate([(1.0, 2.0, 4.0), (3.0, 2.0, 4.0)]):
        for method, value in (("ours", ours), ("nn", nn), ("oracle", oracle)):
            rows.append(dict(sample=s, method=method, l2=value, dssim=value / 10))
    l2, dssim = scoring.beside_paper(rows)
    assert l2["metric"] == "l2" and l2["ours / NN"] == pytest.approx(1.0) and l2["ours / ORACLE"] == pytest.approx(0.5)
    assert dssim["paper: ours / NN"] == pytest.approx(0.097 / 0.109)


# --- tables and verdicts, on small synthetic rows (as read from evaluation.csv: strings) -----------

def _rows():
    """Four samples, every method; classical on samples 0 and 1 only; views top, top, side, side."""
    values = {"ours": [1.0, 2.0, 3.0, 4.0], "ours_unfused": [1.5, 2.5, 3.0, 5.0], "nn": [2.0, 2.5, 4.5, 5.0],
              "oracle": [1.0, 2.5, 2.0, 4.5], "classical": [3.0, 4.5]}
    rows = []
    for method, v in values.items():
        for s, value in enumerate(v):
            rows.append(dict(sample=str(s), method=method, l2=str(value), dssim=str(value / 10), seconds="2.5",
                             view_class="top" if s < 2 else "side"))
    return rows


def test_verdicts_in_words():
    better = dict(method="nn", label="NN", n=4, ratio=0.7, p=0.004, p_less=0.002)
    assert wording.verdict(better) == "ours is better at p < .01"
    assert wording.verdict(dict(better, p_less=0.02)) == "ours is not better at p < .01"
    assert wording.verdict(dict(better, p_less=0.02), alpha=0.05) == "ours is better at p < .05"
    assert wording.verdict(dict(better, ratio=1.1)) == "ours is not better at p < .01"
    assert wording.verdict(dict(better, p=float("nan")), 0.05, "two") == "no significant difference"
    assert wording.verdict(dict(better, p=0.2), 0.05, "two") == "no significant difference"
    assert wording.verdict(better, 0.05, "two") == "significantly smaller error"
    assert wording.verdict(dict(better, ratio=1.3), 0.05, "two") == "significantly larger error"
    with pytest.raises(ValueError, match="sided"):
        wording.verdict(better, sided="greater")
    line = wording.verdict_line(better, "L2")
    assert line == "* L2: ours / NN = 0.700, one-sided paired p = 0.002 (n = 4) — **ours is better at p < .01**"
    two = dict(truth="phantom", n=4.0, ratio=1.25, p=0.01)              # a row of reality.training_tests
    assert wording.verdict_line(two, "L2, phantoms", 0.05, "two") == \
        "* L2, phantoms: **significantly larger error** (ratio 1.250, two-sided paired p = 0.01, n = 4)"


def test_tables_of_another_network_of_ours():
    """``tests_table(against=)`` and ``beside_paper_table(ours=)`` put that network where ours stands."""
    rows = [dict(r, method="ours_shipped") if r["method"] == "ours_unfused" else r for r in _rows()]
    l2 = scoring.METRIC_LABELS["l2"]
    tests = scoring.tests_table(rows, against="ours_shipped")
    assert tests.loc["NN", (l2, "ours")] == pytest.approx(3.0) and "ours (fused)" in tests.index
    paper = scoring.beside_paper_table(rows, ours="ours_shipped")
    assert paper.loc["ours", l2] == pytest.approx(3.0) and paper.loc["ours / NN", l2] == pytest.approx(3.0 / 3.5)


def test_verdicts_of_paired_tests_pick_methods():
    tests = scoring.paired_tests(_rows(), "l2")
    assert [t["method"] for t in tests] == ["ours_unfused", "nn", "oracle", "classical"]
    lines = wording.verdicts(tests, "L2", methods=("nn", "oracle"))
    assert len(lines) == 2 and lines[0].startswith("* L2: ours / NN = ") and "ORACLE" in lines[1]
    assert len(wording.verdicts(tests, "L2")) == 4


def test_summary_table_per_metric_and_per_group():
    rows = _rows()
    table = scoring.summary_table(rows)
    assert list(table.index) == [scoring.METHODS[m] for m in scoring.METHODS  # methods present only
                                 if m not in ("extrude", "ours_surface", "ours_shipped", "ours_shipped_even",
                                              "ours_held_out")]
    assert list(table.columns.get_level_values(0).unique()) == list(scoring.METRIC_LABELS.values())
    l2 = scoring.METRIC_LABELS["l2"]
    assert table.loc["ours (fused)", (l2, "mean")] == pytest.approx(2.5)
    assert table.loc["NN", (l2, "n")] == 4
    ci = {r["method"]: r for r in scoring.summary(rows, "l2")}["nn"]
    assert table.loc["NN", (l2, "low")] == ci["low"] and table.loc["NN", (l2, "high")] == ci["high"]
    grouped = scoring.summary_table({"a": rows, "b": rows[:8]}, {"l2": "L2"})
    assert grouped.columns.nlevels == 3 and set(grouped.columns.get_level_values(0)) == {"a", "b"}
    assert grouped.loc["ours (fused)", ("b", "L2", "mean")] == pytest.approx(2.5)
    assert grouped[("b", "L2", "mean")].isna().sum() == 3          # b holds ours and ours_unfused only


def test_tests_fusion_and_paper_tables():
    rows = _rows()
    tests = scoring.tests_table(rows, {"l2": "L2"})
    assert list(tests.index) == ["ours, no fusion", "NN", "ORACLE", "classical (WENGER-like)"]
    assert list(tests["L2"].columns) == ["n", "ours", "method", "ours / method", "t", "p", "p (ours smaller)"]
    assert tests.loc["NN", ("L2", "ours / method")] == pytest.approx(10 / 14)
    fusion = scoring.fusion_table(rows)
    assert list(fusion.index) == list(scoring.METRIC_LABELS.values())
    assert list(fusion.columns) == ["n", "fused", "not fused", "fused / not fused", "result"]
    assert fusion["fused / not fused"].iloc[0] == pytest.approx(10 / 12)
    paper = scoring.beside_paper_table(rows)
    assert list(paper.columns) == list(scoring.METRIC_LABELS.values())
    assert paper.loc["ours / NN", scoring.METRIC_LABELS["l2"]] == pytest.approx(10 / 14)


def test_reprojection_table_gives_each_methods_largest_and_mean_error():
    rows = [dict(method="ours", reprojection="1e-7"), dict(method="ours", reprojection="3e-7"),
            dict(method="nn", reprojection="0.2"), dict(method="nn", reprojection="0.4"),
            dict(method="classical", reprojection="")]  # an older row without the column is left out
    table = scoring.reprojection_table(rows)
    assert list(table.index) == ["ours (fused)", "NN"] and list(table.columns) == ["largest", "mean"]
    assert table.loc["ours (fused)", "largest"] == pytest.approx(3e-7)
    assert table.loc["NN", "mean"] == pytest.approx(0.3)


def test_classical_slice_and_view_tables():
    rows = _rows()
    ran, seconds, frame = scoring.classical_comparison(rows)
    assert ran == 2 and seconds == pytest.approx(2.5)
    assert frame.loc["NN", "L2"] == pytest.approx(2.25)
    assert frame.loc["classical (WENGER-like)", "DSSIM"] == pytest.approx(0.375)
    assert scoring.classical_comparison([r for r in rows if r["method"] != "classical"])[0] == 0
    slices = [dict(sample=str(s), view_class="top", slices=str(k), dssim=str(s / 10 + k / 100), l2="0.1")
              for s in range(3) for k in (8, 16)]
    table = scoring.slice_table(slices)
    assert list(table.index) == [8, 16] and list(table.columns) == ["count", "mean", "sem"]
    assert table.loc[8, "count"] == 3 and table.loc[16, "mean"] == pytest.approx(0.26)
    groups = scoring.by_view(rows, "l2")
    assert list(groups) == ["top", "side"] and groups["side"]["nn"] == [4.5, 5.0]
    views = scoring.view_table(rows)
    assert views.loc["top", ("l2", "mean")] == pytest.approx(1.5) and views.loc["side", ("dssim", "count")] == 2


def test_read_results_names_the_chapter_that_makes_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="chapter 5"):
        scoring.read_results(SMOKE, out_dir=tmp_path)
    (tmp_path / "evaluation.csv").write_text("sample,method,l2\n0,ours,0.5\n")
    assert scoring.read_results("smoke", out_dir=tmp_path) == [dict(sample="0", method="ours", l2="0.5")]


def test_novel_views_score_the_recorded_volumes_from_turned_cameras(evaluated):
    """``novelviews.rows``: from the x-ray's own view its DSSIM is the one chapter 5 recorded; turned, every method's
    render is scored against the truth's from the same camera; chunking does not change a row; ``table``'s ratios
    are the ratios of the turn's means."""
    from xtomo.evaluation import novelviews

    out, paths = evaluated
    rows = read_csv(paths["results"])
    samples = sorted({int(r["sample"]) for r in rows})[:3]
    turns = {"own": (0.0, 0.0), "side": (90.0, 0.0)}
    found = novelviews.rows(samples, SMOKE, rows, turns, out_dir=out, chunk=2)
    assert len(found) == len(samples) * len(turns) * 3                   # ours, NN, ORACLE
    recorded = {(int(r["sample"]), r["method"]): float(r["dssim"]) for r in rows}
    for r in (r for r in found if r["turn"] == "own"):
        assert r["dssim"] == pytest.approx(recorded[r["sample"], r["method"]], abs=1e-6)
    side = {(r["sample"], r["method"]): r["dssim"] for r in found if r["turn"] == "side"}
    assert side != {(r["sample"], r["method"]): r["dssim"] for r in found if r["turn"] == "own"}
    assert novelviews.rows(samples, SMOKE, rows, turns, out_dir=out, chunk=1) == found
    table = novelviews.table(found)
    assert list(table.index) == ["own", "side"]
    mean = {m: sum(v for (s, k), v in side.items() if k == m) for m in ("ours", "nn", "oracle")}
    assert table.loc["side", ("ours", "/ NN")] == pytest.approx(mean["ours"] / mean["nn"])
    assert table.loc["side", ("ours", "/ ORACLE")] == pytest.approx(mean["ours"] / mean["oracle"])
    assert 0 <= table.loc["side", ("ours", "p vs NN")] <= 1
    with pytest.raises(ValueError, match="novelviews.scored: no turns given"):
        novelviews.rows(samples, SMOKE, rows, {}, out_dir=out)
