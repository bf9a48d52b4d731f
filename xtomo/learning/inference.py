"""From an x-ray to a volume with a trained network, fused with the x-ray at its full resolution."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import xtomo._checks as checks
from xtomo import geometry
from xtomo.imaging import fusion, xray
from xtomo.imaging.symmetry import asymmetry, estimate_normal, mirror_normal, symmetrize
from xtomo.imaging.xray import CHI
from xtomo.learning import exposure as exposures

#: How ``reconstruct`` answers by default (``infer``, ``exposure``); cached scores carry it, so a change
#: rescores them.
VERSION = "mirror-averaged, exposure-spanned"

__all__ = ["VERSION", "FRAMING", "FRAMING_RANGE", "STANDARD_VIEWS", "LEVEL_TURNS", "reconstruct", "symmetric",
           "mirror_planes", "leveled", "infer", "square",
           "to_network_input", "upsample", "prepare_radiograph", "specimen_circle", "framing_box", "frame", "square_at",
           "framing_note"]

#: How large a specimen is in the training x-rays: the radius, over the image side, of the circle about
#: its bounding box's centre that holds it (``specimen_circle``). Median over 300 training x-rays of the
#: `quick` profile 0.379; 5th to 95th percentile 0.30 to 0.43, by view (``tests/test_reconstruct.py``
#: measures it again on the crania). ``frame`` makes a radiograph's specimen this large.
FRAMING = 0.38
FRAMING_RANGE = (0.30, 0.43)
#: Radiographic views by name, as view directions in the cube (z up, y forward): a lateral view looks
#: across the head, a frontal (PA or AP) one along it; ``reconstruct``'s ``symmetry`` takes them.
STANDARD_VIEWS = {"lateral": (1.0, 0.0, 0.0), "frontal": (0.0, 1.0, 0.0)}
#: The turns in the image plane (degrees) ``reconstruct``'s ``level`` tries: a head nodding by up to 20 degrees.
LEVEL_TURNS = (-20.0, -10.0, -5.0, 0.0, 5.0, 10.0, 20.0)


def square(alpha: torch.Tensor) -> torch.Tensor:
    """An x-ray ``[H, W]``, ``[B, H, W]`` or ``[B, 1, H, W]`` as ``[B, 1, S, S]``, S = max(H, W).

    Non-square images are padded, centred, with empty background (alpha = 1). Bad values fail.
    """
    x = checks.alpha(alpha, "x-ray").float()
    if x.dim() == 2:
        x = x[None, None]
    elif x.dim() == 3:
        x = x[:, None]
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"x-ray must be [H, W], [B, H, W] or [B, 1, H, W], got shape {tuple(alpha.shape)}")
    h, w = x.shape[-2:]
    if h != w:
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        x = F.pad(x, (left, side - w - left, top, side - h - top), value=1.0)
    return x


def to_network_input(alpha: torch.Tensor, size: int) -> torch.Tensor:
    """An x-ray of any shape as the network's ``[B, 1, size, size]`` input (``square``, then an
    anti-aliased bilinear resampling)."""
    x = square(alpha)
    if x.shape[-1] != size:  # a convex combination, up to float rounding (measured: 1 + 3.6e-7): clamped
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=x.shape[-1] > size,
                          align_corners=False).clamp(0, 1)
    return x


def prepare_radiograph(alpha: torch.Tensor, box=None, air: float | None = 0.01,
                       vignette: bool = True, fit: bool = False) -> torch.Tensor:
    """A real radiograph (alpha ``[H, W]``, display gamma already undone by ``io.load_xray``) made
    to look like the training x-rays: cropped, its air made empty, with ``fit`` framed so that its
    specimen is as large as theirs (``frame``), its specimen inside the disc.

    ``box`` = (top, left, side) crops a square in pixels. ``air`` is the fraction of pixels taken
    as air: the opacity at that quantile becomes zero and the rest is stretched to fill [0, 1]
    (a scanner's offset and window cannot be known, so this is an estimate). ``fit`` then crops or pads
    the image around the specimen to the training x-rays' framing (``FRAMING``). ``vignette`` fades
    the opacity to zero outside the inscribed disc, where the training specimens never reach.
    """
    what = "prepare_radiograph"
    if not torch.is_tensor(alpha) or alpha.dim() != 2:
        raise ValueError(f"{what}: expected one x-ray [H, W], got {getattr(alpha, 'shape', alpha)!r}")
    checks.alpha(alpha, what)      # finite transparency in [0, 1]
    x, (h, w) = alpha.float(), alpha.shape
    if box is not None:
        top, left, side = (int(v) for v in box)
        if side < 2 or top < 0 or left < 0 or top + side > h or left + side > w:
            raise ValueError(f"{what}: box (top, left, side) = {tuple(box)} does not fit "
                             f"in the {h} x {w} image")
        x = x[top:top + side, left:left + side]
    opacity = 1 - x
    if air is not None:
        if not 0 <= air < 1:
            raise ValueError(f"{what}: air must be a fraction in [0, 1), got {air!r}")
        sample = opacity.flatten()[:: max(1, opacity.numel() // 1_000_000)]
        floor = float(torch.quantile(sample, air))
        if floor >= 1:
            raise ValueError(f"{what}: the image has no air: every pixel is fully opaque")
        opacity = ((opacity - floor) / (1 - floor)).clamp(0, 1)
    if fit:
        opacity = 1 - frame(1 - opacity)
    opacity = 1 - square(1 - opacity)[0, 0]      # padded with air to a square
    if vignette:
        n = opacity.shape[-1]
        t = (torch.arange(n, dtype=opacity.dtype) + 0.5) / n - 0.5
        r = (t[:, None] ** 2 + t[None, :] ** 2).sqrt()
        opacity = opacity * ((0.5 - r) / 0.05).clamp(0, 1)
    return 1 - opacity


def specimen_circle(alpha: torch.Tensor, level: float = 0.05) -> tuple[float, float, float]:
    """Centre (row, column) and radius, in pixels, of the circle about the bounding box's centre of an
    x-ray's ``[H, W]`` pixels more opaque than ``level`` of the most opaque one, reaching their far corners
    (``geometry.enclosing_ball``, as ``xtomo.data.io.framing`` for volumes). It needs air at zero opacity:
    a simulated x-ray, or a radiograph through ``prepare_radiograph``'s ``air``."""
    opacity = 1 - checks.alpha(alpha, "specimen_circle").float()
    if opacity.dim() != 2:
        raise ValueError(f"specimen_circle: expected one x-ray [H, W], got shape {tuple(alpha.shape)}")
    if not bool((opacity > 0).any()):
        raise ValueError("specimen_circle: the x-ray is empty: no pixel is opaque")
    (cy, cx), radius = geometry.enclosing_ball((opacity > level * opacity.max()).cpu().numpy())
    return float(cy), float(cx), radius


def framing_box(alpha: torch.Tensor, radius: float = FRAMING) -> tuple[int, int, int]:
    """(top, left, side) in pixels of the square centred on an x-ray's specimen in which the specimen's
    circle (``specimen_circle``) has ``radius`` of the side; it may reach past the image."""
    if not 0 < radius <= 0.5:
        raise ValueError(f"framing_box: radius must be a share of the image side in (0, 0.5], got {radius!r}")
    cy, cx, r = specimen_circle(alpha)
    side = max(2, round(r / radius))
    return round(cy - side / 2), round(cx - side / 2), side


def framing_note(alpha: torch.Tensor) -> str | None:
    """A note for a reader whose specimen fills much more or less of the x-ray than the training specimens did
    (outside ``FRAMING_RANGE``), else ``None``."""
    if not bool((alpha < 1).any()):
        return None
    share = specimen_circle(alpha)[2] / max(alpha.shape)
    if FRAMING_RANGE[0] <= share <= FRAMING_RANGE[1]:
        return None
    return (f"note: the specimen fills a circle of radius {share:.2f} of the image, the training x-rays' "
            f"{FRAMING_RANGE[0]:.2f}-{FRAMING_RANGE[1]:.2f} (median {FRAMING}); --fit frames it as they were "
            "(after --air for a real radiograph)")


def frame(alpha: torch.Tensor, radius: float = FRAMING) -> torch.Tensor:
    """An x-ray ``[H, W]`` cropped, or padded with air, to its ``framing_box``: the specimen as large as
    in the training x-rays. Pixels keep their size, so a pixel size still holds."""
    return square_at(alpha, *framing_box(alpha, radius))


def square_at(alpha: torch.Tensor, top: int, left: int, side: int) -> torch.Tensor:
    """The ``side`` x ``side`` square of an x-ray ``[H, W]`` from pixel (``top``, ``left``), which may
    reach past the image (or start before it): what lies outside is air (alpha 1)."""
    (h, w), (above, before) = alpha.shape, (max(0, -top), max(0, -left))
    padded = F.pad(alpha.float()[None, None], (before, max(0, left + side - w), above, max(0, top + side - h)),
                   value=1.0)[0, 0]
    return padded[top + above:top + above + side, left + before:left + before + side]


def upsample(volume: torch.Tensor, size) -> torch.Tensor:
    """A coarse view-aligned volume ``[D, h, w]`` resampled bilinearly across the image plane to
    ``size`` (depth unchanged): the reconstruction at the x-ray's resolution without fusion."""
    return F.interpolate(volume[None], size=tuple(size), mode="bilinear", align_corners=False)[0]


def mirror_planes(coarse: torch.Tensor, symmetry: torch.Tensor | str) -> torch.Tensor:
    """Unit normals ``[B, 3]`` of the mid-sagittal planes of coarse volumes ``[B, D, h, w]``: those of known
    view directions (``[3]`` or ``[B, 3]``, or a name of ``STANDARD_VIEWS``) or, with ``"estimate"``, for
    each volume the plane it is most nearly symmetric about."""
    if isinstance(symmetry, str):
        checks.choice(symmetry, "symmetry", ("estimate", *STANDARD_VIEWS), "reconstruct")
        if symmetry == "estimate":
            return torch.stack([estimate_normal(c) for c in coarse])
        symmetry = torch.tensor(STANDARD_VIEWS[symmetry])
    return checks.batched(mirror_normal(symmetry), len(coarse), "reconstruct", "plane normals")


def symmetric(coarse: torch.Tensor, symmetry: torch.Tensor | str) -> torch.Tensor:
    """Coarse volumes ``[B, D, h, w]`` averaged with their mirror images about their mid-sagittal planes
    (``symmetry`` as ``mirror_planes`` takes it)."""
    return symmetrize(coarse, mirror_planes(coarse, symmetry))


@torch.no_grad()
def leveled(model, x: torch.Tensor, symmetry: torch.Tensor | str, turns=LEVEL_TURNS,
            mirror: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's coarse volumes ``[B, D, s, s]`` of network inputs ``x`` ``[B, 1, s, s]``, each x-ray
    first turned in its plane (``xray.roll``) by the one of ``turns`` (degrees) whose answer, turned back, is
    least asymmetric about the mid-sagittal plane of a known view (``symmetry``: a direction ``[3]`` or
    ``[B, 3]``, or a name of ``STANDARD_VIEWS``); and those turns ``[B]``.

    The generator makes every skull in one pose, so the network reads a head that nods in its x-ray (in a
    side view, a turn in the image plane) worse than an upright one. A nod leaves the mid-sagittal plane where
    it was, and an upright reading is the more symmetric about it. About a plane estimated from the answers
    themselves the choice is no better than chance (RESULTS `symmetry`), so that is refused."""
    if isinstance(symmetry, str) and symmetry == "estimate":
        raise ValueError("leveled: the turns are judged about a known view's plane (a direction, lateral or "
                         "frontal), not an estimated one")
    turns = [float(t) for t in turns]
    if not turns or not all(math.isfinite(t) for t in turns):
        raise ValueError(f"leveled: turns must be finite degrees, at least one, got {turns!r}")
    normals = mirror_planes(x, symmetry)
    answers, scores = [], []
    for t in turns:  # a handful of turns, each one batch through the network
        coarse = xray.roll(infer(model, xray.roll(x, t, fill=1.0), mirror).cpu(), -t)
        answers.append(coarse)
        scores.append(asymmetry(coarse, normals).reshape(-1))
    pick = torch.stack(scores).argmin(0)
    return torch.stack(answers)[pick, torch.arange(len(x))], torch.tensor(turns)[pick]


def infer(model, x: torch.Tensor, mirror: bool = True, span: bool = True) -> torch.Tensor:
    """The network's coarse volumes ``[B, D, s, s]`` of network inputs ``x`` ``[B, 1, s, s]``, on the
    model's device, clamped at zero. With ``mirror`` they are averaged with the network's volumes of
    the mirrored x-rays, mirrored back: the x-ray mirrored left-right is the x-ray of the mirrored
    specimen (which training shows the network too), so the average is an estimate from the same
    evidence with less of the network's own noise, and is exactly mirror-symmetric in its input.

    With ``span``, each x-ray is first brought into the exposure span the model was trained on (its
    ``exposure`` attribute, set from its checkpoint; ``xtomo.learning.exposure``) as ``x ** g``, and the
    answer divided by ``g``: a specimen lighter or denser than any in training is reconstructed as one
    inside the span, scaled back. Inside the span (and for a model without one) ``g`` is 1."""
    x = x.to(next(model.parameters()).device)
    within = getattr(model, "exposure", None) if span else None
    if within is not None:  # no span, no level to measure
        g = exposures.gain(x, within, model.config.chi)[:, None, None, None]
        if not bool((g == 1).all()):
            return infer(model, x ** g, mirror, span=False) / g
    if not mirror:
        return model(x).float().clamp_min(0)
    both = model(torch.cat([x, x.flip(-1)])).float()
    plain, flipped = both.split(x.shape[0])
    return ((plain + flipped.flip(-1)) / 2).clamp_min(0)


@torch.no_grad()
def reconstruct(alpha: torch.Tensor, model, fuse: bool = True, chi: float = CHI,
                policy: str = "proportional", beta: float = 2.0, mirror: bool = True,
                symmetry: torch.Tensor | str | None = None, level=False) -> torch.Tensor:
    """The view-aligned density volume ``[D, S, S]`` (or ``[B, D, S, S]``) of an x-ray.

    The network infers a coarse volume at its own resolution (the paper's Sec. 4.1); its output
    layer is linear, so values that dip below zero are set to zero (density cannot be negative).
    With ``fuse`` the volume is then upsampled to the x-ray's full (squared) resolution and fused
    with it (Sec. 4.2, ``xtomo.imaging.fusion``), so that it re-projects exactly to the x-ray.
    ``mirror`` averages in the network's answer to the mirrored x-ray, and an x-ray outside the
    exposure span the model was trained on is brought into it (``infer``); fusion uses the x-ray as given.
    ``symmetry`` makes the coarse volume bilaterally symmetric before fusion (``xtomo.imaging.symmetry``):
    about the mid-sagittal plane of the view along a known direction (``[3]`` or ``[B, 3]``, or
    ``"lateral"`` / ``"frontal"``: ``STANDARD_VIEWS``), or, with ``"estimate"``, about the plane the
    network's own answer is most nearly symmetric about. ``level`` (``True`` for ``LEVEL_TURNS``, or turns in
    degrees) first turns the x-ray in its plane as ``leveled`` chooses; it needs a known view's ``symmetry``.
    """
    single = alpha.dim() == 2
    x = square(alpha)
    model.eval()
    net_in = to_network_input(x, model.config.in_size)
    if level is not False and level is not None:
        if symmetry is None:
            raise ValueError("reconstruct: level needs a mid-sagittal plane to judge by; give symmetry too")
        coarse, _ = leveled(model, net_in, symmetry, LEVEL_TURNS if level is True else level, mirror)
        coarse = symmetric(coarse, symmetry)
    else:
        coarse = infer(model, net_in, mirror).cpu()
        if symmetry is not None:
            coarse = symmetric(coarse, symmetry)
    if fuse:
        coarse = torch.stack([fusion.fuse_upsampled(c, a[0], chi=chi, policy=policy, beta=beta)
                              for c, a in zip(coarse, x)])
    return coarse[0] if single else coarse
