"""The 2AFC protocol shared by every observer: pairs, a seeded schedule, a session, the response log.

A ``Pair`` holds one real and one fake ``Stimulus`` (display-ready grey images of one size). A
``Session`` shows the pairs of one study in a seeded order with the real image on a seeded side,
records a response and a reaction time per trial, and appends each answered trial to a
``ResponseLog`` at once: the CSV is opened for appending only, locked, flushed and fsynced per row,
so an interrupted session keeps every trial it answered and nothing is ever overwritten.
The log holds a participant code and nothing else about a person.
"""
from __future__ import annotations

import csv
import datetime
import io
import math
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xtomo import _checks as checks

try:  # advisory locks where the platform has them; O_APPEND alone keeps rows whole elsewhere
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["QUESTIONS", "SIDES", "OBSERVERS", "FIELDS", "Stimulus", "Pair", "Trial", "validate_pairs",
           "schedule", "validate_participant", "validate_study", "validate_row", "ResponseLog", "read_responses",
           "Session"]

#: What each kind of study asks; a study's name starts with its kind ("iso-best", "xray").
QUESTIONS = {"iso": "Which of the two renders shows the real skull (the other is a reconstruction)?",
             "xray": "Which image is a real x-ray?"}
SIDES = ("left", "right")
OBSERVERS = ("human", "machine")
#: Columns of the response CSV, in order; one row per answered trial.
FIELDS = ["observer", "participant", "study", "session", "seed", "trial", "pair", "left", "right",
          "real_side", "chosen", "correct", "rt_s", "timestamp"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_PARTICIPANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}$")
_STUDY = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
MACHINE_PREFIX = "machine:"


# ----------------------------------------------------------------------------- stimuli and pairs

def _identifier(value, what: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise ValueError(f"{what} must be 1-64 letters, digits, '_', '.', ':' or '-' starting with a letter "
                         f"or digit, got {value!r}")
    return value


@dataclass(frozen=True, eq=False)
class Stimulus:
    """One image shown in a trial: grey ``[H, W]`` float32 display values in [0, 1] (white = opaque)."""
    id: str
    image: np.ndarray = field(repr=False)
    source: str = ""

    def __post_init__(self):
        _identifier(self.id, "stimulus id")
        image = self.image.detach().cpu().numpy() if hasattr(self.image, "detach") else np.asarray(self.image)
        if image.ndim != 2 or min(image.shape) < 2:
            raise ValueError(f"stimulus {self.id}: expected a grey image [H, W], got shape {image.shape}")
        if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
            raise ValueError(f"stimulus {self.id}: display values must be finite and within [0, 1]")
        object.__setattr__(self, "image", np.ascontiguousarray(image, dtype=np.float32))

    def png(self) -> bytes:
        """The image as an 8-bit greyscale PNG."""
        import imageio.v3 as iio
        return iio.imwrite("<bytes>", np.rint(self.image * 255).astype(np.uint8), extension=".png")


@dataclass(frozen=True, eq=False)
class Pair:
    """A 2AFC pair: the ``real`` image (ground truth, or a real radiograph) and the ``fake`` one."""
    id: str
    real: Stimulus
    fake: Stimulus

    def __post_init__(self):
        _identifier(self.id, "pair id")
        if self.real.id == self.fake.id:
            raise ValueError(f"pair {self.id}: real and fake stimulus share the id {self.real.id!r}")
        if self.real.image.shape != self.fake.image.shape:
            raise ValueError(f"pair {self.id}: both images must have one size so only their content differs, "
                             f"got {self.real.image.shape} and {self.fake.image.shape}")


@dataclass(frozen=True)
class Trial:
    """The ``index``-th trial of a session: ``pair`` with its real image on ``real_side``."""
    index: int
    pair: Pair
    real_side: str

    @property
    def left(self) -> Stimulus:
        return self.pair.real if self.real_side == "left" else self.pair.fake

    @property
    def right(self) -> Stimulus:
        return self.pair.fake if self.real_side == "left" else self.pair.real


def validate_pairs(pairs, what: str = "pairs") -> list[Pair]:
    """``pairs`` as a list: non-empty, every item a ``Pair``, their ids unique; ``what`` names them
    in the error (e.g. ``"study 'xray'"``)."""
    pairs = list(pairs)
    if not pairs or not all(isinstance(p, Pair) for p in pairs):
        raise ValueError(f"{what} must be a non-empty sequence of xtomo.study.protocol.Pair")
    ids = [p.id for p in pairs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{what}: pair ids must be unique, got {ids}")
    return pairs


def _seed(seed) -> int:
    return checks.integer(seed, "seed", minimum=0)


def schedule(pairs, seed: int) -> list[Trial]:
    """The trials of a session: the pairs in a seeded random order (time-randomised), each with the
    real image on a seeded random side (side-randomised). Same pairs and seed, same schedule."""
    pairs, seed = validate_pairs(pairs), _seed(seed)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pairs))
    sides = rng.integers(0, 2, len(pairs))
    return [Trial(i, pairs[j], SIDES[s]) for i, (j, s) in enumerate(zip(order.tolist(), sides.tolist()))]


