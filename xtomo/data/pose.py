"""A skull's pose in its scan: the turn that sets it upright, facing the way every training skull faces.

The paper's specimens were "globally aligned" before any view was drawn (Henzler et al. 2018, §5), and
xtomo's procedural crania are all made in one pose: symmetric about the plane x = 0, the vault up (+z).
A clinical CT's file says where the patient's head is (``io.load_volume`` reads it in RAS), but a dry
skull's micro-CT, a stack of slices or an array says nothing: the skull lies as it lay on the scanner's
table, and the network, which never saw a skull on its side, reads its x-rays badly (RESULTS ``pose``).

:func:`find` (:func:`estimate` for the rotation alone) finds the turn in two steps. The lateral axis is the
normal of the plane about which the skull is most nearly symmetric (``symmetry.estimate_normal``). That
leaves a turn about it: the skull, set to a common place (its centre of mass) and size (its rms radius), is
turned about that axis through every angle, front for back too, and compared (correlation) with every
family's template cranium, whole and cut from below as a CT's field of view cuts a head; the best match says
where up and front are. How far that match stands above the median turn's (``Pose.margin``) says whether the
answer means anything: for a sphere or a box every turn matches alike. The templates are built once per
machine (``templates_path``, in ``files.cache_dir()``).
Rotations act on centred coordinates in the array's order (z, y, x): ``rotated(v, R)`` at ``q`` is ``v``
at ``R^T q``, so ``R`` carries the skull's own axes onto the cube's.
"""
from __future__ import annotations

import contextlib
import functools
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

import xtomo._checks as checks
from xtomo import files
from xtomo.data import augment
from xtomo.imaging import symmetry, xray
from xtomo.specimens import crania

__all__ = ["TEMPLATE_SIZE", "SURE_MARGIN", "Pose", "find", "estimate", "rotated", "upright", "turn_angle",
           "affine_turn", "random_rotation", "templates_path"]

TEMPLATE_SIZE = 64  #: the side of the cube in which the pose is judged (and the templates are made)
_STEP = 3.0         # degrees between the turns tried about the lateral axis, then refined by 1
_CUTS = (0.2, 0.35)   # templates also cut from below by these shares of their height, as CTs cut heads
_COMPARED = 24      # the side of the grid on which a turned skull is compared with the templates
_MIRROR = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))  # front for back (a half turn about z)
_SPREAD = 0.45      # a skull's rms radius lands at this fraction of the compared grid's half-width
SURE_MARGIN = 0.1
"""The least ``Pose.margin`` at which ``io.prepare_volume`` turns a volume: the skulls of RESULTS ``pose-match``
stand 0.14 or more above their median turn, a sphere, a box, an ellipsoid or a chest CT 0.07 or less."""


