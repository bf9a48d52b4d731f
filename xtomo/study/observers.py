"""Machine observers: programs that take the 2AFC studies through the same ``Session`` as people.

They stand in, clearly labelled, until people have taken the studies; they never simulate people.
Each is fitted on training pairs that share no image with the trial stimuli, scores every image
("how real does it look?") and picks the side whose image scores higher:

- ``StatisticObserver``: one family of image statistics (grey-level histogram, gradient
  magnitudes, or the radial power spectrum), weighed by a shrinkage linear discriminant;
- ``CNNObserver``: a small convolutional classifier trained for a few seconds on the CPU.

Their rows carry ``observer = machine`` and participant ids ``machine:<name>``.
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xtomo import _checks as checks
from xtomo.files import atomic_path

from .protocol import Pair, ResponseLog, Session

__all__ = ["FEATURES", "features", "StatisticObserver", "CNNObserver", "fit", "answer", "run_all"]

#: The image statistics a ``StatisticObserver`` can use.
FEATURES = ("histogram", "gradient", "spectrum")
_BINS, _BANDS = 16, 8


def _batch(images) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images), dtype=torch.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"expected images [B, H, W] (or one [H, W]), got shape {tuple(x.shape)}")
    return x


def features(images, kind: str) -> np.ndarray:
    """Per-image statistics ``[B, F]`` of display images ``[B, H, W]`` in [0, 1].

    ``histogram``: the fraction of pixels in each of 16 grey levels. ``gradient``: mean, spread
    and upper quantiles of the gradient magnitude and the mean absolute Laplacian (edges, blur).
    ``spectrum``: the share of the image's power (mean removed) in each of 8 log-spaced radial
    frequency bands (texture, noise, sharpness).
    """
    x = _batch(images)
    if kind == "histogram":
        bins = (x.clamp(0, 1) * _BINS).long().clamp_max(_BINS - 1).flatten(1)
        return (F.one_hot(bins, _BINS).double().mean(1)).numpy()
    if kind == "gradient":
        gy, gx = x[:, 1:, :-1] - x[:, :-1, :-1], x[:, :-1, 1:] - x[:, :-1, :-1]
        g = torch.sqrt(gx**2 + gy**2).flatten(1)
        lap = (x[:, 1:-1, 1:-1] * 4 - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]).abs()
        q = torch.quantile(g, torch.tensor([0.5, 0.9, 0.99], dtype=g.dtype), dim=1).T
        return torch.cat([g.mean(1, keepdim=True), g.std(1, keepdim=True), q,
                          lap.flatten(1).mean(1, keepdim=True)], 1).numpy()
    if kind == "spectrum":
        power = torch.fft.fft2(x - x.mean((1, 2), keepdim=True)).abs() ** 2
        fy = torch.fft.fftfreq(x.shape[1], dtype=x.dtype)[:, None]
        fx = torch.fft.fftfreq(x.shape[2], dtype=x.dtype)[None, :]
        radius = torch.sqrt(fx**2 + fy**2)
        edges = torch.logspace(np.log10(1 / max(x.shape[1:])), np.log10(0.5 * np.sqrt(2)), _BANDS + 1, dtype=x.dtype)
        band = (torch.bucketize(radius, edges) - 1).clamp(0, _BANDS - 1)
        total = power.flatten(1).sum(1, keepdim=True).clamp_min(1e-12)
        shares = torch.zeros(x.shape[0], _BANDS, dtype=x.dtype).index_add_(1, band.flatten(), power.flatten(1))
        return (shares / total).numpy()
    raise ValueError(f"unknown feature kind {kind!r}; choose one of {FEATURES}")


def _training(pairs) -> tuple[np.ndarray, np.ndarray]:
    pairs = list(pairs)
    if len(pairs) < 2 or not all(isinstance(p, Pair) for p in pairs):
        raise ValueError(f"a machine observer needs at least 2 training pairs (xtomo.study.protocol.Pair), "
                         f"got {len(pairs)}")
    return np.stack([p.real.image for p in pairs]), np.stack([p.fake.image for p in pairs])


class StatisticObserver:
    """Scores images by one family of statistics: a linear discriminant (real minus fake class means,
    weighed by the shrunk pooled covariance of standardised features) fitted on training pairs."""

    def __init__(self, kind: str, shrinkage: float = 0.2):
        if kind not in FEATURES:
            raise ValueError(f"unknown feature kind {kind!r}; choose one of {FEATURES}")
        shrinkage = checks.number(shrinkage, "shrinkage", maximum=1, above=0, what="StatisticObserver")
        self.kind, self.shrinkage, self.name = kind, shrinkage, f"stat-{kind}"
        self.weights = None

    def fit(self, pairs) -> StatisticObserver:
        real, fake = (features(images, self.kind) for images in _training(pairs))
        both = np.concatenate([real, fake])
        self.mean, self.scale = both.mean(0), both.std(0)
        self.scale[self.scale == 0] = 1.0
        real, fake = (real - self.mean) / self.scale, (fake - self.mean) / self.scale
        within = np.cov(np.concatenate([real - real.mean(0), fake - fake.mean(0)]).T, ddof=2).reshape(
            real.shape[1], real.shape[1])
        covariance = (1 - self.shrinkage) * within + self.shrinkage * np.eye(len(within))
        self.weights = np.linalg.solve(covariance, real.mean(0) - fake.mean(0))
        return self

    def score(self, images) -> np.ndarray:
        """How real each image looks (higher: more like the real class)."""
        if self.weights is None:
            raise RuntimeError(f"{self.name} is not fitted; call fit(training_pairs) first")
        return ((features(images, self.kind) - self.mean) / self.scale) @ self.weights


class _Net(nn.Module):
    """Three 3x3 conv layers (8, 16, 32 channels) with pooling, global average, one logit."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 1))

    def forward(self, x):
        return self.layers(x)[:, 0]


