"""Find, parameterise and execute the book's chapters with papermill.

A chapter is a notebook ``notebooks/NN_name.ipynb`` with a cell tagged ``parameters``.
``run_chapter`` executes one at a profile into ``_build/<profile>/notebooks/``, checking the
parameters against that cell first; ``xtomo.publish.website.build_book`` runs them all and builds
the HTML book from the executed copies. The book's root is found from the working directory (or
``$XTOMO_BOOK``) by ``book_root``.
"""
from __future__ import annotations

import ast
import contextlib
import datetime
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from xtomo.files import atomic_path, read_json, write_json
from xtomo.profiles import get_profile

__all__ = ["book_root", "BookError", "ChapterFailed", "find_chapters", "resolve_chapter", "chapter_parameters",
           "typed_parameters", "run_chapter"]

KERNEL = "python3"  # ipykernel's own kernelspec; jupyter_client starts it with sys.executable
_CHAPTER_NAME = re.compile(r"^(\d\d)_[^.]+\.ipynb$")
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}
_EXPECTED = {bool: "true or false", int: "an integer", float: "a number"}
# The kernel's environment: bars redraw at most once a second (each redraw is a widget message
# that nbclient records), and no inherited MPLBACKEND (e.g. Agg from CI) may stop ipykernel from
# choosing its inline backend, or figures would silently vanish from the book.
_KERNEL_ENV = {"TQDM_MININTERVAL": "1", "MPLBACKEND": None}
# ipykernel warns at every start that its local TCP sockets are unencrypted; keep its errors only
_KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]


class BookError(RuntimeError):
    """The book pipeline could not run a chapter or build the HTML."""


class ChapterFailed(BookError):
    """A chapter raised while executing; the executed notebook is kept at ``failed_notebook``."""

    def __init__(self, message: str, chapter: str, cell: int | None = None,
                 failed_notebook: Path | None = None):
        super().__init__(message)
        self.chapter = chapter
        self.cell = cell  # 1-based, in the chapter's source notebook
        self.failed_notebook = failed_notebook


def book_root(start: str | os.PathLike | None = None) -> Path:
    """The book's root folder: ``$XTOMO_BOOK``, else the nearest of ``start`` (default: the
    working directory) and its parents that holds ``_toc.yml`` and ``notebooks/``."""
    if start is None and os.environ.get("XTOMO_BOOK"):
        return Path(os.environ["XTOMO_BOOK"]).resolve()
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "notebooks").is_dir():
            return folder
    raise FileNotFoundError(f"no book here: neither {here} nor a folder above it holds _toc.yml and notebooks/ "
                            "(run from the book's folder, or set XTOMO_BOOK)")


def _root(root: str | os.PathLike | None) -> Path:
    return Path(root).resolve() if root is not None else book_root()


def find_chapters(root: str | os.PathLike | None = None) -> list[Path]:
    """The chapter notebooks ``<root>/notebooks/NN_*.ipynb``, in order of their number."""
    folder = _root(root) / "notebooks"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _CHAPTER_NAME.match(p.name))


def resolve_chapter(chapter: str | int | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """The notebook named by ``chapter``: a number (``1``, ``"01"``), a stem or a path."""
    text = str(chapter)
    if text.endswith(".ipynb") or os.sep in text or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"no chapter notebook at {path}")
        return path.resolve()
    chapters = find_chapters(root)
    for path in chapters:
        number = _CHAPTER_NAME.match(path.name).group(1)
        if text == path.stem or (text.isdigit() and int(text) == int(number)):
            return path
    known = ", ".join(f"{int(p.name[:2])} = {p.stem}" for p in chapters) or "none yet"
    raise ValueError(f"no chapter {text!r} in {_root(root) / 'notebooks'} (chapters: {known})")


def _parameters_cell(path: Path) -> int:
    """Index of the cell tagged ``parameters``; a chapter without one is refused."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return index
    raise ValueError(f"chapter {path.stem} has no cell tagged 'parameters' ({path})")


def chapter_parameters(chapter: str | int | os.PathLike,
                       root: str | os.PathLike | None = None) -> dict[str, str]:
    """The chapter's parameters and their defaults as written (source text), by papermill.

    Every chapter must have a cell tagged ``parameters`` that defines at least ``profile``.
    """
    import papermill

    path = resolve_chapter(chapter, root)
    _parameters_cell(path)
    known = {name: p["default"] for name, p in papermill.inspect_notebook(str(path)).items()}
    if "profile" not in known:
        raise ValueError(f"chapter {path.stem}: its parameters cell must define `profile`")
    return known


def _parse(name: str, text: str, default_source: str, chapter: str):
    """``text`` read with the type of the default (bool, int, float, str; otherwise as YAML)."""
    try:
        kind = type(ast.literal_eval(default_source))
    except (ValueError, SyntaxError):
        kind = None  # the default is an expression: no type to go by
    try:
        if kind is bool:
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError(text)
            return text.lower() in _TRUE
        if kind in (int, float):
            return kind(text)
        return text if kind is str else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError):
        raise ValueError(f"chapter {chapter}: parameter {name}={text!r} is not "
                         f"{_EXPECTED.get(kind, 'a YAML value')} (its default is {default_source})"
                         ) from None


def typed_parameters(chapter: str | int | os.PathLike, parameters: dict,
                     root: str | os.PathLike | None = None) -> dict:
    """``parameters`` checked against the chapter's parameters cell, strings parsed by type.

    Unknown names are refused before anything runs (papermill itself only warns); string values,
    as given on a command line, take the type of the default in the parameters cell.
    """
    path = resolve_chapter(chapter, root)
    known = chapter_parameters(path)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        listing = ", ".join(f"{k}={v}" for k, v in known.items()) or "none"
        raise ValueError(f"chapter {path.stem} has no parameter {', '.join(unknown)}; "
                         f"its parameters are: {listing}")
    return {name: _parse(name, value, known[name], path.stem) if isinstance(value, str) else value
            for name, value in parameters.items()}


def _check_kernel() -> None:
    """Refuse a ``python3`` kernelspec that would run another interpreter than this one."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(KERNEL)
    executable = spec.argv[0]
    # jupyter_client replaces a bare "python"/"python3"/"pythonX.Y" with sys.executable
    bare = {"python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}"}
    if executable not in bare and executable != sys.executable:
        raise BookError(
            f"the Jupyter kernel {KERNEL!r} ({spec.resource_dir}) runs {executable}, not this "
            f"interpreter {sys.executable}; remove that kernelspec or run "
            f"`{sys.executable} -m ipykernel install --sys-prefix`")


