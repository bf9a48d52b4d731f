"""The shipped model on skull CTs that are not in the repository, read as ``xtomo evaluate`` reads a reader's CT.

    python benchmarks/unseen_ct.py CT [CT ...] [--model NAME=CHECKPOINT] [--views 32] [--answers plain,view,level]
        [--write]
    python benchmarks/unseen_ct.py "third head"     # a fetched head (realdata.UNSEEN_HEADS; or realmix.NAMED)

Issue 16's last check runs real skull CTs that no model of ours trained on through the shipped model. Each
``CT`` (any format ``io.load_volume_pose`` reads; name it ``LABEL=PATH`` to give it a label) is loaded and set
upright as ``xtomo evaluate`` does (a fetched head's name, as ``xtomo train --ct`` knows it: that head, read by
``realmix.find_ct``), x-rayed from ``--views`` seeded directions, ideally and physically, and each
network's fused answer is scored beside the even spread (``realcase.evaluate_volume``): as the network answers,
made symmetric about the known view's mid-sagittal plane, and leveled too (``--symmetry view --level``;
``--answers`` picks). The
CTs are named with the sha256 of their files so that the rows can be matched to the data.
``--write`` replaces the ``unseen-ct`` section of RESULTS.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

from _common import add_model_option, benchmark_parser, busy_cores, command_line, even_section, networks, publish

from xtomo.data import realmix
from xtomo.evaluation import realcase
from xtomo.profiles import get_profile


def labelled(spec: str) -> tuple[str, realmix.RealCT]:
    """``LABEL=PATH``, ``PATH`` (labelled by its name) or the name of a fetched head (``realmix.find_ct`` finds it,
    read with its own bone) as a label with the file's (or folder's) short sha256, and the CT."""
    label, _, given = (spec, "", spec) if spec in realmix.FETCHED else spec.rpartition("=")
    ct = realmix.find_ct(given, what="CT")
    return f"{label or Path(given).name} (sha256 {ct.sha256[:12]})", ct


def rows(models: dict, cts: list[str], views: int, answers=tuple(realcase.ANSWERS)) -> list[dict]:
    """Ratios of ours to the even spread per CT, network, answers (keys of ``realcase.ANSWERS``) and acquisition."""
    p = get_profile("quick")
    out = []
    for spec in cts:
        case, ct = labelled(spec)
        skull = ct.volume(p.volume_size)
        for network, model in models.items():
            out += [dict(r, ct=case, network=network)
                    for r in realcase.against_even_by_answers(skull, model, p, views, p.seed, case, answers)]
    return out


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "unseen-ct")
    parser.add_argument("ct", nargs="+", help="a skull CT file, LABEL=PATH, or a fetched head "
                        f"({', '.join(realmix.FETCHED)})")
    parser.add_argument("--views", type=int, default=32, help="seeded views per CT (default 32)")
    parser.add_argument("--answers", default=",".join(realcase.ANSWERS), help="which of our answers to score, of "
                        f"{', '.join(realcase.ANSWERS)} (default all)")
    add_model_option(parser)
    args = parser.parse_args(argv)
    answers = args.answers.split(",")
    if set(answers) - set(realcase.ANSWERS):
        parser.error(f"--answers: expected some of {', '.join(realcase.ANSWERS)}, got {args.answers!r}")
    busy = busy_cores()
    found = rows(networks(parser, args.model), args.ct, args.views, answers)
    note = (f"Skull CTs no model of ours trained on, loaded and set upright as `xtomo evaluate` does; "
            f"{args.views} seeded views each; our answers: {', '.join(realcase.ANSWERS[a][0] for a in answers)}.")
    lead = {"CT": "ct", "network": "network", "answers": "answers", "acquisition": "acquisition"}
    publish(even_section("Skull CTs no model of ours trained on: ours against the even spread (`quick`)", note,
                         found, lead, command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
