"""Does a real head in the training set carry over to another real head?

    python benchmarks/real_in_training.py OUT [--head first|blind|phantom|third ...] [--steps 2500] [--write]
    python benchmarks/real_in_training.py OUT --shipped quick --shipped quick-without-head ... --section NAME --write

The generator's humans are not real heads, and fine-tuning on more or other procedural humans has left both
real heads where they were (RESULTS ``individuals-v8-long``). The paper trained on real CTs. For each
``--head`` this fine-tunes the shipped model as its last fine-tunes were made (profile ``tuned``, 16
individuals of each training species), with that real head making ``--share`` of the training samples
(``realmix.mixed``; the head stretched by up to ``--stretch`` along each axis and turned by up to ``--pose``
degrees, besides the profile's blur and gain, so that its views are not all one head), into ``OUT/<head>``
(resumable: a finished run is kept), then scores the shipped model and each fine-tune on every real head over
``--views`` seeded views, ideal and physical, beside the even spread. The head a network trained on is
marked; the others say whether a real head teaches it anything about real heads in general.
``--write`` records the table in RESULTS.md (section ``real-in-training``). ``--shipped NAME`` (repeatable) scores
models that ship with the package instead (no fine-tunes unless ``--head`` is given too), each head marked where
the model's manifest says it trained on that head's file (``shipped.trained_on``): ``xtomo train --ct`` made them.
``--checkpoint LABEL=PATH`` (repeatable) scores a run of ``xtomo train --ct`` likewise, and where it kept a moving
average of its weights (``--ema``), both its raw weights and the average.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

from _common import benchmark_parser, busy_cores, command_line, even_section, publish

from xtomo.data import realmix
from xtomo.evaluation import realcase
from xtomo.learning import shipped, train
from xtomo.learning.averaging import evaluated_weights
from xtomo.profiles import get_profile

#: the fetched real heads, by ``--head``: (case label, the name ``xtomo train --ct`` knows it by); the third head is
#: one no shipped model trains on (``realmix.STUDIED``)
HEADS = {"first": ("real head", "head"), "blind": ("second real head (blind)", "second-head"),
         "phantom": ("phantom head", "phantom-head"), "third": ("third head", "third head")}


@functools.cache
def fetched(head: str) -> realmix.RealCT:
    """A fetched head as ``xtomo train --ct`` finds it (its file hashed once per run of this script)."""
    return realmix.find_ct(HEADS[head][1])


def fine_tune(head: str, out: Path, steps: int, share: float, stretch: float, pose: float, init: str = "shipped"):
    """The shipped model fine-tuned with ``head`` in its training set; returns the network."""
    p = get_profile("tuned", individuals=16)
    procedural, val = train.train_val_sets(p)
    mixed = realmix.mixed(procedural, [fetched(head)], p, share, stretch, pose)
    train.train(p, resume=True, steps=steps, out_dir=out, data=(mixed, val), init=init, pipeline="loader",
                progress=sys.stderr.isatty())
    return train.load_model(out / "checkpoint.pt")


def heads_among(made: set[str]) -> set[str]:
    """The heads whose files' sha256 are among ``made`` (what a run trained on)."""
    return {head for head in HEADS if fetched(head).sha256 in made}


def seen_heads(name: str) -> set[str]:
    """The heads the shipped model ``name`` trained on, by its manifest."""
    return heads_among(shipped.trained_on(shipped.manifest(name)))


def checkpoint_models(label: str, path: str) -> dict:
    """A training checkpoint's network, its raw weights and moving average apart where it kept one, with the heads
    it trained on (its ``real`` record)."""
    ck = train.load_checkpoint(path)
    made = {ct["sha256"] for ct in (ck.get("real") or {}).get("cts", [])}
    seen = heads_among(made)
    if evaluated_weights(ck) is ck["model"]:
        return {label: (train.model_from_checkpoint(ck), seen)}
    return {f"{label}, raw weights": (train.model_from_checkpoint(dict(ck, ema=None)), seen),
            f"{label}, moving average ({ck['ema']['decay']:g})": (train.model_from_checkpoint(ck), seen)}


