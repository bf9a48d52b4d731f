"""The project's plumbing agrees with itself: environment.yml, pyproject.toml, Makefile, notebooks, README."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import tomllib
import yaml
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _pip_section(environment: dict) -> list[str]:
    sections = [d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "environment.yml needs exactly one pip section"
    return sections[0]


def test_environment_yml_matches_pyproject_and_makefile():
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    assert environment["name"] == "xtomo"
    assert "conda-forge" in environment["channels"]
    conda = [d for d in environment["dependencies"] if isinstance(d, str)]
    assert "pip" in conda
    python = next(d.split("=", 1)[1] for d in conda if d.startswith("python="))
    assert SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(python + ".0")

    pip = _pip_section(environment)
    torch_pin = (REPO / "constraints.txt").read_text().split()[0]  # torch==X.Y.Z
    assert torch_pin.startswith("torch==") and torch_pin in pip
    assert "-c constraints.txt" in pip
    editable = [line for line in pip if line.startswith("-e ")]
    assert len(editable) == 1 and pip.index(torch_pin) < pip.index(editable[0])  # torch first

    extras_env = re.fullmatch(r"-e \.\[([\w,-]+)\]", editable[0]).group(1).split(",")
    makefile = (REPO / "Makefile").read_text()
    extras_make = re.search(r"-e '\.\[([\w,-]+)\]'", makefile).group(1).split(",")
    assert extras_env == extras_make, "environment.yml and the Makefile install different extras"
    assert set(extras_env) <= set(PYPROJECT["project"]["optional-dependencies"])
    assert f"install -c constraints.txt {torch_pin}" in makefile
    torch_spec = next(d for d in PYPROJECT["project"]["dependencies"] if d.startswith("torch"))
    assert SpecifierSet(torch_spec[len("torch"):]).contains(torch_pin.split("==")[1])


def test_notebooks_are_committed_clean_with_a_parameters_cell():
    problems = []
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        if nb.get("metadata", {}).get("kernelspec", {}).get("name") != "python3":
            problems.append(f"{path.name}: kernelspec must be 'python3' (plain papermill uses it)")
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        if len(tagged) != 1 or tagged[0]["cell_type"] != "code":
            problems.append(f"{path.name}: needs exactly one code cell tagged 'parameters'")
        for index, cell in enumerate(nb["cells"], start=1):
            if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count")):
                problems.append(f"{path.name}: cell {index} has outputs or an execution count")
    assert not problems, "\n".join(problems)


def test_readme_opens_with_make_book_and_make_test():
    head = "\n".join((REPO / "README.md").read_text().splitlines()[:40])
    assert "make book" in head and "make test" in head


def test_ci_entry_point_runs_make_test():
    script = REPO / ".ci" / "run"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert "set -euo pipefail" in text and "make test" in text
