"""Real CTs among the training samples (``xtomo train --ct``): found by path or name, mixed in by share,
recorded in the checkpoint and the shipped model's manifest, and a resumed run held to them."""

import hashlib

import numpy as np
import pytest
import torch
from conftest import cli, require

from xtomo.data import io, realdata, realmix
from xtomo.data.datasets import ProceduralBank, TensorBank, XrayDataset
from xtomo.evaluation import realcase
from xtomo.learning import shipped
from xtomo.learning import train as T
from xtomo.learning.train import load_checkpoint, train
from xtomo.profiles import get_profile
from xtomo.specimens import crania

SMOKE = get_profile("smoke")


@pytest.fixture(scope="module")
def ct_file(tmp_path_factory):
    """A skull CT as a reader might have one: a procedural skull of another seed, saved as .npy."""
    p = SMOKE.replace(seed=SMOKE.seed + 7)
    path = tmp_path_factory.mktemp("ct") / "skull.npy"
    np.save(path, ProceduralBank(p, cache_dir=None).volume(0).numpy())
    return path


def test_find_names_a_file_by_its_sha256_and_a_folder_by_its_files(ct_file, tmp_path):
    ct = realmix.find_ct(str(ct_file))
    assert ct.name == str(ct_file) and ct.path == ct_file
    assert ct.sha256 == hashlib.sha256(ct_file.read_bytes()).hexdigest()
    folder = tmp_path / "series"
    folder.mkdir()
    (folder / "a.dcm").write_bytes(b"one")
    (folder / "b.dcm").write_bytes(b"two")
    before = realmix.find_ct(str(folder)).sha256
    (folder / "b.dcm").write_bytes(b"tw0")
    assert realmix.find_ct(str(folder)).sha256 != before
    with pytest.raises(FileNotFoundError, match="not a fetched real head .*head, second-head"):
        realmix.find_ct(str(tmp_path / "missing.nii"))


