"""Where a command writes is checked before its work, and nothing is replaced that should not be: an
output path that is a folder, a read-only file or inside a file is refused in one line, before the
checkpoint is even read; every atomic write keeps a read-only file as it is."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import cli

from xtomo.data import io
from xtomo.files import writable_target


@pytest.fixture
def places(tmp_path):
    (tmp_path / "folder.nii").mkdir()
    (tmp_path / "locked.npz").write_bytes(b"keep me")
    (tmp_path / "locked.npz").chmod(0o444)
    (tmp_path / "plain").write_text("a file")
    io.save_xray(torch.linspace(0.4, 1.0, 256).reshape(16, 16), tmp_path / "x.png")
    return tmp_path


@pytest.mark.parametrize("out,message", [
    ("folder.nii", "folder.nii: --out is a folder; name a file in it"),
    ("locked.npz", "locked.npz: --out exists and is read-only; it is left as it is"),
    ("plain/v.nii", "plain/v.nii: --out cannot be made, plain is a file, not a folder"),
    ("v.vol", "v.vol: --out must be a .nii or .nii.gz or .npz file"),
])
def test_reconstruct_checks_its_output_before_reading_the_checkpoint(places, out, message):
    done = cli("reconstruct", "x.png", "--checkpoint", "absent.pt", "--out", out, cwd=places)
    assert done.returncode == 2 and done.stderr == f"xtomo: error: {message}\n"
    assert (places / "locked.npz").read_bytes() == b"keep me"


def test_render_checks_its_output_before_reading_the_volume(places):
    done = cli("render", "absent.npz", "--mode", "mip", "--out", "plain/r.png", cwd=places)
    assert done.returncode == 2 and done.stderr == "xtomo: error: plain/r.png: --out cannot be made, plain is a " \
                                                   "file, not a folder\n"


def test_an_atomic_write_leaves_a_read_only_file_as_it_is(places):
    with pytest.raises(ValueError, match=r"locked.npz: the output exists and is read-only"):
        io.save_volume(np.zeros((2, 2, 2), np.float32), places / "locked.npz")
    assert (places / "locked.npz").read_bytes() == b"keep me"
    assert not [p for p in places.iterdir() if ".part" in p.name]


def test_a_writable_target_is_returned_and_its_folder_may_be_missing(tmp_path):
    assert writable_target(tmp_path / "new" / "deeper" / "v.nii.gz", (".nii.gz",)) == tmp_path / "new/deeper/v.nii.gz"
    (tmp_path / "old.png").write_bytes(b"")
    assert writable_target(tmp_path / "old.png", (".png",)) == tmp_path / "old.png"
