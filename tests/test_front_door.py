"""The package's front door: its version, every documented module from ``import xtomo`` alone,
its type marker, and --device on the commands that compute."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import xtomo
from xtomo.cli import main

REPO = Path(__file__).resolve().parent.parent


def python(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter that imports this checkout's xtomo."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"xtomo {xtomo.__version__}\n"


def test_every_documented_module_is_reached_from_import_xtomo_alone():
    documented = re.findall(r"^\.\. automodule:: (\S+)$", (REPO / "book" / "api.md").read_text(), flags=re.M)
    assert "xtomo.evaluation.metrics" in documented and "xtomo.data.dicom" in documented
    code = ("import functools, sys, xtomo\n"
            f"for name in {documented!r}:\n"
            "    functools.reduce(getattr, name.split('.')[1:], xtomo)\n"
            "print('ok')")
    done = python(code)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr


def test_the_package_ships_its_type_marker():
    assert (REPO / "xtomo" / "py.typed").is_file()
    assert '"xtomo" = ["py.typed"]' in (REPO / "pyproject.toml").read_text()  # package-data: it ships


@pytest.mark.parametrize("argv", [
    ["render", "v.npy", "--mode", "mip", "--out", "p.png"],
    ["reconstruct", "x.png", "--out", "v.npz"],
    ["train", "--profile", "smoke", "--steps", "1"],
])
def test_an_unknown_device_is_one_line(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XTOMO_ARTIFACTS", str(tmp_path / "artifacts"))
    import numpy as np

    from xtomo.data import io
    np.save("v.npy", np.random.default_rng(0).random((8, 8, 8)).astype(np.float32))
    io.save_xray(torch.linspace(0.4, 1.0, 256).reshape(16, 16), "x.png")
    assert main([*argv, "--device", "tpu:0"]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"xtomo: error: (train: )?unknown device 'tpu:0'; expected cpu, cuda or cuda:N\n", err)
    if not torch.cuda.is_available():
        assert main([*argv, "--device", "cuda:1"]) == 2
        assert "this machine has no CUDA GPU; use cpu" in capsys.readouterr().err
    if argv[0] == "render":
        assert main([*argv, "--device", "cpu", "--size", "16", "--volume-size", "8"]) == 0
        assert (tmp_path / "p.png").is_file()
