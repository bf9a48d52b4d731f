"""Mutation score of the core modules: how many of mutmut's mutants the fast tests kill, per module.

    .venv/bin/python benchmarks/mutation.py --run xtomo/evaluation/metrics.py   # mutate one module
    .venv/bin/python benchmarks/mutation.py --run all     # every core module, cheapest first (hours)
    .venv/bin/python benchmarks/mutation.py               # the table of what mutants/ holds
    .venv/bin/python benchmarks/mutation.py --write       # also record it in benchmarks/RESULTS.md

``--run`` mutates one module at a time, in a fresh process, with mutmut's settings from
``[tool.mutmut]`` in pyproject.toml narrowed to that module and to its tests (``TESTS`` below, plus
``tests/test_<module>_mutants.py`` where it exists), one worker (``--max-children``), and reruns all
of the module's mutants. A mutant is *killed* when a test fails, a *timeout* when the tests run
past mutmut's limit (counted as killed, as mutmut does), *no tests* when no fast test reaches its
function. Score = (killed + timeout) / mutants checked.

``mutants/`` is a work folder that git ignores, so the measured verdicts are kept in
``benchmarks/mutation_scores.json`` (committed): ``--write`` replaces the entry of every module that
``mutants/`` holds a run of, keeps the others as measured before, and rewrites the section between
``<!-- mutation:begin -->`` and ``<!-- mutation:end -->`` of RESULTS.md from that record. The
survivors are listed by name in the record; why each is left is in ``mutation_notes.md``.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import os
import shlex
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "mutants" / "xtomo-mutation-runs.json"  # when and with which tests each module ran
RECORD = ROOT / "benchmarks" / "mutation_scores.json"  # the measured verdicts, one entry per module
# the core modules, cheapest to mutate first, and the fast tests that exercise each
TESTS = {
    "xtomo/evaluation/metrics.py": ["tests/test_metrics.py"],
    "xtomo/evaluation/stats.py": ["tests/test_stats.py",
                                  "tests/test_study.py::test_participant_level_test_equals_scipy"],
    "xtomo/imaging/xray.py": ["tests/test_xray.py"],
    "xtomo/imaging/fusion.py": ["tests/test_fusion.py"],
    "xtomo/methods/baselines.py": ["tests/test_baselines.py"],
    # test_evaluation.py's tests of a trained network's evaluation (its `evaluated` fixture trains and
    # evaluates for about 20 s, rerun for every mutant they reach) are left out: the fast
    # tests/test_scoring_mutants.py checks the same protocol on an untrained network's checkpoint
    "xtomo/evaluation/scoring.py": ["tests/test_evaluation.py"] + [
        arg for name in ("test_every_method_on_every_sample", "test_recorded_scores_can_be_reproduced",
                         "test_oracle_is_never_worse_than_nn_and_the_l2_is_the_mean_squared_error",
                         "test_fused_result_reprojects_to_its_input", "test_resume_skips_what_is_done",
                         "test_an_interrupted_run_completes")
        for arg in ("--deselect", f"tests/test_evaluation.py::{name}")],
    # test_train.py's other tests are left out: those that start fresh interpreters (the kill-and-resume
    # test, DDP with gloo, the reconstruct command line) never kill a mutant, since mutmut's
    # trampolines do not follow new processes, and the rest train the smoke network for 12 to 100
    # steps per mutant; tests/test_train_mutants.py checks the same in-process, on a tiny network. The
    # test_train.py tests kept take under 0.2 s; test_augment.py's two train a tiny network (1-3 s); with
    # test_train_safety.py's two they check the checkpoint, fine-tuning and resume rules that a run of the
    # other tests alone left untested (2026-12-04)
    "xtomo/learning/train.py": ["tests/test_train.py::test_step_indices_are_a_function_of_seed_and_step",
                                "tests/test_train.py::test_mixed_precision_is_bf16_only_where_asked_or_native",
                                "tests/test_train.py::test_objective_loss_l2_is_mse_and_surface_adds_a_cross_entropy_at_the_iso_level",
                                "tests/test_train.py::test_checkpoint_profile_is_the_profile_the_network_was_trained_at",
                                "tests/test_train.py::test_corrupt_and_mismatched_checkpoints",
                                "tests/test_train.py::test_training_writes_checkpoint_and_log",
                                "tests/test_train.py::test_fused_inference_model_matches",
                                "tests/test_augment.py::test_a_fine_tuning_run_starts_from_the_weights_it_is_given",
                                "tests/test_augment.py::test_a_run_resumes_only_with_its_own_blur_and_gain",
                                "tests/test_train_safety.py::test_a_new_run_keeps_another_runs_checkpoint_unless_told",
                                "tests/test_train_safety.py::"
                                "test_a_checkpoint_whose_settings_and_weights_disagree_is_refused_before_it_is_built"],
}
STATUSES = ("killed", "timeout", "survived", "no tests", "suspicious", "segfault", "skipped", "not checked")


def tests_for(module: str) -> list[str]:
    """The pytest arguments that select ``module``'s tests, its ``test_<name>_mutants.py`` included."""
    extra = ROOT / "tests" / f"test_{Path(module).stem}_mutants.py"
    return TESTS[module] + ([str(extra.relative_to(ROOT))] if extra.exists() else [])


def mutant_glob(module: str) -> str:
    """mutmut's names for ``module``'s mutants: ``xtomo.evaluation.metrics.x_mse__mutmut_1`` and so on."""
    return module.removesuffix(".py").replace("/", ".") + ".*"


