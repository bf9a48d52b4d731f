"""The paper's two user studies (Henzler et al. 2018, Secs. 5.3 and 5.6) as runnable experiments.

Both are two-alternative forced-choice (2AFC) studies: a trial shows two images side by side, one
of them real (the ground-truth render, or a real radiograph), and the observer picks the one they
think is real. The package is split by idea:

- ``protocol``: stimuli and pairs, the seeded trial schedule, the append-only response CSV and the
  ``Session`` that every observer, person or machine, answers through;
- ``stimuli``: the pairs made from the project's results (chapter 5) and from real radiographs;
- ``observers``: machine observers (image statistics, a small CNN) that stand in until people
  have taken the study, always labelled as machines; ``realism_check``: chapter 1's real head
  against the procedural crania, in statistics and to a machine observer;
- ``app``: the ipywidgets app; ``export``: the same study as a folder of PNGs and a plain HTML
  page, and the importer of its answers;
- ``analysis``: proportions, exact tests, the participant-level test, power, and the
  re-analysis of the paper's reported numbers; ``plots``: their figures.
"""
from xtomo._lazy import submodules

__all__ = ["protocol", "stimuli", "observers", "realism_check", "app", "export", "analysis", "plots"]
__getattr__, __dir__ = submodules(__name__, __all__)
