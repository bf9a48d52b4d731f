"""Shared fixtures: every test writes its artifacts into a temporary folder; the chapters execute once
per session at the smoke profile (``smoke_book``); ``cli`` runs the command line in this process.

And the one rule for a missing prerequisite (the real data, an npm package or ``npm pack``,
Chromium, node): ``require`` skips the test on a machine that lacks it, but under ``CI=true``
(the variable CI runs with) the test fails instead, so a broken fetch cannot turn tests into
silent skips where the suite is meant to run in full. CUDA tests are not prerequisites of this
kind: they keep their ``skipif`` and skip everywhere without a GPU.

Property tests (hypothesis) draw the same cases on every run, so a commit gets one verdict;
``HYPOTHESIS_PROFILE=explore`` draws new ones each run, a search for the cases the fixed draws miss
(it found the subnormal-density case kept in ``test_fusion.py``).
"""
import contextlib
import io
import os
import subprocess
import threading
from pathlib import Path

import pytest
import torch
import tqdm
from hypothesis import settings

from xtomo.learning.model import PRESETS, ModelConfig

REPO = Path(__file__).resolve().parent.parent

#: a network small enough (8-pixel x-rays, 8^3 volumes) that tests of the training loop run in milliseconds
TINY_NETWORK = ModelConfig(in_size=8, slices=8, width=4, stem_width=2, levels=1, units_per_level=0, bottom_units=1,
                           up_units=0, stride=1)


@pytest.fixture(scope="module")
def tiny_network():
    """``TINY_NETWORK`` as the model preset ``"tiny"`` while a module's tests run (``pytestmark``)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PRESETS, "tiny", TINY_NETWORK)
        yield "tiny"


def random_pairs(n: int, seed: int) -> list[dict]:
    """``n`` seeded random training pairs for ``TINY_NETWORK``: x-rays [1, 8, 8] and volumes [8, 8, 8]."""
    g = torch.Generator().manual_seed(seed)
    return [dict(xray=torch.rand(1, 8, 8, generator=g), volume=torch.rand(8, 8, 8, generator=g)) for _ in range(n)]


def stop_after_checkpoint(monkeypatch, step: int):
    """Make ``xtomo.learning.train`` stop (``KeyboardInterrupt``) right after it saves the checkpoint of ``step``,
    as a user's Ctrl-C would; returns the real ``_save``, to put back before resuming."""
    from xtomo.learning import train

    save = train._save

    def save_then_stop(run, *args):
        save(run, *args)
        if run.step == step:
            raise KeyboardInterrupt

    monkeypatch.setattr(train, "_save", save_then_stop)
    return save


settings.register_profile("fixed", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fixed"))

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
# tqdm guards its writes with a multiprocessing lock, one semaphore shared by every process forked
# from this one. Mutation testing forks one worker per mutant; a mutant that raises inside a progress
# bar's write (in `fusion._stream_nifti`, say) leaves that semaphore held, and every later worker then
# blocks on its first bar until mutmut's time limit. The tests use no processes that write bars, so a
# per-process thread lock is enough.
tqdm.tqdm.set_lock(threading.RLock())


def in_ci() -> bool:
    """Whether the suite runs where it must run in full (``CI=true``)."""
    return os.environ.get("CI") == "true"


def require(condition, reason: str) -> None:
    """Go on if ``condition`` holds; otherwise skip the test, or fail it under ``CI=true``.

    ``condition`` is a truth value, or an exception caught while getting the prerequisite (which
    means it is missing): ``except vendor.BundleUnavailable as error: require(error, "...")``.
    """
    if condition and not isinstance(condition, BaseException):
        return
    if in_ci():
        pytest.fail(f"CI=true, and a prerequisite is missing: {reason}", pytrace=False)
    pytest.skip(reason)


def cli(*args: str, cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """``xtomo ARGS`` run in this process from the folder ``cwd``: its exit status and what it printed, as a
    new process would give them, without the seconds a new Python spends importing torch (most cases of bad
    input print one line). The entry point itself, ``python -m xtomo``, runs in new processes in test_book
    and test_train."""
    from xtomo.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd or os.getcwd()), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(args))
        except SystemExit as exit:  # argparse's usage errors
            status = exit.code
    return subprocess.CompletedProcess(["xtomo", *args], status, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session", autouse=True)
def _session_artifacts(tmp_path_factory):
    """Fixtures wider than one test (a module's training, say) are set up before any test's own
    folder exists: they write here, never into the repository's artifacts/ (whose volumes may come
    from another version of the library). The cache folder (``files.cache_dir``: the pose's templates) is
    the session's too, shared by the chapters' kernels and new processes, and never the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XTOMO_ARTIFACTS", str(tmp_path_factory.mktemp("session-artifacts")))
        patch.setenv("XTOMO_CACHE", str(tmp_path_factory.mktemp("session-cache")))
        yield


@pytest.fixture(autouse=True)
def _artifacts(tmp_path, monkeypatch):
    """Keep chapter artifacts of a test out of the repository."""
    monkeypatch.setenv("XTOMO_ARTIFACTS", str(tmp_path / "artifacts"))


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    """Every chapter executed once per test session at the smoke profile, in book order with one artifacts
    folder, as ``xtomo book`` runs them: the build folder, whose ``smoke/notebooks`` holds them and whose
    ``artifacts`` sits beside it (``smoke_artifacts``). test_chapters checks the notebooks and test_browser
    builds its pages from them (the book's cache finds them fresh), so the suite runs each chapter once."""
    from xtomo.publish.cache import run_chapters
    from xtomo.publish.chapters import find_chapters

    out = tmp_path_factory.mktemp("smoke-book") / "_build"
    with smoke_artifacts(out):
        run_chapters(find_chapters(REPO), "smoke", None, out / "smoke" / "notebooks", root=REPO)
    return out


@contextlib.contextmanager
def smoke_artifacts(book: Path):
    """Within it, ``XTOMO_ARTIFACTS`` is the artifacts folder of the ``smoke_book`` at ``book``; yields that folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XTOMO_ARTIFACTS", str(book.parent / "artifacts"))
        yield book.parent / "artifacts"
