"""NN and ORACLE, the behaviour mutation testing found untested: the documented defaults (thumbnail,
pool, ``k``), the thumbnails' definition at another extinction coefficient, a bank larger than one
search chunk, the progress bars, and the error messages that name the input."""
from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from xtomo.imaging import xray
from xtomo.learning.train import train_val_sets
from xtomo.methods import baselines
from xtomo.methods.baselines import Match, SampleBank, thumbnail
from xtomo.profiles import get_profile

SMOKE = get_profile("smoke")


def exactly(message):
    """A ``pytest.raises`` pattern that matches the whole message and nothing more."""
    return "^" + re.escape(message) + "$"


@pytest.fixture(scope="module")
def train_set():
    return train_val_sets(SMOKE)[0]


@pytest.fixture(scope="module")
def bank(train_set):
    return SampleBank(train_set, thumb=8, progress=False).build()


def test_defaults_are_the_documented_ones(train_set):
    """Thumbnails of 32 pixels made without oversampling, a pool of 2k for ORACLE, progress shown."""
    b = SampleBank(train_set)
    assert (b.thumb, b.oversample, b.oracle_pool, b.progress) == (32, 1, 2, True)
    assert b.chunk == 512
    assert b.nbytes == len(b) * 32 * 32 * 2             # float16 thumbnails of the default side


def test_coarse_volumes_are_half_the_thumbnail_and_at_least_two(train_set):
    for thumb, side in ((8, 4), (4, 2), (3, 2), (2, 2)):
        b = SampleBank(train_set, thumb=thumb, progress=False)
        xrays, volumes = b._coarse(train_set.specimens[0], volumes=True)
        assert xrays.shape == (SMOKE.n_views, thumb, thumb)
        assert volumes.shape == (SMOKE.n_views, side, side, side)


def test_thumbnails_follow_their_definition_at_another_chi():
    """The docstring's definition: the specimen averaged down to ``oversample * thumb`` voxels, aligned
    at that resolution (as many depth steps as voxels), composited with the profile's chi and
    area-averaged to ``thumb``. A chi other than the default 10 and a fine side (16) other than the
    default 128 steps make both settings count. Same operations in float32, then float16 as the bank
    stores them: the float16 rounding of equal inputs is equal, but the chunked alignment may
    differ in the last float32 bit, so one float16 ulp (2^-11 relative, values <= 1) is allowed.
    """
    p = SMOKE.replace(chi=4.0)
    ds = train_val_sets(p)[0]
    t, over = 8, 2
    b = SampleBank(ds, thumb=t, oversample=over, chunk=3, progress=False).build()
    fine = t * over
    for i, s in enumerate(ds.specimens[:2]):
        small = F.adaptive_avg_pool3d(ds.bank.volume(s)[None, None], fine)[0, 0]
        dirs = ds.directions(s)
        aligned = xray.align(small.expand(len(dirs), -1, -1, -1), dirs, n_steps=fine, size=fine)
        expected = thumbnail(torch.exp(-p.chi * aligned.mean(-3)), t)     # Beer-Lambert, dt = 1 / fine
        got = b.xrays[i * p.n_views:(i + 1) * p.n_views].float()
        assert torch.allclose(got, expected, rtol=2 ** -10, atol=2 ** -11)


def test_a_cache_of_the_right_shape_is_read_not_rebuilt(train_set, tmp_path, monkeypatch):
    import numpy as np

    path = tmp_path / "bank.npy"
    b = SampleBank(train_set, thumb=4, progress=False)
    stored = np.full((len(b), 4, 4), 0.5, np.float16)                 # not what build would make
    np.save(path, stored)
    monkeypatch.setattr(SampleBank, "_coarse", lambda *a, **k: pytest.fail("rebuilt a matching cache"))
    assert torch.equal(b.build(path).xrays, torch.from_numpy(stored))


