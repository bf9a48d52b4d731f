"""The shared input checks: what they accept, what they return, and the errors that name the input."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import xtomo._checks as checks


@given(st.integers(-10**6, 10**6))
def test_integer_accepts_python_and_numpy_integers_within_bounds(n):
    assert checks.integer(n, "n") == n and type(checks.integer(np.int64(n), "n")) is int
    if n < 0:
        with pytest.raises(ValueError, match=r"^f: n must be an integer >= 0, got"):
            checks.integer(n, "n", minimum=0, what="f")


@pytest.mark.parametrize("bad", [True, np.bool_(False), 1.0, "3", None, float("nan")])
def test_integer_refuses_bools_floats_and_strings(bad):
    with pytest.raises(ValueError, match="size must be an integer"):
        checks.integer(bad, "size")


def test_integer_bounds_are_inclusive_and_named():
    assert checks.integer(2, "k", minimum=2, maximum=2) == 2
    with pytest.raises(ValueError, match=r"k must be an integer >= 2 and <= 4, got 5"):
        checks.integer(5, "k", minimum=2, maximum=4)


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9))
def test_number_positive_nonnegative_and_probability(x):
    assert checks.number(x, "x") == x
    assert (x > 0) == _accepts(checks.positive, x)
    assert (x >= 0) == _accepts(checks.nonnegative, x)
    assert (0 <= x <= 1) == _accepts(checks.probability, x)


def _accepts(check, x) -> bool:
    try:
        check(x, "x")
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, True, "1", None, 1j])
def test_number_refuses_non_finite_and_non_real(bad):
    with pytest.raises(ValueError, match="chi must be a finite number"):
        checks.positive(bad, "chi")


def test_choice_lists_the_options():
    assert checks.choice("fbp", "method", ("fbp", "sart")) == "fbp"
    with pytest.raises(ValueError, match=r"method must be one of fbp, sart, got 'art'"):
        checks.choice("art", "method", ("fbp", "sart"))


def test_tensor_converts_and_refuses_what_is_not_finite_real():
    out = checks.tensor(np.arange(4, dtype=np.int32), "x")
    assert out.dtype == torch.float32 and out.tolist() == [0, 1, 2, 3]
    for bad, message in ((torch.tensor([1.0, math.nan]), "NaN or inf"), (torch.tensor([True]), "real numbers"),
                         ([1.0], "torch tensor or numpy array"), (torch.tensor([-1.0]), "non-negative")):
        with pytest.raises((TypeError, ValueError), match=message):
            checks.tensor(bad, "x", nonnegative=True)


def test_alpha_reports_the_exact_range_it_was_given():
    assert torch.equal(checks.alpha(torch.tensor([0.0, 1.0])), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"in \[0.0, 1.0000002\d*\]"):
        checks.alpha(torch.tensor([0.0, 1.0000002], dtype=torch.float64))


@given(st.lists(st.floats(-5, 5), min_size=3, max_size=3).filter(lambda v: sum(c * c for c in v) > 1e-6))
def test_directions_are_unit_vectors_pointing_the_same_way(v):
    d = checks.directions(v, dtype=torch.float64)
    assert abs(float(d.norm()) - 1) < 1e-12
    assert torch.allclose(d * torch.tensor(v, dtype=torch.float64).norm(), torch.tensor(v, dtype=torch.float64))


@pytest.mark.parametrize("bad", [[0, 0, 0], [1, 2], [1, math.nan, 0], "up"])
def test_directions_refuse_zero_short_and_non_finite_vectors(bad):
    with pytest.raises((TypeError, ValueError), match="light"):
        checks.directions(bad, name="light")


def test_volume_adds_a_batch_axis_and_checks_shape_and_type():
    v, single = checks.volume(torch.zeros(4, 5, 6))
    assert v.shape == (1, 4, 5, 6) and single
    v, single = checks.volume(torch.zeros(2, 4, 5, 6))
    assert v.shape == (2, 4, 5, 6) and not single
    for bad in (torch.zeros(4, 5), torch.zeros(4, 5, 6, dtype=torch.int64), torch.zeros(1, 5, 6), np.zeros((4, 4, 4))):
        with pytest.raises((TypeError, ValueError), match="volume"):
            checks.volume(bad)
