"""Nothing lost to a second run: a new training run refuses to replace another run's checkpoint unless
told to, and a folder being written by one run is locked against another, which fails at once naming
the holder; the lock dies with its holder, however it ends."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import torch
from conftest import cli

from xtomo.files import FolderBusyError, folder_lock
from xtomo.learning import model as model_module
from xtomo.learning import train as T
from xtomo.learning.model import ModelConfig
from xtomo.profiles import get_profile

TINY = ModelConfig(in_size=8, slices=8, width=4, stem_width=2, levels=1, units_per_level=0, bottom_units=1,
                   up_units=0, stride=1)
P = get_profile("smoke").replace(model="tiny-safety", xray_size=8, volume_size=8, batch_size=2, steps=2,
                                 val_every=2, checkpoint_every=2, val_samples=2)
g = torch.Generator().manual_seed(0)
DATA = tuple([dict(xray=torch.rand(1, 8, 8, generator=g), volume=torch.rand(8, 8, 8, generator=g)) for _ in range(n)]
             for n in (4, 3))


@pytest.fixture(autouse=True)
def tiny(monkeypatch):
    monkeypatch.setitem(model_module.PRESETS, "tiny-safety", TINY)


def test_a_new_run_keeps_another_runs_checkpoint_unless_told(tmp_path):
    T.train(P, out_dir=tmp_path, progress=False, data=DATA)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(T.CheckpointError, match=r"checkpoint.pt holds another run's checkpoint; resume it "
                                                r"\(--resume\), or replace it deliberately \(--overwrite\)"):
        T.train(P.replace(lr=0.5), out_dir=tmp_path, progress=False, data=DATA)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert T.train(P, resume=True, out_dir=tmp_path, progress=False, data=DATA)["step"] == 2  # resuming is fine
    T.train(P.replace(lr=0.5), out_dir=tmp_path, progress=False, data=DATA, overwrite=True)
    assert T.load_checkpoint(tmp_path / "checkpoint.pt")["profile"]["lr"] == 0.5


def test_a_folder_in_use_is_refused_at_once_naming_its_holder(tmp_path):
    with folder_lock(tmp_path, "xtomo train --profile quick"):
        with pytest.raises(FolderBusyError, match=rf"^{tmp_path} is in use by xtomo train --profile quick "
                                                  rf"\(pid {os.getpid()} on .*, since .*\); wait for it"):
            T.train(P, out_dir=tmp_path, progress=False, data=DATA)
    assert not (tmp_path / "checkpoint.pt").exists()
    T.train(P, out_dir=tmp_path, progress=False, data=DATA)  # released when the block ended
    with folder_lock(tmp_path):  # and after the run
        pass


HOLD = ("import sys; from xtomo.files import folder_lock\n"
        "with folder_lock(sys.argv[1], 'a holder'):\n    print('held', flush=True); sys.stdin.read()\n")


def test_the_command_line_says_who_holds_the_folder_and_a_killed_holder_frees_it(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"  # an event, not a delay: the lock is taken
        done = subprocess.run([sys.executable, "-m", "xtomo", "train", "--profile", "smoke", "--out", str(tmp_path)],
                              capture_output=True, text=True)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.startswith(f"xtomo: error: {tmp_path} is in use by a holder (pid {holder.pid} on ")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with folder_lock(tmp_path):  # the kernel released the killed holder's lock
        pass


def test_the_train_command_passes_overwrite(monkeypatch):
    from xtomo.cli import main

    seen = []
    monkeypatch.setattr(T, "train", lambda profile, **kw: seen.append(kw["overwrite"]) or dict(
        world_size=1, step=1, total_steps=1, val_l2=0.5, baseline_l2=1.0, checkpoint="ck.pt"))
    main(["train", "--profile", "smoke", "--overwrite"])
    main(["train", "--profile", "smoke"])
    assert seen == [True, False]


def test_a_checkpoint_whose_settings_and_weights_disagree_is_refused_before_it_is_built(tmp_path):
    """Settings that ask for a network far larger than the stored weights are caught on the meta device
    (shapes only), so nothing of that size is ever allocated."""
    T.train(P, out_dir=tmp_path, progress=False, data=DATA)
    ck = T.load_checkpoint(tmp_path / "checkpoint.pt")
    huge = dict(ck, model_config=dict(ck["model_config"], width=1 << 20))
    with pytest.raises(T.CheckpointError, match=r"weights do not fit the network its settings describe \("):
        T.model_from_checkpoint(huge)
    bad = dict(ck, model_config=dict(ck["model_config"], colour="red"))
    with pytest.raises(T.CheckpointError, match=r"model settings do not describe a network: .*colour"):
        T.model_from_checkpoint(bad)
    short = dict(ck, model={k: v for k, v in list(ck["model"].items())[1:]})
    with pytest.raises(T.CheckpointError, match=r"\(1 tensors missing, extra or of another shape, first: "):
        T.model_from_checkpoint(short)
    assert T.model_from_checkpoint(ck) is not None


@pytest.mark.parametrize("device,message", [
    ("foo", "train: unknown device 'foo'; expected cpu, cuda or cuda:N"),
    ("cuda:64", "train: device 'cuda:64': this machine has "),
    ("meta", "train: unknown device 'meta'"),
])
def test_an_unusable_device_is_refused_in_one_line(tmp_path, device, message):
    done = cli("train", "--profile", "smoke", "--device", device, "--out", str(tmp_path))
    assert done.returncode == 2 and done.stderr.startswith(f"xtomo: error: {message}")
    assert not (tmp_path / "checkpoint.pt").exists()
