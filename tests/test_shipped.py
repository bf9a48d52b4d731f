"""The shipped model: exported in half precision with a manifest, verified on load, used by default."""

import pytest
import torch
from conftest import cli

import xtomo
from xtomo.data import io
from xtomo.files import read_json
from xtomo.learning import shipped
from xtomo.learning.train import load_checkpoint, model_from_checkpoint, train
from xtomo.profiles import get_profile
from xtomo.specimens import crania

SMOKE = get_profile("smoke")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A smoke network trained for 12 steps, resumed once, then exported into a folder of its own."""
    run, folder = tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("shipped")
    train(SMOKE, steps=12, minutes=0, out_dir=run, progress=False)   # stops after its first step
    train(SMOKE, steps=12, resume=True, out_dir=run, progress=False)
    info = shipped.export(run / "checkpoint.pt", name="tiny", folder=folder)
    return run / "checkpoint.pt", folder, info


def test_manifest_says_how_the_model_was_made(exported):
    checkpoint, folder, info = exported
    ck = load_checkpoint(checkpoint)
    weights, manifest = shipped.paths("tiny", folder)
    assert read_json(manifest) == info
    assert info["sha256"] == shipped._sha256(weights) and info["bytes"] == weights.stat().st_size
    assert info["commands"][0] == "xtomo train --profile smoke --steps 12"
    assert info["step"] == 12 and info["samples_seen"] == 12 * SMOKE.batch_size
    assert info["seed"] == SMOKE.seed and info["code_version"] == ck["code_version"]
    assert info["machine"] == ck["machine"] and info["generator"] == ck["generator"] == crania.VERSION
    assert [row["step"] for row in info["validation"]] == [row["step"] for row in ck["history"]]
    # two segments (the first stopped after one step): their clocks add up
    # the run was resumed once (its first part stopped after one step): its clock went on from the log
    seconds = [row["seconds"] for row in ck["history"]]
    assert ck["history"][0]["step"] == 1 and seconds == sorted(seconds) and info["wall_seconds"] == seconds[-1]


def test_weights_are_half_precision_and_give_the_same_volumes(exported):
    checkpoint, folder, _ = exported
    stored = torch.load(shipped.paths("tiny", folder)[0], weights_only=True)
    assert all(v.dtype == torch.float16 for v in stored["model"].values() if v.is_floating_point())
    original = model_from_checkpoint(load_checkpoint(checkpoint))
    loaded = shipped.load("tiny", folder)
    x = torch.rand(2, 1, SMOKE.xray_size, SMOKE.xray_size)
    with torch.no_grad():
        a, b = original(x), loaded(x)
    # float16 keeps 11 significant bits: weights within 2^-11 relative, outputs within a few of that
    assert (a - b).abs().max() <= 1e-2 * a.abs().max()


def test_the_exposure_span_ships_with_the_model_and_is_never_guessed(exported, tmp_path):
    """The checkpoint's span goes into the weights and the manifest; a checkpoint from before spans
    were measured ships without one (its network answers x-rays as given), not with the crania's."""
    checkpoint, folder, info = exported
    span = load_checkpoint(checkpoint)["exposure"]
    assert info["exposure"] == pytest.approx(list(span))
    assert shipped.load("tiny", folder).exposure == pytest.approx(span)
    old = tmp_path / "old.pt"
    torch.save({k: v for k, v in load_checkpoint(checkpoint).items() if k != "exposure"}, old)
    assert shipped.export(old, name="old", folder=tmp_path)["exposure"] is None
    assert shipped.load("old", tmp_path).exposure is None


def test_an_altered_or_missing_model_is_refused(exported, tmp_path):
    _, folder, info = exported
    weights, manifest = shipped.paths("tiny", folder)
    copy = tmp_path / "copy"
    copy.mkdir()
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF   # one byte changed
    (copy / weights.name).write_bytes(bytes(data))
    (copy / manifest.name).write_text(manifest.read_text())
    with pytest.raises(shipped.ShippedModelError, match=f"manifest says {info['sha256']}"):
        shipped.load("tiny", copy)
    with pytest.raises(shipped.ShippedModelError, match="no shipped model 'other'"):
        shipped.load("other", copy)


