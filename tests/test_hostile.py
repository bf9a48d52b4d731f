"""Nothing lost, nothing doubled, no traceback: the response log under failed writes and concurrent
imports, temporary files left by killed writers, and a full disk met by the command line.

Each test makes the failure happen for real where it can (a process killed with SIGKILL, two
processes importing at once, a file-size limit that makes writes fail as a full disk does) and
injects it only where it cannot (a write that fails half-way)."""
from __future__ import annotations

import csv
import errno
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from xtomo import files
from xtomo.study import export, protocol
from xtomo.study.app import StudyApp
from xtomo.study.protocol import FIELDS, Pair, Session, Stimulus, read_responses


def pairs(n: int = 3) -> list[Pair]:
    rng = np.random.default_rng(0)
    return [Pair(f"p{i}", Stimulus(f"p{i}-real", rng.uniform(0, 1, (8, 8))),
                 Stimulus(f"p{i}-fake", np.full((8, 8), 0.5))) for i in range(n)]


def answers(folder, path, sessions=("s1", "s2")) -> None:
    """A CSV as the exported page downloads it: every pair of study 'xray' answered in each session."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        for s in sessions:
            for i in range(3):
                writer.writerow(["human", "P1", "xray", s, 0, i, f"p{i}", f"p{i}-real", f"p{i}-fake", "left",
                                 "left", 1, 1.0, "2026-01-01T00:00:00Z"])


@pytest.fixture
def exported(tmp_path):
    folder = tmp_path / "html"
    export.export_html({"xray": pairs()}, folder)
    answers(folder, tmp_path / "answers.csv")
    return folder, tmp_path / "answers.csv", tmp_path / "log.csv"


# ----------------------------------------------------------------------------- the response log

def test_an_import_that_fails_half_way_adds_nothing_and_can_be_redone(exported, monkeypatch):
    folder, answered, log = exported
    Session("xray", pairs(), "P09", log, seed=0).answer("left", rt=0.5)  # a log with a row in it
    before = log.read_bytes()
    real_write, calls = os.write, []

    def disk_fills(fd, data):  # the first half goes out, then the disk is full
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data)[:len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(protocol.os, "write", disk_fills)
    with pytest.raises(OSError, match="No space left"):
        export.import_responses(answered, log, folder)
    assert log.read_bytes() == before and len(calls) == 2      # cut back: no torn row, no partial import
    monkeypatch.undo()
    assert len(export.import_responses(answered, log, folder)) == 6  # space again: the import completes
    assert len(read_responses(log)) == 7


def _import(args) -> str:
    answered, log, folder, barrier = args
    barrier.wait()
    try:
        return f"imported {len(export.import_responses(answered, log, folder))}"
    except ValueError as error:
        return str(error)


def test_two_imports_of_one_file_at_once_add_it_once(exported):
    folder, answered, log = exported
    context = multiprocessing.get_context("fork")
    with context.Manager() as manager:
        barrier = manager.Barrier(2)
        with context.Pool(2) as pool:
            outcomes = pool.map(_import, [(answered, log, folder, barrier)] * 2)
    assert sorted(o.split(" ")[0] for o in outcomes)[1] == "imported", outcomes
    refused = next(o for o in outcomes if not o.startswith("imported"))
    assert "already in" in refused and "nothing imported" in refused
    assert len(read_responses(log)) == 6


def test_the_reader_rejects_a_trial_answered_twice(exported):
    folder, answered, log = exported
    lines = answered.read_text().splitlines()
    log.write_text("\n".join([*lines, lines[2]]) + "\n")        # session s1's trial 1 once more
    with pytest.raises(ValueError, match=r"line 8: trial 1 of session s1 is already answered on line 3"):
        read_responses(log)


def test_the_app_says_when_its_log_cannot_take_answers(tmp_path):
    log = tmp_path / "log.csv"
    Session("xray", pairs(), "P01", log, seed=0).answer("left", rt=0.5)
    whole = log.read_bytes()
    log.write_bytes(whole[:-4])                                 # a torn last line
    app = StudyApp({"xray": pairs()}, log, participant="P02", min_rt=0.0)
    app.start.click()
    assert app.session is None and "partial line" in app.message.value   # refused before the first click
    log.write_bytes(whole)
    app.start.click()
    assert app.session is not None and app.message.value == ""
    log.write_bytes(whole[:-4])                                 # torn while the study runs
    app.left_button.click()
    assert "NOT saved" in app.message.value and "partial line" in app.message.value
    assert app.progress.value == 0 and app.session.current().index == 0  # the trial stays on screen
    log.write_bytes(whole)
    app.left_button.click()
    assert app.progress.value == 1 and app.message.value == "" and len(read_responses(log)) == 2


# ----------------------------------------------------------------------------- temporary files

WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from xtomo.files import atomic_path
    with atomic_path(sys.argv[1]) as tmp:
        tmp.write_bytes(b"x" * 100_000)
        print("writing", flush=True)
        time.sleep(60)
""")


