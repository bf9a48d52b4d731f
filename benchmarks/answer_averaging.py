"""Is the error on a held-out real head the network's noise or its bias? Answers averaged at inference.

    python benchmarks/answer_averaging.py [--views 32] [--turns 5,10] [--shift 2] [--write]

Averaging estimates removes what they do not share. The network's answer is already averaged with its answer to
the mirrored x-ray (``inference.infer``); this asks whether more of the same helps on a real head that the network
never trained on, each fetched head scored with the shipped model that held it out (``shipped.held_out``):

- turns: the x-ray turned in its plane by each of ``0, +-t`` degrees for each ``t`` of ``--turns``, each answer
  turned back (``xray.roll``), and the answers averaged (what ``inference.leveled`` chooses among, averaged);
- shifts: the x-ray shifted by ``--shift`` pixels of the network's input up, down, left and right, each answer
  shifted back, averaged with the unshifted one;
- models: every shipped model that never saw the head (by its manifest), their answers averaged.

If the error were the network's variance these would lower it; where they do not, it is a bias every answer shares.
``--write`` records the table in RESULTS.md (section ``answer-averaging``).
"""
from __future__ import annotations

import sys

import torch
from _common import benchmark_parser, busy_cores, command_line, even_section, held_out_heads, publish

from xtomo.data import realmix
from xtomo.evaluation import realcase
from xtomo.imaging import xray
from xtomo.learning import shipped
from xtomo.profiles import get_profile


class Averaged(torch.nn.Module):
    """Networks whose answers to each x-ray, in each of its ``turns`` (degrees) and ``shifts`` (pixels of the
    input, (rows, columns)), are brought back to the x-ray's frame and averaged."""

    def __init__(self, models, turns=(0.0,), shifts=()):
        super().__init__()
        self.models, self.turns, self.shifts = torch.nn.ModuleList(models), tuple(turns), tuple(shifts)
        self.config, self.exposure = models[0].config, getattr(models[0], "exposure", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        answers = []
        for model in self.models:
            answers += [xray.roll(model(xray.roll(x, t, fill=1.0)).float(), -t) for t in self.turns]
            for rows, cols in self.shifts:
                out = model(torch.roll(x, (rows, cols), (-2, -1))).float()
                scale = out.shape[-1] / x.shape[-1]  # the answer's pixels may be larger than the input's
                answers.append(torch.roll(out, (-round(rows * scale), -round(cols * scale)), (-2, -1)))
        return torch.stack(answers).mean(0)


def unseen_by(ct: realmix.RealCT) -> list[str]:
    """The shipped models whose manifests do not list ``ct``'s file among what they trained on."""
    names = sorted(p.stem for p in shipped.FOLDER.glob("*.json"))
    return [n for n in names if shipped.available(n) and ct.sha256 not in shipped.trained_on(shipped.manifest(n))]


def answers(ct: realmix.RealCT, alone: str, model, turns: list[float], shift: int) -> dict[str, torch.nn.Module]:
    """The averaged answers scored on the fetched head ``ct``, by label: of ``model``, the shipped model ``alone``
    that held it out, and of every shipped model that never saw it."""
    out = {f"{alone}, as it answers": Averaged([model])}
    out |= {f"{alone}, averaged over turns 0, +-{t:g} degrees": Averaged([model], (0.0, t, -t)) for t in turns}
    if shift:
        moves = ((shift, 0), (-shift, 0), (0, shift), (0, -shift))
        out[f"{alone}, averaged over shifts of {shift} px"] = Averaged([model], (0.0,), moves)
    others = unseen_by(ct)
    if len(others) > 1:
        out[f"the {len(others)} shipped models that never saw it, averaged"] = Averaged(
            [shipped.load(n) for n in others])
    return out


def rows(views: int, turns: list[float], shift: int) -> list[dict]:
    """Ratios of each averaged answer to the even spread per fetched head and acquisition."""
    p = get_profile("quick")
    out = []
    for case, alone, ct, model, skull in held_out_heads(p.volume_size):
        for label, averaged in answers(ct, alone, model, turns, shift).items():
            found = []
            for acquisition in realcase.ACQUISITIONS:
                scored, _ = realcase.evaluate_volume(skull, averaged.eval(), p, views=views, seed=p.seed,
                                                     name=case, acquisition=acquisition)
                found += realcase.against_even(scored)
            out += [dict(r, case=case, answers=label) for r in found]
    return out


def main(argv=None) -> int:
    parser = benchmark_parser(__file__, __doc__, "answer-averaging")
    parser.add_argument("--views", type=int, default=32, help="seeded views per head (default 32)")
    parser.add_argument("--turns", default="5,10", help="turns t (degrees) to average 0, +-t over (default 5,10)")
    parser.add_argument("--shift", type=int, default=2, help="shift of the input in pixels (default 2; 0: none)")
    args = parser.parse_args(argv)
    try:
        turns = [float(t) for t in args.turns.split(",") if t]
    except ValueError:
        parser.error(f"--turns: expected degrees separated by commas, got {args.turns!r}")
    busy = busy_cores()
    found = rows(args.views, turns, args.shift)
    note = (f"Each fetched real head scored with the shipped model that held it out of training; {args.views} "
            "seeded views per head, ideal and physical.")
    lead = {"head": "case", "answers": "answers", "acquisition": "acquisition"}
    publish(even_section("Answers averaged at inference: held-out real heads (`quick`)", note, found, lead,
                         command_line(parser, args), busy), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
