"""A classical single-view reconstruction in the spirit of WENGER: constrained optimisation.

Wenger, Lorenz and Magnor (2013) model an astronomical nebula from one image by constrained
optimisation: a non-negative, sparse volume that reproduces the image and obeys the nebula's
axial symmetry. Henzler et al. (2018, Sec. 5.1) ran that code on three skull x-rays as the only
classical competitor for single-image tomography. This module is our own take for skulls, with
the bilateral (mirror) symmetry of a cranium in place of the nebula's axial one: a baseline
for the evaluation chapter, not a port of their code (theirs models emission, ours absorption).

**Problem.** An x-ray ``alpha [H, W]`` seen along ``direction`` gives the line integrals
``p = -ln(alpha) / chi`` (:func:`line_integrals`; alpha below ``fusion.alpha_floor`` counts as
the floor). The unknown is a canonical volume ``v [S, S, S]`` (world z, y, x; S defaults to
the x-ray's side), zero outside the cube's inscribed sphere of ``radius`` 0.5, where the
specimens lie, and ``v >= 0``. With ``A v = dt * sum_depth align(v, direction, n_steps, (H, W))``,
``dt = 1 / n_steps`` (which is ``-ln(simulate(v)) / chi`` without the exp/log round trip, so
no gradient vanishes on dark rays), it minimises::

    1/2 * mean_pixels (A v - p)^2                       data, in the log domain
    + sparsity       * mean_voxels v                    L1 (the sum, since v >= 0)
    + symmetry   / 2 * mean_voxels (v - v.flip(-1))^2   mirror symmetry about the plane x = 0
    + smoothness / 2 * mean_voxels |grad v|^2           gradient in cube units (differences * S)

Each term approximates an integral over the image or the cube, so a weight means the same at
every resolution. The problem is convex. FISTA (accelerated proximal gradient, with the
adaptive restart of O'Donoghue and Candes 2015) solves it: the data and smoothness terms go
through autograd with the step ``lr / L``, L a guaranteed bound on their Lipschitz constant
(for the non-negative projection matrix, ``||A||^2 <= max row sum * max column sum``, one
projection each); the symmetry term and ``v >= 0`` go through their joint proximal map, exact
and in closed form because the mirror splits the voxels into pairs (``_prox``), so even a
symmetry weight that makes the term nearly a hard constraint does not slow the solver.
Started from zero the result does not depend on ``seed``; ``init="random"`` starts from
seeded noise instead. All tensors live on ``alpha``'s device.

:func:`solve` returns the VIEW-ALIGNED volume ``align(v, direction, n_steps, (H, W))``,
``[n_steps, H, W]`` (n_steps defaults to S), comparable with the network's output; with
``exact=True`` it is fused with the x-ray (``xtomo.imaging.fusion.fuse``) so that it re-projects to
``alpha`` exactly. A batch ``[B, H, W]`` with ``[B, 3]`` (or one) directions is solved at once.

**Assumptions.** The method is told what the network is not: the view direction, the
symmetry plane (the specimen is mirror-symmetric about the world plane x = 0, its mid-sagittal
plane) and that it lies within the inscribed sphere. A real radiograph comes with neither a
known direction nor a known plane.

**What it can and cannot recover.** Depth along a ray is ambiguous: every non-negative volume
with the right line integrals explains the x-ray, and the priors choose among them.

* Sparsity cannot choose: for ``v >= 0`` the L1 norm is the total mass, and a single projection
  already fixes it (per ray, up to interpolation). The term only trades data fit for a soft
  threshold of faint rays, about ``sparsity`` in line-integral units, which can strip haze off
  noisy x-rays but only biases clean ones; the default is 0.
* With no other prior the solver, started from zero, converges to the minimum-norm fit: each
  ray's integral spread evenly over its chord through the sphere. That is the naive extrusion
  (:func:`extrude`, spread over the whole cube), made slightly better by the sphere.
* Symmetry is worth a second view. The x-ray from the mirrored direction ``(-dx, dy, dz)`` is
  the mirror image of the given one, so a symmetric volume must explain both: a stereo pair
  ``2 asin(|dx|)`` apart. A side view (``d = +-x``) gains nothing: the mirror maps each ray onto
  itself, reversed. Front and top views (``dx = 0``) gain nothing along depth either: the
  mirror maps each ray onto another ray of the same x-ray, which only averages left and right.
  The gain peaks at ``|dx| = 1/sqrt(2)``, a pair 90 degrees apart (e.g. azimuth 45, elevation 0);
  views drawn uniformly from the hemisphere have ``|dx| > 0.3`` 70 % of the time.
* The smoothness term, with zero density outside the sphere, bends each ray's profile from
  flat to one peaking inside the chord. That helps views near the axes a little and costs
  oblique views a little (it blurs what the second view resolves).

**Defaults** (:data:`DEFAULTS`) were chosen on procedural 64^3 skulls (``xtomo.specimens.crania``)
by the volume MSE of the fused result against the view-aligned truth: the symmetry weight barely
matters over a wide range (the procedural crania are symmetric but for their texture; use 0 for a
specimen that is not), a slight smoothness helps on average, sparsity stays 0 (see above), and
more iterations change little. Those measurements, against the zero volume and the extrusion,
and the solver's cost are in ``benchmarks/RESULTS.md``. The cost grows with S^3; on a CPU shared
with other work, call ``torch.set_num_threads(1)`` (threads waiting for each other cost more
than they gain).
"""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

