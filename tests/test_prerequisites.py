"""The one rule for missing prerequisites (``conftest.require``): skip on a machine that lacks
them, fail under ``CI=true``, where the suite must run in full."""
import pytest
from conftest import require

MISSING = [False, None, 0, "", FileNotFoundError("data/real/cat.dcm is missing")]


def outcome(condition, reason: str) -> BaseException | None:
    """What ``require`` raised (skip and fail are BaseExceptions: caught here, so that a helper
    that wrongly skips makes these tests fail rather than skip themselves)."""
    try:
        require(condition, reason)
    except BaseException as raised:
        return raised
    return None


@pytest.mark.parametrize("ci", ["true", "false", None])
@pytest.mark.parametrize("condition", [True, 1, "present", "/usr/bin/chromium"])
def test_a_present_prerequisite_lets_the_test_go_on(monkeypatch, ci, condition):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    assert outcome(condition, "not needed") is None


@pytest.mark.parametrize("ci", ["false", None])  # only CI=true, as CI services set it, makes it a failure
@pytest.mark.parametrize("missing", MISSING)
def test_a_missing_prerequisite_skips_outside_ci(monkeypatch, ci, missing):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    raised = outcome(missing, "no Chromium on PATH")
    assert type(raised) is pytest.skip.Exception and raised.msg == "no Chromium on PATH"


@pytest.mark.parametrize("missing", MISSING)
def test_a_missing_prerequisite_fails_under_ci(monkeypatch, missing):
    monkeypatch.setenv("CI", "true")
    raised = outcome(missing, "no Chromium on PATH")
    assert type(raised) is pytest.fail.Exception
    assert raised.msg == "CI=true, and a prerequisite is missing: no Chromium on PATH"
