"""Does averaging in the mirrored x-ray help? Chapter 5's ratios and the real head, with and without.

    python benchmarks/mirror_average.py [--samples 120] [--views 8] [--live] [--write]

``xtomo.learning.inference.infer`` answers an x-ray with the mean of the network's volume and its
volume of the mirrored x-ray, mirrored back (the mirror image of an x-ray is the x-ray of the
mirrored specimen, which the network trained on too). This scores the shipped model (and with
``--live`` chapter 3's network in ``artifacts/quick``) both ways: by chapter 5's protocol against
NN and ORACLE (``scaling.evaluated``: the same held-out samples) and, by
``xtomo.evaluation.realcase``, on the real head's ideal and physical x-rays against the even spread.
"Single pass" is the network alone, as every result before this option was measured.
``--write`` replaces the ``mirror`` section of RESULTS.md.
"""
from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

from _common import (
    benchmark_parser,
    busy_cores,
    command_line,
    even_section,
    publish,
)
from scaling import evaluated
from scaling import table as protocol_table

from xtomo.data import realdata
from xtomo.evaluation import realcase
from xtomo.files import artifacts_dir, require_artifact
from xtomo.learning import inference, shipped, train
from xtomo.profiles import get_profile

MODES = {"single pass": False, "mirror-averaged": True}


@contextlib.contextmanager
def mirrored(on: bool):
    """Every ``inference.reconstruct`` inside runs the network with ``mirror=on``."""
    infer = inference.infer
    inference.infer = lambda model, x, mirror=True: infer(model, x, on)
    try:
        yield
    finally:
        inference.infer = infer


def head_rows(models: dict, views: int) -> list[dict]:
    """``realcase.against_even`` rows of each network on the real head, both acquisitions."""
    p = get_profile("quick")
    head = realdata.head(p.volume_size)
    out = []
    for name, model in models.items():
        for acquisition in realcase.ACQUISITIONS:
            found, _ = realcase.evaluate_volume(head, model, p, views=views, seed=p.seed, name="real head",
                                                acquisition=acquisition)
            out += [dict(r, network=name) for r in realcase.against_even(found)]
    return out


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "mirror")
    parser.add_argument("--samples", type=int, default=120, help="held-out samples of chapter 5's protocol")
    parser.add_argument("--views", type=int, default=8, help="seeded views of the real head (default 8)")
    parser.add_argument("--live", action="store_true", help="also chapter 3's network (artifacts/quick)")
    args = parser.parse_args(argv)
    busy = busy_cores()
    checkpoints = {"shipped model": "shipped"}
    if args.live:
        checkpoints["chapter 3 (900 steps)"] = str(require_artifact(artifacts_dir("quick") / "checkpoint.pt",
                                                                    "chapter 3 (training)"))
    models = {name: shipped.load() if path == "shipped" else train.load_model(path)
              for name, path in checkpoints.items()}
    protocol, head = [], []
    with tempfile.TemporaryDirectory(prefix="xtomo-mirror-") as tmp:
        for mode, on in MODES.items():
            with mirrored(on):
                protocol += [evaluated(f"{name}, {mode}", path, args.samples, Path(tmp))
                             for name, path in checkpoints.items()]
                head += [dict(r, mode=mode) for r in head_rows(models, args.views)]
    command = command_line(parser, args)
    text = protocol_table(protocol, command, busy, "Averaging in the mirrored x-ray (`quick`, chapter 5's protocol)")
    publish(text + "\n\n" + even_section("Averaging in the mirrored x-ray: the real head against the even spread",
                                          "", head, {"network": "network", "inference": "mode",
                                                     "acquisition": "acquisition"}, command, busy), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
