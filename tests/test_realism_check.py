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


def test_report_needs_procedural_skulls():
    with pytest.raises(ValueError, match="at least one skull"):
        realism_check.realism_report(torch.zeros(48, 48, 48), {})
