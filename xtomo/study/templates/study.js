// The 2AFC studies of xtomo in plain JavaScript: schedule, answers, CSV (same columns as the Python log).
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
// clock: milliseconds, monotonic; reaction times are differences of its readings (tests pass a fake one)
function startPage(STUDIES, clock = () => performance.now()) {
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
    shownAt = clock();
  };
  const choose = (side) => {
    if (!session || session.rows.length === session.trials.length) return;
    const rt = (clock() - shownAt) / 1000;
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
