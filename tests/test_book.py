"""The book pipeline on the fixture chapters in tests/fixtures: papermill runs, errors, the CLI, the HTML,
the staged chapters' parameters line and the API reference page."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require

import xtomo
from xtomo.cli import main
from xtomo.publish import apidoc, chapters, vendor, website
from xtomo.publish.chapters import ChapterFailed, run_chapter, typed_parameters
from xtomo.publish.website import build_book

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"  # a book root: notebooks/01_params, 02_figure
FAILING = FIXTURES / "01_failing.ipynb"  # fails in its first cell after the parameters


def outputs(notebook: Path) -> str:
    """Every text and stream output of an executed notebook, joined."""
    nb = json.loads(notebook.read_text())
    return "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                   for cell in nb["cells"] for o in cell.get("outputs", []))


def test_chapters_are_found_in_order_and_named_by_number_stem_or_path():
    assert [p.name for p in chapters.find_chapters(FIXTURES)] == ["01_params.ipynb", "02_figure.ipynb"]
    first = FIXTURES / "notebooks" / "01_params.ipynb"
    for name in ("1", "01", 1, "01_params", str(first)):
        assert chapters.resolve_chapter(name, FIXTURES) == first
    with pytest.raises(ValueError, match=r"no chapter '9'.*1 = 01_params, 2 = 02_figure"):
        chapters.resolve_chapter("9", FIXTURES)
    with pytest.raises(FileNotFoundError, match="no chapter notebook at"):
        chapters.resolve_chapter("notebooks/99_missing.ipynb", FIXTURES)


def test_unknown_parameter_is_rejected_before_anything_runs(tmp_path):
    with pytest.raises(ValueError) as error:
        run_chapter(1, "smoke", {"seed": 1, "sede": 2}, out_dir=tmp_path / "nb", root=FIXTURES)
    message = str(error.value)
    assert "01_params has no parameter sede" in message
    assert 'seed=0, scale=1.5, flag=False, label="fixture"' in message  # the known ones
    assert not (tmp_path / "nb").exists()


def test_string_values_take_the_type_of_the_default():
    values = typed_parameters(1, {"seed": "3", "scale": "2", "flag": "true", "label": "7"}, FIXTURES)
    assert values == {"seed": 3, "scale": 2.0, "flag": True, "label": "7"}
    assert type(values["scale"]) is float and type(values["label"]) is str
    assert typed_parameters(1, {"seed": 5}, FIXTURES) == {"seed": 5}  # non-strings pass as given
    with pytest.raises(ValueError, match=r"seed='1\.5' is not an integer \(its default is 0\)"):
        typed_parameters(1, {"seed": "1.5"}, FIXTURES)
    with pytest.raises(ValueError, match="flag='maybe' is not true or false"):
        typed_parameters(1, {"flag": "maybe"}, FIXTURES)
    with pytest.raises(ValueError, match="--profile"):
        run_chapter(1, "smoke", {"profile": "paper"}, root=FIXTURES)
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        run_chapter(1, "huge", root=FIXTURES)


def test_successful_run_is_atomic_typed_and_timed(tmp_path):
    out = tmp_path / "smoke" / "notebooks"
    readings = iter([100.0, 103.256])  # a fake clock: the run starts at 100 s and ends at 103.256 s
    executed = run_chapter("01", "smoke", {"seed": "3", "flag": "yes"}, out_dir=out, root=FIXTURES,
                           clock=lambda: next(readings))
    assert executed == out / "01_params.ipynb"
    assert sorted(os.listdir(out)) == ["01_params.ipynb"]  # no temporary or failed files
    text = outputs(executed)
    assert "FIXTURE-OUTPUT profile=smoke seed=3 scale=1.5 flag=True label='fixture'" in text
    assert f"cwd={FIXTURES}" in text  # the kernel runs in the book's root
    timings = json.loads((tmp_path / "smoke" / "timings.json").read_text())["chapters"]
    entry = timings["01_params"]
    assert entry["seconds"] == 3.26  # the clock's two readings apart, rounded to 0.01 s
    assert entry["profile"] == "smoke" and entry["parameters"] == {"seed": 3, "flag": True}
    assert entry["platform"] and entry["cpus"] >= 1 and entry["date"]

    # staged for jupyter-book: papermill's injected cell is hidden, one line in its place names
    # the parameters the run used
    staged = website.stage_notebook(executed, tmp_path / "source" / "notebooks" / executed.name)
    cells = json.loads(staged.read_text())["cells"]
    tags = [cell["metadata"].get("tags", []) for cell in cells]
    injected = [i for i, t in enumerate(tags) if "injected-parameters" in t]
    assert len(injected) == 1 and "remove-cell" in tags[injected[0]]
    line = cells[injected[0] - 1]
    assert line["cell_type"] == "markdown" and tags[injected[0] - 1] == [website.BUILT_WITH]
    assert "".join(line["source"]) == "Built with: profile=smoke, flag=True, seed=3"  # as papermill records them
    assert len(cells) == len(json.loads(executed.read_text())["cells"]) + 1  # nothing else changed
    assert "parameters" in tags[injected[0] - 2]  # the defaults stay visible above


def test_the_built_with_line_reads_literally():
    line = website.built_with({"seed": 1, "profile": "paper", "label": "a_b*c", "expr": "$x$ {doc}`y`"})
    assert line == r"Built with: profile=paper, seed=1, label=a\_b\*c, expr=\$x\$ \{doc\}\`y\`"


def test_failing_chapter_names_cell_and_error_and_keeps_the_notebook(tmp_path):
    out = tmp_path / "nb"
    with pytest.raises(ChapterFailed) as error:
        run_chapter(FAILING, "smoke", out_dir=out, root=FIXTURES)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("chapter 01_failing failed at cell 3 (`from xtomo.profiles import")
    assert "ValueError: profile 'smoke': volume_size must be at least 8, got 4" in message
    kept = out / "01_failing.failed.ipynb"
    assert error.value.failed_notebook == kept and str(kept) in message
    assert sorted(os.listdir(out)) == ["01_failing.failed.ipynb"]  # no half notebook
    assert not (tmp_path / "timings.json").exists()  # only successful runs are timed
    errors = [o for c in json.loads(kept.read_text())["cells"] for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert errors and errors[0]["ename"] == "ValueError"


def test_build_stops_at_the_first_failing_chapter(tmp_path, monkeypatch):
    monkeypatch.setattr(vendor, "fetch_bundles", lambda cache: {})  # no registry needed to fail
    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(FAILING, root / "notebooks" / "01_failing.ipynb")
    shutil.copy(FIXTURES / "notebooks" / "01_params.ipynb", root / "notebooks" / "02_params.ipynb")
    with pytest.raises(ChapterFailed, match="chapter 01_failing failed"):
        build_book("smoke", root=root, out=tmp_path / "_build")
    assert os.listdir(tmp_path / "_build" / "smoke" / "notebooks") == ["01_failing.failed.ipynb"]
    assert not (tmp_path / "_build" / "html").exists()


def test_python_m_xtomo_run_help():
    result = subprocess.run([sys.executable, "-m", "xtomo", "run", "--help"],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "--profile" in result.stdout and "KEY=VALUE" in result.stdout


def test_cli_error_is_one_line_and_non_zero():
    chapter = str(FIXTURES / "notebooks" / "01_params.ipynb")
    result = subprocess.run([sys.executable, "-m", "xtomo", "run", chapter, "-p", "nope=1"],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("xtomo: error: chapter 01_params has no parameter nope;")


@pytest.mark.parametrize("argv, expected", [
    (["--profile", "huge"], "xtomo: error: unknown profile 'huge'"),
    (["-p", "seed"], "xtomo: error: -p expects KEY=VALUE, got 'seed'"),
])
def test_cli_library_errors_exit_2(argv, expected, capsys):
    assert main(["run", str(FIXTURES / "notebooks" / "01_params.ipynb"), *argv]) == 2
    assert capsys.readouterr().err.startswith(expected)


def fake_npm(folder: Path, script: str) -> None:
    """Put an ``npm`` that runs the Python ``script`` first on PATH (``folder`` is its home)."""
    folder.mkdir()
    (folder / "npm").write_text(f"#!{sys.executable}\nimport json, sys, tarfile, pathlib\n{script}")
    (folder / "npm").chmod(0o755)


def test_bundles_without_npm_or_registry_are_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(vendor.BundleUnavailable, match="npm is not installed"):
        vendor.fetch_bundles(tmp_path / "cache")
    fake_npm(tmp_path / "bin", "print('npm error code ENOTFOUND', file=sys.stderr); sys.exit(1)")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(vendor.BundleUnavailable, match=r"`npm pack .*@.*` failed \(is the npm registry "
                                                     r"reachable\?\): npm error code ENOTFOUND"):
        vendor.fetch_bundles(tmp_path / "cache")


def test_a_bundle_with_another_hash_is_refused_and_not_cached(tmp_path, monkeypatch):
    fake_npm(tmp_path / "bin", """
