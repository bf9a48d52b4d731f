"""The studies away from Jupyter: a folder of PNGs with a plain HTML page, and the importer of its answers.

``export_html`` writes ``index.html`` (open it in any browser, no server needed), ``study.js``
(plain JavaScript: a seeded schedule per session, one row per answer, kept in the browser's
local storage so an interrupted session is not lost, and a button that downloads the rows as
CSV), ``studies.json`` (which stimuli form which pair) and ``stimuli/*.png``. The downloaded CSV
has the columns of the response log; ``import_responses`` checks it against ``studies.json`` and
appends it to the log. The page and its script are package data, ``templates/index.html`` and
``templates/study.js``, filled in here with the studies and the log's columns.
"""
from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

from xtomo.files import atomic_path, read_json, write_json

from .protocol import FIELDS, QUESTIONS, ResponseLog, read_responses, validate_pairs, validate_study

__all__ = ["export_html", "import_responses"]


def _template(name: str) -> str:
    """A file of this package's ``templates/`` folder (package data, shipped with the package)."""
    return resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


def export_html(studies: dict, folder: str | os.PathLike) -> Path:
    """Write the studies (``{name: pairs}``) as a self-contained folder; returns its ``index.html``.

    Files already there with the same names are replaced (each atomically); stimulus file names are
    the stimulus ids, so a stimulus shared by two studies is written once.
    """
    folder = Path(folder)
    manifest = {}
    for name, pairs in studies.items():
        pairs = validate_pairs(pairs, f"study {validate_study(name)!r}")
        manifest[name] = dict(question=QUESTIONS[name.split("-")[0]],
                              pairs=[dict(id=p.id, real=p.real.id, fake=p.fake.id, real_source=p.real.source,
                                          fake_source=p.fake.source) for p in pairs])
        for p in pairs:
            for stimulus in (p.real, p.fake):
                with atomic_path(folder / "stimuli" / f"{stimulus.id}.png") as tmp:
                    tmp.write_bytes(stimulus.png())
    if not manifest:
        raise ValueError("export_html needs at least one study: {name: pairs}")
    write_json(folder / "studies.json", manifest)
    with atomic_path(folder / "study.js") as tmp:
        tmp.write_text(_template("study.js").replace("__FIELDS__", json.dumps(FIELDS)))
    embedded = json.dumps({k: dict(question=v["question"], pairs=[dict(id=p["id"], real=p["real"], fake=p["fake"])
                                                                   for p in v["pairs"]])
                           for k, v in manifest.items()})
    with atomic_path(folder / "index.html") as tmp:
        # the JSON goes into a <script>: "</" escaped, so it cannot close it
        tmp.write_text(_template("index.html").replace("__STUDIES__", embedded.replace("</", "<\\/")))
    return folder / "index.html"


def import_responses(csv_path: str | os.PathLike, log: ResponseLog | str | os.PathLike,
                     folder: str | os.PathLike) -> list[dict]:
    """Check a CSV downloaded from the exported page against its ``studies.json`` and append it to ``log``.

    Every row must be valid (``protocol.validate_row``), from a person, of an exported study and
    pair, show that pair's two stimuli with the real one on ``real_side``, and be the only answer
    to its session's trial; its session must not be in the log already (imported twice). Nothing
    is appended unless every row passes; the error names each bad line. The rows go in as one
    append under the log's lock (``ResponseLog.extend``), checked again there against what the log
    holds then: two imports of one file at once add it once, and a failed write adds nothing.
    Returns the rows appended.
    """
    csv_path = Path(csv_path)
    log = log if isinstance(log, ResponseLog) else ResponseLog(log)
    manifest_path = Path(folder) / "studies.json"
    if not manifest_path.exists():
        raise FileNotFoundError(f"{manifest_path} is missing: pass the folder that export_html wrote")
    manifest = {name: {p["id"]: (p["real"], p["fake"]) for p in s["pairs"]}
                for name, s in read_json(manifest_path).items()}
    rows = read_responses(csv_path)
    known = {r["session"] for r in log.rows()}
    errors, seen = [], set()
    for line, r in enumerate(rows, start=2):
        pair = manifest.get(r["study"], {}).get(r["pair"])
        if r["observer"] != "human":
            errors.append(f"line {line}: observer must be 'human' in answers from the HTML page, got {r['observer']!r}")
        elif r["study"] not in manifest:
            errors.append(f"line {line}: study {r['study']!r} was not exported (exported: {sorted(manifest)})")
        elif pair is None:
            errors.append(f"line {line}: pair {r['pair']!r} is not a pair of study {r['study']!r}")
        elif (r["left"], r["right"]) != (pair if r["real_side"] == "left" else pair[::-1]):
            errors.append(f"line {line}: left/right ({r['left']}, {r['right']}) do not show pair {r['pair']} "
                          f"with its real image {pair[0]} on the {r['real_side']}")
        elif r["session"] in known:
            errors.append(f"line {line}: session {r['session']} is already in {log.path} (imported before?)")
        elif (r["session"], r["trial"]) in seen:
            errors.append(f"line {line}: trial {r['trial']} of session {r['session']} is answered twice")
        seen.add((r["session"], r["trial"]))
    if errors:
        raise ValueError(f"{csv_path}: {len(errors)} bad row(s), nothing imported:\n  " + "\n  ".join(errors[:10]))

    def not_yet_logged(logged: list[dict]) -> None:
        again = sorted({r["session"] for r in rows} & {r["session"] for r in logged})
        if again:
            raise ValueError(f"{csv_path}: session(s) {', '.join(again)} already in {log.path} "
                             "(imported before?); nothing imported")

    return log.extend(rows, check=not_yet_logged)
