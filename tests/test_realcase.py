"""A real volume as an evaluation case: the rows chapter 5 reads, with exact re-projections."""
from __future__ import annotations

import math

import pytest
import torch

from xtomo.evaluation import realcase, scoring
from xtomo.imaging import xray
from xtomo.learning.model import build_model
from xtomo.profiles import get_profile
from xtomo.specimens import crania


@pytest.fixture(scope="module")
def case():
    p = get_profile("smoke")
    volume = crania.skull(crania.catalog(3)[1], p.volume_size)
    model = build_model(p.model, seed=0).eval()
    rows, shown = realcase.evaluate_volume(volume, model, p, views=3, seed=5, show=2)
    return p, volume, rows, shown


def test_rows_hold_every_method_per_view_in_the_evaluation_format(case):
    p, _, rows, shown = case
    assert sorted(shown) == ["directions", "extrude", "ours", "ours_unfused", "truth", "xrays"]
    assert all(len(v) == 2 for v in shown.values())
    torch.testing.assert_close(torch.stack(shown["directions"]), xray.sample_directions(3, seed=5)[:2])
    assert [r["method"] for r in rows] == ["ours", "ours_unfused", "extrude"] * 3
    assert {r["sample"] for r in rows} == {0, 1, 2} and all(r["specimen"] == -1 for r in rows)
    table = scoring.summary_table(rows)              # chapter 5's tables read the rows as they are
    assert list(table.index) == [scoring.METHODS[m] for m in ("ours", "ours_unfused", "extrude")]


def test_fused_and_even_spread_cast_the_input_xray(case):
    """Both are built to re-project exactly (fusion by construction, the even spread by its
    definition); float32 compositing of 32 slices leaves rounding of about 1e-6."""
    _, _, rows, _ = case
    for r in rows:
        if r["method"] in ("ours", "extrude"):
            assert r["reprojection"] < 1e-4, r
    assert max(r["reprojection"] for r in rows if r["method"] == "ours_unfused") > 1e-3  # untrained: far off


def test_even_spread_scores_like_a_direct_computation(case):
    p, volume, rows, shown = case
    from xtomo.data.datasets import make_sample
    from xtomo.imaging import xray
    from xtomo.methods import classical

    d = xray.sample_directions(3, seed=5)[0]
    alpha, truth = make_sample(volume, d, p)               # x-ray and truth at the same size at smoke
    spread = classical.extrude(alpha, n_steps=truth.shape[0], chi=p.chi)
    expected = scoring.score(spread, truth)
    got = next(r for r in rows if r["sample"] == 0 and r["method"] == "extrude")
    assert got["l2"] == pytest.approx(expected["l2"], rel=1e-5)
    assert got["dssim"] == pytest.approx(expected["dssim"], abs=1e-6)
    torch.testing.assert_close(shown["extrude"][0], spread)
    torch.testing.assert_close(shown["truth"][0], truth)


def test_a_volume_at_another_size_is_refused():
    p = get_profile("smoke")
    with pytest.raises(ValueError, match=r"evaluate_volume: volume is \(16, 16, 16\), but profile 'smoke' works at 32"):
        realcase.evaluate_volume(torch.zeros(16, 16, 16), None, p)
    with pytest.raises(ValueError, match="expected one volume"):
        realcase.evaluate_volume(torch.zeros(2, 32, 32, 32), None, p)


def test_a_second_network_is_scored_as_the_shipped_model(case):
    """``others=`` adds the rows of our other networks (here the package's), fused like ours: with the
    same weights as ours it scores exactly as ours, view by view."""
    p, volume, rows, _ = case
    same = build_model(p.model, seed=0).eval()
    both, shown = realcase.evaluate_volume(volume, same, p, views=3, seed=5, show=1, others={"ours_shipped": same})
    assert [r["method"] for r in both] == ["ours", "ours_unfused", "extrude", "ours_shipped"] * 3
    assert [r for r in both if r["method"] != "ours_shipped"] == rows
    for ours, theirs in zip(*([r for r in both if r["method"] == m] for m in ("ours", "ours_shipped"))):
        assert {k: v for k, v in theirs.items() if k != "method"} == {k: v for k, v in ours.items() if k != "method"}
    assert torch.equal(shown["ours_shipped"][0], shown["ours"][0])
    even, spread = realcase.evaluate_volume(volume, same, p, views=3, seed=5, show=1, policy="even",
                                            others={"ours_shipped": same})  # every network of ours fused so
    assert torch.equal(spread["ours"][0], spread["ours_shipped"][0]) and not torch.equal(spread["ours"][0],
                                                                                          shown["ours"][0])
    assert [r["l2"] for r in even if r["method"] == "extrude"] == [r["l2"] for r in both if r["method"] == "extrude"]
    # a network that scoring.POLICY fuses its own way is fused so whatever the policy asked for the others
    for policy, found in (("proportional", shown), ("even", spread)):
        _, mixed = realcase.evaluate_volume(volume, same, p, views=3, seed=5, show=1, policy=policy,
                                            others={"ours_shipped": same, "ours_shipped_even": same})
        assert torch.equal(mixed["ours_shipped"][0], found["ours"][0])
        assert torch.equal(mixed["ours_shipped_even"][0], spread["ours"][0])


