"""Machine observers: programs that take the 2AFC studies through the same ``Session`` as people.

They stand in, clearly labelled, until people have taken the studies; they never simulate people.
Each is fitted on training pairs that share no image with the trial stimuli, scores every image
("how real does it look?") and picks the side whose image scores higher:

- ``StatisticObserver``: one family of image statistics (grey-level histogram, gradient
  magnitudes, or the radial power spectrum), weighed by a shrinkage linear discriminant;
- ``CNNObserver``: a small convolutional classifier trained for a few seconds on the CPU.

Their rows carry ``observer = machine`` and participant ids ``machine:<name>``.
``realism_discriminator`` puts the same observers to a question of realism: fitted to tell real
x-rays of a real head from procedural ones, how well do they tell them apart on views they never saw?
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xtomo import _checks as checks
from xtomo.evaluation import stats
from xtomo.files import atomic_path

from .protocol import Pair, ResponseLog, Session, Stimulus

__all__ = ["FEATURES", "features", "StatisticObserver", "CNNObserver", "fit", "answer", "run_all",
           "Discrimination", "realism_discriminator"]

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


# ----------------------------------------------------------------------------- realism

@dataclass(frozen=True)
class Discrimination:
    """A machine observer's held-out 2AFC accuracy at telling real x-rays from procedural ones.

    ``ci`` is the Clopper–Pearson interval of ``accuracy`` over ``trials`` independent trials (each
    held-out image in one trial at most), ``p`` the exact two-sided binomial test against chance.
    """
    observer: str
    correct: int
    trials: int
    accuracy: float
    ci: stats.ProportionCI
    p: float
    train_views: tuple
    test_views: tuple

    def __str__(self) -> str:
        return (f"{self.observer}: {self.correct}/{self.trials} held-out trials correct = {self.accuracy:.0%}, "
                f"{self.ci.level:.0%} CI [{self.ci.low:.0%}, {self.ci.high:.0%}], p = {self.p:.2g} against chance "
                f"({len(self.train_views)} training views, {len(self.test_views)} held-out views)")


def _opacities(alphas, views, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Opacity ``1 - alpha`` of x-rays ``[N, H, W]`` and their view labels (default: 0 .. N-1)."""
    a = checks.alpha(alphas, f"realism_discriminator: {name}")
    if a.ndim != 3 or a.shape[0] == 0 or min(a.shape[1:]) < 2:
        raise ValueError(f"realism_discriminator: {name} must be x-rays [N, H, W], got shape {tuple(a.shape)}")
    labels = np.arange(len(a)) if views is None else np.asarray(views)
    if labels.shape != (len(a),):
        raise ValueError(f"realism_discriminator: the view labels of {name} must be one per image, "
                         f"shape ({len(a)},), got shape {labels.shape}")
    return 1.0 - a.detach().cpu().double().numpy(), labels


def _balanced_pairs(real: np.ndarray, fake: np.ndarray, rng: np.random.Generator, prefix: str) -> list[Pair]:
    """Pairs of the two classes' images in a seeded order, the smaller class repeated to the larger's size."""
    n = max(len(real), len(fake))
    r = np.resize(rng.permutation(len(real)), n)
    f = np.resize(rng.permutation(len(fake)), n)
    return [Pair(f"{prefix}{k}", Stimulus(f"{prefix}{k}-real", real[i]), Stimulus(f"{prefix}{k}-fake", fake[j]))
            for k, (i, j) in enumerate(zip(r, f))]


def _held_out_trials(real_labels: np.ndarray, fake_labels: np.ndarray, rng) -> list[tuple[int, int]]:
    """Disjoint (real, fake) index pairs: images of one view paired first, then the rest in a seeded order."""
    r_order, f_order = rng.permutation(len(real_labels)), rng.permutation(len(fake_labels))
    trials, r_left, f_left = [], [], []
    for view in np.unique(np.concatenate([real_labels, fake_labels])):
        r = [i for i in r_order if real_labels[i] == view]
        f = [j for j in f_order if fake_labels[j] == view]
        m = min(len(r), len(f))
        trials += list(zip(r[:m], f[:m]))
        r_left, f_left = r_left + r[m:], f_left + f[m:]
    return trials + list(zip(r_left, f_left))


