"""Atomic files, the per-profile artifacts folder that chapters hand results through, and the cache folder of
what is cheap to redo but worth keeping between processes."""
from __future__ import annotations

import contextlib
import csv
import errno
import functools
import glob
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: folders are not locked
    fcntl = None

__all__ = ["atomic_path", "umask", "write_json", "read_json", "write_csv", "read_csv", "artifacts_dir", "cache_dir",
           "require_artifact", "folder_lock", "FolderBusyError", "writable_target", "remove_stale_parts", "save_torch",
           "sha256"]

LOCK_NAME = ".xtomo.lock"  #: the file in a folder whose lock says a run is writing there


class FolderBusyError(ValueError):
    """Another process is writing into the folder (it holds its lock)."""


def sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file, read in blocks; of a folder, over its files' relative paths and bytes in sorted order."""
    path, digest = Path(path), hashlib.sha256()
    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "a run"):
    """Hold ``folder``'s lock while the block runs; if another process holds it, fail at once, naming it.

    The lock is the operating system's (``flock``) on ``folder/.xtomo.lock``, so it is released when
    its holder ends, however it ends: a killed run never leaves the folder locked.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process"
                raise FolderBusyError(f"{folder} is in use by {holder}; wait for it to end or choose "
                                      "another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what} (pid {os.getpid()} on {socket.gethostname()}, since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')})".encode(), 0)
        yield folder
    finally:
        os.close(fd)  # releases the lock


@functools.cache
def umask() -> int:
    """The process's file-creation mask (read once, when first needed, and restored at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    An interrupted write leaves the old file (or nothing), never a half-written one: the temporary
    file is flushed to the disk (fsync) before the rename, and the folder after it. Its name,
    ``.<name>.<pid>.<random>.part<suffix>``, says which process writes it, so temporary files of
    ``path`` that a killed writer left behind are removed here, and a live writer's are not.
    ``suffix`` keeps writers that choose the format from the extension happy (e.g. ``.nii.gz``).
    """
    path = writable_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix if suffix is not None else "".join(path.suffixes)
    stem = path.name.split(".")[0]
    remove_stale_parts(path.parent, stem)
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.{os.getpid()}.", suffix=f".part{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes files private; give them the usual mode
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    except OSError as error:  # a full disk names no file: name the one being written
        if error.filename is None:
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def save_torch(obj, path: str | os.PathLike, check=None) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically; a write that fails (torch says only "unexpected
    pos" when the disk fills) is an ``OSError`` naming the file and the space left. ``check(tmp)``, when
    given, sees the written file before it takes the name, and may refuse it by raising."""
    import torch

    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as error:
            free = shutil.disk_usage(path.parent).free
            raise OSError(errno.EIO, f"could not be written ({free / 2**20:.0f} MiB free on its disk; "
                                     f"torch: {str(error).strip()[:120]})", str(path)) from None
        if check is not None:
            check(tmp)
    return path


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder; the rename is still atomic
        if not path.is_dir():
            raise
    finally:
        os.close(fd)


def remove_stale_parts(folder: Path, stem: str = "*") -> list[Path]:
    """Remove the temporary files (``atomic_path``'s) in ``folder`` whose writer no longer runs on this
    machine (of names starting with ``stem``); those of live processes stay. Returns what was removed."""
    removed = []
    for part in folder.glob(f".{stem if stem == '*' else glob.escape(stem)}.*.part*"):
        pid = part.name.split(".")[2]  # ".<stem>.<pid>.<random>.part<suffix>", the stem without dots
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):  # another run may be cleaning up too
                part.unlink()
                removed.append(part)
    return removed


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (one we may not signal still runs)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: it runs
        pass
    return True


def writable_target(path: str | os.PathLike, suffixes: tuple[str, ...] = (), what: str = "the output") -> Path:
    """``path`` if a file may be written there, else an error naming why: it must end in one of
    ``suffixes`` (when given), not be a folder nor a read-only file, and its folder (made when
    missing) must be a folder. Commands call it before the work whose result it will hold."""
    path = Path(path)
    if suffixes and not path.name.lower().endswith(tuple(suffixes)):
        raise ValueError(f"{path}: {what} must be a {' or '.join(suffixes)} file")
    if path.is_dir():
        raise ValueError(f"{path}: {what} is a folder; name a file in it")
    if path.exists() and not path.stat().st_mode & 0o222:
        raise ValueError(f"{path}: {what} exists and is read-only; it is left as it is")
    folder = next((p for p in path.parents if p.exists()), None)
    if folder is not None and not folder.is_dir():
        raise ValueError(f"{path}: {what} cannot be made, {folder} is a file, not a folder")
    return path


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    return Path(path)


def read_json(path: str | os.PathLike):
    """The object a JSON file holds."""
    return json.loads(Path(path).read_text())


def write_csv(path: str | os.PathLike, rows, fields) -> Path:
    """Write ``rows`` (dicts) as a CSV table with the columns ``fields``, header first, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(fields))
            writer.writeheader()
            writer.writerows(rows)
    return Path(path)


def read_csv(path: str | os.PathLike) -> list[dict]:
    """The rows of a CSV table as dicts of strings, keyed by its header."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def artifacts_dir(profile: str, root: str | os.PathLike | None = None) -> Path:
    """The folder where chapters of ``profile`` leave results for later chapters.

    ``root`` defaults to ``$XTOMO_ARTIFACTS`` or ``./artifacts``.
    """
    root = Path(root or os.environ.get("XTOMO_ARTIFACTS", "artifacts"))
    path = root.resolve() / profile
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Where work that any process may redo but need not is kept (the pose's templates): ``$XTOMO_CACHE``,
    else ``$XDG_CACHE_HOME/xtomo``, else ``~/.cache/xtomo``; made by the first write."""
    if os.environ.get("XTOMO_CACHE"):
        return Path(os.environ["XTOMO_CACHE"]).resolve()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").resolve() / "xtomo"


def require_artifact(path: str | os.PathLike, made_by: str) -> Path:
    """``path`` if it exists, else an error that names the chapter which makes it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run {made_by} first (it writes this file)")
    return path
