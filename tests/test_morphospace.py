"""Morphospace: the nearest training twin of each held-out species, and the map of proportions."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xtomo.specimens import crania, morphospace


@settings(max_examples=25, deadline=None)
@given(st.integers(3, 9), st.integers(0, 2**16))
def test_twin_distances_equal_a_brute_force_search(n, seed):
    g = torch.Generator().manual_seed(seed)
    vols = torch.rand(n, 4, 5, 6, generator=g)
    val, train = [0, n - 1], list(range(1, n - 1))
    got = morphospace.twin_distances(vols, train, val)
    rel = morphospace.twin_distances(vols, train, val, relative=True)
    for i, v in enumerate(val):
        d = [math.sqrt(float(((vols[v].double() - vols[t].double()) ** 2).mean())) for t in train]
        assert float(got[i]) == pytest.approx(min(d), rel=1e-5)
        assert float(rel[i]) == pytest.approx(min(d) / float(np.median(d)) if len(d) % 2 else
                                              min(d) / sorted(d)[(len(d) - 1) // 2], rel=1e-5)
        assert float(rel[i]) <= 1.0 + 1e-6                # the nearest is never farther than the median


def test_a_copy_in_training_is_a_twin_at_distance_zero():
    vols = torch.rand(4, 3, 3, 3)
    vols[3] = vols[1]
    assert float(morphospace.twin_distances(vols, [0, 1, 2], [3])[0]) == 0.0


def test_twin_distances_name_bad_input():
    with pytest.raises(ValueError, match=r"expected volumes \[n, D, H, W\]"):
        morphospace.twin_distances(torch.zeros(3, 4, 4), [0], [1])
    with pytest.raises(ValueError, match=r"species in both train and val: \[1\]"):
        morphospace.twin_distances(torch.zeros(3, 2, 2, 2), [0, 1], [1, 2])
    with pytest.raises(ValueError, match="at least one species"):
        morphospace.twin_distances(torch.zeros(3, 2, 2, 2), [], [1])


def test_coordinates_are_principal_axes_of_the_standardised_proportions():
    params = [s.params for s in crania.catalog(40)]
    xy = morphospace.coordinates(params, dims=3)
    assert xy.shape == (40, 3)
    np.testing.assert_allclose(xy.mean(axis=0), 0, atol=1e-9)          # centred
    var = xy.var(axis=0)
    assert var[0] >= var[1] >= var[2] > 0                              # ordered by variance
    np.testing.assert_allclose(np.corrcoef(xy.T)[np.triu_indices(3, 1)], 0, atol=1e-8)  # uncorrelated
    # the same species give the same map; one species alone has no spread to map
    np.testing.assert_allclose(morphospace.coordinates(params, dims=3), xy)
    with pytest.raises(ValueError, match="at least 2 species"):
        morphospace.coordinates(params[:1])


def test_species_of_one_family_vary_and_absent_parts_stay_absent():
    """Blending with another family moves sizes, but never grows a part the family lacks."""
    species = crania.catalog(175)
    pikas = [s.params for s in species if s.family == "Ochotonidae"]
    assert len({p.snout_length for p in pikas}) == len(pikas)
    assert all(p.horn_length == 0 and p.tusk_up == 0 and p.blowhole == 0 for p in pikas)