# ----------------------------------------------------------------------------- validation

def validate_participant(participant, observer: str = "human") -> str:
    """A participant code: 1-40 letters, digits, '_', '.', ':' or '-', never a name or an address.

    Machine observers, and only they, have codes starting with ``machine:``.
    """
    if observer not in OBSERVERS:
        raise ValueError(f"observer must be one of {OBSERVERS}, got {observer!r}")
    if not isinstance(participant, str) or not _PARTICIPANT.match(participant):
        raise ValueError(f"participant id must be a code of 1-40 letters, digits, '_', '.', ':' or '-' "
                         f"(no names, no e-mail addresses, no spaces), got {participant!r}")
    machine = participant.startswith(MACHINE_PREFIX)
    if machine != (observer == "machine"):
        raise ValueError(f"participant id {participant!r}: ids starting with {MACHINE_PREFIX!r} are reserved "
                         f"for machine observers, and machine observers must use one (observer {observer!r})")
    return participant


def validate_study(study) -> str:
    """A study name: lower-case letters, digits and '-', starting with a kind in ``QUESTIONS``."""
    if not isinstance(study, str) or not _STUDY.match(study) or study.split("-")[0] not in QUESTIONS:
        raise ValueError(f"study must be a name like 'iso-best' or 'xray' starting with one of "
                         f"{sorted(QUESTIONS)}, got {study!r}")
    return study


def _integer(value, name: str) -> int:
    text = str(value).strip()
    if not re.fullmatch(r"\d+", text):
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(text)


def validate_row(row: dict) -> dict:
    """One response row (strings as read from CSV, or values) checked and typed; raises ValueError
    naming the first bad field. ``correct`` must agree with ``chosen == real_side``."""
    missing = [f for f in FIELDS if f not in row or row[f] is None]
    if missing:
        raise ValueError(f"missing field(s) {missing}")
    observer = row["observer"]
    if observer not in OBSERVERS:
        raise ValueError(f"observer must be one of {OBSERVERS}, got {observer!r}")
    out = dict(observer=observer, participant=validate_participant(row["participant"], observer),
               study=validate_study(row["study"]), session=_identifier(row["session"], "session"),
               seed=_integer(row["seed"], "seed"), trial=_integer(row["trial"], "trial"),
               pair=_identifier(row["pair"], "pair"), left=_identifier(row["left"], "left"),
               right=_identifier(row["right"], "right"))
    if out["left"] == out["right"]:
        raise ValueError(f"left and right show the same stimulus {out['left']!r}")
    for name in ("real_side", "chosen"):
        if row[name] not in SIDES:
            raise ValueError(f"{name} must be 'left' or 'right', got {row[name]!r}")
        out[name] = row[name]
    correct = str(row["correct"]).strip()
    if correct not in ("0", "1", "True", "False"):
        raise ValueError(f"correct must be 0 or 1, got {row['correct']!r}")
    out["correct"] = int(correct in ("1", "True"))
    if out["correct"] != int(out["chosen"] == out["real_side"]):
        raise ValueError(f"correct = {out['correct']} contradicts chosen = {out['chosen']!r} with the real "
                         f"image on the {out['real_side']}")
    try:
        rt = float(row["rt_s"])
    except (TypeError, ValueError):
        raise ValueError(f"rt_s must be a number of seconds, got {row['rt_s']!r}") from None
    if not math.isfinite(rt) or rt < 0:
        raise ValueError(f"rt_s must be a finite, non-negative number of seconds, got {row['rt_s']!r}")
    out["rt_s"] = rt
    try:
        stamp = datetime.datetime.fromisoformat(str(row["timestamp"]).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"timestamp must be ISO 8601 (e.g. 2024-05-01T12:00:00+00:00), "
                         f"got {row['timestamp']!r}") from None
    out["timestamp"] = stamp.isoformat()
    return out


