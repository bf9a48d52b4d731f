"""Scale profiles: the one place that sets every size, count and budget.

``smoke`` runs each chapter in seconds for the tests, ``quick`` is the default book on a
2-core CPU, ``paper`` is the scale of Henzler et al. (2018) for a GPU, and ``pretrained`` trains
the model that ships with the package (quick's data and network, trained for hours).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import xtomo._checks as checks

__all__ = ["Profile", "PROFILES", "get_profile"]


@dataclass(frozen=True)
class Profile:
    """Every scale parameter of the book; chapters read them, never hard-code them."""

    name: str
    n_species: int            # species in the collection (paper: 175)
    n_val_species: int        # held out, never trained on (paper: 20)
    n_views: int              # view directions per species (paper: 1,332)
    mirror: bool              # add the vertical mirror of every view (paper: yes, x2)
    volume_size: int          # canonical and view-aligned volume edge, voxels (paper: 128)
    xray_size: int            # x-ray edge, pixels (paper: 256)
    chi: float = 10.0         # extinction coefficient of Eq. 1 (paper: 10)
    seed: int = 0
    gallery: int = 6          # species shown in chapter 1's gallery
    realism_size: int = 128   # chapter 1's realism check: volume edge of the real head and the compared skulls
    realism_views: int = 96   # ... and x-ray directions its machine observer sees (a quarter held out)
    # training (chapter 3); the paper trained 150,000 iterations with an L2 loss
    model: str = "quick"      # network preset in xtomo.learning.model.PRESETS
    batch_size: int = 8
    lr: float = 1e-3          # Adam, cosine-decayed to a tenth over the run
    steps: int = 1000
    val_every: int = 100      # validate on held-out species every this many steps
    val_samples: int = 64     # held-out samples per validation
    checkpoint_every: int = 100
    workers: int = 0          # DataLoader worker processes
    precision: str = "fp32"   # training arithmetic: "fp32", "bf16" (autocast), or "auto" (bf16 where the
                              # device computes it natively: CUDA, or a CPU with AVX-512 BF16 or AMX)
    objective: str = "l2"     # training loss: "l2" (the paper's), or "surface" (L2 plus a cross-entropy that
                              # puts each voxel on the right side of the iso-surface; xtomo.learning.train)
    surface_weight: float = 0.1   # the surface objective's cross-entropy weight beside L2
    blur: float = 0.0         # training specimens smoothed by a Gaussian of random sigma in [0, blur] voxels
                              # (real CTs are smoother than procedural crania; 0: none; xtomo.data.datasets)
    gain: float = 1.0         # training specimens' densities scaled by a random factor in [1/gain, gain]
                              # (log-uniform; real bone is as dense as its scan makes it; 1: none)
    cut: float = 0.0          # half the training specimens cut from below by a plane removing a random share
                              # in [0, cut] of their height, then fitted into the cube again (a CT's field of
                              # view often cuts a head's jaw and face; 0: none; xtomo.data.augment.truncated)
    stretch: float = 1.0      # each training specimen scaled along each of its axes by a random factor in
                              # [1 / stretch, stretch] (log-uniform), then fitted again (1: none; truncated)
    pose: float = 0.0         # half the training specimens turned about the cube's centre by a random pitch, roll
                              # and yaw, each uniform in [-pose, pose] degrees (a head lies tilted in a scanner or
                              # before a film; 0: none; truncated)
    physical: float = 0.0     # share of the training x-rays re-taken by a physical acquisition drawn at random
                              # (spectrum, scatter, noise, blur, 8-bit gamma; 0: none; xtomo.learning.acquisition)
    ema: float = 0.0          # decay per step of a moving average of the weights, which validation, evaluation and
                              # export then use (0: none; xtomo.learning.averaging)
    individuals: int = 1      # individuals of each training species (sex, size and a 3 % jitter of its
                              # proportions; crania.individual); the paper had one; held-out species keep one
    # evaluation (chapter 5)
    eval_samples: int = 64        # held-out samples every method is scored on (seeded subset)
    classical_samples: int = 3    # of those, how many the slow classical method also runs on
    # the reality check with mice (chapter 8); the paper: 15 mice in a micro-CT, 12 for training,
    # 3 for testing, 2,720 samples in all, the learning repeated
    n_mice: int = 15
    n_test_mice: int = 3
    mouse_samples: int = 2_720    # samples over all mice, mirrors included (views spread evenly)
    mouse_phantom_size: int = 256  # phantoms are x-rayed at this resolution, finer than the volumes
    ct_angles: int = 360          # projections of each micro-CT scan
    ct_arc: int = 360             # degrees the scanner turns (parallel beam: 180 or 360)
    mouse_steps: int = 1000       # training steps on the mice
    # the user studies (chapter 7); the paper showed 10 pairs per study
    study_pairs: int = 10         # stimulus pairs per 2AFC study
    study_train_pairs: int = 200  # training pairs per machine-observer family
    study_cnn_steps: int = 300    # training steps of each CNN machine observer

    @property
    def n_steps(self) -> int:
        """Ray-marching steps across the unit cube: one per output depth slice."""
        return self.volume_size

    @property
    def n_train_species(self) -> int:
        """Species left for training once the held-out ones are taken."""
        return self.n_species - self.n_val_species

    @property
    def samples_per_species(self) -> int:
        """Samples of one species: every view, and its mirror if the profile mirrors."""
        return self.n_views * (2 if self.mirror else 1)

    def replace(self, **changes) -> Profile:
        """A copy with some fields changed, validated like the originals."""
        return _validated(dataclasses.replace(self, **changes))


def _validated(p: Profile) -> Profile:
    """``p`` if every setting makes sense (its integers made plain ``int``), else an error naming it."""
    ints = ("n_species", "n_val_species", "n_views", "individuals", "volume_size", "xray_size", "gallery",
            "realism_size", "realism_views",
            "batch_size", "steps", "val_every", "val_samples", "checkpoint_every", "eval_samples",
            "classical_samples", "n_mice", "n_test_mice", "mouse_samples", "mouse_phantom_size",
            "ct_angles", "mouse_steps", "study_pairs", "study_train_pairs", "study_cnn_steps")
    what = f"profile {p.name!r}"
    plain = {name: checks.integer(getattr(p, name), name, minimum=1, what=what) for name in ints}
    plain.update(workers=checks.integer(p.workers, "workers", minimum=0, what=what),
                 seed=checks.integer(p.seed, "seed", what=what))
    p = dataclasses.replace(p, **plain)  # plain ints: checkpoints store the profile
    checks.positive(p.chi, "chi", what)
    checks.choice(p.precision, "precision", PRECISIONS, what)
    checks.choice(p.objective, "objective", OBJECTIVES, what)
    checks.positive(p.surface_weight, "surface_weight", what)
    if not (isinstance(p.blur, (int, float)) and 0 <= p.blur < 8):
        raise ValueError(f"{what}: blur must be a number of voxels in [0, 8), got {p.blur!r}")
    if not (isinstance(p.gain, (int, float)) and 1 <= p.gain <= 4):
        raise ValueError(f"{what}: gain must be a density factor in [1, 4] (1: none), got {p.gain!r}")
    if not (isinstance(p.cut, (int, float)) and 0 <= p.cut <= 0.6):
        raise ValueError(f"{what}: cut must be a fraction of the specimen's height in [0, 0.6] (0: none), "
                         f"got {p.cut!r}")
    if not (isinstance(p.stretch, (int, float)) and 1 <= p.stretch <= 1.5):
        raise ValueError(f"{what}: stretch must be a factor in [1, 1.5] (1: none), got {p.stretch!r}")
    if not (isinstance(p.pose, (int, float)) and 0 <= p.pose <= 45):
        raise ValueError(f"{what}: pose must be an angle in degrees in [0, 45] (0: none), got {p.pose!r}")
    if not (isinstance(p.physical, (int, float)) and 0 <= p.physical <= 1):
        raise ValueError(f"{what}: physical must be a share of the training x-rays in [0, 1] (0: none), "
                         f"got {p.physical!r}")
    if not (isinstance(p.ema, (int, float)) and 0 <= p.ema < 1):
        raise ValueError(f"{what}: ema must be a decay per step in [0, 1) (0: none), got {p.ema!r}")
    checks.positive(p.lr, "lr", what)
    if p.n_val_species >= p.n_species:
        raise ValueError(
            f"profile {p.name!r}: n_val_species ({p.n_val_species}) must be smaller than "
            f"n_species ({p.n_species}) so that some species remain for training")
    if p.n_test_mice >= p.n_mice:
        raise ValueError(f"profile {p.name!r}: n_test_mice ({p.n_test_mice}) must be smaller than "
                         f"n_mice ({p.n_mice}) so that some mice remain for training")
    mirrors = 2 if p.mirror else 1
    if p.mouse_samples % mirrors or p.mouse_samples < p.n_mice * mirrors:
        raise ValueError(f"profile {p.name!r}: mouse_samples ({p.mouse_samples}) must be a multiple of "
                         f"{mirrors} (the mirrors) with at least one view per mouse ({p.n_mice} mice)")
    if p.mouse_phantom_size % p.volume_size:
        raise ValueError(f"profile {p.name!r}: mouse_phantom_size ({p.mouse_phantom_size}) must be a "
                         f"multiple of volume_size ({p.volume_size}), the micro-CT's detector")
    if p.ct_arc not in (180, 360):
        raise ValueError(f"profile {p.name!r}: ct_arc must be 180 or 360 degrees, got {p.ct_arc!r}")
    if p.volume_size < 8:
        raise ValueError(f"profile {p.name!r}: volume_size must be at least 8, got {p.volume_size}")
    return p


PRECISIONS = ("fp32", "bf16", "auto")  #: the training arithmetics a profile may ask for
OBJECTIVES = ("l2", "surface")  #: the training losses a profile may ask for
PIPELINES = ("auto", "device", "loader")  #: where training makes its batches (``xtomo.data.pipeline``)
#: The settings of a profile that ``xtomo train`` can change on its command line (``--blur 1.2``, ...)
TRAIN_OPTIONS = ("precision", "objective", "blur", "gain", "cut", "stretch", "pose", "individuals", "ema",
                 "physical")

PROFILES: dict[str, Profile] = {
    p.name: _validated(p)
    for p in (
        Profile("smoke", n_species=12, n_val_species=3, n_views=8, mirror=True,
                volume_size=32, xray_size=32, gallery=3, realism_size=48, realism_views=16, model="smoke",
                batch_size=4, steps=12,
                val_every=6, val_samples=8, checkpoint_every=4, eval_samples=6, classical_samples=1,
                n_mice=5, n_test_mice=2, mouse_samples=40, mouse_phantom_size=64, ct_angles=24, ct_arc=180,
                mouse_steps=12, study_pairs=2, study_train_pairs=8, study_cnn_steps=20),
        # quick: the default book, within 30 minutes on 2 cores even on a CPU without AVX-512, where the
        # network's training step runs in float32 at ~8 samples/s (benchmarks/RESULTS.md, book-budget-quick-fp32):
        # 250 steps of 4 for each of chapter 3's networks (at a fixed budget of samples, batches of 4 reached a
        # lower validation L2 than batches of 8), 100 for each of chapter 8's, 80 samples scored in chapter 5,
        # and batches made in the training process, which on 2 cores beats a worker competing for them.
        Profile("quick", n_species=175, n_val_species=20, n_views=1332, mirror=True,
                volume_size=64, xray_size=128, gallery=6, realism_size=96, model="quick", batch_size=4, steps=250,
                val_every=50, val_samples=96, checkpoint_every=50, workers=0, eval_samples=80,
                classical_samples=3, mouse_samples=480, mouse_phantom_size=128, ct_angles=90, ct_arc=180,
                mouse_steps=100, study_pairs=10, study_train_pairs=48, study_cnn_steps=150),
        Profile("paper", n_species=175, n_val_species=20, n_views=1332, mirror=True,
                volume_size=128, xray_size=256, gallery=8, model="paper", batch_size=32,
                steps=150_000, val_every=2_000, val_samples=1_024, checkpoint_every=2_000, workers=8,
                eval_samples=1_024, classical_samples=12, mouse_steps=20_000,
                precision="auto"),  # bf16 on a GPU: measured at quick, it costs no quality (RESULTS.md)
    )
}

# The model that ships with the package (xtomo.learning.shipped): quick's data, split and network, trained
# far longer than chapter 3 can (hours on a CPU), in bf16 where the CPU computes it natively
# (`xtomo train --profile pretrained`), then fine-tuned from those weights at a third of the learning rate
# on specimens blurred and made lighter or denser at random, as real CTs are (`xtomo train --profile tuned
# --init shipped`; benchmarks/RESULTS.md, `augment` and `density`).
PROFILES["pretrained"] = PROFILES["quick"].replace(name="pretrained", steps=12_000, batch_size=8, val_every=500,
                                                   checkpoint_every=250, precision="auto", workers=1)
PROFILES["tuned"] = PROFILES["pretrained"].replace(name="tuned", steps=2_000, lr=3e-4, blur=1.2, gain=1.6)


def get_profile(name: str | Profile = "quick", **overrides) -> Profile:
    """The named profile, with ``overrides`` applied; unknown names or fields fail clearly."""
    if isinstance(name, Profile):
        base = name
    else:
        if name not in PROFILES:
            raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
        base = PROFILES[name]
    known = {f.name for f in dataclasses.fields(Profile)} - {"name"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown profile setting(s) {unknown}; known settings are {sorted(known)}")
    return base.replace(**overrides) if overrides else base