def test_physical_acquisition_is_beer_lambert_through_an_ideal_scanner(monkeypatch):
    """Through a monochromatic scanner at its reference energy with a perfect detector, the physical
    x-ray is the ideal one up to the 8-bit display encoding (gamma 2.2: an opacity step of at most
    2.2 x 0.5 / 255); the truth is the same CT either way. The real scanner differs clearly."""
    from xtomo.evaluation import reality
    from xtomo.imaging import microct, xray
    from xtomo.learning import acquisition

    p = get_profile("smoke")
    volume = crania.skull(crania.catalog(3)[1], p.volume_size)
    d = xray.sample_directions(2, seed=3)[1]
    ideal, truth = realcase.acquire(volume, d, p, "ideal")
    real_scanner = reality.scanner(p)
    monkeypatch.setattr(realcase, "scanner", lambda q: microct.Scanner(chi=q.chi, monochromatic=True).ideal())
    monkeypatch.setattr(acquisition, "reading_tube", lambda chi: microct.Scanner(chi=chi, monochromatic=True))
    physical, same_truth = realcase.acquire(volume, d, p, "physical", seed=1)
    torch.testing.assert_close(same_truth, truth)
    assert (physical - ideal).abs().max() < 2.2 * 0.5 / 255 + 1e-5
    monkeypatch.setattr(realcase, "scanner", lambda q: real_scanner)
    noisy, _ = realcase.acquire(volume, d, p, "physical", seed=1)
    assert (noisy - ideal).abs().max() > 0.02
    again, _ = realcase.acquire(volume, d, p, "physical", seed=1)
    assert torch.equal(again, noisy)                      # the photon noise is seeded
    with pytest.raises(ValueError, match="acquisition must be one of ideal, physical"):
        realcase.acquire(volume, d, p, "film")


def test_against_even_gives_ratios_and_tests_per_acquisition_and_model(case):
    p, volume, rows, _ = case
    same = build_model(p.model, seed=0).eval()
    physical, _ = realcase.evaluate_volume(volume, same, p, views=3, seed=5, others={"ours_shipped": same},
                                           acquisition="physical")
    assert {r["acquisition"] for r in physical} == {"physical"}
    table = realcase.against_even(rows + physical)
    assert [(t["acquisition"], t["model"]) for t in table] == [
        ("ideal", scoring.METHODS["ours"]), ("physical", scoring.METHODS["ours"]),
        ("physical", scoring.METHODS["ours_shipped"])]
    first = table[0]
    ours = [r["l2"] for r in rows if r["method"] == "ours"]
    even = [r["l2"] for r in rows if r["method"] == "extrude"]
    assert first["views"] == 3
    assert first["l2 ours/even"] == pytest.approx(sum(ours) / sum(even))
    assert first["rmse ours/even"] == pytest.approx(sum(x ** 0.5 for x in ours) / sum(x ** 0.5 for x in even))
    assert 0 <= first["l2 p"] <= 1 and 0 <= first["dssim p"] <= 1
    assert table[1] | {"model": None} == table[2] | {"model": None}   # the same weights score the same


def test_against_even_pools_skulls_without_merging_their_views(case):
    """Two skulls share view indices 0..2; pooled, all six views count, and the ratio is the ratio of
    the sums over both (a merge by index alone would keep three and drop the other skull's)."""
    _, _, rows, _ = case
    other = [dict(r, species="another skull", l2=2 * r["l2"] if r["method"] == "ours" else r["l2"]) for r in rows]
    pooled = realcase.against_even(rows + other)[0]
    ours = [r["l2"] for r in rows + other if r["method"] == "ours"]
    even = [r["l2"] for r in rows + other if r["method"] == "extrude"]
    assert pooled["views"] == 6
    assert pooled["l2 ours/even"] == pytest.approx(sum(ours) / sum(even))


