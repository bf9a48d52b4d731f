"""Do the dependency floors that pyproject.toml declares hold? Install each one exactly into a
fresh virtual environment and run a fast subset of the tests there.

    .venv/bin/python benchmarks/min_versions.py [--keep DIR] [--tests FILE ...] [--dry-run]

Each ``name>=X`` of ``[project].dependencies``, and the test runner's own from the ``test``
extra (pytest, hypothesis, pytest-timeout, pyjpegls), is installed as ``name==V``: V is the lowest
release at or above X that has a wheel for this Python (X itself where X is a release; pip's
``index versions`` lists them). What those pins need in turn, pip resolves as usual.

EXCEPT torch, which stays ``torch==2.13.0`` (``constraints.txt``): that CPU build lies on this
machine's disk, and any other torch release comes from PyPI with several GB of CUDA libraries.
So torch's own floor is not tested here.

The package is installed from a copy of this checkout (the repository is left as it is) with
``--no-deps``, and the tests run from that copy against the installed package (with the real
files of ``xtomo fetch-data`` where this checkout has them, ``XTOMO_DATA``). Prints the pins,
pip's messages if the install fails, and pytest's summary; exit status 0 when they pass. A few
minutes: the wheels download once into pip's cache.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:   # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
TORCH = "torch==2.13.0"   # never another: see the docstring
TEST_TOOLS = ("pytest", "hypothesis", "pytest-timeout", "pyjpegls")
FAST_TESTS = ("tests/test_io.py", "tests/test_volume_formats.py", "tests/test_hostile_files.py",
              "tests/test_significant_bits.py", "tests/test_dicom.py", "tests/test_xray.py", "tests/test_geometry.py",
              "tests/test_checks.py", "tests/test_metrics.py", "tests/test_mesh.py")
SKIP_COPY = {".git", ".venv", "_build", "artifacts", "data", "mutants", ".hypothesis", "build"}   # at the top


def floors(pyproject: Path = REPO / "pyproject.toml") -> dict[str, str]:
    """``{name: floor}`` for every ``name>=floor`` of the dependencies and the test tools."""
    project = tomllib.loads(pyproject.read_text())["project"]
    found = {}
    for line in project["dependencies"] + project["optional-dependencies"]["test"]:
        match = re.match(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([^,;\s]+)", line)
        name = match and match.group(1).lower()
        if match and (line in project["dependencies"] or name in TEST_TOOLS):
            found[name] = match.group(2)
    return found


def lowest_release(pip: Path, name: str, floor: str) -> str:
    """The lowest release of ``name`` at or above ``floor`` with a wheel for this Python."""
    from packaging.version import InvalidVersion, Version
    out = subprocess.run([str(pip), "index", "versions", "--only-binary", ":all:", name],
                         capture_output=True, text=True, timeout=300).stdout
    line = next((v for v in out.splitlines() if v.startswith("Available versions:")), "")
    versions = []
    for text in line.partition(":")[2].split(","):
        try:
            versions.append(Version(text.strip()))
        except InvalidVersion:
            continue
    above = sorted(v for v in versions if v >= Version(floor))
    if not above:
        raise SystemExit(f"{name}: no release at or above {floor} has a wheel for this Python")
    return str(above[0])


def copy_checkout(target: Path) -> Path:
    """This checkout's files (no .git, virtualenv, build outputs, artifacts or data) in ``target``."""
    def ignore(folder, names):
        return [n for n in names if n == "__pycache__" or (Path(folder) == REPO and n in SKIP_COPY)]
    shutil.copytree(REPO, target, ignore=ignore)
    return target


def run(command: list[str], **options) -> subprocess.CompletedProcess:
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, text=True, **options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="make the environment here and keep it")
    parser.add_argument("--tests", nargs="+", default=list(FAST_TESTS), help="test files to run")
    parser.add_argument("--dry-run", action="store_true", help="print the pins, install nothing")
    args = parser.parse_args(argv)
    start = time.time()
    work = Path(tempfile.mkdtemp(prefix="xtomo-floors-")) if args.keep is None else args.keep.resolve()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    try:
        venv = work / "venv"
        if not (venv / "bin" / "python").exists():
            run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = venv / "bin" / "pip"
        pins = {name: lowest_release(pip, name, floor) for name, floor in floors().items() if name != "torch"}
        for name, floor in floors().items():
            print(f"{name:22} floor {floor:10} -> {TORCH if name == 'torch' else name + '==' + pins[name]}")
        if args.dry_run:
            return 0
        (work / "pins.txt").write_text("".join(f"{n}=={v}\n" for n, v in pins.items()) + TORCH + "\n")
        (work / "constraints.txt").write_text(TORCH + "\n")
        install = run([str(pip), "install", "--only-binary", ":all:", "-c", str(work / "constraints.txt"),
                       "-r", str(work / "pins.txt")], env=env, capture_output=True)
        if install.returncode:
            print(install.stdout[-6000:], install.stderr[-6000:], sep="\n")
            print(f"the floors do not install together ({time.time() - start:.0f} s)")
            return 1
        tree = copy_checkout(work / "checkout")
        run([str(pip), "install", "--no-deps", str(tree)], env=env, check=True, capture_output=True)
        shutil.rmtree(tree / "xtomo")   # the tests import the installed package, not the copy
        listed = json.loads(run([str(pip), "list", "--format=json"], env=env, capture_output=True).stdout)
        got = {p["name"].lower(): p["version"] for p in listed}
        print("installed:", ", ".join(f"{n} {got.get(n, '?')}" for n in [*pins, "torch"]))
        data = Path(os.environ.get("XTOMO_DATA", REPO / "data" / "real")).resolve()   # the real files, if fetched
        tests = run([str(venv / "bin" / "pytest"), "-q", "-p", "no:cacheprovider", *args.tests],
                    cwd=tree, env={**env, "XTOMO_ARTIFACTS": str(work / "artifacts"), "XTOMO_DATA": str(data)})
        print(f"{'passed' if tests.returncode == 0 else 'FAILED'} at the floors ({time.time() - start:.0f} s)")
        return tests.returncode
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