def test_a_model_too_large_to_ship_is_refused(exported, tmp_path, monkeypatch):
    checkpoint, _, _ = exported
    monkeypatch.setattr(shipped, "MAX_BYTES", 1000)
    with pytest.raises(shipped.ShippedModelError, match="over the 0 MiB"):
        shipped.export(checkpoint, name="big", folder=tmp_path)
    assert list(tmp_path.iterdir()) == []   # nothing half-written is left


def test_load_model_and_reconstruct_use_the_shipped_model_by_default(exported, tmp_path, monkeypatch):
    _, folder, _ = exported
    monkeypatch.setattr(shipped, "FOLDER", folder)
    monkeypatch.setattr(shipped, "NAME", "tiny")
    assert isinstance(xtomo.load_model(), torch.nn.Module)
    io.save_xray(torch.rand(32, 32) * 0.5 + 0.5, tmp_path / "x.png", bits=16)
    done = cli("reconstruct", str(tmp_path / "x.png"), "--out", str(tmp_path / "v.npz"), "--no-fusion")
    assert done.returncode == 0, done.stderr
    assert io.load_volume(tmp_path / "v.npz", size=32, fit=False).shape == (32, 32, 32)


def test_export_model_command(exported, tmp_path):
    checkpoint, _, _ = exported
    done = cli("export-model", str(checkpoint), "--name", "cli", "--folder", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "samples seen" in done.stdout and shipped.available("cli", tmp_path)
    bad = cli("export-model", str(tmp_path / "none.pt"))
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


# --- the model in the package ------------------------------------------------------------------

QUICK = get_profile("quick")
PRETRAINED = get_profile("pretrained")   # the profile the shipped model was trained at (batches of 8)


def test_the_package_ships_a_model_trained_on_the_books_crania():
    """``xtomo/learning/pretrained/quick.pt``: under 16 MiB, its sha256 the manifest's, trained by the
    documented command on the crania, sizes and species split of the book's default profile (a new
    crania generator or split needs a new model: this test says so)."""
    info = shipped.manifest()
    weights = shipped.paths()[0]
    assert weights.stat().st_size == info["bytes"] < shipped.MAX_BYTES
    assert shipped._sha256(weights) == info["sha256"]
    assert info["commands"][0].startswith("xtomo train --profile pretrained")
    assert shipped.same_data(info, QUICK), "the crania or the split changed since the shipped model was trained"
    assert info["samples_seen"] == info["step"] * PRETRAINED.batch_size and info["step"] == info["total_steps"]
    assert [row["step"] for row in info["validation"]] == sorted(row["step"] for row in info["validation"])


def test_the_shipped_model_scores_what_its_manifest_says_on_held_out_species():
    """The file is the network its manifest describes: the held-out L2 on the training run's own
    validation samples, recomputed from the float16 weights, is the recorded one to within float16's
    rounding (outputs change by about 1e-3 relative: 1 % is ample), and it is far below the error of
    predicting the mean training volume (the learning test's bound for 100 smoke steps is 0.92; the
    shipped run ends near 0.5, so 0.7 fails only for a model that did not learn)."""
    from xtomo.learning.train import train_val_sets, validation_indices, validation_l2

    info = shipped.manifest()
    _, val_set = train_val_sets(QUICK)
    picks = validation_indices(QUICK, len(val_set))
    measured = validation_l2(shipped.load(), val_set, picks, PRETRAINED.batch_size, "cpu")
    assert measured == pytest.approx(info["val_l2"], rel=0.01)
    assert measured < 0.7 * info["baseline_l2"]


def test_a_model_shipped_for_a_profile_stands_for_it(exported, monkeypatch):
    """A model named after a profile (``paper``'s, made on a GPU) evaluates that profile when it was
    trained on its data; otherwise the default shipped model does, or none."""
    import shutil

    _, folder, info = exported
    monkeypatch.setattr(shipped, "FOLDER", folder)
    monkeypatch.setattr(shipped, "NAME", "tiny")
    assert shipped.name_for(SMOKE) == "tiny"
    for suffix in (".pt", ".json"):
        shutil.copy(folder / f"tiny{suffix}", folder / f"smoke{suffix}")
    try:
        assert shipped.name_for(SMOKE) == "smoke"
        assert shipped.for_profile(SMOKE)[1] == info["sha256"]
        other = SMOKE.replace(seed=SMOKE.seed + 1)  # named smoke, but another split: neither model fits
        assert shipped.name_for(other) == "tiny" and shipped.for_profile(other) == (None, None)
    finally:
        for suffix in (".pt", ".json"):
            (folder / f"smoke{suffix}").unlink()


def test_a_model_fine_tuned_from_the_shipped_one_carries_its_history(exported, tmp_path, monkeypatch):
    """``xtomo train --init shipped`` then ``export-model``: the manifest tells both runs end to end (their
    commands in order, steps, samples and wall time summed, one validation curve whose steps, samples
    and clock go on from the first run's) and names the weights it started from by their sha256."""
    _, folder, first = exported
    monkeypatch.setattr(shipped, "FOLDER", folder)
    monkeypatch.setattr(shipped, "NAME", "tiny")
    tuned = SMOKE.replace(lr=SMOKE.lr / 3, blur=1.0, gain=1.5, individuals=2)
    train(tuned, steps=8, out_dir=tmp_path, progress=False, init="shipped")
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck["based_on"]["sha256"] == first["sha256"]
    info = shipped.export(tmp_path / "checkpoint.pt", name="tuned", folder=folder)
    later_run = "xtomo train --profile smoke --steps 8 --init shipped --blur 1 --gain 1.5 --individuals 2"
    assert info["commands"] == first["commands"] + [later_run, "xtomo export-model CHECKPOINT --name tuned"]
    assert info["step"] == first["step"] + 8 == info["total_steps"]
    assert info["samples_seen"] == first["samples_seen"] + 8 * SMOKE.batch_size
    assert info["wall_seconds"] == pytest.approx(first["wall_seconds"] + ck["history"][-1]["seconds"])
    assert info["validation"][:len(first["validation"])] == first["validation"]
    later = info["validation"][len(first["validation"]):]
    assert [r["step"] for r in later] == [first["step"] + r["step"] for r in ck["history"]]
    assert [r["val_l2"] for r in later] == [r["val_l2"] for r in ck["history"]]
    for key in ("step", "samples", "seconds"):
        values = [r[key] for r in info["validation"]]
        assert values == sorted(values)
    assert info["based_on"]["sha256"] == first["sha256"] and info["based_on"]["step"] == first["step"]
    assert info["profile"]["blur"] == 1.0 and info["profile"]["gain"] == 1.5
    # what a reader is told: the first model alone, then both runs in order and what the last one changed
    assert "fine-tuned" not in shipped.how_made(first)
    told = shipped.how_made(info, live_samples=123)
    assert f"**{info['samples_seen']:,}**" in told and "chapter 3's saw 123" in told
    assert "trained in 2 runs" in told and "8 steps on crania" in told and "between 1/1.5 and 1.5" in told
    assert "2 individuals of each training species" in told
    runs = [told.index(f"`{c}`") for c in (first["commands"][0], later_run)]
    assert runs == sorted(runs)
    # each run recorded by itself, and kept when the fine-tuned model is fine-tuned again
    assert [r["steps"] for r in info["runs"]] == [first["step"], 8]
    assert [r["gain"] for r in info["runs"]] == [SMOKE.gain, 1.5] and info["runs"][0] == first["runs"][0]
    assert shipped.runs(info) == info["runs"]
    # a manifest from before runs were recorded tells the same two runs from its based_on
    legacy = {k: v for k, v in info.items() if k != "runs"}
    assert shipped.runs(legacy)[0] == info["runs"][0]
    assert shipped.runs(legacy)[1] == dict(info["runs"][1], seconds=pytest.approx(info["runs"][1]["seconds"]))