import xtomo._checks as checks
from xtomo.imaging import fusion
from xtomo.imaging.xray import CHI, align

__all__ = ["DEFAULTS", "INITS", "solve", "optimise", "extrude", "line_integrals", "sphere_mask"]

DEFAULTS = dict(iterations=100, sparsity=0.0, symmetry=100.0, smoothness=1e-5, lr=1.0)
"""Default weights and solver settings of :func:`solve` (see the module's documentation)."""

INITS = ("zeros", "random")
"""Starting volumes: zeros (the minimum-norm path; the default) or seeded uniform noise."""


def line_integrals(alpha, chi: float = CHI) -> torch.Tensor:
    """``p = -ln(alpha) / chi``, the line integral ``dt * sum mu`` that each pixel demands.

    Alpha below ``xtomo.imaging.fusion.alpha_floor(chi)`` (0 included) counts as the floor, as in fusion.
    Accepts ``[H, W]`` or ``[B, H, W]`` and returns the same shape.
    """
    alpha, single = _xrays(alpha, "line_integrals")
    chi = checks.positive(chi, "chi (extinction coefficient)", "line_integrals")
    p = alpha.clamp_min(fusion.alpha_floor(chi)).log() * (-1.0 / chi)
    return p[0] if single else p


def extrude(alpha, n_steps: int | None = None, chi: float = CHI) -> torch.Tensor:
    """The naive baseline: each pixel's line integral spread evenly along its whole ray.

    Returns the view-aligned volume ``[n_steps, H, W]`` (``[B, n_steps, H, W]`` for a batch;
    n_steps defaults to W) with density ``p = -ln(alpha) / chi`` on every slice. It re-projects
    to ``alpha`` exactly and is the minimum-norm volume that does, if nothing is known of the
    specimen's extent.
    """
    alpha, single = _xrays(alpha, "extrude")
    n = alpha.shape[-1] if n_steps is None else checks.integer(n_steps, "n_steps", minimum=1, what="extrude")
    p = line_integrals(alpha, chi)
    out = p.unsqueeze(-3).expand(-1, n, -1, -1).contiguous()
    return out[0] if single else out


def sphere_mask(size: int, radius: float = 0.5, device=None, dtype=torch.float32) -> torch.Tensor:
    """``[size]^3`` indicator (0 or 1) of the voxels whose centres lie within ``radius`` of the centre."""
    size = checks.integer(size, "size", minimum=2, what="sphere_mask")
    t = (torch.arange(size, device=device, dtype=torch.float64) + 0.5) / size - 0.5
    r2 = t[:, None, None] ** 2 + t[None, :, None] ** 2 + t[None, None, :] ** 2
    return (r2 <= radius * radius).to(dtype)


