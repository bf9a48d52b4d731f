"""The user studies (chapter 7): schedule, append-only log, app, HTML round trip, stimuli and statistics."""
from __future__ import annotations

import csv
import html
import math
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import require
from scipy import stats as sst

from xtomo.data import realdata
from xtomo.evaluation import scoring, stats
from xtomo.files import read_csv
from xtomo.profiles import get_profile
from xtomo.study import analysis, export, stimuli
from xtomo.study.app import StudyApp
from xtomo.study.protocol import (
    FIELDS,
    Pair,
    ResponseLog,
    Session,
    Stimulus,
    read_responses,
    schedule,
    validate_participant,
)

SMOKE = get_profile("smoke")


def make_pairs(n: int = 6, size: int = 16, prefix: str = "p") -> list[Pair]:
    """Pairs whose real image is noisy and whose fake image is smooth (easy to tell apart)."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    return [Pair(f"{prefix}{i}", Stimulus(f"{prefix}{i}-real", rng.uniform(0, 1, (size, size))),
                 Stimulus(f"{prefix}{i}-fake", np.outer(ramp, ramp) * (0.5 + i / (2 * n)))) for i in range(n)]


class FakeClock:
    """A clock (seconds) that moves only when the test moves it: ``clock.now += 0.25``."""

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


# ----------------------------------------------------------------------------- schedule

def test_schedule_is_determined_by_its_seed():
    pairs = make_pairs(12)
    a, b, c = schedule(pairs, 3), schedule(pairs, 3), schedule(pairs, 4)
    assert [(t.pair.id, t.real_side) for t in a] == [(t.pair.id, t.real_side) for t in b]
    assert [(t.pair.id, t.real_side) for t in a] != [(t.pair.id, t.real_side) for t in c]
    assert sorted(t.pair.id for t in a) == sorted(p.id for p in pairs)           # every pair once
    assert [t.index for t in a] == list(range(12))
    assert {t.real_side for t in a} == {"left", "right"}
    for t in a:
        assert (t.left is t.pair.real) == (t.real_side == "left") and {t.left, t.right} == {t.pair.real, t.pair.fake}
    with pytest.raises(ValueError, match="seed"):
        schedule(pairs, -1)
    with pytest.raises(ValueError, match="unique"):
        schedule(pairs + pairs[:1], 0)


def test_pairs_must_match_in_size_and_stimuli_must_be_display_images():
    with pytest.raises(ValueError, match="one size"):
        Pair("x", Stimulus("a", np.zeros((8, 8))), Stimulus("b", np.zeros((8, 9))))
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        Stimulus("a", np.full((8, 8), 2.0))
    with pytest.raises(ValueError, match="stimulus id"):
        Stimulus("has space", np.zeros((8, 8)))


def test_participant_ids_are_codes_and_machines_are_marked():
    assert validate_participant("P07") == "P07"
    assert validate_participant("machine:cnn-0", "machine") == "machine:cnn-0"
    for bad in ("", "Jane Doe", "jane@example.org", "x" * 41):
        with pytest.raises(ValueError, match="participant id"):
            validate_participant(bad)
    with pytest.raises(ValueError, match="reserved"):
        validate_participant("machine:me")
    with pytest.raises(ValueError, match="reserved"):
        validate_participant("cnn", "machine")


# ----------------------------------------------------------------------------- the log

def test_log_appends_one_row_per_answer_and_never_rewrites(tmp_path):
    path = tmp_path / "responses.csv"
    pairs = make_pairs(6)
    first = Session("xray", pairs, "P01", path, seed=1)
    for side in ("left", "right", "left"):
        first.answer(side, rt=0.5)
    before = path.read_bytes()
    assert before.splitlines()[0].decode() == ",".join(FIELDS)
    second = Session("xray", pairs, "P02", path, seed=2)         # the first was abandoned half-way
    while not second.done:
        second.answer("left")
    after = path.read_bytes()
    assert after.startswith(before) and after.count(b"observer,") == 1  # appended, header once
    rows = read_responses(path)
    assert [r["participant"] for r in rows] == ["P01"] * 3 + ["P02"] * 6
    assert [r["trial"] for r in rows[:3]] == [0, 1, 2] and rows[0]["rt_s"] == 0.5
    for r in rows:
        assert r["correct"] == int(r["chosen"] == r["real_side"]) and r["observer"] == "human"
    trial = schedule(pairs, 1)[0]
    assert (rows[0]["pair"], rows[0]["left"], rows[0]["right"]) == (trial.pair.id, trial.left.id, trial.right.id)
    assert second.done and second.current() is None
    with pytest.raises(RuntimeError, match="finished"):
        second.answer("left")
    with pytest.raises(ValueError, match="'left' or 'right'"):
        first.answer("up")


def test_a_killed_session_keeps_its_answered_trials(tmp_path):
    """A process that dies without any cleanup after three answers leaves those three rows."""
    path = tmp_path / "responses.csv"
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        from xtomo.study.protocol import Pair, Session, Stimulus
        pairs = [Pair(f"p{{i}}", Stimulus(f"r{{i}}", np.full((4, 4), 0.2)), Stimulus(f"f{{i}}", np.full((4, 4), 0.8)))
                 for i in range(8)]
        s = Session("iso-best", pairs, "P09", {str(path)!r}, seed=5)
        for _ in range(3):
            s.answer("right")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == -9, run.stderr
    rows = read_responses(path)
    assert len(rows) == 3 and {r["session"] for r in rows} == {rows[0]["session"]}


def test_log_refuses_foreign_and_broken_files(tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a response log"):
        Session("xray", make_pairs(2), "P01", other, seed=0).answer("left")
    assert other.read_text() == "a,b\n1,2\n"
    broken = tmp_path / "broken.csv"
    Session("xray", make_pairs(2), "P01", broken, seed=0).answer("left")
    broken.write_bytes(broken.read_bytes()[:-5])
    with pytest.raises(ValueError, match="partial line"):
        Session("xray", make_pairs(2), "P02", broken, seed=0).answer("left")
    with pytest.raises(ValueError, match="bad row"):
        ResponseLog(tmp_path / "x.csv").append({f: "" for f in FIELDS})


def test_read_responses_names_every_bad_line(tmp_path):
    path = tmp_path / "responses.csv"
    Session("xray", make_pairs(3), "P01", path, seed=0).answer("left", rt=1.0)
    good = path.read_text().splitlines()[1].split(",")
    bad_side, bad_correct = list(good), list(good)
    bad_side[FIELDS.index("chosen")] = "up"
    bad_correct[FIELDS.index("correct")] = str(1 - int(good[FIELDS.index("correct")]))
    with open(path, "a") as fh:
        fh.write(",".join(bad_side) + "\n" + ",".join(bad_correct) + "\n")
    with pytest.raises(ValueError) as info:
        read_responses(path)
    message = str(info.value)
    assert "2 bad row(s)" in message and "line 3: chosen must be 'left' or 'right'" in message
    assert "line 4: correct" in message and "contradicts" in message


# ----------------------------------------------------------------------------- the app

def test_app_buttons_write_rows_and_show_the_result(tmp_path):
    path = tmp_path / "responses.csv"
    pairs = make_pairs(4)
    app = StudyApp({"iso-best": pairs, "xray": make_pairs(2, prefix="q")}, path, min_rt=0.0, seed=7)
    app.participant.value = "Jane Doe"
    app.start.click()
    assert app.session is None and "participant id" in app.message.value and not path.exists()
    app.participant.value = "P01"
    app.start.click()
    assert app.trial_box.layout.display == "" and bytes(app.left_image.value).startswith(b"\x89PNG")
    app.left_button.click()
    app.right_button.click()
    rows = read_responses(path)
    assert [r["chosen"] for r in rows] == ["left", "right"] and app.progress.value == 2
    assert {r["study"] for r in rows} == {"iso-best"} and rows[0]["seed"] == 7
    app.left_button.click()
    app.left_button.click()
    app.left_button.click()                                   # after the end: ignored
    rows = read_responses(path)
    k = sum(r["correct"] for r in rows)
    assert len(rows) == 4 and f"{k} of 4 correct" in app.result.value
    assert app.trial_box.layout.display == "none"


def test_app_ignores_double_clicks_and_times_reactions(tmp_path):
    """Clicks sooner than min_rt after a trial appears are ignored; reaction times are the clock's
    readings apart (times in binary fractions, so that every difference is exact)."""
    clock = FakeClock(10.0)
    app = StudyApp({"xray": make_pairs(3)}, tmp_path / "r.csv", participant="P01", min_rt=0.15, clock=clock)
    app.start.click()                                         # the first trial appears at 10 s
    clock.now += 0.125
    app.left_button.click()                                   # 0.125 s < min_rt: a double click
    assert not (tmp_path / "r.csv").exists() and app.progress.value == 0
    clock.now += 0.125
    app.left_button.click()                                   # 0.25 s: an answer; trial 2 appears
    app.right_button.click()                                  # at once after it: ignored
    clock.now += 1.5
    app.right_button.click()
    rows = read_responses(tmp_path / "r.csv")
    assert [(r["chosen"], r["rt_s"]) for r in rows] == [("left", 0.25), ("right", 1.5)]
    assert app.progress.value == 2


# ----------------------------------------------------------------------------- HTML export and import

def test_html_export_and_import_round_trip(tmp_path):
    """The exported page's own JavaScript (run by node) answers a session; its CSV imports cleanly."""
    node = shutil.which("node")
    require(node, "node is not installed")
    folder = tmp_path / "html"
    studies = {"iso-random": make_pairs(5), "xray": make_pairs(3, prefix="x")}
    index = export.export_html(studies, folder)
    page = index.read_text()
    assert '<script src="study.js">' in page and "iso-random" in page
    assert len(list((folder / "stimuli").glob("*.png"))) == 16
    driver = textwrap.dedent("""
        const s = require(process.argv[1]);
        const studies = JSON.parse(require("fs").readFileSync(process.argv[2]));
        const session = s.newSession("iso-random", studies["iso-random"].pairs, "P05", 12345, new Date());
        const again = s.makeTrials(studies["iso-random"].pairs, s.mulberry32(12345));
        if (JSON.stringify(again) !== JSON.stringify(session.trials)) throw new Error("schedule not seeded");
        for (const side of ["left", "right", "left"]) s.answer(session, side, 0.8, new Date());
        try { s.newSession("xray", [], "Jane Doe", 1, new Date()); throw new Error("accepted a name"); }
        catch (e) { if (!/participant id/.test(e.message)) throw e; }
        process.stdout.write(s.toCSV(session.rows));
    """)
    run = subprocess.run([node, "-e", driver, str(folder / "study.js"), str(folder / "studies.json")],
                         capture_output=True, text=True, check=True)
    downloaded = tmp_path / "downloaded.csv"
    downloaded.write_text(run.stdout)
    log = tmp_path / "responses.csv"
    rows = export.import_responses(downloaded, log, folder)
    assert len(rows) == 3 and read_responses(log) == rows
    assert [r["chosen"] for r in rows] == ["left", "right", "left"] and {r["participant"] for r in rows} == {"P05"}
    with pytest.raises(ValueError, match="already in"):
        export.import_responses(downloaded, log, folder)            # a second import is refused
    lines = run.stdout.splitlines()
    tampered = lines[1].split(",")
    tampered[FIELDS.index("pair")] = "nope"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([lines[0], ",".join(tampered)] + lines[2:]) + "\n")
    with pytest.raises(ValueError, match="line 2: pair 'nope' is not a pair"):
        export.import_responses(bad, tmp_path / "other.csv", folder)
    assert not (tmp_path / "other.csv").exists()                  # nothing appended from a bad file


# the page's clock, replaced by one that moves only when the probe says (milliseconds)
_FAKE_CLOCK = ("startPage(STUDIES);", "var fakeNow = 1000; startPage(STUDIES, () => fakeNow);")
# clicks start and answers, each after the given time on the fake clock: the 100 ms and 0 ms
# clicks come sooner than the page's 150 ms floor after a trial appears and must be ignored
_PROBE = """<script>
const click = (id, ms) => { fakeNow += ms; document.getElementById(id).click(); };
document.getElementById("participant").value = "P03";
document.getElementById("study").value = "xray";
click("start", 0);
click("choose-left", 100);
click("choose-left", 150);
click("choose-right", 500);
click("choose-left", 0);
click("choose-left", 1250);
const pre = document.createElement("pre");
pre.id = "probe";
pre.textContent = toCSV(JSON.parse(localStorage.getItem("xtomo-study-rows") || "[]"));
document.body.appendChild(pre);
</script></body>"""


def test_the_exported_page_in_a_browser(tmp_path):
    """Headless Chromium opens the page, a script clicks start and five answers on a fake clock, two
    of them too soon; the page's own CSV (what its download button saves) imports into the log."""
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    require(browser, "no Chromium to run the page in")
    folder = tmp_path / "html"
    index = export.export_html({"xray": make_pairs(4)}, folder)
    page = index.read_text()
    assert page.count(_FAKE_CLOCK[0]) == 1
    index.write_text(page.replace(*_FAKE_CLOCK).replace("</body>", _PROBE))
    run = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", index.as_uri()],
                         capture_output=True, text=True, timeout=120)
    dom = run.stdout
    assert '<pre id="probe">' in dom, run.stderr[-2000:]
    downloaded = tmp_path / "responses.csv"
    downloaded.write_text(html.unescape(dom.split('<pre id="probe">')[1].split("</pre>")[0]))
    rows = export.import_responses(downloaded, tmp_path / "log.csv", folder)
    assert [r["chosen"] for r in rows] == ["left", "right", "left"] and {r["participant"] for r in rows} == {"P03"}
    assert [r["rt_s"] for r in rows] == [0.25, 0.5, 1.25] and len({r["pair"] for r in rows}) == 3


def test_import_names_bad_rows_from_any_source(tmp_path):
    folder = tmp_path / "html"
    export.export_html({"xray": make_pairs(2)}, folder)
    path = tmp_path / "answers.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        writer.writerow(["human", "P1", "xray", "s1", 0, 0, "p0", "p0-real", "p0-fake", "right", "right", 1, 1.0,
                         "2024-01-01T00:00:00Z"])
    with pytest.raises(ValueError, match=r"line 2: left/right \(p0-real, p0-fake\) do not show pair p0"):
        export.import_responses(path, tmp_path / "log.csv", folder)
    with pytest.raises(FileNotFoundError, match="studies.json"):
        export.import_responses(path, tmp_path / "log.csv", tmp_path)


# ----------------------------------------------------------------------------- stimuli

def test_stretch_and_crop():
    x = np.linspace(0, 1, 201, dtype=np.float32).reshape(1, -1).repeat(4, 0)
    shown = stimuli.stretch(x)
    assert shown.min() == 0 and shown.max() == 1 and shown.dtype == np.float32
    with pytest.raises(ValueError, match="constant"):
        stimuli.stretch(np.ones((8, 8)))
    import torch
    image = torch.rand(300, 200)
    a, where_a = stimuli.crop(image, 32, np.random.default_rng(1))
    b, where_b = stimuli.crop(image, 32, np.random.default_rng(1))
    assert a.shape == (32, 32) and where_a == where_b and torch.equal(a, b)
    r, c, side = where_a
    assert 100 <= side <= 200 and r + side <= 300 and c + side <= 200
    with pytest.raises(ValueError, match="contrast"):
        stimuli.crop(torch.zeros(64, 64), 16, np.random.default_rng(0))


def test_xray_pairs_keep_trials_and_training_apart():
    require(all((realdata.data_dir() / r.file).exists() for r in realdata.RADIOGRAPHS.values()),
            "real radiographs not fetched (xtomo fetch-data)")
    sets = stimuli.xray_pairs(SMOKE, n=3, train=4, seed=0)
    again = stimuli.xray_pairs(SMOKE, n=3, train=4, seed=0)
    assert [len(sets["xray"]), len(sets["xray-train"])] == [3, 4]
    for key in sets:
        for p, q in zip(sets[key], again[key]):
            assert p.real.image.shape == (SMOKE.xray_size,) * 2 and np.array_equal(p.real.image, q.real.image)
    assert all("half 1" in p.real.source for p in sets["xray"])
    assert all("half 2" in p.real.source for p in sets["xray-train"])
    from xtomo.learning.train import train_val_sets
    train_set, val_set = train_val_sets(SMOKE)
    val_names = {val_set.bank.name(s) for s in val_set.specimens}
    train_names = {train_set.bank.name(s) for s in train_set.specimens}
    assert all(any(n in p.fake.source for n in val_names) for p in sets["xray"])
    assert all(any(n in p.fake.source for n in train_names) for p in sets["xray-train"])


def test_iso_pairs_from_chapter_5(tmp_path):
    from xtomo.learning.train import train
    out = tmp_path / "smoke"
    with pytest.raises(FileNotFoundError, match="chapter 5"):
        stimuli.iso_pairs(SMOKE, out_dir=out)
    train(SMOKE, out_dir=out, progress=False)
    scoring.evaluate(SMOKE, out_dir=out, k=4, chunk=4, progress=False)
    sets = stimuli.iso_pairs(SMOKE, n=2, train=10, seed=0, out_dir=out)
    rows = read_csv(out / "evaluation.csv")
    dssim = scoring.by_method(rows, "dssim")["ours"]
    assert [p.id for p in sets["iso-best"]] == [f"iso-s{s}" for s in sorted(dssim, key=dssim.get)[:2]]
    used = {p.id for p in sets["iso-best"] + sets["iso-random"]}
    assert len(sets["iso-random"]) == 2 and not used & {p.id for p in sets["iso-train"]}
    assert len(sets["iso-train"]) == SMOKE.eval_samples - len(used)
    pair = sets["iso-best"][0]
    assert pair.real.image.shape == (SMOKE.xray_size,) * 2 and not np.array_equal(pair.real.image, pair.fake.image)


# ----------------------------------------------------------------------------- statistics

def _tail(k: int, n: int, p: float, upper: bool) -> float:
    """P(X >= k) (upper) or P(X <= k) from the binomial's definition."""
    ks = range(k, n + 1) if upper else range(0, k + 1)
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in ks)


def test_pooled_matches_scipy_and_a_hand_checked_clopper_pearson(tmp_path):
    path = tmp_path / "r.csv"
    pairs = make_pairs(4)
    s = Session("xray", pairs, "P01", path, seed=0)
    for t in s.trials:                                   # exactly one correct answer of four
        s.answer(t.real_side if t.index == 0 else ("left" if t.real_side == "right" else "right"))
    (row,) = analysis.pooled(read_responses(path))
    assert (row["correct"], row["trials"], row["participants"]) == (1, 4, 1)
    assert row["p_two_sided"] == pytest.approx(sst.binomtest(1, 4).pvalue)
    assert row["p_greater"] == pytest.approx(sst.binomtest(1, 4, alternative="greater").pvalue)
    # Clopper-Pearson 95% for 1/4, by hand: P(X >= 1 | low) = 0.025 gives low = 1 - 0.975^(1/4);
    # the high end solves P(X <= 1 | high) = 0.025, i.e. (1 - p)^4 + 4 p (1 - p)^3 = 0.025.
    assert row["low"] == pytest.approx(1 - 0.975 ** 0.25, abs=1e-10) == pytest.approx(0.0063095, abs=1e-7)
    assert row["high"] == pytest.approx(0.8058796, abs=1e-6)
    assert _tail(1, 4, row["high"], upper=False) == pytest.approx(0.025, abs=1e-9)
    assert _tail(1, 4, row["low"], upper=True) == pytest.approx(0.025, abs=1e-9)


def test_participant_level_test_equals_scipy():
    correct, trials = [6, 7, 5, 9, 8], [10, 10, 10, 10, 12]
    r = stats.participant_test(correct, trials)
    rates = np.array(correct) / np.array(trials)
    ref = sst.ttest_1samp(rates, 0.5)
    assert (r.t, r.p, r.df) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue), 4)
    assert r.p_wilcoxon == pytest.approx(sst.wilcoxon(rates - 0.5).pvalue)
    table = np.array([correct, np.array(trials) - np.array(correct)]).T
    chi2, p, dof, _ = sst.chi2_contingency(table, correction=False)
    assert (r.chi2, r.p_homogeneity, r.dispersion) == (pytest.approx(chi2), pytest.approx(p), pytest.approx(chi2 / dof))
    assert r.rates.mean == pytest.approx(rates.mean()) and r.participants == 5 and r.trials == 52
    same = stats.participant_test([10, 10, 10], [10, 10, 10])
    assert math.isnan(same.t) and same.p_homogeneity == 1.0 and "same rate" in str(same)
    with pytest.raises(ValueError, match="at least 2 participants"):
        stats.participant_test([3], [10])
    with pytest.raises(ValueError, match="k must not exceed n"):
        stats.participant_test([3, 11], [10, 10])
    assert stats.design_effect(10, 0.1) == pytest.approx(1.9)


def test_participant_level_groups_rows_by_participant(tmp_path):
    path = tmp_path / "r.csv"
    for i, side in enumerate(("left", "right", "left")):
        s = Session("xray", make_pairs(4), f"P{i}", path, seed=i)
        while not s.done:
            s.answer(side)
    rows = read_responses(path)
    table = analysis.per_participant(rows)
    assert [r["participant"] for r in table] == ["P0", "P1", "P2"] and all(r["trials"] == 4 for r in table)
    test = analysis.participant_level(rows, "xray")
    assert test.participants == 3 and test.trials == 12
    assert analysis.participant_level(rows, "xray", observer="machine") is None


def test_power_numbers():
    curve = analysis.power_curve(range(1, 30), 10)
    need = stats.participants_for_power(0.6, 0.8, 10)
    first = next(r["participants"] for r in curve if r["power"] >= 0.8)
    assert first == need.participants
    table = analysis.participants_needed(10, iccs=(0.0, 0.1))
    assert table[0]["participants"] == need.participants and table[0]["exact"]
    assert table[1]["participants"] == math.ceil(need.trials * 1.9 / 10)


def test_paper_reanalysis_known_values():
    rows = {(r["trials"], r["correct"]): r for r in analysis.paper_reanalysis()}
    one = rows[(270, 125)]                                       # study 1 read as 10 pairs each
    assert one["percent"] == pytest.approx(46.296296, abs=1e-5) and one["shown_as"] == "rounded"
    assert one["p_two_sided"] == pytest.approx(sst.binomtest(125, 270).pvalue) == pytest.approx(0.2475, abs=1e-4)
    assert one["p_exactly_k"] == pytest.approx(sst.binom.pmf(125, 270, 0.5)) == pytest.approx(0.02318, abs=1e-5)
    assert one["matches_reported"] == "P(X = k)"                 # the reported "p < .023" is no test
    assert rows[(540, 250)]["matches_reported"] == "none"         # 20 single images each
    two = rows[(460, 231)]
    assert two["shown_as"] == "truncated"                        # 50.217...% reads 50.21 only when cut off
    assert two["p_two_sided"] == pytest.approx(sst.binomtest(231, 460).pvalue) == pytest.approx(0.9628, abs=1e-4)
    assert two["p_exactly_k"] == pytest.approx(0.03702, abs=1e-5) and two["matches_reported"] == "P(X = k)"
    assert analysis.matching_counts(50.21, 460, 2) == []         # no count of 460 rounds to 50.21 %
    assert analysis.matching_counts(50.21, 460, 2, "truncate") == [231]
    assert 10 not in analysis.attainable_trials(46, 50.21, 2) and 21 in analysis.attainable_trials(46, 50.21, 2)
    assert analysis.attainable_trials(27, 46.3, 1, up_to=10) == [2, 4, 6, 8, 10]
    with pytest.raises(ValueError, match="mode"):
        analysis.matching_counts(50.0, 10, 1, "floor")