class CNNObserver:
    """A small CNN trained (Adam, binary cross-entropy, random left-right flips) to tell the real
    class from the fake one on ``pixels``-square copies of the training images; seeded."""

    def __init__(self, seed: int = 0, pixels: int = 64, steps: int = 150, batch: int = 32, lr: float = 3e-3):
        what = "CNNObserver"
        self.seed = checks.integer(seed, "seed", minimum=0, what=what)
        self.pixels = checks.integer(pixels, "pixels", minimum=1, what=what)
        self.steps = checks.integer(steps, "steps", minimum=1, what=what)
        self.batch = checks.integer(batch, "batch", minimum=1, what=what)
        self.lr = checks.positive(lr, "lr", what=what)
        self.name = f"cnn-{seed}"
        self.net = None

    def _input(self, images) -> torch.Tensor:
        x = _batch(images).float()[:, None]
        return F.interpolate(x, size=(self.pixels, self.pixels), mode="bilinear", antialias=True,
                             align_corners=False)

    def fit(self, pairs) -> CNNObserver:
        real, fake = _training(pairs)
        x = self._input(np.concatenate([real, fake]))
        y = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))])
        g = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            net = _Net()
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        for _ in range(self.steps):
            pick = torch.randint(len(x), (self.batch,), generator=g)
            flip = torch.rand(self.batch, generator=g) < 0.5
            xb = torch.where(flip[:, None, None, None], x[pick].flip(-1), x[pick])
            loss = F.binary_cross_entropy_with_logits(net(xb), y[pick])
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.net = net.eval()
        return self

    @torch.no_grad()
    def score(self, images) -> np.ndarray:
        """The logit of "real" for each image."""
        if self.net is None:
            raise RuntimeError(f"{self.name} is not fitted; call fit(training_pairs) first")
        return self.net(self._input(images)).double().numpy()


def fit(training_pairs, cnn_seeds=(0, 1, 2), **cnn) -> list:
    """Every statistic observer and one CNN per seed, fitted on ``training_pairs``."""
    pairs = list(training_pairs)
    return ([StatisticObserver(kind).fit(pairs) for kind in FEATURES]
            + [CNNObserver(seed=int(s), **cnn).fit(pairs) for s in cnn_seeds])


def answer(observer, session: Session) -> list[dict]:
    """Let ``observer`` answer every remaining trial of ``session``, the way the app does: look at
    the current trial, answer, next. It picks the side whose image scores as more real (a tie
    goes left; the real side is random, so ties cannot help)."""
    while (trial := session.current()) is not None:
        left, right = observer.score(np.stack([trial.left.image, trial.right.image]))
        session.answer("left" if left >= right else "right")
    return session.rows


def run_all(path: str | os.PathLike, plan: dict, seed: int = 0) -> list[dict]:
    """Run machine observers through the protocol and write their rows to the response CSV ``path``.

    ``plan`` maps a study name to ``(pairs, observers)``. Each observer takes each study once, in a
    session with its own schedule seed (``seed``, ``seed + 1``, ...). The rows are appended
    through ``ResponseLog`` to a temporary file that then replaces ``path``: the machine log is
    recomputed with the chapter, never mixed with people's answers.
    """
    rows = []
    with atomic_path(path) as tmp:
        log, k = ResponseLog(tmp), 0
        for study, (pairs, observers) in plan.items():
            for observer in observers:
                session = Session(study, pairs, f"machine:{observer.name}", log, seed=seed + k, observer="machine")
                rows += answer(observer, session)
                k += 1
    return rows