@contextlib.contextmanager
def _kernel_environment():
    """Set ``_KERNEL_ENV`` in os.environ while a kernel starts (it inherits it); restore after."""
    saved = {name: os.environ.get(name) for name in _KERNEL_ENV}
    for name, value in _KERNEL_ENV.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ.setdefault(name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _failure(path: Path, exc: Exception, kept: Path | None, parameters_cell: int) -> ChapterFailed:
    """A one-line ChapterFailed: chapter, cell and its first line, exception type and message."""
    from papermill.exceptions import PapermillExecutionError

    where, cell = "", None
    if isinstance(exc, PapermillExecutionError):
        # papermill counts the injected-parameters cell that follows the parameters cell
        cell = exc.cell_index - (exc.cell_index > parameters_cell) + 1
        first = next((line for line in exc.source.splitlines() if line.strip()), "")
        where = f" at cell {cell} (`{first.strip()}`)"
        ename, evalue = exc.ename, exc.evalue
    else:
        ename, evalue = type(exc).__name__, str(exc)
    message = " ".join(evalue.split())
    if len(message) > 300:
        message = message[:300] + " …"
    kept_note = f"; the executed notebook is kept at {kept}" if kept else ""
    return ChapterFailed(f"chapter {path.stem} failed{where}: {ename}: {message}{kept_note}",
                         path.stem, cell, kept)


def _record_timing(path: Path, chapter: str, profile: str, seconds: float, parameters: dict):
    """Add the chapter's wall time, with date and machine, to ``timings.json`` (atomically)."""
    timings = read_json(path) if path.exists() else {}
    timings.setdefault("chapters", {})[chapter] = {
        "seconds": round(seconds, 2),
        "profile": profile,
        "parameters": parameters,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    write_json(path, timings)


def run_chapter(chapter: str | int | os.PathLike, profile: str = "quick",
                parameters: dict | None = None, out_dir: str | os.PathLike | None = None, *,
                root: str | os.PathLike | None = None, progress_bar: bool = False,
                clock: Callable[[], float] = time.perf_counter) -> Path:
    """Execute one chapter with papermill at ``profile``; return the executed notebook's path.

    The notebook lands in ``out_dir`` (default ``<root>/_build/<profile>/notebooks/``) only if
    every cell succeeds; otherwise it is kept as ``<name>.failed.ipynb`` and ``ChapterFailed``
    says where and why. The kernel runs in ``root`` (the repository), so relative paths such as
    ``artifacts/`` mean the same as for the ``xtomo`` command. Wall time, the difference of two
    readings of ``clock`` (seconds), goes to ``<out_dir>/../timings.json``.
    """
    import papermill

    root = _root(root)
    path = resolve_chapter(chapter, root)
    parameters = dict(parameters or {})
    if "profile" in parameters:
        raise ValueError("choose the profile with --profile (profile=...), not as a parameter")
    get_profile(profile)
    values = typed_parameters(path, parameters)
    parameters_cell = _parameters_cell(path)
    _check_kernel()

    out_dir = Path(out_dir).resolve() if out_dir is not None else root / "_build" / profile / "notebooks"
    final, failed = out_dir / path.name, out_dir / f"{path.stem}.failed.ipynb"
    start = clock()
    with atomic_path(final) as tmp, _kernel_environment():
        try:
            papermill.execute_notebook(
                str(path), str(tmp), parameters={"profile": profile, **values}, kernel_name=KERNEL,
                cwd=str(root), progress_bar=progress_bar, extra_arguments=_KERNEL_ARGS)
        except Exception as exc:
            kept = None
            if tmp.stat().st_size:  # papermill saved the notebook up to the failure
                os.replace(tmp, failed)
                kept = failed
            raise _failure(path, exc, kept, parameters_cell) from None
    failed.unlink(missing_ok=True)
    _record_timing(out_dir.parent / "timings.json", path.stem, profile,
                   clock() - start, values)
    return final
