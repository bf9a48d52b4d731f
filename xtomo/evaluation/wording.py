"""Paired tests in words: the verdicts the chapters print under their tables (``scoring.paired_tests``'s rows,
``reality.training_tests``'), one Markdown bullet per test."""
from __future__ import annotations

from collections.abc import Sequence

__all__ = ["verdict", "verdict_line", "verdicts"]


def _level(alpha: float) -> str:
    """``0.01`` as ".01", the way the book writes significance levels."""
    text = f"{alpha:g}"
    return text[1:] if text.startswith("0.") else text


def verdict(test: dict, alpha: float = 0.01, sided: str = "less") -> str:
    """A paired test in words, from a row of ``scoring.paired_tests`` or of ``reality.training_tests``.

    ``sided="less"``: is the first method's error (ours) the smaller one, its ``ratio`` of means
    below 1 at one-sided ``p_less < alpha``? ``sided="two"``: do the two errors differ at
    two-sided ``p < alpha``, and which way (a NaN p-value is no difference)?
    """
    if sided == "less":
        better = test["ratio"] < 1 and test["p_less"] < alpha
        return f"ours is {'' if better else 'not '}better at p < {_level(alpha)}"
    if sided != "two":
        raise ValueError(f"verdict: sided must be 'less' or 'two', got {sided!r}")
    if not test["p"] < alpha:
        return "no significant difference"
    return "significantly smaller error" if test["ratio"] < 1 else "significantly larger error"


def verdict_line(test: dict, context: str, alpha: float = 0.01, sided: str = "less") -> str:
    """One Markdown bullet: ``context``, the ratio of means, the paired p-value, n and the verdict."""
    words = verdict(test, alpha, sided)
    if sided == "less":
        return (f"* {context}: ours / {test['label']} = {test['ratio']:.3f}, one-sided paired p = "
                f"{test['p_less']:.2g} (n = {int(test['n'])}) — **{words}**")
    return (f"* {context}: **{words}** (ratio {test['ratio']:.3f}, two-sided paired p = {test['p']:.2g}, "
            f"n = {int(test['n'])})")


def verdicts(tests, context: str, alpha: float = 0.01, sided: str = "less",
             methods: Sequence[str] | None = None) -> list[str]:
    """``verdict_line`` of every test (of ``methods`` only, when given), all under one ``context``
    such as the metric's label."""
    return [verdict_line(t, context, alpha, sided) for t in tests if methods is None or t["method"] in methods]