folder = pathlib.Path(sys.argv[sys.argv.index("--pack-destination") + 1])
(folder / "package").mkdir()
(folder / "package" / "require.js").write_text("// not the pinned file")
with tarfile.open(folder / "fake.tgz", "w:gz") as tar:
    tar.add(folder / "package", "package")
print(json.dumps([{"filename": "fake.tgz"}]))
""")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(chapters.BookError, match=r"npm gave @jupyter-widgets/html-manager@1\.0\.15 with "
                                             r"hash sha512-.*, not the pinned sha512-5thBIV6"):
        vendor.fetch_bundles(tmp_path / "cache")
    assert os.listdir(tmp_path / "cache") == []


def test_widgets_the_book_cannot_serve_are_refused(tmp_path):
    folders, modules = vendor.widget_modules()
    assert modules["ipyvolume"] == "ipyvolume/index" and "three" in modules  # ipyvolume's stack
    assert not vendor._HTML_MANAGER_MODULES & set(modules)  # html-manager brings its own
    nb = json.loads((FIXTURES / "notebooks" / "02_figure.ipynb").read_text())
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {
        "a": {"model_module": "@jupyter-widgets/controls", "state": {"_view_module": "ipyvolume"}},
        "b": {"model_module": "fancy-widgets", "state": {}}}}}
    chapter = tmp_path / "02_figure.ipynb"
    chapter.write_text(json.dumps(nb))
    with pytest.raises(chapters.BookError, match="chapter 02_figure shows widgets of fancy-widgets, which "
                                             "no installed nbextension provides"):
        vendor.check_widget_modules([chapter], modules)


@pytest.mark.slow
def test_book_builds_from_executed_fixture_chapters(tmp_path):
    """The repository's own _config.yml, _toc.yml and book/ pages, with the fixture chapters."""
    root = tmp_path / "root"
    root.mkdir()
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "book", root / "book")
    shutil.copytree(FIXTURES / "notebooks", root / "notebooks")
    out = tmp_path / "_build"
    try:
        vendor.fetch_bundles(out / "vendor")
    except vendor.BundleUnavailable as error:
        require(error, f"the book cannot bundle its JavaScript here: {error}")

    index = build_book("smoke", root=root, out=out)

    html = out / "html"
    assert index == html / "index.html" and index.is_file()
    assert sorted(p.name for p in out.iterdir()) == ["html", "smoke", "vendor"]  # no temporary folders
    # every script and stylesheet is the book's own: it works offline
    for page in html.rglob("*.html"):
        external = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="((?:https?:)?//[^"]*)"',
                              page.read_text())
        assert not external, f"{page.relative_to(html)} loads {external}"
    for bundled in ("require.js", "widgets.js", "html-manager/embed-amd.js", "mathjax/tex-mml-chtml.js",
                    "nbextensions/ipyvolume/index.js"):
        assert (html / "_vendor" / bundled).is_file(), bundled
    page1 = (html / "notebooks" / "01_params.html").read_text()
    assert "FIXTURE-OUTPUT profile=smoke seed=0 scale=1.5 flag=False label=" in page1  # the output
    # papermill's injected cell is not shown; one line says what the build used
    assert "tag_parameters" in page1 and "tag_injected-parameters" not in page1 and "# Parameters" not in page1
    assert "<p>Built with: profile=smoke</p>" in page1
    api = (html / "book" / "api.html").read_text()  # the API reference, written by autodoc
    assert 'id="xtomo.simulate"' in api and 'id="xtomo.imaging.xray.simulate"' in api
    page2 = (html / "notebooks" / "02_figure.html").read_text()
    images = [part.split('"')[0] for part in page2.split('src="../_images/')[1:]]
    assert any(name.endswith(".png") and (html / "_images" / name).is_file() for name in images)
    assert "application/vnd.jupyter.widget-state+json" in page2  # the slider's saved state
    assert '<script src="../_static/../_vendor/require.js"></script>' in page2
    assert "Henzler" in page2 and "Henzler" in (html / "book" / "references.html").read_text()
    timings = json.loads((out / "smoke" / "timings.json").read_text())["chapters"]
    assert set(timings) == {"01_params", "02_figure"}
    downloads = (html / "book" / "downloads.html").read_text()  # each executed chapter, and its command
    assert re.search(r'href="\.\./_downloads/\w+/01_params\.ipynb"', downloads)
    assert "xtomo run 02_figure --profile smoke" in re.sub(r"<[^>]+>", "", downloads)

    # a warning (here an unknown citation) fails the build and leaves the previous book in place; this build
    # leaves the API page out of the table of contents (its autodoc is two thirds of a build's time)
    toc = (root / "_toc.yml").read_text()
    assert "      - file: book/api\n" in toc
    (root / "_toc.yml").write_text(toc.replace("      - file: book/api\n", ""))
    with open(root / "book" / "rerun.md", "a") as page:
        page.write("\nAs shown by {cite}`nobody1999`.\n")
    with pytest.raises(website.BookFailed, match='could not find bibtex key "nobody1999"'):
        build_book("smoke", chapters=[1], root=root, out=out)
    assert (html / "notebooks" / "02_figure.html").read_text() == page2
    assert sorted(p.name for p in out.iterdir()) == ["html", "smoke", "vendor"]


def test_the_api_page_documents_every_module_of_every_subpackage():
    """book/api.md names, in pipeline order, the front door, each subpackage and the modules of its
    ``__all__``, then the shared modules; and the table of contents holds it."""
    page = (REPO / "book" / "api.md").read_text()
    assert page == apidoc.api_page(), "book/api.md is out of date: run `.venv/bin/python -m xtomo.publish.apidoc`"
    listed = re.findall(r"^\.\. automodule:: (\S+)$", page, flags=re.M)
    packages, shared = ["xtomo"], []
    for name in xtomo.SUBPACKAGES:
        module = getattr(xtomo, name)
        if hasattr(module, "__path__"):
            packages += [f"xtomo.{name}"] + [f"xtomo.{name}.{member}" for member in module.__all__]
        else:
            shared.append(f"xtomo.{name}")
    assert listed == packages + shared
    assert "- file: book/api\n" in (REPO / "_toc.yml").read_text()