def run_one(module: str, max_children: int) -> None:
    """In this process: mutmut on ``module`` alone, with its tests, every mutant rerun."""
    os.chdir(ROOT)
    # mutmut copies the modules it does not mutate with a fresh mtime, which it later takes for "already
    # mutated": a module mutated after another's run would get no mutants without this
    (ROOT / "mutants" / module).unlink(missing_ok=True)
    from mutmut import configuration

    configuration._config = dataclasses.replace(configuration.config(), only_mutate=[module],
                                                pytest_add_cli_args_test_selection=tests_for(module))
    from mutmut.__main__ import cli

    cli.main(["run", "--max-children", str(max_children), mutant_glob(module)], standalone_mode=False)


def run(modules: list[str], max_children: int) -> None:
    """Each module in a fresh process (mutmut's settings are per process); note when and how it ran."""
    for module in modules:
        tests = tests_for(module)
        print(f"== mutmut: {module} (tests: {' '.join(tests)})", flush=True)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--child", module, "--max-children", str(max_children)],
                              cwd=ROOT)
        if proc.returncode != 0:
            raise SystemExit(f"mutmut failed on {module} (exit {proc.returncode})")
        runs = json.loads(RUNS.read_text()) if RUNS.exists() else {}
        runs[module] = {"seconds": time.perf_counter() - start, "tests": tests,
                        "date": f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC"}
        RUNS.write_text(json.dumps(runs, indent=1))


def verdicts(module: str) -> dict[str, str] | None:
    """mutmut's verdict for each mutant of ``module`` (from ``mutants/<module>.meta``), or None if never run."""
    from mutmut.stats import status_by_exit_code

    meta = ROOT / "mutants" / (module + ".meta")
    if not meta.exists():
        return None
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: status_by_exit_code[code] for name, code in codes.items()}


def score(counts: Counter) -> float:
    checked = sum(counts.values()) - counts["skipped"] - counts["not checked"]
    return 100.0 * (counts["killed"] + counts["timeout"]) / checked if checked else float("nan")


def measured() -> dict[str, dict]:
    """The entries of the modules that ``mutants/`` holds a run of: counts, survivors, when, which tests."""
    runs = json.loads(RUNS.read_text()) if RUNS.exists() else {}
    entries = {}
    for module in TESTS:
        found = verdicts(module)
        if found is None or module not in runs:
            continue
        entries[module] = {**runs[module], "counts": dict(Counter(found.values())),
                           "survivors": {name: status for name, status in sorted(found.items())
                                         if status not in ("killed", "timeout")}}
    return entries


def table(record: dict[str, dict]) -> tuple[str, list[str]]:
    """The per-module table in Markdown and the modules never measured."""
    lines = ["| module | mutants | killed | timeout | survived | no tests | other | score | minutes | "
             "measured | tests |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    not_run = [module for module in TESTS if module not in record]
    for module in TESTS:
        if module in not_run:
            continue
        entry = record[module]
        c = Counter(entry["counts"])
        other = sum(v for k, v in c.items() if k not in ("killed", "timeout", "survived", "no tests"))
        args = entry["tests"]
        deselected = {args[i + 1] for i, arg in enumerate(args) if arg == "--deselect"}
        tests = " ".join(f"`{t}`" for t in args if t != "--deselect" and t not in deselected)
        if deselected:
            tests += f" ({len(deselected)} slow tests deselected)"
        lines.append(f"| `{module}` | {sum(c.values())} | {c['killed']} | {c['timeout']} | {c['survived']} | "
                     f"{c['no tests']} | {other} | {score(c):.1f} % | {entry['seconds'] / 60:.1f} | "
                     f"{entry['date']} | {tests} |")
    return "\n".join(lines), not_run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", nargs="+", metavar="MODULE", help="mutate these modules first ('all': every one)")
    ap.add_argument("--max-children", type=int, default=1, help="mutmut's parallel workers (default 1)")
    ap.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        run_one(args.child, args.max_children)
        return 0
    if args.run:
        modules = list(TESTS) if args.run == ["all"] else [str(Path(m)) for m in args.run]
        unknown = [m for m in modules if m not in TESTS]
        if unknown:
            ap.error(f"not a core module: {', '.join(unknown)} (expected one of {', '.join(TESTS)})")
        run(modules, args.max_children)
    record = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    record.update(measured())
    rows, not_run = table(record)
    os.chdir(ROOT)  # mutmut reads [tool.mutmut] from the working folder's pyproject.toml
    from _common import machine_line
    from mutmut.configuration import config

    survivors = sum(len(entry["survivors"]) for entry in record.values())
    lines = ["## Mutation score of the core modules", "",
             f"Machine: {machine_line()}  ",
             f"Measured by `OMP_NUM_THREADS=1 nice -n 19 python benchmarks/mutation.py --run MODULE` (mutmut 3.8.1, "
             f"one worker, `pytest {shlex.join(config().pytest_add_cli_args)}`), each module on the date in its row, "
             f"while other work may have shared the cores. Score = (killed + timeout) / mutants checked; "
             f"\"other\" counts mutants not checked (a stopped run). The {survivors} mutants left are listed by "
             f"name in `benchmarks/mutation_scores.json`, and why each is left in `benchmarks/mutation_notes.md`.",
             "", rows, ""]
    if not_run:
        lines.append("Not run: " + ", ".join(f"`{m}`" for m in not_run) + ".")
    section = "\n".join(lines)
    print(section)
    if args.write:
        from _common import RESULTS, atomic_write_text, update_section

        atomic_write_text(RECORD, json.dumps(record, indent=1) + "\n")
        update_section(RESULTS, section, name="mutation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