def optimise(alpha, direction, size: int | None = None, n_steps: int | None = None, chi: float = CHI,
             iterations: int = DEFAULTS["iterations"], sparsity: float = DEFAULTS["sparsity"],
             symmetry: float = DEFAULTS["symmetry"], smoothness: float = DEFAULTS["smoothness"],
             lr: float = DEFAULTS["lr"], seed: int = 0, init: str = "zeros", radius: float = 0.5,
             progress: bool = False, history: list | None = None) -> torch.Tensor:
    """The canonical volume ``v [S, S, S]`` (``[B, S, S, S]`` for a batch) that minimises the objective.

    See the module's documentation for the objective, the solver and the assumptions.
    ``alpha`` is ``[H, W]`` or ``[B, H, W]`` transparency in [0, 1]; ``direction`` a view
    vector (x, y, z) pointing towards the source, ``[3]`` or ``[B, 3]``, any length but zero.
    ``size`` is S (default the x-ray's side), ``n_steps`` the samples per ray (default S),
    ``radius`` that of the support sphere. ``lr`` scales the guaranteed step (above 1 it may
    diverge). ``init`` is "zeros" (the default; ``seed`` is then unused) or "random" (uniform
    noise from ``seed``). ``progress`` shows a tqdm bar. If ``history`` is a list, the RMS
    residual of the line integrals at each iteration's gradient point is appended to it.
    """
    what = "classical.optimise"
    alpha, single = _xrays(alpha, what)
    b, rows, cols = alpha.shape
    dirs = _views(direction, b, what).to(alpha.device, alpha.dtype)
    s = max(rows, cols) if size is None else checks.integer(size, "size", minimum=2, what=what)
    n = s if n_steps is None else checks.integer(n_steps, "n_steps", minimum=1, what=what)
    chi = checks.positive(chi, "chi (extinction coefficient)", what)
    iterations = checks.integer(iterations, "iterations", minimum=0, what=what)
    sparsity = checks.nonnegative(sparsity, "sparsity (weight)", what)
    symmetry = checks.nonnegative(symmetry, "symmetry (weight)", what)
    smoothness = checks.nonnegative(smoothness, "smoothness (weight)", what)
    lr = checks.positive(lr, "lr", what)
    checks.choice(init, "init", INITS, what)
    radius = checks.positive(radius, "radius", what)

    p = line_integrals(alpha, chi)
    mask = sphere_mask(s, radius, alpha.device, alpha.dtype)

    def project(v):
        return align(v * mask, dirs, n_steps=n, size=(rows, cols)).sum(-3) / n

    step = _step(project, mask, b, rows * cols, smoothness, lr)
    x = _start(init, seed, p, mask, b)
    weights = dict(sparsity=sparsity, symmetry=symmetry, smoothness=smoothness)
    x = _fista(x, project, p, mask, step, weights, iterations, progress, history)
    return x[0] if single else x


def _step(project, mask, b: int, npix: int, smoothness: float, lr: float) -> torch.Tensor:
    """The guaranteed step ``lr / L`` per x-ray ``[B, 1, 1, 1]``, L bounding the Lipschitz constant of
    the data and smoothness terms; for a matrix with non-negative entries
    ``||A||^2 <= max row sum * max column sum`` (one projection and its transpose)."""
    s = mask.shape[-1]
    ones = mask.expand(b, s, s, s).clone().requires_grad_(True)
    row_sums = project(ones)
    col_sums, = torch.autograd.grad(row_sums, ones, torch.ones_like(row_sums))
    lipschitz = row_sums.detach().amax((-2, -1)) * col_sums.amax((-3, -2, -1)) / npix + 12 * smoothness / s
    return (lr / lipschitz.clamp_min(1e-30)).view(b, 1, 1, 1)


def _start(init: str, seed: int, p: torch.Tensor, mask: torch.Tensor, b: int) -> torch.Tensor:
    """The starting volume ``[B, S, S, S]``: zeros, or seeded uniform noise in the sphere, up to twice the mean
    line integral."""
    s = mask.shape[-1]
    if init == "zeros":
        return torch.zeros(b, s, s, s, dtype=p.dtype, device=p.device)
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.rand(b, s, s, s, generator=gen, dtype=torch.float64).to(p.device, p.dtype)
    return x * (2 * p.mean((-2, -1))).view(b, 1, 1, 1) * mask


def _fista(x, project, p, mask, step, weights: dict, iterations: int, progress: bool,
           history: list | None) -> torch.Tensor:
    """FISTA with adaptive restart from ``x``: gradient steps on the data and smoothness terms, then the
    exact proximal map of symmetry and ``v >= 0`` (:func:`_prox`); the L1 term is a constant gradient."""
    b, s, npix = x.shape[0], mask.shape[-1], p.shape[-2] * p.shape[-1]
    nvox, smoothness = s ** 3, weights["smoothness"]
    kappa = step * weights["symmetry"] / nvox

    def smooth_part(v):
        r = project(v) - p
        f = 0.5 * r.square().sum() / npix
        if smoothness:
            g = sum(torch.diff(v, dim=k).square().sum() for k in (-3, -2, -1))
            f = f + 0.5 * smoothness * s * s * g / nvox
        return f, r

    y, t = x, torch.ones(b, 1, 1, 1, dtype=x.dtype, device=x.device)
    for _ in tqdm(range(iterations), desc="classical", unit="it", disable=not progress):
        y = y.detach().requires_grad_(True)
        f, r = smooth_part(y)
        grad, = torch.autograd.grad(f, y)
        if history is not None:
            history.append(r.detach().square().mean().sqrt().item())
        with torch.no_grad():
            x_new = _prox(y - step * (grad + weights["sparsity"] / nvox), kappa).mul_(mask)
            # adaptive restart (O'Donoghue & Candes 2015): drop the momentum once it points uphill
            uphill = ((y - x_new) * (x_new - x)).sum((-3, -2, -1), keepdim=True) > 0
            t = torch.where(uphill, torch.ones_like(t), t)
            t_new = (1 + torch.sqrt(1 + 4 * t * t)) / 2
            y = x_new + ((t - 1) / t_new) * (x_new - x)
            x, t = x_new, t_new
    return x.detach()