# ----------------------------------------------------------------------------- the response log

def _line(values: list) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode()


_HEADER = _line(FIELDS)


def _format(row: dict) -> list:
    return [f"{row[f]:.4f}" if f == "rt_s" else row[f] for f in FIELDS]


class ResponseLog:
    """An append-only response CSV: the header once, then one row per answered trial.

    Every append opens the file with ``O_APPEND``, takes an exclusive lock, writes its rows whole
    and fsyncs them before returning, so concurrent sessions interleave whole rows and a crash loses
    at most the trial being answered. A write that fails part way (a full disk) is cut back to
    where it began: all of its rows or none. Existing rows are never rewritten.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def append(self, row: dict) -> dict:
        """Validate ``row`` and append it; returns the typed row."""
        return self.extend([row])[0]

    def extend(self, rows, check: Callable[[list[dict]], None] | None = None) -> list[dict]:
        """Validate ``rows`` and append them all, or none; returns the typed rows.

        ``check(logged)``, called under the log's lock with the rows already in it, may raise to
        refuse the whole append (say, rows that are there already).
        """
        typed = []
        for row in rows:
            try:
                row = validate_row(row)
            except ValueError as error:
                raise ValueError(f"{self.path}: refusing to log a bad row: {error}") from None
            row["rt_s"] = float(f"{row['rt_s']:.4f}")   # as it will read back
            typed.append(row)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size:
                self._check(fd, size)
            if check is not None:
                check(read_responses(self.path) if size else [])
            data = (b"" if size else _HEADER) + b"".join(_line(_format(r)) for r in typed)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, size)  # all or nothing: no torn or partial import is left behind
                raise
        finally:
            os.close(fd)  # releases the lock
        return typed

    def writable(self) -> None:
        """Raise (with the reason) if rows could not be appended now: the log is not a response log,
        ends in a partial line, or cannot be written."""
        if not self.path.exists():
            return
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        try:
            size = os.fstat(fd).st_size
            if size:
                self._check(fd, size)
        finally:
            os.close(fd)

    def _check(self, fd: int, size: int) -> None:
        """Refuse to append to a file that is not a response log or ends in a partial line."""
        head = os.pread(fd, len(_HEADER), 0)
        if head != _HEADER:
            raise ValueError(f"{self.path} is not a response log: its first line is not the header "
                             f"{','.join(FIELDS)}")
        if os.pread(fd, 1, size - 1) != b"\n":
            raise ValueError(f"{self.path} ends in a partial line; repair or remove that line before appending")

    def rows(self, study: str | None = None) -> list[dict]:
        """Every row (of one study, if given); nothing if the log does not exist yet or is empty (``extend``
        creates it empty and writes its header with the first rows under the lock, and truncates it back to
        empty if that first write fails: another process may read it in between)."""
        return read_responses(self.path, study) if self.path.exists() and self.path.stat().st_size else []


def read_responses(path: str | os.PathLike, study: str | None = None) -> list[dict]:
    """The typed rows of a response CSV (of one study, if given); a bad file or row fails with
    an error that names the line and what is wrong with it (every bad line, up to ten). A trial
    answered twice in one session (an import done twice) is a bad row."""
    path = Path(path)
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or list(reader.fieldnames) != FIELDS:
            raise ValueError(f"{path}: expected the header {','.join(FIELDS)}, got "
                             f"{','.join(reader.fieldnames or []) or 'an empty file'}")
        rows, errors, lines = [], [], {}
        for row in reader:
            try:
                if None in row:
                    raise ValueError(f"{len(FIELDS) + len(row[None])} values for {len(FIELDS)} columns")
                typed = validate_row(row)
                key = typed["session"], typed["trial"]
                if key in lines:
                    raise ValueError(f"trial {key[1]} of session {key[0]} is already answered on line {lines[key]}")
                lines[key] = reader.line_num
                rows.append(typed)
            except ValueError as error:
                errors.append(f"line {reader.line_num}: {error}")
    if errors:
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ValueError(f"{path}: {len(errors)} bad row(s):\n  " + "\n  ".join(errors[:10]) + more)
    return [r for r in rows if study is None or r["study"] == study]


# ----------------------------------------------------------------------------- a session

def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class Session:
    """One observer taking one study: a seeded schedule, answered trial by trial into a log.

    ``current()`` shows the next trial and starts its reaction-time clock; ``answer(side)`` records
    the choice and appends the row at once. People answer through the app, machine observers
    through ``observers.run``; both call these two methods. Reaction times are differences of
    readings of ``clock`` (seconds; any monotonic clock, a fake one in tests).
    """

    def __init__(self, study: str, pairs, participant: str, log: ResponseLog | str | os.PathLike,
                 seed: int | None = None, observer: str = "human",
                 clock: Callable[[], float] = time.perf_counter):
        self.study = validate_study(study)
        self.pairs = validate_pairs(pairs, f"study {study!r}")
        self.participant = validate_participant(participant, observer)
        self.observer = observer
        self.log = log if isinstance(log, ResponseLog) else ResponseLog(log)
        self.seed = secrets.randbelow(2**31) if seed is None else _seed(seed)
        self.id = f"{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
        self.trials = schedule(self.pairs, self.seed)
        self.rows: list[dict] = []
        self.clock = clock
        self._shown: float | None = None

    @property
    def question(self) -> str:
        return QUESTIONS[self.study.split("-")[0]]

    @property
    def done(self) -> bool:
        return len(self.rows) == len(self.trials)

    @property
    def elapsed(self) -> float | None:
        """Seconds since the current trial was first shown; None before it is."""
        return None if self._shown is None else self.clock() - self._shown

    def current(self) -> Trial | None:
        """The trial being shown (None when all are answered); its clock starts the first time it is asked for."""
        if self.done:
            return None
        if self._shown is None:
            self._shown = self.clock()
        return self.trials[len(self.rows)]

    def answer(self, chosen: str, rt: float | None = None) -> dict:
        """Record ``chosen`` ('left' or 'right') for the current trial and append it to the log.

        ``rt`` overrides the measured reaction time (seconds since the trial was first shown).
        """
        if self.done:
            raise RuntimeError(f"session {self.id} is finished: all {len(self.trials)} trials are answered")
        if chosen not in SIDES:
            raise ValueError(f"chosen must be 'left' or 'right', got {chosen!r}")
        trial = self.current()
        rt = self.clock() - self._shown if rt is None else rt
        row = self.log.append(dict(
            observer=self.observer, participant=self.participant, study=self.study, session=self.id,
            seed=self.seed, trial=trial.index, pair=trial.pair.id, left=trial.left.id, right=trial.right.id,
            real_side=trial.real_side, chosen=chosen, correct=int(chosen == trial.real_side), rt_s=rt,
            timestamp=_now()))
        self.rows.append(row)
        self._shown = None
        return row