def test_a_killed_writers_temporary_file_goes_with_the_next_write_and_a_live_ones_stays(tmp_path):
    target = tmp_path / "volume.npy"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
               for _ in range(2)]
    try:
        for w in writers:
            assert w.stdout.readline().strip() == "writing"
        parts = {w.pid: [p for p in tmp_path.iterdir() if f".{w.pid}." in p.name] for w in writers}
        assert all(len(found) == 1 for found in parts.values())
        writers[0].send_signal(signal.SIGKILL)
        writers[0].wait()
        with files.atomic_path(target) as tmp:                  # the same target written again
            tmp.write_bytes(b"done")
        left = sorted(p.name for p in tmp_path.iterdir())
        assert parts[writers[0].pid][0].name not in left        # the killed writer's file is gone
        assert parts[writers[1].pid][0].name in left            # the live writer's is not
        assert target.read_bytes() == b"done"
    finally:
        for w in writers:
            w.kill()
            w.wait()
            w.stdout.close()


def test_other_targets_temporary_files_are_left_alone(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".other.{dead.stdout.strip()}.abc.part.npy"
    stale.write_bytes(b"x")
    with files.atomic_path(tmp_path / "volume.npy") as tmp:
        tmp.write_bytes(b"done")
    assert stale.exists()
    assert files.remove_stale_parts(tmp_path) == [stale] and not stale.exists()


# ----------------------------------------------------------------------------- a full disk

FULL = textwrap.dedent("""
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write beyond the limit fails (EFBIG), as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
    from xtomo.cli import main
    sys.exit(main(sys.argv[2:]))
""")


def full_disk(limit: int, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", FULL, str(limit), *argv], capture_output=True, text=True,
                          timeout=300)


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing(tmp_path):
    z = torch.linspace(-1, 1, 24)
    ball = ((z[:, None, None] ** 2 + z[None, :, None] ** 2 + z[None, None, :] ** 2) < 0.5).float()
    np.save(tmp_path / "ball.npy", ball.numpy())
    out = tmp_path / "ball.stl"
    run = full_disk(4096, "mesh", str(tmp_path / "ball.npy"), "--level", "0.5", "--out", str(out))
    assert run.returncode == 1, run.stderr
    assert run.stderr.startswith(f"xtomo: error: {out}: File too large") and run.stderr.count("\n") == 1
    assert "Traceback" not in run.stderr and not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ball.npy"]   # no temporary file left


def test_a_checkpoint_that_cannot_be_written_is_an_os_error_naming_it(tmp_path):
    run = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import resource, signal, sys, torch
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
        from xtomo.files import save_torch
        try:
            save_torch({"w": torch.zeros(10_000)}, sys.argv[1])
        except OSError as error:
            print(error.filename, "|", error.strerror)
    """), str(tmp_path / "checkpoint.pt")], capture_output=True, text=True, timeout=120)
    assert run.stdout.startswith(f"{tmp_path / 'checkpoint.pt'} | could not be written ("), run.stderr
    assert "MiB free on its disk" in run.stdout
    assert [p.name for p in tmp_path.iterdir()] == []


def test_exporting_a_model_to_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing(tmp_path):
    import dataclasses

    from xtomo.profiles import get_profile

    checkpoint = tmp_path / "checkpoint.pt"
    torch.save(dict(model={"w": torch.zeros(20_000)}, model_config={}, profile=dataclasses.asdict(get_profile("smoke")),
                    step=1, history=[], exposure=(0.01, 0.1)), checkpoint)
    folder = tmp_path / "models"
    folder.mkdir()
    run = full_disk(4096, "export-model", str(checkpoint), "--name", "full", "--folder", str(folder))
    assert run.returncode == 1, run.stderr
    assert run.stderr.startswith(f"xtomo: error: {folder / 'full.pt'}: could not be written (")
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert list(folder.iterdir()) == []


def test_an_atomic_write_reaches_the_disk_before_it_replaces_the_old_file(tmp_path, monkeypatch):
    seen, real_fsync, real_replace = [], os.fsync, os.replace
    monkeypatch.setattr(files.os, "fsync", lambda fd: seen.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
                        or real_fsync(fd))
    monkeypatch.setattr(files.os, "replace", lambda a, b: seen.append(("replace", str(b))) or real_replace(a, b))
    target = tmp_path / "a.json"
    files.write_json(target, {"a": 1})
    assert [step for step, _ in seen] == ["fsync", "replace", "fsync"]
    assert seen[0][1].startswith(str(tmp_path / ".a.")) and seen[1][1] == str(target) and seen[2][1] == str(tmp_path)


def test_an_empty_log_reads_as_no_rows(tmp_path):
    """A log is created empty and gets its header with its first rows under the lock (and goes back to
    empty if that write fails): a reader meeting it empty, as a second import at once can, sees no rows."""
    path = tmp_path / "log.csv"
    path.touch()
    assert protocol.ResponseLog(path).rows() == []