def _discriminator(observer, seed: int, cnn: dict):
    if observer == "cnn":
        return CNNObserver(seed=seed, **cnn)
    if cnn:
        raise ValueError(f"realism_discriminator: options {sorted(cnn)} are for observer='cnn', got {observer!r}")
    if isinstance(observer, str):
        if observer not in FEATURES:
            raise ValueError(f"realism_discriminator: observer must be 'cnn', one of {FEATURES}, or an object "
                             f"with fit(pairs) and score(images), got {observer!r}")
        return StatisticObserver(observer)
    if not (callable(getattr(observer, "fit", None)) and callable(getattr(observer, "score", None))):
        raise ValueError(f"realism_discriminator: observer must have fit(pairs) and score(images), got {observer!r}")
    return observer


def realism_discriminator(real_alphas, procedural_alphas, real_views=None, procedural_views=None,
                          holdout: float = 0.25, seed: int = 0, observer="cnn", level: float = 0.95,
                          **cnn) -> Discrimination:
    """How well a machine observer tells procedural x-rays from real ones on views it was not fitted on.

    ``real_alphas`` and ``procedural_alphas`` are x-rays ``[N, H, W]`` (alpha; the observer sees
    opacity ``1 - alpha``) with a view label each (``real_views``, ``procedural_views``; by default
    image ``i`` is view ``i``, so two stacks made from one list of directions share labels). A
    seeded ``holdout`` share of the distinct views is held out: every image of those views, of
    either class, is kept for testing and none of the others. The observer (``"cnn"``: a
    ``CNNObserver`` seeded with ``seed``, ``cnn`` its options; a ``FEATURES`` name: a
    ``StatisticObserver``; or any object with ``fit``/``score``) is fitted on training pairs, the
    smaller class repeated so both count alike, then takes 2AFC trials as in chapter 7: a
    held-out real and procedural image (same view where possible, each image once), correct when
    the real one scores higher (a tie is wrong). Chance is 50 %; near 100 % means the procedural
    x-rays give themselves away. Deterministic for a seed on the CPU.
    """
    what = "realism_discriminator"
    holdout = checks.number(holdout, "holdout", above=0, maximum=1, what=what)
    seed = checks.integer(seed, "seed", minimum=0, what=what)
    real, real_labels = _opacities(real_alphas, real_views, "real_alphas")
    fake, fake_labels = _opacities(procedural_alphas, procedural_views, "procedural_alphas")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"{what}: real_alphas and procedural_alphas must have one image size, "
                         f"got {real.shape[1:]} and {fake.shape[1:]}")
    rng = np.random.default_rng(seed)
    views = np.unique(np.concatenate([real_labels, fake_labels]))
    n_test = int(round(holdout * len(views)))
    test = np.sort(rng.choice(views, n_test, replace=False)) if 0 < n_test < len(views) else views[:0]
    real_test, fake_test = np.isin(real_labels, test), np.isin(fake_labels, test)
    if not (real_test.any() and fake_test.any() and (~real_test).sum() and (~fake_test).sum()):
        raise ValueError(f"{what}: holdout = {holdout} of {len(views)} views leaves a class without training or "
                         f"held-out images; give more views or another holdout")
    judge = _discriminator(observer, seed, cnn)
    judge.fit(_balanced_pairs(real[~real_test], fake[~fake_test], rng, "train"))
    trials = _held_out_trials(real_labels[real_test], fake_labels[fake_test], rng)
    scores_real, scores_fake = judge.score(real[real_test]), judge.score(fake[fake_test])
    correct = int(sum(scores_real[i] > scores_fake[j] for i, j in trials))
    return Discrimination(getattr(judge, "name", type(judge).__name__), correct, len(trials), correct / len(trials),
                          stats.proportion_ci(correct, len(trials), level), stats.binomial_test(correct, len(trials)).p,
                          tuple(np.setdiff1d(views, test).tolist()), tuple(test.tolist()))
