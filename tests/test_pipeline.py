"""The device pipeline (``xtomo.data.pipeline``) makes the dataset's own samples, a batch at a time:
the same tensors as ``XrayDataset``/``ViewDataset`` items for the same indices (float32 storage:
the same arithmetic, batched; float16 storage: within the rounding of the stored volumes), and a
training run fed by it follows the run fed by a ``DataLoader`` step for step."""
from __future__ import annotations

import pytest
import torch

from xtomo.data.datasets import Mixed, ProceduralBank, TensorBank, ViewDataset, XrayDataset
from xtomo.data.pipeline import PIPELINES, DevicePipeline, use_device_pipeline
from xtomo.imaging import xray
from xtomo.learning import model as model_module
from xtomo.learning import train as T
from xtomo.learning.model import ModelConfig
from xtomo.profiles import get_profile

# x-rays twice the volumes' lateral size, so the targets are averaged down as in the paper (256 -> 128)
P = get_profile("smoke").replace(n_species=5, n_val_species=2, n_views=6, volume_size=8, xray_size=16)


@pytest.fixture(scope="module")
def dataset():
    return XrayDataset(ProceduralBank(P, cache_dir=None), [0, 2, 4], P)


def stacked(dataset, indices):
    items = [dataset[i] for i in indices]
    return torch.stack([it["xray"] for it in items]), torch.stack([it["volume"] for it in items])


def test_a_batch_is_the_datasets_items_stacked(dataset):
    indices = list(range(len(dataset)))[::-1]  # every specimen, view and mirror, out of order
    assert any(dataset.locate(i).mirrored for i in indices) and not all(dataset.locate(i).mirrored for i in indices)
    batch = DevicePipeline(dataset).batch(indices)
    want_x, want_v = stacked(dataset, indices)
    assert batch["xray"].shape == (len(indices), 1, 16, 16) and batch["volume"].shape == (len(indices), 8, 8, 8)
    torch.testing.assert_close(batch["xray"], want_x, rtol=0, atol=1e-6)
    torch.testing.assert_close(batch["volume"], want_v, rtol=0, atol=1e-6)


def test_float16_storage_costs_only_the_volumes_rounding(dataset):
    """float16 keeps 11 significant bits: a relative error of at most 2^-11 per stored voxel, which
    stays below that after the (convex) resampling and averaging; the x-ray's exponent amplifies it
    by at most chi * (path length) * 2^-11 relative, bounded here by its absolute error below."""
    indices = [0, 7, 13, 21, 30]
    half = DevicePipeline(dataset, storage=torch.float16)
    assert half.volumes.dtype == torch.float16 and half.nbytes == 3 * 8**3 * 2
    batch, (want_x, want_v) = half.batch(indices), stacked(dataset, indices)
    assert (batch["volume"] - want_v).abs().max() <= 2**-11 * want_v.abs().max()
    assert (batch["xray"] - want_x).abs().max() <= P.chi * 2**-11 * want_v.abs().max()
    assert (batch["volume"] - want_v).abs().max() > 0  # the rounding is real: the bound is not vacuous


def test_view_datasets_with_their_own_or_given_xrays():
    g = torch.Generator().manual_seed(3)
    bank = TensorBank([torch.rand(8, 8, 8, generator=g) for _ in range(3)])
    directions = xray.sample_directions(4, seed=2)
    given = torch.rand(4, 16, 16, generator=g)
    for xrays in (None, given):
        views = ViewDataset(bank, [2, 0, 2, 1], directions, P, xrays=xrays)
        indices = [7, 0, 3, 4, 1]
        batch, (want_x, want_v) = DevicePipeline(views).batch(indices), stacked(views, indices)
        torch.testing.assert_close(batch["xray"], want_x, rtol=0, atol=1e-6)
        torch.testing.assert_close(batch["volume"], want_v, rtol=0, atol=1e-6)


def test_batches_follow_the_sampler(dataset):
    pipe = DevicePipeline(dataset)
    sampler = [[1, 2], [5], [0, 0, 3]]
    for got, indices in zip(pipe.batches(sampler), sampler, strict=True):
        torch.testing.assert_close(got["xray"], stacked(dataset, indices)[0], rtol=0, atol=1e-6)


def test_auto_uses_the_device_pipeline_on_a_gpu_only():
    assert PIPELINES == ("auto", "device", "loader")
    assert use_device_pipeline("auto", "cuda:1") and not use_device_pipeline("auto", "cpu")
    assert use_device_pipeline("device", "cpu") and not use_device_pipeline("loader", "cuda")
    with pytest.raises(ValueError, match="use_device_pipeline: pipeline must be one of auto, device, loader, got 'gp"):
        use_device_pipeline("gpu", "cpu")


TINY = ModelConfig(in_size=16, slices=8, width=4, stem_width=2, levels=1, units_per_level=0,
                   bottom_units=1, up_units=0, stride=2)


