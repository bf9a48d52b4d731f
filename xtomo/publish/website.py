"""The HTML book: every chapter executed once by papermill, then rendered by jupyter-book.

``build_book`` runs the chapters in order (``chapters.run_chapter``), stages a book source from
the repository's configuration, its ``book/`` pages and the executed chapters, has jupyter-book
render that (it executes nothing itself, so every number in the book comes from exactly one
papermill run) with warnings as errors, and adds the JavaScript the book serves itself
(``vendor``). In the staged chapters, papermill's injected-parameters cell is hidden and one line
in its place says which parameters the build used (``stage_notebook``); ``book/downloads.md`` gets
a download link to each executed chapter and the command that reruns it (``downloads``).
Chapters whose inputs did not change are not rerun (``cache``).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from xtomo.files import atomic_path, umask
from xtomo.profiles import get_profile

from . import vendor
from .cache import CACHE_FILE, Cache, digest, library_hash, reads, run_chapters, tree_hash
from .chapters import BookError, book_root, find_chapters, resolve_chapter, typed_parameters

__all__ = ["BookFailed", "built_with", "stage_notebook", "rerun_command", "downloads", "build_book"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
INJECTED = "injected-parameters"  # papermill's tag of the cell it adds after the parameters cell
DOWNLOADS = "downloads.md"  # the page of book/ that the staged book completes with the chapters' links
BUILT_WITH = "xtomo-built-with"  # the tag of the line that says which parameters a build used
_MARKUP = set("\\`*_[]<>!&$~{}|#")  # Markdown/MyST markup characters, escaped in that line


class BookFailed(BookError):
    """jupyter-book reported warnings or errors (-W makes every warning fatal)."""


def _replace_dir(new: Path, dest: Path) -> Path:
    """Put the finished folder ``new`` at ``dest``, swapping out any old one by renames."""
    os.chmod(new, 0o777 & ~umask())  # mkdtemp makes folders private; a book is for reading
    old = None
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
        os.replace(dest, old)
    os.replace(new, dest)
    if old is not None:
        shutil.rmtree(old)
    return dest


def built_with(parameters: dict) -> str:
    """The Markdown line that names a build's parameters: ``Built with: profile=quick, seed=0``.

    ``profile`` comes first; the characters that Markdown (or MyST's roles and dollar math) would
    read as markup are backslash-escaped, so names and values read literally.
    """
    ordered = {"profile": parameters["profile"]} if "profile" in parameters else {}
    ordered.update(parameters)
    shown = ", ".join(f"{name}={value}" for name, value in ordered.items())
    return "Built with: " + "".join("\\" + c if c in _MARKUP else c for c in shown)


def stage_notebook(executed: Path, dest: Path) -> Path:
    """Copy an executed chapter to ``dest`` for jupyter-book, its parameters shown in one line.

    papermill's injected-parameters cell is tagged ``remove-cell`` (myst-nb leaves it out of the
    page), and a Markdown cell in its place reads ``Built with: profile=..., ...``, from the
    parameters papermill recorded. A notebook without an injected cell is copied unchanged.
    """
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    index = next((i for i, cell in enumerate(nb.cells) if INJECTED in cell.get("metadata", {}).get("tags", [])),
                 None)
    if index is not None:
        cell = nb.cells[index]
        cell.metadata["tags"] = [*cell.metadata["tags"], "remove-cell"]
        line = nbformat.v4.new_markdown_cell(built_with(nb.metadata.get("papermill", {}).get("parameters", {})))
        line.metadata["tags"] = [BUILT_WITH]
        nb.cells.insert(index, line)
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return dest


def rerun_command(executed: Path) -> str:
    """The ``xtomo run`` command that reruns an executed chapter with the parameters it ran with."""
    import nbformat

    parameters = dict(nbformat.read(executed, as_version=4).metadata.get("papermill", {}).get("parameters", {}))
    profile = parameters.pop("profile", "quick")
    given = [f"-p {shlex.quote(f'{name}={value}')}" for name, value in parameters.items()]
    return " ".join(["xtomo run", executed.stem, "--profile", shlex.quote(profile), *given])


def downloads(executed: list[Path]) -> str:
    """Markdown for the downloads page: each executed chapter as a download link, with the
    command that reruns it (the page sits in ``book/``, the chapters in ``notebooks/``)."""
    parts = []
    for notebook in executed:
        parts.append(f"\n## {notebook.stem}\n\n{{download}}`{notebook.name} <../notebooks/{notebook.name}>`\n\n"
                     f"```bash\n{rerun_command(notebook)}\n```\n")
    return "".join(parts)


def _stage(root: Path, executed: list[Path], dest: Path, partial: bool = False) -> Path:
    """A book source folder: the root's config, TOC and ``book/`` pages, the executed chapters.

    The staged configuration executes nothing and loads JavaScript from ``_vendor/`` only; the
    chapters are staged by ``stage_notebook``. A ``partial`` book (some chapters only) cannot
    resolve its links to the chapters it leaves out, so their warnings (``ref.doc``) are silenced
    there; the whole book keeps every warning an error. ``book/`` holds every page besides the chapters,
    the API reference too (Sphinx's autodoc imports ``xtomo`` while it builds, see ``_jupyter_book``).
    """
    for name in ("_config.yml", "_toc.yml", "book"):
        if not (root / name).exists():
            raise FileNotFoundError(f"{root / name} is missing: it is part of the book source")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        config = yaml.safe_load((root / "_config.yml").read_text()) or {}
        config.setdefault("execute", {})["execute_notebooks"] = "off"  # papermill already ran them
        sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
        sphinx.update(vendor.offline_config())
        if partial:
            sphinx["suppress_warnings"] = [*sphinx.get("suppress_warnings", []), "ref.doc"]
        (staging / "_config.yml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
        shutil.copy2(root / "_toc.yml", staging / "_toc.yml")
        shutil.copytree(root / "book", staging / "book")
        (staging / "notebooks").mkdir()
        staged = [stage_notebook(notebook, staging / "notebooks" / notebook.name) for notebook in executed]
        with open(staging / "book" / DOWNLOADS, "a") as page:
            page.write(downloads(staged))
    except BaseException:
        shutil.rmtree(staging)
        raise
    return _replace_dir(staging, dest)


def _jupyter_book(source: Path, work: Path) -> Path:
    """Run ``jupyter-book build -W -n --keep-going`` on ``source`` into a new folder in ``work``.

    -W turns every Sphinx warning into an error, -n adds a warning for each unresolved reference,
    --keep-going reports all of them before failing. Returns the output folder (the HTML is in
    its ``_build/html``); the full log is ``<work>/jupyter-book.log``.
    """
    build = Path(tempfile.mkdtemp(prefix=".jupyter-book-", dir=work))
    command = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
               "build", str(source), "--path-output", str(build), "-W", "-n", "--keep-going"]
    # autodoc (book/api.md) documents the xtomo that runs this build, installed or not
    package_parent = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    output = _ANSI.sub("", result.stdout + result.stderr)  # Sphinx colours even into a pipe
    log = work / "jupyter-book.log"
    with atomic_path(log) as tmp:
        tmp.write_text(output)
    if result.returncode != 0:
        shutil.rmtree(build)
        lines = output.splitlines()
        problems = [line for line in lines if "WARNING" in line or "ERROR" in line]
        first = problems[0] if problems else (lines[-1] if lines else "no output")
        raise BookFailed(f"jupyter-book failed ({len(problems)} warning(s) or error(s); warnings "
                         f"are errors here); first: {first.strip()}; full log: {log}")
    return build


def _html(root: Path, executed: list[Path], out: Path, cache: Cache, *, partial: bool, force: bool,
          report: Callable[[str], None]) -> Path:
    """Build the HTML book from the executed chapters into ``out/html``, unless nothing it is made
    of changed: the chapters' runs, the book's pages and configuration, the library (autodoc)."""
    key = digest({"runs": [(p.stem, cache.run_id(p.stem)) for p in executed], "partial": partial,
                  "source": tree_hash(root / "_config.yml", root / "_toc.yml", root / "book"),
                  "library": library_hash()})
    index = out / "html" / "index.html"
    if not force and cache.fresh("html", key, index):
        report(f"[{time.strftime('%H:%M:%S')}] HTML: unchanged, not rebuilt")
        return index
    report(f"[{time.strftime('%H:%M:%S')}] HTML: jupyter-book started")
    bundles = vendor.fetch_bundles(out / "vendor")
    folders, modules = vendor.widget_modules()
    vendor.check_widget_modules(executed, modules)
    profile_dir = cache.path.parent
    source = _stage(root, executed, profile_dir / "source", partial=partial)
    build = _jupyter_book(source, profile_dir)
    vendor.install_bundles(build / "_build" / "html", bundles, folders, modules)
    _replace_dir(build / "_build" / "html", out / "html")
    shutil.rmtree(build)
    cache.store("html", key, index)
    report(f"[{time.strftime('%H:%M:%S')}] HTML: built")
    return index


def build_book(profile: str = "quick", chapters: list | None = None, parameters: dict | None = None,
               out: str | os.PathLike | None = None, *, root: str | os.PathLike | None = None,
               progress_bar: bool = False, force: bool = False,
               report: Callable[[str], None] = lambda line: None) -> Path:
    """Run every chapter (or ``chapters``) in order, then build the HTML book; return its index.

    ``parameters`` go to every chapter, so each must declare them; they are all checked before
    the first chapter starts, and the build stops at the first chapter that fails. A chapter
    reruns only when it or what it reads changed (``cache``; ``force`` reruns all), and the HTML
    is rebuilt only when a chapter ran or the book's pages or the library changed. ``report``
    gets a line as each chapter starts and ends, and a summary. Everything goes under ``out``
    (default ``<root>/_build``): executed chapters in ``<profile>/notebooks``, the staged book
    source in ``<profile>/source``, the npm packages the book serves in ``vendor/`` (fetched
    once), and the finished book in ``html/``, which is replaced only once the new one is
    complete. ``root`` is the book source (default: ``chapters.book_root()``, found from the
    working directory): ``_config.yml``, ``_toc.yml``, ``book/`` and ``notebooks/``.
    """
    start = time.perf_counter()
    root = Path(root).resolve() if root is not None else book_root()
    out = Path(out).resolve() if out is not None else root / "_build"
    paths = [resolve_chapter(c, root) for c in chapters] if chapters is not None else find_chapters(root)
    if not paths:
        raise ValueError(f"no chapters to run: {root / 'notebooks'} has no NN_name.ipynb notebooks")
    get_profile(profile)
    for path in paths:
        typed_parameters(path, dict(parameters or {}))
    reads(root, paths)  # a bad _chapters.yml fails before anything runs
    vendor.fetch_bundles(out / "vendor")  # before the chapters: no registry, no book
    notebooks = out / profile / "notebooks"
    ran = run_chapters(paths, profile, parameters, notebooks, root=root, force=force, report=report,
                       progress_bar=progress_bar)
    index = _html(root, [notebooks / path.name for path in paths], out, Cache(out / profile / CACHE_FILE),
                  partial=len(paths) < len(find_chapters(root)), force=force, report=report)
    report(f"book: {len(paths)} chapters, {sum(ran.values())} run, {len(paths) - sum(ran.values())} cached, "
           f"in {time.perf_counter() - start:.0f} s; HTML: {index}")
    return index
