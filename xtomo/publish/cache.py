"""Which chapters a book build reruns: executed chapters are cached, keyed on what made them.

A chapter's key hashes its notebook file, its parameters, the profile, the library's source
(``library_hash``) and the run of each chapter whose artifacts it reads (``reads``, declared in
the book root's ``_chapters.yml``). A build reruns a chapter whose key changed, whose executed
notebook is missing or was rewritten since (e.g. by ``xtomo run``), or everything with
``force``; every run gets a new id, so the chapters that read it rerun too. ``book/rerun.md``
states the rule for readers.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import yaml

from xtomo.files import read_json, write_json

from .chapters import run_chapter, typed_parameters

__all__ = ["READS_FILE", "CACHE_FILE", "tree_hash", "library_hash", "file_hash", "reads", "digest", "chapter_key",
           "Cache", "run_chapters"]

READS_FILE = "_chapters.yml"  # in the book root: which chapters read which earlier chapters' artifacts
CACHE_FILE = "cache.json"  # in _build/<profile>/: the key and run id of each cached chapter


def file_hash(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, in hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tree_hash(*paths: str | os.PathLike) -> str:
    """One sha256 over the files given and every file under the folders given (names and bytes),
    bytecode caches left out."""
    digest = hashlib.sha256()
    for top in map(Path, paths):
        files = sorted(top.rglob("*")) if top.is_dir() else [top]
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.relative_to(top.parent).as_posix().encode() + b"\0")
                digest.update(path.read_bytes())
    return digest.hexdigest()


def library_hash() -> str:
    """``tree_hash`` of the ``xtomo`` package: any edit to the library, shipped model included,
    changes it, so every chapter reruns."""
    return tree_hash(Path(__file__).resolve().parents[1])


def reads(root: str | os.PathLike, chapters: list[Path]) -> dict[str, list[str]]:
    """For each chapter (by stem), the earlier chapters whose artifacts it reads.

    ``<root>/_chapters.yml`` declares them as ``reads: {03_training: [01_data_simulation], ...}``;
    a chapter it does not name reads nothing. Without that file every chapter is taken to read
    all chapters before it (always correct, rarely the least work).
    """
    stems = [p.stem for p in chapters]
    path = Path(root) / READS_FILE
    if not path.is_file():
        return {stem: stems[:i] for i, stem in enumerate(stems)}
    declared = (yaml.safe_load(path.read_text()) or {}).get("reads") or {}
    if not isinstance(declared, dict):
        raise ValueError(f"{path}: `reads` must map a chapter to the chapters it reads")
    known = {p.stem for p in (Path(root) / "notebooks").glob("[0-9][0-9]_*.ipynb")} | set(stems)
    for chapter, sources in declared.items():
        for source in [chapter, *(sources or [])]:
            if source not in known:
                raise ValueError(f"{path}: no chapter {source!r} in {Path(root) / 'notebooks'}")
        later = [s for s in sources or [] if s >= chapter]
        if later:
            raise ValueError(f"{path}: chapter {chapter} cannot read {', '.join(later)}, which runs after it")
    return {stem: list(declared.get(stem) or []) for stem in stems}


def digest(made_of: dict) -> str:
    """The sha256 of a JSON-able description of what made something."""
    return hashlib.sha256(json.dumps(made_of, sort_keys=True, default=str).encode()).hexdigest()


def chapter_key(notebook: Path, profile: str, parameters: dict, library: str, upstream: dict) -> str:
    """The key of everything a chapter's run depends on; ``upstream`` maps each chapter it
    reads to that chapter's run id (None if it never ran)."""
    return digest({"notebook": file_hash(notebook), "profile": profile, "parameters": parameters,
                   "library": library, "upstream": upstream})


class Cache:
    """What one profile's builds made: ``{name: {key, run, made, date}}`` in ``path``, a chapter's
    stem or ``html`` as name, the hash of the executed notebook or the book's index as ``made``.

    Written atomically after each chapter, so an interrupted build keeps what it finished.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.entries = read_json(self.path) if self.path.is_file() else {}

    def run_id(self, stem: str) -> str | None:
        """The id of the last run of ``stem`` (None if it never ran)."""
        return self.entries.get(stem, {}).get("run")

    def fresh(self, name: str, key: str, made: Path) -> bool:
        """Whether ``made`` (an executed notebook, the book's index) is the file recorded for ``key``."""
        entry = self.entries.get(name)
        return entry is not None and entry["key"] == key and made.is_file() and file_hash(made) == entry["made"]

    def store(self, name: str, key: str, made: Path) -> None:
        """Record that ``made`` was made from ``key``, by a new run."""
        self.entries[name] = {"key": key, "run": uuid.uuid4().hex, "made": file_hash(made),
                              "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        write_json(self.path, self.entries)

    def drop(self, name: str) -> None:
        """Forget ``name``: its next build remakes it."""
        if self.entries.pop(name, None) is not None:
            write_json(self.path, self.entries)


def _stamp() -> str:
    return datetime.datetime.now().strftime("%H:%M:%S")


def run_chapters(paths: list[Path], profile: str, parameters: dict | None, notebooks: Path, *, root: Path,
                 force: bool = False, report: Callable[[str], None] = lambda line: None,
                 progress_bar: bool = False, clock: Callable[[], float] = time.perf_counter) -> dict[str, bool]:
    """Run the chapters ``paths`` in order into ``notebooks/``, each only if its cache entry is stale.

    Returns ``{stem: True if it ran, False if cached}``; ``report`` gets one line as each chapter
    starts and one as it ends (clock time, outcome, seconds). Stops at the first failure, whose
    cache entry is dropped so that it reruns next time.
    """
    cache = Cache(notebooks.parent / CACHE_FILE)
    library, needs = library_hash(), reads(root, paths)
    ran = {}
    for number, path in enumerate(paths, 1):
        values = typed_parameters(path, dict(parameters or {}), root)
        key = chapter_key(path, profile, values, library, {s: cache.run_id(s) for s in needs[path.stem]})
        name = f"[{_stamp()}] chapter {number}/{len(paths)} {path.stem}"
        if not force and cache.fresh(path.stem, key, notebooks / path.name):
            report(f"{name}: cached, not rerun (unchanged since {cache.entries[path.stem]['date']})")
            ran[path.stem] = False
            continue
        report(f"{name}: started")
        start = clock()
        try:
            executed = run_chapter(path, profile, parameters, notebooks, root=root, progress_bar=progress_bar)
        except BaseException as error:
            cache.drop(path.stem)
            report(f"[{_stamp()}] chapter {path.stem}: FAILED after {clock() - start:.1f} s "
                   f"({type(error).__name__})")
            raise
        cache.store(path.stem, key, executed)
        report(f"[{_stamp()}] chapter {path.stem}: done in {clock() - start:.1f} s")
        ran[path.stem] = True
    return ran