def rotated(volume: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """``volume`` ``[S, S, S]`` turned about the cube's centre by ``rotation`` ``[3, 3]`` (array order
    (z, y, x)), trilinear; what comes from outside the cube is empty."""
    vol, single = checks.volume(volume, "rotated")
    if not single or len(set(vol.shape[-3:])) != 1:
        raise ValueError(f"rotated: expected one cubic volume [S, S, S], got shape {tuple(volume.shape)}")
    back = _rotation(rotation, "rotated").double().T.flip(0, 1)  # R^T, in grid_sample's (x, y, z)
    return xray.turned(vol.float(), back)[0]


class Pose(NamedTuple):
    """Where :func:`find` found a skull's up and front, and how sure it is of them."""

    rotation: torch.Tensor  #: [3, 3], array order: carries the skull's axes onto the cube's (:func:`rotated`)
    family: str             #: the family whose template the upright skull resembles most
    match: float            #: that resemblance: the correlation of the two, on the compared grid
    margin: float           #: ``match`` less the median over every turn tried of its best correlation
    neck: bool = False      #: whether a neck below the skull was cut away before the fit (``xtomo.data.neck``)

    @property
    def sure(self) -> bool:
        """Whether the turn won clearly enough to be applied (``margin`` at least :data:`SURE_MARGIN`)."""
        return self.margin >= SURE_MARGIN

    def told(self, turned: float) -> str:
        """What was done, in words, for a skull this pose turned by ``turned`` degrees (``affine_turn``)."""
        return (f"set upright (xtomo.data.pose), turned {turned:.0f} degrees from the scan's axes: most like the "
                f"{self.family} template (correlation {self.match:.2f}), its turn ahead of the median turn by "
                f"{self.margin:.2f} (sure from {SURE_MARGIN})" + ("; the neck below it cut away (xtomo.data.neck)"
                                                                  if self.neck else ""))


def find(volume: torch.Tensor) -> Pose:
    """The turn that sets the skull in ``volume`` (a fitted cube, any size) upright and facing as the
    procedural crania do (module docstring), and how clearly it won: a ``margin`` under
    :data:`SURE_MARGIN` means no turn resembles a skull much more than any other (a sphere's is 0)."""
    vol, single = checks.volume(volume, "find")
    if not single or len(set(vol.shape[-3:])) != 1:
        raise ValueError(f"find: expected one cubic volume [S, S, S], got shape {tuple(volume.shape)}")
    vol = vol[0].float()
    if vol.shape[-1] != TEMPLATE_SIZE:
        vol = F.interpolate(vol[None, None], size=(TEMPLATE_SIZE,) * 3, mode="trilinear", align_corners=False)[0, 0]
    if not vol.abs().sum() > 0:
        raise ValueError("find: empty volume: there is no skull to set upright")
    lateral = symmetry.estimate_normal(vol).double().flip(0)  # (x, y, z) -> array order
    first = _lateral_to_x(lateral)
    angles = torch.arange(0.0, 360.0, _STEP, dtype=torch.float64)
    coarse = _correlations(vol, first, angles, (False, True)).amax(-1)  # [mirrorings, angles]
    mirror, index = divmod(int(coarse.argmax()), len(angles))
    near = angles[index] + torch.arange(-_STEP + 1, _STEP, 1.0, dtype=torch.float64)
    fine = _correlations(vol, first, near, (bool(mirror),))[0]  # [angles, templates]
    index, template = divmod(int(fine.argmax()), fine.shape[1])
    rotation = _in_plane(near[index]) @ (_MIRROR if mirror else torch.eye(3, dtype=torch.float64)) @ first
    families = _families()
    return Pose(rotation.float(), families[template % len(families)], float(fine.max()),
                float(fine.max() - coarse.median()))


def estimate(volume: torch.Tensor) -> torch.Tensor:
    """The rotation ``[3, 3]`` (array order) that sets the skull in ``volume`` upright: ``find(volume).rotation``."""
    return find(volume).rotation


def upright(volume: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The skull of ``volume`` turned upright (:func:`estimate`, :func:`rotated`) and the rotation used."""
    rotation = estimate(volume)
    return rotated(volume, rotation), rotation


def turn_angle(rotation: torch.Tensor) -> float:
    """How far ``rotation`` turns, in degrees (0: none)."""
    rotation = _rotation(rotation, "turn_angle").double()
    return math.degrees(math.acos(max(-1.0, min(1.0, (float(rotation.trace()) - 1) / 2))))


def affine_turn(affine) -> float:
    """How far the axes of a cube, given by its affine (``io.load_volume_affine``), are turned from its file's
    world axes, in degrees: 0 for a cube read as scanned from a file in RAS (or with no orientation)."""
    axes = torch.as_tensor(affine, dtype=torch.float64)[:3, :3]
    u, _, vh = torch.linalg.svd(axes / axes.norm(dim=0))  # the nearest rotation (or reflection)
    nearest = u @ vh
    return turn_angle(nearest) if float(torch.det(nearest)) > 0 else float("nan")


def random_rotation(seed: int) -> torch.Tensor:
    """A rotation ``[3, 3]`` (array order) drawn uniformly over all turns, the same for the same ``seed``: a unit
    quaternion of four normal draws (a Gaussian in four dimensions is the same in every direction)."""
    q = torch.randn(4, generator=torch.Generator().manual_seed(int(seed)), dtype=torch.float64)
    a, b, c, d = q / q.norm()
    return torch.tensor([[a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                         [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
                         [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d]]).float()


def _rotation(rotation, what: str) -> torch.Tensor:
    rotation = torch.as_tensor(rotation)
    if rotation.shape != (3, 3) or not torch.isfinite(rotation).all():
        raise ValueError(f"{what}: rotation must be a finite 3 x 3 matrix, got shape {tuple(rotation.shape)}")
    r = rotation.double()
    if not (torch.allclose(r @ r.T, torch.eye(3, dtype=torch.float64), atol=1e-4) and float(torch.det(r)) > 0):
        raise ValueError(f"{what}: rotation must be orthonormal with determinant +1, got {rotation.tolist()!r}")
    return rotation


def _lateral_to_x(normal: torch.Tensor) -> torch.Tensor:
    """A rotation (rows: the new z, y, x axes) that carries ``normal`` onto the x axis (array order)."""
    normal = normal / normal.norm()
    helper = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    if abs(float(normal @ helper)) > 0.9:
        helper = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    a = helper - (helper @ normal) * normal
    a = a / a.norm()
    return torch.stack([a, torch.linalg.cross(normal, a), normal])


def _in_plane(degrees) -> torch.Tensor:
    """Rotations ``[..., 3, 3]`` about the x axis (turning z towards y) by ``degrees``."""
    t = torch.deg2rad(torch.as_tensor(degrees, dtype=torch.float64))
    c, s, zero, one = t.cos(), t.sin(), torch.zeros_like(t), torch.ones_like(t)
    return torch.stack([torch.stack([c, -s, zero], -1), torch.stack([s, c, zero], -1),
                        torch.stack([zero, zero, one], -1)], -2)


def _correlations(vol: torch.Tensor, first: torch.Tensor, angles: torch.Tensor, mirrors) -> torch.Tensor:
    """``[len(mirrors), len(angles), templates]``: the correlation with each template of ``vol`` turned by
    ``_in_plane(angle) @ mirroring @ first`` for each mirroring (front for back, or not) and angle."""
    templates = _templates()
    rows = []
    for m in mirrors:
        turns = _in_plane(angles) @ (_MIRROR if m else torch.eye(3, dtype=torch.float64)) @ first
        rows.append(_normalised(vol, turns) @ templates.T)
    return torch.stack(rows)


def _normalised(vol: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """``vol`` turned by each of ``turns`` ``[N, 3, 3]`` about its centre of mass and scaled to a common size,
    on a ``_COMPARED``-cubed grid, as zero-mean unit vectors ``[N, P]`` (correlation is then a dot product)."""
    vol = vol.double().clamp_min(0)
    axes = [torch.linspace(-1 + 1 / n, 1 - 1 / n, n, dtype=torch.float64) for n in vol.shape]
    where = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    weights = (vol / vol.sum())[..., None]
    centre = (weights * where).sum(dim=(0, 1, 2))
    radius = (weights[..., 0] * (where - centre).square().sum(-1)).sum().sqrt()
    small = torch.linspace(-1 + 1 / _COMPARED, 1 - 1 / _COMPARED, _COMPARED, dtype=torch.float64)
    u = torch.stack(torch.meshgrid(small, small, small, indexing="ij"), dim=-1).reshape(-1, 3) * (radius / _SPREAD)
    points = centre + torch.einsum("nij,pi->npj", turns, u)  # R^T u, about the centre of mass
    grid = points.flip(-1).reshape(len(turns), _COMPARED, _COMPARED, _COMPARED, 3).float()
    out = F.grid_sample(vol.float().expand(len(turns), 1, *vol.shape), grid, mode="bilinear",
                        padding_mode="zeros", align_corners=False).reshape(len(turns), -1).double()
    out = out - out.mean(dim=1, keepdim=True)
    return out / out.norm(dim=1, keepdim=True).clamp_min(1e-30)


def _families() -> list[str]:
    """Every family of the catalogue, in the order of the templates."""
    return [f for spec in crania.ORDERS.values() for f in spec["families"]]


@functools.lru_cache(maxsize=1)
def _templates() -> torch.Tensor:
    """The templates (``_built_templates``), built once per machine: kept in ``files.cache_dir()`` under a name
    that says what they are made of; a cache that cannot be read is built again, one that cannot be written
    costs time only."""
    path = templates_path()
    shape = (len(_families()) * (1 + len(_CUTS)), _COMPARED ** 3)
    try:
        kept = torch.from_numpy(np.load(path, allow_pickle=False))
        if kept.shape == shape and kept.dtype == torch.float64 and bool(torch.isfinite(kept).all()):
            return kept
    except (OSError, ValueError, EOFError):
        pass
    built = _built_templates()
    with contextlib.suppress(OSError):
        with files.atomic_path(path) as tmp:
            np.save(tmp, built.numpy())
    return built


def templates_path() -> Path:
    """The file in ``files.cache_dir()`` that keeps the pose's templates for this generator and these settings."""
    cuts = "-".join(f"{c:g}" for c in _CUTS)
    return files.cache_dir() / (f"pose-templates-{crania.VERSION}-n{TEMPLATE_SIZE}-c{_COMPARED}-s{_SPREAD:g}"
                                f"-cut{cuts}.npy")


def _built_templates() -> torch.Tensor:
    """Every family's template cranium (``_families``), whole and cut from below by each of ``_CUTS``,
    normalised as ``_normalised`` does ``[F * (1 + len(_CUTS)), P]``."""
    skulls = torch.stack([crania.skull(crania.family_template(f), size=TEMPLATE_SIZE) for f in _families()])
    cuts = [augment.truncated(skulls, torch.full((len(skulls),), cut), torch.zeros(len(skulls))) for cut in _CUTS]
    return torch.cat([_normalised(s, torch.eye(3, dtype=torch.float64)[None]) for s in torch.cat([skulls, *cuts])])
