"""Machine observers: fitted on training pairs, answering through the same Session as people."""
from __future__ import annotations

import numpy as np
import pytest

from xtomo.study import observers
from xtomo.study.protocol import Pair, Session, Stimulus, read_responses


def textured_pairs(n: int, seed: int, size: int = 24, prefix: str = "p") -> list[Pair]:
    """Real: fine noise around a grey level; fake: the same grey level, blurred (no fine texture)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        level = rng.uniform(0.3, 0.7)
        noise = rng.normal(0, 0.15, (size, size))
        smooth = np.cumsum(np.cumsum(rng.normal(0, 1, (size, size)), 0), 1)
        smooth = 0.1 * (smooth - smooth.mean()) / smooth.std()
        pairs.append(Pair(f"{prefix}{i}", Stimulus(f"{prefix}{i}-real", np.clip(level + noise, 0, 1)),
                          Stimulus(f"{prefix}{i}-fake", np.clip(level + smooth, 0, 1))))
    return pairs


@pytest.mark.parametrize("kind", observers.FEATURES)
def test_features_have_one_row_per_image(kind):
    images = np.random.default_rng(0).uniform(0, 1, (5, 20, 24))
    f = observers.features(images, kind)
    assert f.shape[0] == 5 and np.isfinite(f).all()
    assert np.allclose(observers.features(images[2], kind), f[2:3])
    if kind in ("histogram", "spectrum"):
        assert np.allclose(f.sum(1), 1.0)


def test_features_reject_bad_input():
    with pytest.raises(ValueError, match="unknown feature kind"):
        observers.features(np.zeros((1, 8, 8)), "colour")
    with pytest.raises(ValueError, match=r"\[B, H, W\]"):
        observers.features(np.zeros((1, 1, 8, 8)), "histogram")


def test_fitted_observers_tell_held_out_pairs_apart(tmp_path):
    train, test = textured_pairs(24, seed=1, prefix="t"), textured_pairs(10, seed=2)
    fitted = observers.fit(train, cnn_seeds=(0,), steps=120)
    assert [o.name for o in fitted] == ["stat-histogram", "stat-gradient", "stat-spectrum", "cnn-0"]
    path = tmp_path / "machine.csv"
    rows = observers.run_all(path, {"xray": (test, fitted)}, seed=3)
    assert read_responses(path) == rows and len(rows) == 4 * len(test)
    assert {r["observer"] for r in rows} == {"machine"}
    assert {r["participant"] for r in rows} == {f"machine:{o.name}" for o in fitted}
    accuracy = {o.name: np.mean([r["correct"] for r in rows if r["participant"] == f"machine:{o.name}"])
                for o in fitted}
    assert accuracy["stat-gradient"] == 1.0 and accuracy["stat-spectrum"] == 1.0 and accuracy["cnn-0"] >= 0.9
    assert len({r["seed"] for r in rows}) == 4                     # a schedule of its own per session


def test_observers_are_seeded_and_need_fitting():
    train = textured_pairs(8, seed=1)
    with pytest.raises(RuntimeError, match="not fitted"):
        observers.CNNObserver().score(np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match="at least 2 training pairs"):
        observers.StatisticObserver("gradient").fit(train[:1])
    a = observers.CNNObserver(seed=4, steps=20).fit(train)
    b = observers.CNNObserver(seed=4, steps=20).fit(train)
    images = np.stack([p.real.image for p in train])
    assert np.array_equal(a.score(images), b.score(images))


def test_an_observer_answers_through_the_session(tmp_path):
    """The observer goes through Session.current / Session.answer, as the app does."""
    pairs = textured_pairs(6, seed=5)
    session = Session("iso-best", pairs, "machine:stat-gradient", tmp_path / "m.csv", seed=2, observer="machine")
    observer = observers.StatisticObserver("gradient").fit(textured_pairs(12, seed=6, prefix="t"))
    rows = observers.answer(observer, session)
    assert session.done and [r["trial"] for r in rows] == list(range(6))
    assert [r["pair"] for r in rows] == [t.pair.id for t in session.trials]
