"""What chapter 5's NN and ORACLE searches cost at `quick`: the coarse pass, and the exact comparison made with
the candidates regenerated one view at a time or in batches.

    .venv/bin/python benchmarks/baseline_search.py [--samples 80] [--batches 1,16] [--write]

The queries are chapter 5's (``scoring.evaluation_indices``, the first ``--samples``). ORACLE's coarse pass over the
bank (regenerating every training specimen at the thumbnail's resolution, which also makes NN's thumbnails) runs
once and keeps each query's candidates; the exact comparison then answers every query again from them, once with
one full-size sample per candidate (how it was done before batching) and once per ``SampleBank.batch`` of
``--batches`` (a specimen's distinct candidate views made that many at a time). The script fails if the matches
differ between the rows.
``--write`` records the table in RESULTS.md (section ``baseline-search``).
"""
from __future__ import annotations

import time

import torch
from _common import benchmark_parser, busy_cores, command_line, heading, publish


class _Recorded:
    """Stands in for ``SampleBank._refine`` of one bank: keeps each query's candidates and distance, and answers."""

    def __init__(self, bank):
        self.bank, self.refine, self.seconds, self.calls = bank, type(bank)._refine, 0.0, []
        bank._refine = self

    def __call__(self, candidates, distance):
        self.calls.append((candidates, distance))
        began = time.perf_counter()
        best = self.refine(self.bank, candidates, distance)
        self.seconds += time.perf_counter() - began
        return best


def _one_by_one(bank, candidates, distance):
    """The exact comparison as it was made before batching: one full-size sample per candidate, in order."""
    from xtomo.methods.baselines import Match

    best = None
    for n, mirrored in candidates:
        specimen, view = bank.locate(n)
        alpha, volume = bank.sample(Match(specimen, view, mirrored, float("inf")))
        value = float(distance(alpha, volume))
        if best is None or value < best.distance:
            best = Match(specimen, view, mirrored, value)
    return best


def measure(samples: int, batches: list[int]) -> tuple[list[dict], dict]:
    from xtomo.evaluation.scoring import evaluation_indices
    from xtomo.learning.train import train_val_sets
    from xtomo.methods.baselines import SampleBank
    from xtomo.profiles import get_profile

    p = get_profile("quick")
    train_set, val_set = train_val_sets(p)
    items = [val_set[i] for i in evaluation_indices(p, len(val_set))[:samples]]
    bank = SampleBank(train_set, progress=False)
    recorded = _Recorded(bank)
    began = time.perf_counter()
    found = bank.oracle(torch.stack([it["volume"] for it in items]))
    coarse = time.perf_counter() - began - recorded.seconds
    found += bank.nn(torch.stack([it["xray"][0] for it in items]))
    calls = recorded.calls
    compared = sum(len(c) for c, _ in calls)
    distinct = sum(len({bank.locate(n) for n, _ in c}) for c, _ in calls)
    rows = []
    for batch in [None, *batches]:   # None: one sample per candidate, as before
        bank.batch = batch or 1
        refine = (lambda c, d: _one_by_one(bank, c, d)) if batch is None else recorded.refine.__get__(bank)
        began = time.perf_counter()
        answers = [refine(c, d) for c, d in calls]
        seconds = time.perf_counter() - began
        if answers != found:
            raise SystemExit(f"baseline_search: batch {batch} changed the matches; not recording")
        rows.append(dict(batch=batch, seconds=seconds, made=compared if batch is None else distinct))
    return rows, dict(coarse=coarse, samples=len(items), bank=len(bank), compared=compared)


def table(rows: list[dict], info: dict, command: str, busy: float) -> str:
    lines = heading("NN and ORACLE at `quick`: the exact comparison, one by one or in batches (chapter 5's queries)",
                    command, busy)
    before = rows[0]["seconds"]
    lines += ["", f"{info['samples']} queries against a bank of {info['bank']:,} training views (mirrors searched by "
              f"mirroring the query). ORACLE's coarse pass over the bank took {info['coarse']:.0f} s (once, "
              "not compared here). The exact comparison regenerates ORACLE's 32 and NN's 16 best coarse candidates per "
              f"query at full size ({info['compared']:,} in all) and keeps the nearest; each row answers every query "
              "from the same candidates and finds the same matches. Samples made: full-size (x-ray, volume) pairs "
              "regenerated; batched, a (specimen, view) among one search's candidates is made once, mirrored or not.",
              "", "| exact comparison | samples made | seconds | against one by one |", "|---|---:|---:|---:|"]
    for r in rows:
        batch = r["batch"]
        name = ("one sample per candidate (before)" if batch is None
                else f"in batches of at most {batch} view{'s' * (batch > 1)}")
        lines.append(f"| {name} | {r['made']:,} | {r['seconds']:.1f} | {r['seconds'] / before:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "baseline-search")
    parser.add_argument("--samples", type=int, default=80, help="chapter 5's queries to answer (default 80)")
    parser.add_argument("--batches", default="1,16,48", help="SampleBank.batch values to time (default 1,16,48)")
    args = parser.parse_args(argv)
    busy = busy_cores()
    rows, info = measure(args.samples, [int(b) for b in args.batches.split(",")])
    publish(table(rows, info, command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