def rows(models: dict, views: int, symmetry: str | None = None, level: bool = False) -> list[dict]:
    """Ratios of ours to the even spread per network, head and acquisition (``symmetry`` and ``level`` as
    ``realcase.evaluate_volume`` takes them)."""
    p = get_profile("quick")
    skulls = {head: fetched(head).volume(p.volume_size) for head in HEADS}
    out = []
    for network, (model, seen) in models.items():
        for head, (case, _) in HEADS.items():
            for acquisition in realcase.ACQUISITIONS:
                found, _ = realcase.evaluate_volume(skulls[head], model, p, views=views, seed=p.seed, name=case,
                                                    acquisition=acquisition, symmetry=symmetry, level=level)
                label = case + (" (in training)" if head in seen else "")
                out += [dict(r, network=network, case=label) for r in realcase.against_even(found)]
    return out


def symmetry_note(symmetry: str | None, level: bool) -> str:
    """What the table's answers were made symmetric about, for its note."""
    if symmetry is None:
        return ""
    about = "each view's known mid-sagittal plane" if symmetry == "view" else "the plane each answer finds itself"
    turned = ", each x-ray first turned in its plane as far as makes its answer most symmetric" if level else ""
    return f" Our answers are made symmetric about {about}{turned}."


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "real-in-training")
    parser.add_argument("out", type=Path, help="folder for the fine-tunes (one subfolder per head)")
    parser.add_argument("--head", action="append", choices=sorted(HEADS), help="real head to train on (repeatable; "
                        "default: each, one run each)")
    parser.add_argument("--steps", type=int, default=2500, help="fine-tuning steps per run (default 2500)")
    parser.add_argument("--share", type=float, default=0.25, help="share of the training samples that are the "
                        "real head's (default 0.25)")
    parser.add_argument("--stretch", type=float, default=1.15, help="the real head's stretch (default 1.15)")
    parser.add_argument("--pose", type=float, default=10.0, help="the real head's turn, degrees (default 10)")
    parser.add_argument("--views", type=int, default=32, help="seeded views per head (default 32)")
    parser.add_argument("--init", default="shipped", help="the weights the fine-tunes start from: 'shipped' or a "
                        "checkpoint file, e.g. an earlier shipped model's .pt (default shipped)")
    parser.add_argument("--shipped", action="append", default=[], metavar="NAME",
                        help="a shipped model to score instead of the default one and the fine-tunes (repeatable)")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="LABEL=PATH",
                        help="a training checkpoint to score beside them (repeatable)")
    parser.add_argument("--symmetry", choices=("view", "estimate"), help="make our answers bilaterally symmetric "
                        "about the plane of each view's known direction, or one they estimate (default: not)")
    parser.add_argument("--level", action="store_true", help="with --symmetry view: first turn each x-ray in its "
                        "plane as far as makes the answer most symmetric")
    args = parser.parse_args(argv)
    busy = busy_cores()
    given = args.shipped or args.checkpoint   # models to score; without them, or with --head, fine-tunes too
    models = {f"shipped model `{name}` (sha256 {shipped.manifest(name)['sha256'][:12]})":
              (shipped.load(name), seen_heads(name)) for name in args.shipped or ([] if given else [shipped.NAME])}
    for label, _, path in (item.rpartition("=") for item in args.checkpoint):
        models |= checkpoint_models(label or Path(path).parent.name, path)
    for head in args.head or ([] if given else sorted(HEADS)):
        model = fine_tune(head, args.out / head, args.steps, args.share, args.stretch, args.pose, args.init)
        label = f"with the {HEADS[head][0]} as {args.share:.0%} of its samples (+{args.steps:,} steps)"
        models[label] = (model, {head})
    fine_tunes = bool(args.head) or not given
    note = (f"Fine-tunes of the shipped model (profile `tuned`, 16 individuals per training species) with one real "
            f"head as {args.share:.0%} of the training samples, stretched up to x{args.stretch} and turned up to "
            f"{args.pose:g} degrees; {args.views} seeded views per head." if fine_tunes else
            f"Models that ship with the package or runs of `xtomo train --ct`; {args.views} seeded views per head.")
    note += symmetry_note(args.symmetry, args.level)
    note += (" The training checkpoints (`--checkpoint`) are scored with their raw weights and, where the run kept "
             "one, with the moving average of its weights (`xtomo train --ema`)." if args.checkpoint else "")
    title = "A real head in the training set" if fine_tunes else "Trained models and real heads"
    publish(even_section(f"{title}: the real heads against the even spread (`quick`)", note,
                         rows(models, args.views, args.symmetry, args.level),
                         {"network": "network", "head": "case", "acquisition": "acquisition"},
                         command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