def test_against_even_gives_nan_where_the_even_spread_scores_zero_everywhere(case):
    """A volume so faint that DSSIM sees no structure in the even spread: the DSSIM ratio is NaN, not an error."""
    _, _, rows, _ = case
    flat = [dict(r, dssim=0.0) if r["method"] == "extrude" else r for r in rows]
    row = realcase.against_even(flat)[0]
    assert math.isnan(row["dssim ours/even"]) and row["l2 ours/even"] == realcase.against_even(rows)[0]["l2 ours/even"]


def test_against_even_by_answers_labels_each_answer_and_acquisition(case):
    """Per asked answer and acquisition one ``against_even`` row, the plain one that of ``evaluate_volume`` as is."""
    p, volume, rows, _ = case
    model = build_model(p.model, seed=0).eval()
    found = realcase.against_even_by_answers(volume, model, p, 3, 5, "real skull", ("plain", "view"))
    assert [(r["answers"], r["acquisition"]) for r in found] == [
        (realcase.ANSWERS[a][0], acq) for a in ("plain", "view") for acq in realcase.ACQUISITIONS]
    assert found[0] | {"answers": None} == realcase.against_even(rows)[0] | {"answers": None}


def test_head_regions_cut_the_skull_at_its_bone_centre():
    """A box of bone over z 4..11, y 2..5 of a 16^3 cube: the vault is z >= 8, the face y >= 4 below it; the
    parts cover the cube once."""
    volume = torch.zeros(16, 16, 16)
    volume[4:12, 2:6, 3:9] = 1.0
    parts = realcase.head_regions(volume)
    assert list(parts) == list(realcase.REGIONS[:3])
    torch.testing.assert_close(sum(parts.values()), torch.ones(16, 16, 16))
    assert parts["vault"][8:].eq(1).all() and parts["vault"][:8].eq(0).all()
    assert parts["face and jaw"][:8, 4:].eq(1).all() and parts["skull base and back"][:8, :4].eq(1).all()
    with pytest.raises(ValueError, match="empty"):
        realcase.head_regions(torch.zeros(8, 8, 8))


def test_error_by_region_shares_the_whole_error_of_each_method(case):
    """The parts (with what lies outside the skull's cube) split the squared error over the views exactly: the
    shares sum to one, and our summed error over the even spread's is the rows' L2 ratio."""
    p, volume, rows, _ = case
    model = build_model(p.model, seed=0).eval()
    parts = realcase.error_by_region(volume, model, p, views=3, seed=5)
    assert [r["region"] for r in parts] == list(realcase.REGIONS)
    for field in ("bone", "ours", "even"):
        assert sum(r[field] for r in parts) == pytest.approx(1.0, abs=1e-6)
    l2 = {m: sum(r["l2"] for r in rows if r["method"] == m) for m in ("ours", "extrude")}
    pooled = sum(r["ratio"] * r["even"] for r in parts if r["even"] > 0)
    assert pooled == pytest.approx(l2["ours"] / l2["extrude"], rel=1e-4)
    assert next(r for r in parts if r["region"] == "elsewhere")["bone"] == pytest.approx(0.0, abs=1e-6)


def test_a_softened_truth_keeps_its_rays_and_scores_worse_the_softer_it_is(case):
    """``softened`` by 0 is the truth; by any sigma it keeps every ray's line integral (so it re-projects as
    the truth does) and moves mass off the walls; ``softened_ratios`` rises with sigma from 0 and, for blurs of
    a few voxels, stays under the even spread's (1), which smears each ray's mass over the whole cube."""
    p, volume, _, _ = case
    from xtomo.data.datasets import make_sample

    _, truth = make_sample(volume, xray.sample_directions(3, seed=5)[0], p)
    torch.testing.assert_close(realcase.softened(truth, 0.0), truth, rtol=0, atol=0)
    soft = realcase.softened(truth, 1.5)
    torch.testing.assert_close(soft.sum(0), truth.sum(0), rtol=1e-4, atol=1e-5)
    assert soft.max() < truth.max()
    ratios = realcase.softened_ratios(volume, p, sigmas=(0, 0.5, 1, 2), views=3, seed=5)
    assert list(ratios) == [0, 0.5, 1, 2] and ratios[0] < 1e-5
    assert ratios[0] < ratios[0.5] < ratios[1] < ratios[2] < 1, ratios
    with pytest.raises(ValueError, match="sigma"):
        realcase.softened_ratios(volume, p, sigmas=(-1,), views=1)
