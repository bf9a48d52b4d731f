"""Training x-rays re-taken by random physical acquisitions: the physics agrees with chapter 8's, the draws are
seeded and in range, and a training run takes them on (and resumes only with the same share)."""
from __future__ import annotations

import pytest
import torch
from conftest import random_pairs

from xtomo.data.datasets import make_sample
from xtomo.evaluation import realcase
from xtomo.evaluation.reality import scanner as book_scanner
from xtomo.imaging import microct
from xtomo.learning import acquisition
from xtomo.learning import train as T
from xtomo.profiles import get_profile
from xtomo.specimens import crania

pytestmark = pytest.mark.usefixtures("tiny_network")   # the preset "tiny"

SMOKE = get_profile("smoke")


def _skull_xray(direction=(0.3, 0.8, 0.5)):
    volume = crania.skull(crania.catalog(12)[0], size=SMOKE.volume_size)
    d = torch.tensor(direction) / torch.tensor(direction).norm()
    return volume, d, make_sample(volume, d, SMOKE)[0]


def test_a_retaken_ideal_xray_is_the_physical_xray_of_its_skull(monkeypatch):
    """A dry skull's ideal x-ray holds its line integrals of bone: re-taken by the book's scanner it is, to float
    rounding and an 8-bit level, the x-ray ``realcase.acquire`` takes of the volume itself with the same noise,
    both read back alike (the beam hardening undone for the usual radiograph tube)."""
    volume, d, ideal = _skull_xray()
    monkeypatch.setattr(acquisition, "random_scanner", lambda g, chi: book_scanner(SMOKE))
    seed = 3
    retaken = acquisition.physical_xrays(ideal[None, None], 1.0, seed=seed, chi=SMOKE.chi)[0, 0]
    direct, _ = realcase.acquire(volume, d, SMOKE, "physical", seed=seed * 31)
    assert (retaken - direct).abs().max() < 2.5 / 255
    assert (retaken - ideal).abs().max() > 0.05, "and it is not the ideal x-ray"


def test_a_perfect_monochromatic_scanner_gives_back_the_ideal_xray(monkeypatch):
    """No noise, blur or scatter, one energy at which densities are defined, read as from such a tube: only the
    8-bit storage remains."""
    _, _, ideal = _skull_xray()
    perfect = microct.Scanner(chi=SMOKE.chi, photons=None, blur=0.0, scatter=0.0, monochromatic=True)
    monkeypatch.setattr(acquisition, "random_scanner", lambda g, chi: perfect)
    monkeypatch.setattr(acquisition, "reading_tube", lambda chi: microct.Scanner(chi=chi, monochromatic=True))
    retaken = acquisition.physical_xrays(ideal[None, None], 1.0, seed=0, chi=SMOKE.chi)[0, 0]
    assert (retaken - ideal).abs().max() < 0.03


def test_the_share_is_seeded_and_the_drawn_scanners_lie_in_range():
    x = torch.stack([_skull_xray(d)[2][None] for d in ((0.3, 0.8, 0.5), (1, 0, 0.2), (0, 1, 0.1), (0.5, 0.5, 1))])
    assert acquisition.physical_xrays(x, 0.0, seed=1) is x
    assert torch.equal(acquisition.physical_xrays(x, 0.5, seed=1), acquisition.physical_xrays(x, 0.5, seed=1))
    every = acquisition.physical_xrays(x, 1.0, seed=1)
    assert all((every[i] - x[i]).abs().max() > 0.01 for i in range(len(x)))
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        s = acquisition.random_scanner(g)
        for name, (lo, hi) in acquisition.RANGES.items():
            assert lo <= getattr(s, name) <= hi, name
    with pytest.raises(ValueError, match="share"):
        acquisition.physical_xrays(x, 1.5, seed=0)
    with pytest.raises(ValueError, match=r"\[B, 1, S, S\]"):
        acquisition.physical_xrays(x[:, 0], 0.5, seed=0)


def test_a_run_retakes_its_xrays_and_resumes_only_with_the_same_share(tmp_path, monkeypatch):
    p = get_profile("smoke").replace(model="tiny", xray_size=8, volume_size=8, batch_size=4, val_every=2,
                                     checkpoint_every=2, val_samples=3, steps=2, lr=0.01, physical=1.0)
    seen = []
    retake = acquisition.physical_xrays
    monkeypatch.setattr(T, "physical_xrays", lambda x, share, seed, chi: seen.append(share) or retake(x, share,
                                                                                                     seed, chi))
    data = (random_pairs(7, 0), random_pairs(5, 1))
    T.train(p, out_dir=tmp_path, progress=False, data=data)
    assert seen == [1.0, 1.0]
    with pytest.raises(T.CheckpointError, match=r"physical: 1.0 there, 0.5 here"):
        T.train(p.replace(physical=0.5, steps=4), resume=True, out_dir=tmp_path, progress=False, data=data)
    with pytest.raises(ValueError, match="physical must be a share"):
        get_profile("smoke", physical=1.5)

