"""Chapter 1's realism check: which skulls it compares, and a report that measures them alike."""
from __future__ import annotations

import pytest
import torch

from xtomo.profiles import get_profile
from xtomo.specimens import crania
from xtomo.study import realism_check


@pytest.fixture(scope="module")
def compared():
    return realism_check.realism_specimens("smoke", size=48)


def test_one_skull_per_order_and_every_primate_family(compared):
    p = get_profile("smoke")
    species = crania.catalog(p.n_species, seed=p.seed)
    orders = {s.order for s in species}
    primate_families = {s.family for s in species if s.order == "Primates"}
    chosen = [next(s for s in species if s.name == name) for name in compared]
    assert {s.order for s in chosen} == orders
    assert {s.family for s in chosen if s.order == "Primates"} == primate_families
    assert all(v.shape == (48, 48, 48) and order == s.order for (order, v), s in zip(compared.values(), chosen))


def test_a_copy_of_a_procedural_skull_lies_within_every_range(compared):
    """A "real" skull that is one of the procedural ones must fall inside each range (it is an end
    point at worst): the report measures the real and the procedural skulls the same way."""
    name, (order, volume) = next((n, v) for n, v in compared.items() if v[0] == "Primates")
    report = realism_check.realism_report(volume.clone(), compared, real_name="copy", views=4,
                                          observer_views=16, cnn_steps=5)
    assert report.table["within"].all() and report.primates["within"].all()
    assert report.stats["copy"]["thickness_mean"] == pytest.approx(report.stats[name]["thickness_mean"])
    assert report.observer.trials == 4 and 0 <= report.observer.correct <= 4
    assert report.texture_observer.trials == 16 and 0 <= report.texture_observer.correct <= 16


def test_report_needs_procedural_skulls():
    with pytest.raises(ValueError, match="at least one skull"):
        realism_check.realism_report(torch.zeros(48, 48, 48), {})


def test_patches_lie_on_the_specimen_and_name_their_view():
    """Each patch is a window of its own x-ray, centred on a pixel at least as opaque as the floor."""
    alphas = torch.ones(3, 40, 40)
    alphas[1, 10:30, 5:25] = 0.2  # only x-ray 1 and 2 have opaque pixels
    alphas[0, 18:22, 18:22] = 0.5
    alphas[2, 20:40, 20:40] = 0.3
    patches, views = realism_check.xray_patches(alphas, per_view=5, size=0.25, seed=3)
    assert patches.shape == (15, 10, 10) and views.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    for patch, view in zip(patches, views):
        assert (1 - patch[5, 5]) >= realism_check.PATCH_FLOOR  # its centre pixel (side // 2)
        found = [(y, x) for y in range(31) for x in range(31) if torch.equal(alphas[view, y:y + 10, x:x + 10], patch)]
        assert found
    again, _ = realism_check.xray_patches(alphas, per_view=5, size=0.25, seed=3)
    assert torch.equal(patches, again)


def test_patches_refuse_what_they_cannot_cut():
    with pytest.raises(ValueError, match="x-ray 0 has no pixel"):
        realism_check.xray_patches(torch.ones(1, 40, 40))
    with pytest.raises(ValueError, match="too small"):
        realism_check.xray_patches(torch.zeros(1, 8, 8), size=0.25)
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        realism_check.xray_patches(torch.zeros(40, 40))
