"""The book's chapter cache on tiny fake chapters: what reruns after an edit, a failure, --force, a
chapter's own rerun; the HTML that is not rebuilt; the progress lines; the downloads page."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from xtomo.cli import main
from xtomo.publish import cache, chapters, vendor, website

READS = "reads:\n  03_c: [01_a]\n  04_d: [03_c]\n"


def chapter(path: Path, line: str = "x = 1") -> None:
    """A chapter notebook: a parameters cell, then ``line``."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    parameters = nbformat.v4.new_code_cell('profile = "quick"\nseed = 0')
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters, nbformat.v4.new_code_cell(line)]
    nbformat.write(nb, path)


@pytest.fixture
def book(tmp_path, monkeypatch):
    """A book root of four chapters (03 reads 01, 04 reads 03) and a fake papermill; returns
    (root, out, the list of chapters run so far)."""
    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    for name in ("01_a", "02_b", "03_c", "04_d"):
        chapter(root / "notebooks" / f"{name}.ipynb")
    (root / cache.READS_FILE).write_text(READS)
    ran = []

    def fake_run(path, profile, parameters, out_dir, root, progress_bar=False):
        if path.stem in fail:
            raise chapters.ChapterFailed(f"chapter {path.stem} failed", path.stem)
        ran.append(path.stem)
        nb = nbformat.read(path, as_version=4)
        nb.metadata["papermill"] = {"parameters": {"profile": profile, **(parameters or {})}, "run": len(ran)}
        out_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out_dir / path.name)  # every run differs, as papermill's timestamps do
        return out_dir / path.name

    fail: set[str] = set()
    monkeypatch.setattr(cache, "run_chapter", fake_run)
    return root, tmp_path / "_build", ran, fail


def run(root: Path, out: Path, ran: list, **options) -> list[str]:
    """The chapters one cached build runs, in order."""
    ran.clear()
    paths = chapters.find_chapters(root)
    cache.run_chapters(paths, "smoke", None, out / "smoke" / "notebooks", root=root, **options)
    return list(ran)


def test_an_unchanged_book_reruns_nothing_and_an_edit_reruns_its_readers(book):
    root, out, ran, _ = book
    assert run(root, out, ran) == ["01_a", "02_b", "03_c", "04_d"]
    assert run(root, out, ran) == []
    chapter(root / "notebooks" / "01_a.ipynb", "x = 2")  # a one-line change
    assert run(root, out, ran) == ["01_a", "03_c", "04_d"]  # 04 reads 03, which reads 01
    chapter(root / "notebooks" / "02_b.ipynb", "x = 2")
    assert run(root, out, ran) == ["02_b"]  # nothing reads chapter 2
    chapter(root / "notebooks" / "04_d.ipynb", "x = 2")
    assert run(root, out, ran) == ["04_d"]
    assert run(root, out, ran, force=True) == ["01_a", "02_b", "03_c", "04_d"]
    assert run(root, out, ran) == []


def test_parameters_profile_and_library_are_part_of_the_key(book, monkeypatch):
    root, out, ran, _ = book
    paths = chapters.find_chapters(root)
    run(root, out, ran)
    notebooks = out / "smoke" / "notebooks"
    ran.clear()
    cache.run_chapters(paths, "smoke", {"seed": 1}, notebooks, root=root)
    assert ran == ["01_a", "02_b", "03_c", "04_d"]
    ran.clear()
    cache.run_chapters(paths, "smoke", {"seed": "1"}, notebooks, root=root)  # typed: the same seed
    assert ran == []
    monkeypatch.setattr(cache, "library_hash", lambda: "another library")
    assert run(root, out, ran) == ["01_a", "02_b", "03_c", "04_d"]


def test_a_failed_chapter_and_its_readers_rerun_next_time(book):
    root, out, ran, fail = book
    run(root, out, ran)
    chapter(root / "notebooks" / "01_a.ipynb", "x = 2")
    fail.add("03_c")
    with pytest.raises(chapters.ChapterFailed):
        run(root, out, ran)
    assert ran == ["01_a"]
    fail.clear()
    assert run(root, out, ran) == ["03_c", "04_d"]  # 01 is done; 03 still has 01's new run to read


def test_a_chapter_rerun_outside_the_book_reruns_with_its_readers(book):
    root, out, ran, _ = book
    run(root, out, ran)
    executed = out / "smoke" / "notebooks" / "03_c.ipynb"
    executed.write_text(executed.read_text().replace('"x = 1"', '"x = 1 "'))  # e.g. `xtomo run 3 -p seed=5`
    assert run(root, out, ran) == ["03_c", "04_d"]
    executed.unlink()
    assert run(root, out, ran) == ["03_c", "04_d"]


