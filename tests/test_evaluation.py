"""Chapter 5's protocol: every method scored per sample, resumable, statistics that are right."""
import pytest
import torch

from xtomo.evaluation import scoring
from xtomo.learning.train import train
from xtomo.profiles import get_profile

SMOKE = get_profile("smoke")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    train(SMOKE, out_dir=out, progress=False)
    paths = scoring.evaluate(SMOKE, out_dir=out, k=4, chunk=4, progress=False)
    return out, paths


def test_every_method_on_every_sample(evaluated):
    _, paths = evaluated
    rows = scoring.read_csv(paths["results"])
    samples = {int(r["sample"]) for r in rows}
    assert len(samples) == SMOKE.eval_samples
    by = scoring.by_method(rows, "l2")
    for method in ("ours", "ours_unfused", "nn", "oracle"):
        assert set(by[method]) == samples
    assert len(by["classical"]) == SMOKE.classical_samples
    assert all(float(r["l2"]) >= 0 and 0 <= float(r["dssim"]) <= 1 for r in rows)
    assert all(r["match"].count("/") == 2 for r in rows if r["method"] in ("nn", "oracle"))
    slices = scoring.read_csv(paths["slices"])
    assert {int(r["slices"]) for r in slices} == {8, 16, 32}           # 64 > the smoke volume's 32 slices
    assert len(slices) == 3 * SMOKE.eval_samples


def test_recorded_scores_can_be_reproduced(evaluated):
    """The NN row's L2 equals the L2 of the regenerated match against the regenerated truth."""
    out, paths = evaluated
    rows = scoring.read_csv(paths["results"])
    first = int(rows[0]["sample"])
    vols = scoring.volumes_of([first], SMOKE, rows, out_dir=out)
    truth = vols["truth"][0]
    for method in ("nn", "oracle"):
        row = next(r for r in rows if int(r["sample"]) == first and r["method"] == method)
        again = scoring.score(vols[method][0], truth)
        assert again["l2"] == pytest.approx(float(row["l2"]), rel=1e-5)
        assert again["dssim"] == pytest.approx(float(row["dssim"]), abs=1e-6)


def test_resume_skips_what_is_done(evaluated, monkeypatch):
    out, paths = evaluated
    before = paths["results"].read_text()
    monkeypatch.setattr(scoring.SampleBank, "nn", lambda *a, **k: pytest.fail("redid finished work"))
    scoring.evaluate(SMOKE, out_dir=out, k=4, chunk=4, progress=False)
    assert paths["results"].read_text() == before


def test_an_interrupted_run_completes(evaluated, tmp_path):
    out, paths = evaluated
    for name in ("checkpoint.pt", "evaluation.json", "xray_bank.npy"):
        (tmp_path / name).write_bytes((out / name).read_bytes())
    rows = scoring.read_csv(paths["results"])
    kept = {int(r["sample"]) for r in rows[:5]}
    lines = paths["results"].read_text().splitlines()
    (tmp_path / "evaluation.csv").write_text("\n".join(lines[:1] + [l for l, r in zip(lines[1:], rows)
                                                                    if int(r["sample"]) in kept]) + "\n")
    (tmp_path / "slice_count.csv").write_text(paths["slices"].read_text())
    scoring.evaluate(SMOKE, out_dir=tmp_path, k=4, chunk=4, progress=False)
    again = scoring.read_csv(tmp_path / "evaluation.csv")
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
