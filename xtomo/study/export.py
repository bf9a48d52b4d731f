"""The studies away from Jupyter: a folder of PNGs with a plain HTML page, and the importer of its answers.

``export_html`` writes ``index.html`` (open it in any browser, no server needed), ``study.js``
(plain JavaScript: a seeded schedule per session, one row per answer, kept in the browser's
local storage so an interrupted session is not lost, and a button that downloads the rows as
CSV), ``studies.json`` (which stimuli form which pair) and ``stimuli/*.png``. The downloaded CSV
has the columns of the response log; ``import_responses`` checks it against ``studies.json`` and
appends it to the log.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from xtomo.files import atomic_path, read_json, write_json

from .protocol import FIELDS, QUESTIONS, ResponseLog, _pairs, read_responses, validate_study

__all__ = ["export_html", "import_responses"]

_JS = r"""// The 2AFC studies of xtomo in plain JavaScript: schedule, answers, CSV (same columns as the Python log).
"use strict";
const FIELDS = __FIELDS__;
const PARTICIPANT = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}$/;
const STORE = "xtomo-study-rows";

// A small seeded generator (mulberry32): the same seed gives the same schedule.
function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Pairs in a random order (Fisher-Yates), each with the real image on a random side.
function makeTrials(pairs, rand) {
  const order = pairs.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order.map((j, index) => {
    const pair = pairs[j];
    const realSide = rand() < 0.5 ? "left" : "right";
    return {index, pair: pair.id, real_side: realSide,
            left: realSide === "left" ? pair.real : pair.fake, right: realSide === "left" ? pair.fake : pair.real};
  });
}

function checkParticipant(id) {
  if (!PARTICIPANT.test(id) || id.startsWith("machine:")) {
    throw new Error("participant id must be a code of 1-40 letters, digits, '_', '.', ':' or '-' " +
                    "(no names, no e-mail addresses, no spaces)");
  }
  return id;
}

function newSession(study, pairs, participant, seed, now) {
  const stamp = now.toISOString().replace(/[-:]/g, "").slice(0, 15);
  const tag = mulberry32(seed ^ now.getTime())().toString(16).slice(2, 10).padEnd(8, "0");
  return {study, participant: checkParticipant(participant), seed, id: stamp + "-" + tag,
          trials: makeTrials(pairs, mulberry32(seed)), rows: []};
}

// Record the answer to the session's current trial; returns the row.
function answer(session, chosen, rt, now) {
  const trial = session.trials[session.rows.length];
  if (!trial) throw new Error("the session is finished");
  if (chosen !== "left" && chosen !== "right") throw new Error("chosen must be left or right");
  const row = {observer: "human", participant: session.participant, study: session.study, session: session.id,
               seed: session.seed, trial: trial.index, pair: trial.pair, left: trial.left, right: trial.right,
               real_side: trial.real_side, chosen, correct: chosen === trial.real_side ? 1 : 0,
               rt_s: rt.toFixed(4), timestamp: now.toISOString()};
  session.rows.push(row);
  return row;
}

function toCSV(rows) {
  const cell = (v) => { const s = String(v); return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s; };
  return [FIELDS.join(",")].concat(rows.map((r) => FIELDS.map((f) => cell(r[f])).join(","))).join("\n") + "\n";
}

if (typeof module !== "undefined") {
  module.exports = {FIELDS, mulberry32, makeTrials, checkParticipant, newSession, answer, toCSV};
}