def test_without_a_reads_file_each_chapter_reads_all_before_it(book):
    root, out, ran, _ = book
    (root / cache.READS_FILE).unlink()
    run(root, out, ran)
    chapter(root / "notebooks" / "02_b.ipynb", "x = 2")
    assert run(root, out, ran) == ["02_b", "03_c", "04_d"]


@pytest.mark.parametrize("text, message", [
    ("reads:\n  01_a: [03_c]\n", "chapter 01_a cannot read 03_c, which runs after it"),
    ("reads:\n  03_c: [01_x]\n", "no chapter '01_x'"),
    ("reads: [01_a]\n", "`reads` must map a chapter"),
])
def test_a_bad_reads_file_is_refused(book, text, message):
    root, out, ran, _ = book
    (root / cache.READS_FILE).write_text(text)
    with pytest.raises(ValueError, match=message):
        run(root, out, ran)
    assert ran == []


def test_the_reads_file_of_the_book_names_its_chapters():
    repo = Path(__file__).resolve().parent.parent
    needs = cache.reads(repo, chapters.find_chapters(repo))
    assert needs["01_data_simulation"] == [] and "03_training" in needs["05_evaluation"]


def test_progress_lines_and_an_html_that_is_not_rebuilt(book, monkeypatch, capsys):
    root, out, ran, _ = book
    built = []
    monkeypatch.setattr(vendor, "fetch_bundles", lambda folder: {})
    monkeypatch.setattr(vendor, "widget_modules", lambda: ({}, {}))
    monkeypatch.setattr(vendor, "install_bundles", lambda *args: None)

    def fake_jupyter_book(source, work):
        built.append(sorted(p.name for p in (source / "notebooks").iterdir()))
        html = work / "build" / "_build" / "html"
        html.mkdir(parents=True)
        (html / "index.html").write_text(str(len(built)))
        (html / "downloads.md").write_text((source / "book" / "downloads.md").read_text())
        return work / "build"

    monkeypatch.setattr(website, "_jupyter_book", fake_jupyter_book)
    (root / "book").mkdir()
    (root / "book" / website.DOWNLOADS).write_text("# Downloads\n")
    for name in ("_config.yml", "_toc.yml"):
        (root / name).write_text("{}\n")
    monkeypatch.chdir(root)

    assert main(["book", "--profile", "smoke"]) == 0
    first = capsys.readouterr()
    lines = first.err.splitlines()
    assert first.out.strip() == str(root / "_build" / "html" / "index.html")
    assert [line.split("] ", 1)[1] for line in lines[:2]] == ["chapter 1/4 01_a: started", "chapter 01_a: done in "
                                                              + lines[1].split("done in ")[1]]
    assert sum("started" in line for line in lines) == 5 and "HTML: built" in lines[-2]
    assert lines[-1].startswith("book: 4 chapters, 4 run, 0 cached, in ") and lines[-1].endswith("index.html")
    page = (root / "_build" / "html" / "downloads.md").read_text()
    assert "{download}`03_c.ipynb <../notebooks/03_c.ipynb>`" in page
    assert "xtomo run 03_c --profile smoke\n" in page

    assert main(["book", "--profile", "smoke"]) == 0  # again: nothing to do
    lines = capsys.readouterr().err.splitlines()
    assert sum("cached, not rerun" in line for line in lines) == 4 and "HTML: unchanged" in lines[-2]
    assert lines[-1].startswith("book: 4 chapters, 0 run, 4 cached")
    (root / "book" / "extra.md").write_text("# More\n")  # a page changed: only the HTML is rebuilt
    assert main(["book", "--profile", "smoke"]) == 0 and len(built) == 2
    assert "0 run, 4 cached" in capsys.readouterr().err
    assert main(["book", "--profile", "smoke", "--force"]) == 0 and len(built) == 3
    assert "4 run, 0 cached" in capsys.readouterr().err


def test_the_rerun_command_repeats_the_parameters(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"parameters": {"profile": "quick", "seed": 3, "label": "a b", "flag": True}}
    path = tmp_path / "05_x.ipynb"
    nbformat.write(nb, path)
    # in the order the notebook's JSON keeps them, a value with a space quoted for the shell
    assert website.rerun_command(path) == "xtomo run 05_x --profile quick -p flag=True -p 'label=a b' -p seed=3"