class _Bar:
    """A stand-in for tqdm that records how it was asked to show progress."""

    calls: list = []

    def __init__(self, iterable=None, **kwargs):
        self.iterable = iterable
        _Bar.calls.append(kwargs)

    def __iter__(self):
        return iter(self.iterable)


@pytest.mark.parametrize("progress", [True, False])
def test_progress_bars_name_their_work(train_set, monkeypatch, progress):
    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", _Bar)
    monkeypatch.setattr(_Bar, "calls", [])
    kwargs = {} if progress else {"progress": False}                  # progress is shown by default
    b = SampleBank(train_set, thumb=4, **kwargs).build()
    b.oracle(train_set[0]["volume"][None], k=1)
    assert _Bar.calls == [dict(desc="x-ray bank", unit="specimen", disable=not progress),
                          dict(desc="ORACLE search", unit="specimen", disable=not progress)]


def _spy(bank, monkeypatch):
    """Record the pools the search compares exactly and the views it regenerates for them."""
    pools, made = [], []
    refine, samples = SampleBank._refine, SampleBank.samples
    monkeypatch.setattr(bank, "_refine", lambda c, d: pools.append(list(c)) or refine(bank, c, d))
    monkeypatch.setattr(bank, "samples", lambda s, v: made.extend((s, i) for i in v) or samples(bank, s, v))
    return pools, made


def test_default_k_is_the_chapters_16(train_set, bank, monkeypatch):
    """NN compares its best ``k`` = 16 candidates at full size, ORACLE ``oracle_pool * k`` = 32
    (the bank holds 144 candidates, mirrors included, so neither pool is cut short); each
    (specimen, view) among them is regenerated once, mirrored or not."""
    assert 2 * len(bank) > 32
    item = train_set[3]
    pools, made = _spy(bank, monkeypatch)
    for search, query, size in ((bank.nn, item["xray"][0], 16), (bank.oracle, item["volume"], 32)):
        pools.clear(), made.clear()
        search(query[None])
        assert [len(pool) for pool in pools] == [size]
        views = [bank.locate(n) for n, _ in pools[0]]
        assert sorted(made) == sorted(set(views)) and len(set(views)) < size  # mirrors share a view


def test_k_of_one_is_allowed_and_finds_the_sample_itself(train_set, bank):
    item = train_set[10]
    for found in (bank.nn(item["xray"][0][None], k=1), bank.oracle(item["volume"][None], k=1)):
        assert [(m.specimen, m.view, m.mirrored, m.distance) for m in found] == \
            [(item["specimen"], item["view"], item["mirrored"], 0.0)]


def test_scores_are_mean_squared_distances_with_the_mirror_in_odd_columns():
    g = torch.Generator().manual_seed(0)
    queries, entries = torch.rand(3, 4, 5, generator=g), torch.rand(6, 4, 5, generator=g)
    got = baselines._scores(queries, entries)
    assert got.shape == (3, 12)
    for q in range(3):
        for e in range(6):
            plain = (queries[q] - entries[e]).square().mean()
            mirrored = (queries[q].flip(-1) - entries[e]).square().mean()
            # cdist in float32 over 20 values: rounding about 1e-6 relative
            assert got[q, 2 * e].item() == pytest.approx(plain.item(), rel=1e-5, abs=1e-7)
            assert got[q, 2 * e + 1].item() == pytest.approx(mirrored.item(), rel=1e-5, abs=1e-7)


