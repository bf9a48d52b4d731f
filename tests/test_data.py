"""The on-the-fly dataset: counts, determinism, mirroring, workers, the shared file path."""
import numpy as np
import pytest
import torch

from xtomo.data import datasets
from xtomo.imaging import xray
from xtomo.profiles import get_profile

SMOKE = get_profile("smoke")


def test_paper_counts():
    c = datasets.counts("paper")
    assert c["samples"] == datasets.PAPER_COUNTS["samples"] == 466_200
    assert c["val_samples"] == datasets.PAPER_COUNTS["val_samples"] == 53_280
    assert c["train_samples"] + c["val_samples"] == c["samples"]


def test_dataset_items_deterministic_and_shaped():
    bank = datasets.ProceduralBank(SMOKE)
    ds = datasets.XrayDataset(bank, [0, 1], SMOKE)
    assert len(ds) == 2 * SMOKE.n_views * 2
    item = ds[5]
    assert item["xray"].shape == (1, SMOKE.xray_size, SMOKE.xray_size)
    assert item["volume"].shape == (SMOKE.volume_size,) * 3
    assert 0 < item["xray"].min() and item["xray"].max() <= 1
    again = datasets.XrayDataset(datasets.ProceduralBank(SMOKE, cache_dir=None), [0, 1], SMOKE)[5]
    assert torch.equal(item["xray"], again["xray"]) and torch.equal(item["volume"], again["volume"])


def test_xray_is_the_composite_of_the_target_volume():
    """Where x-ray and volume share a resolution, the x-ray is exactly Eq. 1 of the target."""
    bank = datasets.ProceduralBank(SMOKE, cache_dir=None)
    item = datasets.XrayDataset(bank, [2], SMOKE)[3]
    assert torch.allclose(item["xray"][0], xray.composite(item["volume"], SMOKE.chi), atol=1e-6)


def test_mirrored_pairs():
    ds = datasets.XrayDataset(datasets.ProceduralBank(SMOKE, cache_dir=None), [0], SMOKE)
    plain, mirrored = ds[6], ds[7]
    assert plain["view"] == mirrored["view"] and mirrored["mirrored"] and not plain["mirrored"]
    assert torch.equal(mirrored["xray"], plain["xray"].flip(-1))
    assert torch.equal(mirrored["volume"], plain["volume"].flip(-1))


def test_lateral_downsampling_keeps_the_paper_ratio():
    p = SMOKE.replace(volume_size=16, xray_size=32)
    item = datasets.XrayDataset(datasets.ProceduralBank(p, cache_dir=None), [0], p)[0]
    assert item["xray"].shape == (1, 32, 32) and item["volume"].shape == (16, 16, 16)
    # the x-ray averaged down in optical depth is the composite of the target volume
    depth = -torch.log(item["xray"][0]) / p.chi
    coarse = torch.nn.functional.avg_pool2d(depth[None], 2)[0]
    assert torch.allclose(coarse, item["volume"].mean(0), atol=1e-5)


@pytest.mark.parametrize("sizes", [(16, 32), (32, 32)], ids=["averaged-down", "same-size"])
def test_samples_made_in_a_batch_equal_those_made_one_by_one(sizes):
    """``make_sample`` on a batch of views (what ``SampleBank`` regenerates) gives every view's
    x-ray and target bit for bit as single calls do, laterally averaged down or not."""
    p = SMOKE.replace(volume_size=sizes[0], xray_size=sizes[1])
    bank = datasets.ProceduralBank(p, cache_dir=None)
    volume, dirs = bank.volume(0), datasets.XrayDataset(bank, [0], p).directions(0)[:5]
    alphas, targets = datasets.make_sample(volume.expand(len(dirs), -1, -1, -1), dirs, p)
    assert alphas.shape == (5, sizes[1], sizes[1]) and targets.shape == (5, p.n_steps, sizes[0], sizes[0])
    for d, alpha, target in zip(dirs, alphas, targets):
        one_alpha, one_target = datasets.make_sample(volume, d, p)
        assert torch.equal(alpha, one_alpha) and torch.equal(target, one_target)


def test_disk_cache_round_trip(tmp_path):
    bank = datasets.ProceduralBank(SMOKE, cache_dir=tmp_path)
    v = bank.volume(1)
    files = list(tmp_path.glob("*.npy"))
    assert len(files) == 1
    assert torch.equal(datasets.ProceduralBank(SMOKE, cache_dir=tmp_path).volume(1), v)


def test_dataloader_workers_match_direct_access():
    ds = datasets.XrayDataset(datasets.ProceduralBank(SMOKE), [0, 1], SMOKE)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    batch = next(iter(loader))
    for i in range(4):
        assert torch.equal(batch["xray"][i], ds[i]["xray"])
        assert torch.equal(batch["volume"][i], ds[i]["volume"])


def test_split_species_never_mix():
    manifest = datasets.simulate_collection(SMOKE, progress=False)
    assert len(manifest["val"]) == SMOKE.n_val_species
    assert not set(manifest["train"]) & set(manifest["val"])
    assert manifest["counts"]["samples"] == SMOKE.n_species * SMOKE.n_views * 2


def test_individuals_extend_training_species_only():
    """With ``individuals`` the bank holds further individuals of every species after the first, and
    training takes them for its species alone: the held-out species stay one specimen each, unseen."""
    from xtomo.learning.train import train_val_sets
    from xtomo.specimens import crania

    p = SMOKE.replace(individuals=3)
    bank = datasets.ProceduralBank(p, cache_dir=None)
    n = SMOKE.n_species
    assert len(bank) == 3 * n and bank.specimen(n + 2) == (2, 1) and bank.specimen(2 * n) == (0, 2)
    assert all(bank.specimen(bank.index(s, i)) == (s, i) for s in range(n) for i in range(3))
    assert bank.name(2) == bank.species[2].name and bank.name(n + 2) == f"{bank.species[2].name}, individual 1"
    second = crania.skull(bank.species[2], p.volume_size, individual_index=1, seed=p.seed)
    assert torch.equal(bank.volume(n + 2), second)
    assert not torch.equal(bank.volume(n + 2), bank.volume(2))
    with pytest.raises(IndexError, match="outside the bank"):
        bank.specimen(3 * n)
    train, val = train_val_sets(p)
    plain_train, plain_val = train_val_sets(SMOKE)
    species = set(plain_train.specimens)
    assert set(train.specimens) == {k + i * n for i in range(3) for k in species}
    assert val.specimens == plain_val.specimens and max(val.specimens) < n
    with pytest.raises(ValueError, match="individuals"):
        SMOKE.replace(individuals=0)


def test_file_volumes_share_the_code_path(tmp_path):
    """A CT volume on disk goes through the same dataset as the procedural crania."""
    n = 32
    t = np.linspace(-1, 1, 40)
    z, y, x = np.meshgrid(t, t, t, indexing="ij")
    ct = np.where(x**2 / 0.5 + y**2 + z**2 / 0.7 < 0.6, 1500.0, -1000.0).astype(np.float32)
    np.save(tmp_path / "ct.npy", ct)
    bank = datasets.FileBank([tmp_path / "ct.npy"], size=n, hu_window=(150, 2000))
    item = datasets.XrayDataset(bank, None, SMOKE.replace(volume_size=n, xray_size=n))[0]
    assert item["volume"].shape == (n, n, n) and item["xray"].min() < 0.9


def test_bad_specimen_indices():
    with pytest.raises(ValueError, match="outside the bank"):
        datasets.XrayDataset(datasets.ProceduralBank(SMOKE, cache_dir=None), [99], SMOKE)