// ---------------------------------------------------------------------------- the page
function startPage(STUDIES) {
  const $ = (id) => document.getElementById(id);
  const stored = () => JSON.parse(localStorage.getItem(STORE) || "[]");
  let session = null, shownAt = 0;
  for (const name of Object.keys(STUDIES)) $("study").add(new Option(name, name));
  const refresh = () => { $("saved").textContent = stored().length + " answers stored in this browser"; };
  const show = () => {
    const trial = session.trials[session.rows.length];
    if (!trial) {
      const k = session.rows.reduce((s, r) => s + r.correct, 0), n = session.rows.length;
      $("trial").hidden = true;
      $("result").textContent = "Done: " + k + " of " + n + " correct (" + Math.round(100 * k / n) +
        "%). Download your answers and send the CSV to the person running the study.";
      return;
    }
    $("left").src = "stimuli/" + trial.left + ".png";
    $("right").src = "stimuli/" + trial.right + ".png";
    $("progress").textContent = "trial " + (trial.index + 1) + " of " + session.trials.length;
    shownAt = performance.now();
  };
  const choose = (side) => {
    if (!session || session.rows.length === session.trials.length) return;
    const rt = (performance.now() - shownAt) / 1000;
    if (rt < 0.15) return;  // a double click answers the trial before, not these images
    const row = answer(session, side, rt, new Date());
    localStorage.setItem(STORE, JSON.stringify(stored().concat([row])));
    refresh();
    show();
  };
  $("start").onclick = () => {
    try {
      const seed = crypto.getRandomValues(new Uint32Array(1))[0] >>> 1;
      const name = $("study").value;
      session = newSession(name, STUDIES[name].pairs, $("participant").value.trim(), seed, new Date());
    } catch (error) { $("message").textContent = error.message; return; }
    $("message").textContent = "";
    $("result").textContent = "";
    $("question").textContent = STUDIES[session.study].question;
    $("trial").hidden = false;
    show();
  };
  $("choose-left").onclick = () => choose("left");
  $("choose-right").onclick = () => choose("right");
  $("download").onclick = () => {
    const url = URL.createObjectURL(new Blob([toCSV(stored())], {type: "text/csv"}));
    const a = document.createElement("a");
    a.href = url; a.download = "responses.csv"; a.click();
    URL.revokeObjectURL(url);
  };
  $("forget").onclick = () => {
    if (confirm("Forget every stored answer in this browser? Download them first.")) {
      localStorage.removeItem(STORE); refresh();
    }
  };
  refresh();
}
"""

_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>xtomo user studies</title>
<style>
body {{ font-family: sans-serif; max-width: 40rem; margin: 2rem auto; }}
img {{ width: 256px; height: 256px; background: #000; }}
.pair {{ display: flex; gap: 1rem; }} .pair div {{ display: flex; flex-direction: column; gap: .3rem; }}
#message {{ color: #b00; }}
</style></head>
<body>
<h2>Which image is real?</h2>
<p>Two-alternative forced choice: each trial shows two images, one of them real. Click the button
under the one you think is real; answer as you see it, there is no time limit. Type a participant
code that the person running the study gave you (not your name). Your answers stay in this browser
until you download them as CSV and send that file back.</p>
<p><label>participant <input id="participant" placeholder="a code, not your name"></label>
<label>study <select id="study"></select></label> <button id="start">start</button></p>
<p id="message"></p>
<div id="trial" hidden>
<h3 id="question"></h3>
<div class="pair"><div><img id="left" alt="left image"><button id="choose-left">this one (left)</button></div>
<div><img id="right" alt="right image"><button id="choose-right">this one (right)</button></div></div>
<p id="progress"></p>
</div>
<p id="result"></p>
<p><button id="download">download answers (CSV)</button> <span id="saved"></span>
<button id="forget">forget stored answers</button></p>
<script src="study.js"></script>
<script>const STUDIES = {studies};
startPage(STUDIES);</script>
</body></html>
"""


def export_html(studies: dict, folder: str | os.PathLike) -> Path:
    """Write the studies (``{name: pairs}``) as a self-contained folder; returns its ``index.html``.

    Files already there with the same names are replaced (each atomically); stimulus file names are
    the stimulus ids, so a stimulus shared by two studies is written once.
    """
    folder = Path(folder)
    manifest = {}
    for name, pairs in studies.items():
        pairs = _pairs(pairs, f"study {validate_study(name)!r}")
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
        tmp.write_text(_JS.replace("__FIELDS__", json.dumps(FIELDS)))
    embedded = json.dumps({k: dict(question=v["question"], pairs=[dict(id=p["id"], real=p["real"], fake=p["fake"])
                                                                   for p in v["pairs"]])
                           for k, v in manifest.items()})
    with atomic_path(folder / "index.html") as tmp:
        tmp.write_text(_HTML.format(studies=embedded.replace("</", "<\\/")))  # JSON cannot close the script
    return folder / "index.html"


def import_responses(csv_path: str | os.PathLike, log: ResponseLog | str | os.PathLike,
                     folder: str | os.PathLike) -> list[dict]:
    """Check a CSV downloaded from the exported page against its ``studies.json`` and append it to ``log``.

    Every row must be valid (``protocol.validate_row``), from a person, of an exported study and
    pair, show that pair's two stimuli with the real one on ``real_side``, and be the only answer
    to its session's trial; its session must not be in the log already (imported twice). Nothing
    is appended unless every row passes; the error names each bad line. Returns the rows appended.
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
    return [log.append(r) for r in rows]