def test_nn_over_a_bank_larger_than_one_search_chunk(train_set, monkeypatch):
    """A synthetic bank of 9 x 4096 = 36,864 entries (more than the 32,768 NN scores at once), whose
    thumbnails and full-size x-rays are chosen, checked against brute force over every entry.

    Entry ``A`` = 32,768 opens the second chunk. Query 1 *is* ``A``'s x-ray (a search that skips the
    chunk boundary misses it). Query 2 has ``A``'s thumbnail exactly but differs at full size, while
    entry ``B`` = 7 is query 2 at full size with a slightly worse thumbnail: with ``k`` = 2 the two
    candidates are ``A`` and ``B`` and the exact comparison must pick ``B`` (a search that scores
    ``A`` twice keeps only ``A``). Every other entry lies far away (values in [2, 3]).
    """
    b = SampleBank(train_set, thumb=2, progress=False)
    b.views = 4096
    n = len(b)
    assert n == 9 * 4096 > 32_768
    g = torch.Generator().manual_seed(1)
    full = 2 + torch.rand(n, 4, 4, generator=g)
    small = torch.tensor([[0.2, 0.8], [0.3, 0.9]])                       # far from its own mirror image
    q1 = small.repeat_interleave(2, 0).repeat_interleave(2, 1)
    q2 = q1 + 0.1 * torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(2, 2)  # same 2x2 block means as q1
    a, b_entry = 32_768, 7
    full[a], full[b_entry] = q1, q2
    thumbs = thumbnail(full, 2)
    thumbs[b_entry] += 0.05
    b.xrays = thumbs.half()

    def samples(specimen, views):
        first = b.dataset.specimens.index(specimen) * b.views
        return full[[first + v for v in views]], torch.zeros(len(views), 1, 1, 1)

    monkeypatch.setattr(b, "samples", samples)
    queries = torch.stack([q1, q2])
    found = b.nn(queries, k=2)
    for m, q in zip(found, queries):
        both = torch.stack([full, full.flip(-1)], 1)                      # [n, mirrored, 4, 4]
        brute = (both - q).square().mean((-2, -1))
        entry, mirrored = divmod(int(brute.argmin()), 2)
        assert b.locate(entry) == (m.specimen, m.view) and m.mirrored == bool(mirrored)
        assert m.distance == brute.min().item() == 0.0
    assert [b.locate(x) for x in (a, b_entry)] == [(m.specimen, m.view) for m in found]


def test_error_messages_name_the_input(train_set, bank):
    with pytest.raises(TypeError, match=exactly("SampleBank needs an XrayDataset, got list")):
        SampleBank([1, 2, 3])
    with pytest.raises(ValueError, match=exactly("SampleBank: thumb must be an integer >= 2, got 1")):
        SampleBank(train_set, thumb=1)
    assert SampleBank(train_set, thumb=2).thumb == 2
    with pytest.raises(ValueError, match=exactly("SampleBank: oracle_pool must be an integer >= 1, got 0")):
        SampleBank(train_set, oracle_pool=0)
    assert SampleBank(train_set, oracle_pool=1).oracle_pool == 1
    with pytest.raises(RuntimeError, match=exactly("SampleBank.nn: call build() first")):
        SampleBank(train_set, progress=False).nn(torch.rand(1, 32, 32))
    with pytest.raises(ValueError, match=exactly("expected a batch of x-rays with 3 dimensions, got (32, 32)")):
        bank.nn(torch.rand(32, 32))
    with pytest.raises(ValueError, match=exactly("expected a batch of volumes with 4 dimensions, got list")):
        bank.oracle([[0.0]])
    with pytest.raises(ValueError, match=exactly("the volumes contain NaN or inf")):
        bank.oracle(torch.full((1, 32, 32, 32), float("inf")))
    # ORACLE checks k itself: its pool (oracle_pool * k) would report another number
    with pytest.raises(ValueError, match=exactly("k must be an integer >= 1, got -1")):
        bank.oracle(torch.rand(1, 32, 32, 32), k=-1)
    with pytest.raises(ValueError, match=exactly("k must be an integer >= 1, got 0")):
        bank.nn(torch.rand(1, 32, 32), k=0)


def test_regenerated_mirrored_sample_is_the_mirror_image(train_set, bank):
    item = next(train_set[i] for i in range(len(train_set)) if not train_set[i]["mirrored"])
    plain = bank.sample(Match(item["specimen"], item["view"], False, 0.0))
    mirrored = bank.sample(Match(item["specimen"], item["view"], True, 0.0))
    assert torch.equal(mirrored[0], plain[0].flip(-1)) and torch.equal(mirrored[1], plain[1].flip(-1))