def test_a_named_head_that_was_not_fetched_says_how_to_fetch_it(monkeypatch, tmp_path):
    monkeypatch.setenv("XTOMO_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="xtomo fetch-data"):
        realmix.find_ct("second-head")


def test_a_head_held_out_of_the_shipped_model_is_found_by_name_and_read_with_its_own_bone():
    """``--ct 'third head'``, a fetched head for studies that hold out another, is read as ``xtomo evaluate --bone``
    reads its file (8-bit windowed values, not CT numbers)."""
    name, found = next(iter(realdata.UNSEEN_HEADS.items()))
    require((realdata.data_dir() / found["file"]).exists(), "the fetched heads (fetch-data)")
    ct = realmix.find_ct(name)
    assert ct.path == realdata.path(found["file"])
    assert ct.sha256 == hashlib.sha256(ct.path.read_bytes()).hexdigest()
    torch.testing.assert_close(ct.volume(32), io.load_volume(ct.path, size=32, bone=found["bone"], upright=True))


def test_mixed_takes_its_share_from_the_ct_read_as_xtomo_evaluate_reads_it(ct_file):
    p = SMOKE
    base = XrayDataset(ProceduralBank(p, cache_dir=None), [0], p)
    mixed = realmix.mixed(base, [realmix.find_ct(str(ct_file))], p, share=0.5)
    picked = [i for i in range(len(mixed)) if mixed.from_extra(i)]
    assert 0.3 < len(picked) / len(mixed) < 0.7
    volume = io.load_volume(ct_file, size=p.volume_size, upright=True)
    alone = XrayDataset(TensorBank([volume]), [0], p.replace(stretch=realmix.STRETCH, pose=realmix.POSE),
                        augment=True)
    item = mixed[picked[0]]
    assert item["specimen"] == -1
    torch.testing.assert_close(item["volume"], alone[picked[0] % len(alone)]["volume"], rtol=0, atol=0)
    with pytest.raises(ValueError, match="no real CTs"):
        realmix.mixed(base, [], p)


def test_a_run_with_a_ct_records_it_and_resumes_only_with_it(ct_file, tmp_path):
    run = tmp_path / "run"
    train(SMOKE, steps=3, minutes=0, out_dir=run, progress=False, real=[str(ct_file)], real_share=0.5)
    ck = load_checkpoint(run / "checkpoint.pt")
    digest = hashlib.sha256(ct_file.read_bytes()).hexdigest()
    assert ck["real"] == dict(cts=[dict(name=str(ct_file), sha256=digest)], share=0.5, stretch=realmix.STRETCH,
                              pose=realmix.POSE)
    assert ck["generator"] == crania.VERSION   # the crania, with a CT beside them
    for other in (dict(real=[str(ct_file)], real_share=0.25), dict()):
        with pytest.raises(ValueError, match=r"trained on real CTs .*skull.npy .* as 50% of the samples"):
            train(SMOKE, steps=3, resume=True, out_dir=run, progress=False, **other)
    summary = train(SMOKE, steps=3, resume=True, out_dir=run, progress=False, real=[str(ct_file)], real_share=0.5)
    assert summary["step"] == 3
    info = shipped.export(run / "checkpoint.pt", name="tiny", folder=tmp_path / "shipped")
    assert info["commands"][0] == f"xtomo train --profile smoke --steps 3 --ct {ct_file} --ct-share 0.5"
    assert info["real"] == ck["real"] and shipped.runs(info)[0]["real"] == ck["real"]
    assert "with real CTs" not in shipped.how_made(info)  # one run: told without the per-run recipes
    assert "with real CTs (" in shipped._recipe(shipped.runs(info)[0])


def test_the_train_command_names_a_ct_it_cannot_find(tmp_path):
    result = cli("train", "--profile", "smoke", "--ct", "nope.nii", "--out", str(tmp_path))
    assert result.returncode != 0 and "--ct 'nope.nii': no such file or folder" in result.stderr
    assert not (tmp_path / "checkpoint.pt").exists()


def test_the_train_command_passes_its_cts(monkeypatch):
    seen = []
    monkeypatch.setattr(T, "train", lambda profile, **kw: seen.append((kw["real"], kw["real_share"])) or
                        dict(world_size=1, step=1, total_steps=1, val_l2=0.5, baseline_l2=1.0, checkpoint="ck.pt"))
    cli("train", "--profile", "smoke", "--ct", "a.nii", "--ct", "head", "--ct-share", "0.4")
    cli("train", "--profile", "smoke")
    assert seen == [(["a.nii", "head"], 0.4), ([], realmix.SHARE)]


def test_held_out_finds_the_shipped_model_that_never_saw_a_ct(ct_file, tmp_path, monkeypatch):
    """The shipped model stands for a real CT it did not train on; where it did, its recipe without that CT
    (``<name>-without-<file>``) does, and chapters 5 and 6 score that one beside it."""
    folder, with_ct, without = tmp_path / "shipped", tmp_path / "with", tmp_path / "without"
    train(SMOKE, steps=1, out_dir=with_ct, progress=False, real=[str(ct_file)])
    train(SMOKE, steps=1, out_dir=without, progress=False)
    shipped.export(with_ct / "checkpoint.pt", name="quick", folder=folder)
    ct, other = realmix.find_ct(str(ct_file)), realmix.RealCT("other", ct_file, "0" * 64)
    assert shipped.trained_on(shipped.manifest("quick", folder)) == {ct.sha256}
    assert shipped.held_out(other, "quick", folder) == "quick" and shipped.held_out(ct, "quick", folder) is None
    shipped.export(without / "checkpoint.pt", name="quick-without-skull.npy", folder=folder)
    assert shipped.held_out(ct, "quick", folder) == "quick-without-skull.npy"
    monkeypatch.setattr(shipped, "FOLDER", folder)
    fair = realcase.held_out_network(ct, {"ours_shipped": None}, SMOKE)
    assert list(fair) == ["ours_held_out"] and isinstance(fair["ours_held_out"], torch.nn.Module)
    assert realcase.held_out_network(other, {"ours_shipped": None}, SMOKE) == {}
    assert realcase.held_out_network(ct, {}, SMOKE) == {}   # no shipped model among ours: nothing to stand in for


def recipe(run: dict) -> dict:
    """A run record's recipe: what it was made with, but for its command, real CTs, time and code; a field at 0 or
    None was not used, as one that a run recorded before the field existed lacks."""
    return {k: v for k, v in run.items() if k not in ("command", "real", "seconds", "code_version") and v}


def test_the_shipped_model_saw_every_real_head_and_each_held_out_model_all_but_one():
    """The package's model trained on the fetched heads (by their files' sha256), and for each head a model made by
    the same last run without it ships beside it, started from the same weights, and never saw that head."""
    require(all((realdata.data_dir() / h.file).exists() for h in realmix.NAMED.values()), "the real heads (fetch-data)")
    heads = {key: realmix.find_ct(key) for key in realmix.NAMED}
    info = shipped.manifest()
    assert shipped.trained_on(info) == {ct.sha256 for ct in heads.values()}
    last = shipped.runs(info)[-1]
    for key, ct in heads.items():
        name = shipped.held_out(ct)
        assert name == f"{shipped.NAME}-without-{key}"
        fair = shipped.manifest(name)
        assert shipped.trained_on(fair) == {c.sha256 for k, c in heads.items() if k != key}
        assert fair["based_on"]["sha256"] == info["based_on"]["sha256"]
        alone = shipped.runs(fair)[-1]
        assert recipe(alone) == recipe(last)
        assert alone["command"] == last["command"].replace(f" --ct {key}", "")