def _prox(z: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
    """``argmin_x 1/2 ||x - z||^2 + kappa/2 ||x - flip(x)||^2`` subject to ``x >= 0``, exactly.

    The mirror pairs voxel i with voxel i' across the plane x = 0, so the problem splits into
    two-variable problems ``1/2 (x1 - z1)^2 + 1/2 (x2 - z2)^2 + kappa (x1 - x2)^2``, x >= 0.
    Unconstrained, the pair keeps its mean and its difference shrinks by ``1 + 4 kappa``. If that
    drives the lesser one (smaller z) below zero, it sits at 0 and the other at
    ``max(z, 0) / (1 + 2 kappa)``; the KKT conditions hold there exactly when the unconstrained
    lesser one is negative. ``kappa = 0`` is the plain projection onto x >= 0.
    """
    zm = z.flip(-1)
    mean, half = (z + zm) / 2, (z - zm) / (2 * (1 + 4 * kappa))
    inside = (mean - half.abs()) >= 0
    face = torch.where(z >= zm, z.clamp_min(0) / (1 + 2 * kappa), torch.zeros_like(z))
    return torch.where(inside, mean + half, face)


def solve(alpha, direction, size: int | None = None, n_steps: int | None = None,
          chi: float = CHI, iterations: int = DEFAULTS["iterations"],
          sparsity: float = DEFAULTS["sparsity"], symmetry: float = DEFAULTS["symmetry"],
          smoothness: float = DEFAULTS["smoothness"], lr: float = DEFAULTS["lr"], seed: int = 0,
          progress: bool = False, exact: bool = True, policy: str = "proportional",
          init: str = "zeros", radius: float = 0.5) -> torch.Tensor:
    """The view-aligned volume ``[n_steps, H, W]`` (``[B, n_steps, H, W]``) reconstructed from an x-ray.

    Solves :func:`optimise` (same arguments) and resamples its canonical volume into the
    camera frame of ``direction``: depth first, front to back, laterally the x-ray's pixels.
    With ``exact=True`` the result is fused with ``alpha`` (``xtomo.imaging.fusion.fuse`` with
    ``policy``) so that ``xray.composite(out, chi)`` equals ``alpha`` (raised to the alpha floor);
    with ``exact=False`` it is the optimiser's own fit. Never negative.
    """
    checks.choice(policy, "policy", fusion.POLICIES, "classical.solve")
    v = optimise(alpha, direction, size=size, n_steps=n_steps, chi=chi, iterations=iterations,
                 sparsity=sparsity, symmetry=symmetry, smoothness=smoothness, lr=lr, seed=seed,
                 init=init, radius=radius, progress=progress)
    a, single = _xrays(alpha, "classical.solve")
    dirs = _views(direction, a.shape[0], "classical.solve").to(a.device, a.dtype)
    s = v.shape[-1]
    n = s if n_steps is None else n_steps
    out = align(v if not single else v[None], dirs, n_steps=n, size=tuple(a.shape[-2:]))
    if exact:
        out = fusion.fuse(out, a, chi=chi, policy=policy)
    return out[0] if single else out


# ---------------------------------------------------------------------------------------------
# inputs

def _xrays(alpha, what: str) -> tuple[torch.Tensor, bool]:
    """``alpha`` as a batch ``[B, H, W]`` (float32 or float64) of x-rays, and whether it was one x-ray."""
    alpha = checks.alpha(alpha, what)
    if alpha.dim() not in (2, 3):
        raise ValueError(f"{what}: alpha must be an x-ray [H, W] or a batch [B, H, W], "
                         f"got shape {tuple(alpha.shape)}")
    if min(alpha.shape[-2:]) < 2 or alpha.shape[0] < 1:
        raise ValueError(f"{what}: alpha is too small: shape {tuple(alpha.shape)} (at least 2 x 2 pixels)")
    alpha = alpha if alpha.dtype in (torch.float32, torch.float64) else alpha.float()
    single = alpha.dim() == 2
    return (alpha[None] if single else alpha), single


def _views(direction, b: int, what: str) -> torch.Tensor:
    """Unit view vectors ``[B, 3]`` (float64), one per x-ray; a single direction serves the whole batch."""
    d = checks.directions(direction, what, torch.float64).reshape(-1, 3)
    if d.shape[0] == 1 and b > 1:
        d = d.expand(b, 3)
    if d.shape[0] != b:
        raise ValueError(f"{what}: {d.shape[0]} directions for {b} x-rays")
    return d