def test_training_fed_by_the_pipeline_follows_the_loader_step_for_step(tmp_path, monkeypatch):
    monkeypatch.setitem(model_module.PRESETS, "tiny16", TINY)
    p = P.replace(model="tiny16", batch_size=4, steps=4, val_every=2, checkpoint_every=2, val_samples=5)
    bank = ProceduralBank(p, cache_dir=None)
    data = (XrayDataset(bank, [0, 1, 2], p), XrayDataset(bank, [3, 4], p))
    runs = {way: T.train(p, out_dir=tmp_path / way, progress=False, data=data, pipeline=way)
            for way in ("loader", "device")}
    loader, device = runs["loader"], runs["device"]
    assert device["baseline_l2"] == pytest.approx(loader["baseline_l2"], rel=1e-6)
    for a, b in zip(loader["history"], device["history"], strict=True):
        assert b["train_l2"] == pytest.approx(a["train_l2"], rel=1e-5)
        assert b["val_l2"] == pytest.approx(a["val_l2"], rel=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_the_batch_matches_the_cpu_dataset(dataset):
    indices = [0, 5, 11, 17, 29]
    batch = DevicePipeline(dataset, "cuda").batch(indices)
    assert batch["xray"].device.type == "cuda"
    want_x, want_v = stacked(dataset, indices)
    assert (batch["volume"].cpu() - want_v).abs().max() <= 2**-11 * want_v.abs().max() + 1e-6
    assert (batch["xray"].cpu() - want_x).abs().max() <= P.chi * 2**-11 * want_v.abs().max() + 1e-5


def test_the_train_command_passes_the_pipeline(monkeypatch):
    from xtomo.cli import main

    seen = []

    def fake(profile, **kwargs):
        seen.append(kwargs["pipeline"])
        return dict(world_size=1, step=1, total_steps=1, val_l2=0.5, baseline_l2=1.0, checkpoint="ck.pt")

    monkeypatch.setattr(T, "train", fake)
    main(["train", "--profile", "smoke", "--pipeline", "device"])
    main(["train", "--profile", "smoke"])
    assert seen == ["device", "auto"]


def test_the_throughput_benchmark_runs_on_a_cpu_at_ci_size():
    """``benchmarks/gpu.py`` in its CI-sized form: it runs, reports positive rates for the three
    phases, and names as the bound the slower of the two parts alone."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"
    out = subprocess.run([sys.executable, str(script), "--profile", "smoke", "--species", "3", "--seconds", "0.2",
                          "--device", "cpu"], capture_output=True, text=True, timeout=600, check=True).stdout
    row = next(line for line in out.splitlines() if line.startswith("| 32² → 32³"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    loader, pipeline, training, together = map(float, cells[4:8])
    assert min(loader, pipeline, training, together) > 0
    assert cells[8] == ("the sample pipeline" if pipeline < training else "the network's step")
    assert re.fullmatch(r"\d+\.\d CPU cores", cells[9])


def test_the_prepared_paper_run_at_smoke_size(tmp_path):
    """``benchmarks/paper_run.py`` trains, scores by chapter 5's protocol and exports a shipped model
    whose manifest matches its weights; its report's ratios are its means'; a rerun resumes."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from xtomo.files import read_csv
    from xtomo.learning import shipped

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "paper_run.py"
    command = [sys.executable, str(script), str(tmp_path), "--profile", "smoke", "--steps", "6", "--samples", "4",
               "--device", "cpu"]
    for _ in range(2):
        subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["step"] == 6 and report["samples_seen"] == 6 * get_profile("smoke").batch_size
    assert len(read_csv(tmp_path / "run" / "training_log.csv")) == 1  # resumed a finished run: no new steps
    model = shipped.checkpoint("smoke", tmp_path)  # checks the weights against the manifest's sha256
    assert model["step"] == 6 and report["model_bytes"] == (tmp_path / "smoke.pt").stat().st_size < shipped.MAX_BYTES
    head = report["headline"]
    assert head["samples"] == 4
    for metric in ("l2", "dssim"):
        assert head[metric]["ours/nn"] == pytest.approx(head[metric]["ours"] / head[metric]["nn"])
        assert head[metric]["ours/oracle"] == pytest.approx(head[metric]["ours"] / head[metric]["oracle"])
        assert 0 <= head[metric]["p vs nn"] <= 1


def test_mixed_takes_its_share_of_samples_from_the_extra_dataset(dataset):
    """``Mixed`` keeps ``base``'s length and items, except a ``share`` of the indices (spread evenly by the
    hash) that are ``extra``'s, marked by a negative specimen; DevicePipeline refuses it by name."""
    g = torch.Generator().manual_seed(3)
    extra = XrayDataset(TensorBank([torch.rand(8, 8, 8, generator=g)]), None, P)
    mixed = Mixed(dataset, extra, 0.25)
    assert len(mixed) == len(dataset) and Mixed(dataset, extra, 0).from_extra(0) is False
    picked = [i for i in range(len(mixed)) if mixed.from_extra(i)]
    assert abs(len(picked) / len(mixed) - 0.25) < 2 / len(mixed) and all(Mixed(dataset, extra, 1).from_extra(i)
                                                                           for i in range(len(mixed)))
    other = next(i for i in range(len(mixed)) if not mixed.from_extra(i))
    torch.testing.assert_close(mixed[other]["xray"], dataset[other]["xray"], rtol=0, atol=0)
    item = mixed[picked[0]]
    assert item["specimen"] == -1
    torch.testing.assert_close(item["volume"], extra[picked[0] % len(extra)]["volume"], rtol=0, atol=0)
    for share in (-0.1, 1.5, "half"):
        with pytest.raises(ValueError, match="share must be a fraction"):
            Mixed(dataset, extra, share)
    with pytest.raises(ValueError, match="pipeline='loader'"):
        DevicePipeline(mixed)
