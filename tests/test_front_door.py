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


PACKAGES = ["specimens", "imaging", "data", "learning", "methods", "evaluation", "study", "viz", "publish"]


def test_every_module_is_reached_by_its_own_name_too():
    """``xtomo.metrics`` is ``xtomo.evaluation.metrics``, for every module a subpackage lists; no
    own name is claimed twice or hides a front-door name."""
    code = ("import importlib, xtomo\n"
            f"packages = {PACKAGES!r}\n"
            "names = {n: p for p in packages for n in importlib.import_module('xtomo.' + p).__all__}\n"
            "assert len(names) == sum(len(importlib.import_module('xtomo.' + p).__all__) for p in packages)\n"
            "assert not set(names) & set(xtomo.__all__)\n"
            "for name, package in names.items():\n"
            "    assert getattr(xtomo, name) is importlib.import_module(f'xtomo.{package}.{name}'), name\n"
            "    assert name in dir(xtomo)\n"
            "assert xtomo.metrics.__name__ == 'xtomo.evaluation.metrics' and xtomo.io.__name__ == 'xtomo.data.io'\n"
            "for missing in ('nothing', '_metrics', 'anatomy'):\n"
            "    assert not hasattr(xtomo, missing), missing\n"
            "print(len(names))")
    done = python(code)
    assert done.returncode == 0 and int(done.stdout) > 40, done.stderr


def test_import_xtomo_loads_only_what_the_front_door_needs():
    """Reaching a module by its own name, or listing ``dir(xtomo)``, loads that module (and the
    subpackages' light ``__init__``), not the heavy ones: no figures, studies or the book."""
    code = ("import sys, xtomo\n"
            "heavy = ('matplotlib', 'skimage', 'pandas', 'papermill', 'ipywidgets', 'xtomo.evaluation.metrics',\n"
            "         'xtomo.viz.figures', 'xtomo.study.app', 'xtomo.publish.website', 'xtomo.imaging.render')\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n"
            "dir(xtomo)\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n"
            "xtomo.metrics\n"
            "print(sorted(m for m in heavy if m in sys.modules))")
    done = python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "[]", "['xtomo.evaluation.metrics']"]


def test_every_xtomo_name_the_docs_write_resolves_from_import_xtomo_alone():
    """Each dotted ``xtomo.a.b`` the README, CONTRIBUTING, the book's pages and the benchmarks'
    notes write is an attribute path from ``import xtomo`` (a renamed module leaves no stale name)."""
    pages = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "book").glob("*.md")),
             *sorted((REPO / "benchmarks").glob("*.md"))]
    names = sorted({m for page in pages for m in re.findall(r"\bxtomo(?:\.[A-Za-z_]\w*)+", page.read_text())})
    assert "xtomo.data.io.load_volume_affine" in names and len(names) > 50
    code = ("import functools, xtomo\n"
            f"for name in {names!r}:\n"
            "    try:\n"
            "        functools.reduce(getattr, name.split('.')[1:], xtomo)\n"
            "    except AttributeError:\n"
            "        print(name)\n")
    done = python(code)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr
