"""The studies as an ipywidgets app: a participant code, a study, then one pair per trial.

Each click is one answered trial, appended to the response CSV at once (``protocol.Session``), so
closing the notebook half-way keeps what was answered. At the end the participant sees their
own result: proportion correct, its exact interval and the binomial test against chance.
"""
from __future__ import annotations

import html
import os
import time
from collections.abc import Callable

from xtomo.evaluation import stats

from .protocol import QUESTIONS, ResponseLog, Session, validate_pairs, validate_study

__all__ = ["StudyApp"]


class StudyApp:
    """The widget (``.widget``; displaying the app shows it) for people taking the studies.

    ``studies`` maps study names to their pairs; ``log`` is the response CSV. ``seed`` fixes the
    schedule of every session (None: a fresh seed per session, recorded in the CSV). Clicks
    sooner than ``min_rt`` seconds after a trial appears are ignored: they answer the trial
    before, not the images on screen (a double click). ``clock`` (seconds, monotonic) times the
    reactions; tests pass a fake one.
    """

    def __init__(self, studies: dict, log: ResponseLog | str | os.PathLike, participant: str = "",
                 seed: int | None = None, image_width: int = 256, min_rt: float = 0.15,
                 clock: Callable[[], float] = time.perf_counter):
        import ipywidgets as w

        if not studies:
            raise ValueError("StudyApp needs at least one study: {name: pairs}")
        self.studies = {validate_study(name): validate_pairs(pairs, f"study {name!r}")
                        for name, pairs in studies.items()}
        self.log = log if isinstance(log, ResponseLog) else ResponseLog(log)
        self.seed, self.min_rt, self.clock = seed, float(min_rt), clock
        self.session: Session | None = None
        self.participant = w.Text(value=participant, description="participant", placeholder="a code, not your name")
        self.study = w.Dropdown(options=list(self.studies), description="study")
        self.start = w.Button(description="start", button_style="primary", icon="play")
        self.message = w.HTML()
        self.question = w.HTML()
        size = w.Layout(width=f"{image_width}px", height=f"{image_width}px")
        self.left_image, self.right_image = w.Image(format="png", layout=size), w.Image(format="png", layout=size)
        self.left_button = w.Button(description="this one (left)", layout=w.Layout(width=f"{image_width}px"))
        self.right_button = w.Button(description="this one (right)", layout=w.Layout(width=f"{image_width}px"))
        self.progress = w.IntProgress(min=0, max=1, value=0, description="trial")
        self.result = w.HTML()
        self.trial_box = w.VBox([self.question,
                                 w.HBox([w.VBox([self.left_image, self.left_button]),
                                         w.VBox([self.right_image, self.right_button])]),
                                 self.progress], layout=w.Layout(display="none"))
        intro = w.HTML("<p>Choose a study and type a participant code (letters, digits, <code>_ . : -</code>; "
                       "not your name). Each trial shows two images: click the button under the one you "
                       "think is real. Every answer is saved as you go.</p>")
        self.widget = w.VBox([intro, w.HBox([self.participant, self.study, self.start]), self.message,
                              self.trial_box, self.result])
        self.start.on_click(self._start)
        self.left_button.on_click(lambda _: self._answer("left"))
        self.right_button.on_click(lambda _: self._answer("right"))

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)

    def _start(self, _=None) -> None:
        """Begin a new session of the chosen study for the typed participant code."""
        try:
            self.log.writable()  # a log that cannot take rows stops the study before its first click
            self.session = Session(self.study.value, self.studies[self.study.value], self.participant.value.strip(),
                                   self.log, seed=self.seed, clock=self.clock)
        except (ValueError, OSError) as error:
            self._error(error)
            return
        self.message.value = ""
        self.result.value = ""
        self.question.value = f"<h4>{html.escape(QUESTIONS[self.session.study.split('-')[0]])}</h4>"
        self.progress.max, self.progress.value = len(self.session.trials), 0
        self.trial_box.layout.display = ""
        self._show()

    def _show(self) -> None:
        """Put the current trial's images on screen (its reaction-time clock starts here), or finish."""
        trial = self.session.current()
        if trial is None:
            self._finish()
            return
        self.left_image.value, self.right_image.value = trial.left.png(), trial.right.png()
        self.progress.description = f"{trial.index + 1} / {len(self.session.trials)}"

    def _answer(self, side: str) -> None:
        if self.session is None or self.session.done:
            return
        elapsed = self.session.elapsed
        if elapsed is None or elapsed < self.min_rt:
            return
        try:
            self.session.answer(side)
        except (ValueError, OSError) as error:  # not saved: say so, and keep the trial on screen
            self._error(error, "your answer was NOT saved")
            return
        self.message.value = ""
        self.progress.value = len(self.session.rows)
        self._show()

    def _error(self, error: Exception, what: str = "") -> None:
        """Show an error (and what it means for the answers) above the trials."""
        text = f"{what}: {error}" if what else str(error)
        self.message.value = f"<p style='color:#b00'>{html.escape(text)}</p>"

    def _finish(self) -> None:
        rows = self.session.rows
        k, n = sum(r["correct"] for r in rows), len(rows)
        test = stats.binomial_test(k, n)
        self.trial_box.layout.display = "none"
        self.result.value = (
            f"<p><b>Done: {k} of {n} correct ({100 * k / n:.0f}%).</b> 95% interval (Clopper–Pearson) "
            f"{100 * test.low:.0f}% to {100 * test.high:.0f}%; exact binomial test against chance (50%): "
            f"p = {test.p:.2g}. Your answers are in <code>{html.escape(str(self.log.path))}</code> "
            f"(session {self.session.id}); the next cell of the chapter analyses them.</p>")
