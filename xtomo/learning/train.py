"""Training the 2D→3D network: L2 between voxels (or L2 with a surface term), Adam, validation on held-out species.

Every batch is a pure function of (seed, step): the indices of step ``s`` come from a generator
seeded with both, so a run killed and resumed from its last checkpoint replays exactly the batches
it would have seen and, on a CPU, ends with the same weights. Several GPUs go through PyTorch's
DistributedDataParallel when started by ``torchrun``: each rank takes its share of every batch and
only rank 0 validates and writes.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

import xtomo._checks as checks
from xtomo.data import realmix
from xtomo.data.datasets import Kept, ProceduralBank, XrayDataset
from xtomo.data.pipeline import DevicePipeline, use_device_pipeline
from xtomo.files import artifacts_dir, folder_lock, require_artifact, save_torch, write_csv
from xtomo.imaging.shading import LEVEL as SURFACE_LEVEL
from xtomo.learning import exposure
from xtomo.learning.acquisition import physical_xrays
from xtomo.learning.averaging import WeightAverage, evaluated_weights
from xtomo.learning.model import ModelConfig, XrayToVolume, build_model
from xtomo.learning.precision import mixed_precision, native_bf16
from xtomo.learning.provenance import code_version, machine
from xtomo.profiles import OBJECTIVES, PROFILES, Profile, get_profile
from xtomo.specimens import crania

__all__ = ["train", "initial_weights", "load_model", "load_checkpoint", "model_from_checkpoint", "checkpoint_profile",
           "CheckpointError", "train_val_sets", "validation_indices", "validation_l2", "mean_volume_l2", "step_indices",
           "native_bf16", "mixed_precision", "objective_loss", "SURFACE_LEVEL", "SURFACE_WIDTH",
           "SURFACE_WEIGHT"]


#: the most memory validation samples may keep between validations; above it they are remade
KEEP_VALIDATION_BYTES = 256 * 2 ** 20


def _kept_validation(val_set, p: Profile):
    """``val_set`` with its samples kept once made (every validation asks for the same ones) when the
    profile's fit in ``KEEP_VALIDATION_BYTES``; as it is otherwise, and for a ``DevicePipeline``."""
    per_sample = 4 * (p.volume_size ** 3 + p.xray_size ** 2)
    if isinstance(val_set, DevicePipeline) or p.val_samples * per_sample > KEEP_VALIDATION_BYTES:
        return val_set
    return Kept(val_set)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, truncated, or made for something else."""


def step_indices(seed: int, step: int, batch_size: int, n: int) -> list[int]:
    """The sample indices of one training step (with replacement), a function of (seed, step) alone."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return torch.randint(n, (batch_size,), generator=g).tolist()


class _Steps(torch.utils.data.Sampler):
    """Batch sampler over steps ``start..stop``; each rank takes its slice of every batch."""

    def __init__(self, seed, start, stop, batch_size, n, rank=0, world=1):
        self.args = (seed, start, stop, batch_size, n, rank, world)

    def __iter__(self):
        seed, start, stop, batch_size, n, rank, world = self.args
        for step in range(start, stop):
            yield step_indices(seed, step, batch_size, n)[rank::world]

    def __len__(self):
        return self.args[2] - self.args[1]


def train_val_sets(p: Profile) -> tuple[XrayDataset, XrayDataset]:
    """Training and validation datasets of a profile: split by species, never mixed; only training
    samples are augmented (the profile's ``blur``, ``gain``, ``cut``, ``stretch`` and ``pose``), and only
    training species have the profile's ``individuals`` (the held-out species keep individual 0)."""
    bank = ProceduralBank(p)
    train_ids, val_ids = crania.split(bank.species, p.n_val_species, seed=p.seed)
    train_ids = [bank.index(k, i) for i in range(p.individuals) for k in train_ids]
    return XrayDataset(bank, train_ids, p, augment=True), XrayDataset(bank, val_ids, p)


def validation_indices(p: Profile, n: int) -> list[int]:
    """The fixed, seeded subset of validation samples every evaluation uses."""
    g = torch.Generator().manual_seed(p.seed + 7)
    return torch.randperm(n, generator=g)[: p.val_samples].tolist()


def _batches(dataset, indices, batch_size):
    """(x-rays, volumes) of the given samples of a dataset or ``DevicePipeline``, stacked
    ``batch_size`` at a time, in order."""
    for i in range(0, len(indices), batch_size):
        if isinstance(dataset, DevicePipeline):
            batch = dataset.batch(indices[i:i + batch_size])
            yield batch["xray"], batch["volume"]
            continue
        items = [dataset[j] for j in indices[i:i + batch_size]]
        yield torch.stack([it["xray"] for it in items]), torch.stack([it["volume"] for it in items])


@torch.no_grad()
def validation_l2(model, dataset, indices, batch_size, device) -> float:
    """Mean squared voxel error of the model on the given samples (eval mode)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in _batches(dataset, indices, batch_size):
        pred = model(x.to(device)).float()
        total += F.mse_loss(pred, y.to(device), reduction="sum").item()
        count += y.numel()
    model.train(was_training)
    return total / count


@torch.no_grad()
def mean_volume_l2(train_set, val_set, val_indices, n_train: int, seed: int) -> tuple[torch.Tensor, float]:
    """The baseline of predicting the mean training target: that mean and its validation L2."""
    g = torch.Generator().manual_seed(seed + 11)
    picks = torch.randint(len(train_set), (n_train,), generator=g).tolist()
    mean = sum(y.sum(0) for _, y in _batches(train_set, picks, 64)) / n_train
    errors = sum(((y - mean) ** 2).sum().item() for _, y in _batches(val_set, val_indices, 64))
    return mean, errors / (len(val_indices) * mean.numel())


def _distributed() -> tuple[int, int]:
    """(rank, world size), initialising the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def load_checkpoint(path: str | os.PathLike, profile: Profile | None = None, resuming: bool = False) -> dict:
    """A checkpoint's contents, read with ``weights_only=True``; clear errors when it is unusable.

    With ``profile``, its network, data and objective must be the checkpoint's; ``resuming`` (a run
    that continues) asks the same of the training-only augmentation (``blur``, ``gain``), which a
    network may be evaluated without."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(error).__name__}: {error}); "
                              "it may be truncated or not an xtomo checkpoint") from None
    missing = {"model", "model_config", "profile", "step"} - set(ck) if isinstance(ck, dict) else {"everything"}
    if missing:
        raise CheckpointError(f"checkpoint {path} is not an xtomo checkpoint: it lacks {sorted(missing)}")
    if profile is not None:
        keys = ("model", "volume_size", "xray_size", "batch_size", "seed", "chi", "objective", "surface_weight",
                *(("blur", "gain", "cut", "stretch", "pose", "individuals", "ema", "physical") if resuming else ()))
        made = {"objective": "l2", "surface_weight": profile.surface_weight,  # checkpoints from before these
                "blur": 0.0, "gain": 1.0, "cut": 0.0, "stretch": 1.0, "pose": 0.0, "individuals": 1, "ema": 0.0,
                "physical": 0.0, **ck["profile"]}
        changed = [f"{k}: {made.get(k)!r} there, {getattr(profile, k)!r} here"
                   for k in keys if made.get(k) != getattr(profile, k)]
        if changed:
            raise CheckpointError(f"checkpoint {path} was made with other settings ({'; '.join(changed)}); "
                                  "resume with the same profile")
    return ck


def checkpoint_profile(ck: dict) -> Profile:
    """The profile a checkpoint's network was trained at: its stored settings (those this version
    knows) on the profile of its name, or on ``quick`` when the name is not a built-in one."""
    stored = dict(ck["profile"])
    name = stored.pop("name", "quick")
    known = {f.name for f in dataclasses.fields(Profile)}
    return get_profile(name if name in PROFILES else "quick", **{k: v for k, v in stored.items() if k in known})


def model_from_checkpoint(ck: dict, fused: bool = True):
    """The network of a checkpoint (its moving average of the weights where it kept one), in eval mode;
    ``fused`` folds batch norm into the convolutions for faster inference (same outputs), as
    ``fuse_for_inference`` does."""
    try:
        config = ModelConfig(**ck["model_config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"the checkpoint's model settings do not describe a network: {error}") from None
    with torch.device("meta"):  # the shapes its settings ask for, before any memory is taken
        wanted = {k: tuple(v.shape) for k, v in build_model(config).state_dict().items()}
    weights = evaluated_weights(ck)
    stored = {k: tuple(v.shape) for k, v in weights.items()} if isinstance(weights, dict) else {}
    if wanted != stored:
        wrong = sorted(set(wanted) ^ set(stored)) or [k for k in wanted if wanted[k] != stored[k]]
        raise CheckpointError(f"the checkpoint's weights do not fit the network its settings describe "
                              f"({len(wrong)} tensors missing, extra or of another shape, first: {wrong[0]})")
    model = build_model(config)
    model.load_state_dict(weights)
    model = model.fuse_for_inference() if fused else model.eval()
    model.exposure = exposure.of_checkpoint(ck)  # read by inference.infer
    return model


def load_model(checkpoint: str | os.PathLike | Profile | None = None, fused: bool = True):
    """A trained network in eval mode: ``checkpoint`` is a checkpoint file, a profile (its name or a
    ``Profile``) whose checkpoint chapter 3 left in the artifacts folder, or None for the model that
    ships with the package (``xtomo.learning.shipped``)."""
    if checkpoint is None:
        from xtomo.learning import shipped

        return shipped.load(fused=fused)
    if isinstance(checkpoint, Profile) or (isinstance(checkpoint, str) and checkpoint in PROFILES):
        p = get_profile(checkpoint)
        path = require_artifact(artifacts_dir(p.name) / "checkpoint.pt", "chapter 3 (training)")
        return model_from_checkpoint(load_checkpoint(path, p), fused=fused)
    return model_from_checkpoint(load_checkpoint(checkpoint), fused=fused)


SURFACE_WIDTH = 0.025  # density over which the "surface" objective's logit goes from 0 to 1 (a tenth of cortex)
SURFACE_WEIGHT = PROFILES["quick"].surface_weight  # its cross-entropy's weight beside L2, by default

#: Columns of ``training_log.csv``: one row per validation.
LOG_FIELDS = ["step", "samples", "train_l2", "val_l2", "lr", "seconds"]


@dataclasses.dataclass
class _Run:
    """A training run: where it runs, its network, optimiser and schedule, and what it carries from
    step to step into its checkpoint (the step reached, the log, the baseline, the losses since the
    last log)."""

    p: Profile
    total: int
    rank: int
    world: int
    device: torch.device
    model: XrayToVolume
    optimiser: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    step: int = 0
    history: list = dataclasses.field(default_factory=list)
    baseline: float | None = None
    running: list = dataclasses.field(default_factory=list)
    init: str | None = None  # the weights a new run started from ("shipped" or a checkpoint's path)
    based_on: dict | None = None  # started from the shipped model: its manifest (how those weights were made)
    exposure: tuple | None = None  # the training x-rays' exposure span (``exposure.of_training``)
    generator: str | None = None  # the crania version it trains on (None: other data, ``train(data=...)``)
    real: dict | None = None  # the real CTs among its samples (``realmix.record``)
    code: str = ""  # the code that trained it: ``code_version`` at its start, and at each resume that ran other code
    average: WeightAverage | None = None  # the moving average of its weights (``Profile.ema``)


def train(profile: Profile | str = "quick", resume: bool = False, steps: int | None = None,
          minutes: float | None = None, out_dir: str | os.PathLike | None = None,
          device: str | None = None, progress: bool = True, data: tuple | None = None,
          pipeline: str = "auto", init: str | os.PathLike | None = None, overwrite: bool = False,
          real: Sequence[str] = (), real_share: float = realmix.SHARE) -> dict:
    """Train the profile's network; returns a summary (final step, losses, baseline, paths).

    ``steps`` overrides the profile's step count; ``minutes`` stops earlier once that much wall
    time has passed (the run then ends with a checkpoint and can be resumed). Writes
    ``checkpoint.pt`` and ``training_log.csv`` into ``out_dir`` (default: the profile's artifacts).
    ``data`` = ``(train_set, val_set)`` trains on other pairs than the profile's crania (e.g. the
    mice of chapter 8, ``xtomo.data.datasets.ViewDataset``); items must be shaped as the profile says.
    ``pipeline`` makes the batches on the training device (``"device"``, ``xtomo.data.pipeline``), by
    a ``DataLoader`` (``"loader"``), or (``"auto"``) on the device where it is a GPU: the same samples.
    ``init`` (``"shipped"`` or a checkpoint file) gives a new run its first weights: fine-tuning.
    ``real`` names skull CTs (files, or fetched heads) that make ``real_share`` of the training samples
    (``xtomo.data.realmix``; made by a ``DataLoader``); a resumed run must be given the same.
    A new run (no ``resume``) refuses to replace a checkpoint in ``out_dir`` unless ``overwrite``; the
    folder is locked while the run writes there (a second run into it fails at once, naming the first).
    """
    p = get_profile(profile)
    total = checks.integer(steps if steps is not None else p.steps, "steps", minimum=1, what="train")
    rank, world = _distributed()
    if p.batch_size % world:
        raise ValueError(f"train: batch size {p.batch_size} must divide among {world} processes")
    device = _device(device)
    out = Path(out_dir) if out_dir else artifacts_dir(p.name)
    ck_path, log_path = out / "checkpoint.pt", out / "training_log.csv"
    with folder_lock(out, f"xtomo train --profile {p.name}") if rank == 0 else nullcontext():
        if rank == 0 and not resume and not overwrite and ck_path.exists():
            raise CheckpointError(f"{ck_path} holds another run's checkpoint; resume it (--resume), or replace "
                                  "it deliberately (--overwrite)")
        cts = [realmix.find_ct(spec) for spec in real]
        train_set, val_set = train_val_sets(p) if data is None else data
        run = _start(p, total, rank, world, device, ck_path if resume else None, init)
        run.generator = crania.VERSION if data is None else None
        if run.step:
            realmix.same_cts(run.real, realmix.record(cts, real_share), str(ck_path))
        run.real = realmix.record(cts, real_share)
        if cts:
            train_set = realmix.mixed(train_set, cts, p, real_share)
            pipeline = "loader" if pipeline == "auto" else pipeline  # a DevicePipeline holds a bank's specimens
        if run.exposure is None and rank == 0:  # from the samples as made one by one, before any pipeline
            run.exposure = exposure.of_training(p, train_set)
        val_idx = validation_indices(p, len(val_set))
        if use_device_pipeline(pipeline, device):
            train_set, val_set = DevicePipeline(train_set, device), DevicePipeline(val_set, device)
        val_set = _kept_validation(val_set, p)
        if run.baseline is None:
            run.baseline = mean_volume_l2(train_set, val_set, val_idx, min(256, len(train_set)), p.seed)[1]
        last_val = _loop(run, train_set, (val_set, val_idx), minutes, progress, (ck_path, log_path))
        if world > 1:
            _check_in_sync(run.model)
            dist.barrier()
    return dict(step=run.step, total_steps=total, val_l2=last_val, baseline_l2=run.baseline, checkpoint=ck_path,
                log=log_path, history=run.history, world_size=world)


def _device(device: str | None) -> torch.device:
    """``device``, or this process's GPU when there is one (``LOCAL_RANK`` under torchrun), else the CPU."""
    if device is None:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    return checks.device(device, "train")


def _start(p: Profile, total: int, rank: int, world: int, device: torch.device, resume_from: Path | None,
           init: str | os.PathLike | None = None) -> _Run:
    """A new run of the profile's network on ``device`` (from the weights of ``init``, see ``initial_weights``),
    or the run saved at ``resume_from`` if it exists.

    The learning rate decays along a cosine from ``p.lr`` to a tenth of it over ``total`` steps.
    """
    model = build_model(p.model, seed=p.seed)
    c = model.config
    if c.in_size != p.xray_size or c.slices != p.volume_size or c.out_size != p.volume_size:
        raise ValueError(f"profile {p.name!r}: model preset {p.model!r} maps {c.in_size}^2 to "
                         f"{c.slices}x{c.out_size}^2, but the data are "
                         f"{p.xray_size}^2 x-rays and {p.volume_size}^3 volumes")
    model.to(device, memory_format=torch.channels_last)  # faster on CPUs (oneDNN) and GPUs alike
    optimiser = torch.optim.Adam(model.parameters(), lr=p.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    run = _Run(p, total, rank, world, device, model, optimiser, schedule, code=code_version())
    if init is not None and not (resume_from is not None and resume_from.exists()):
        model.load_state_dict(initial_weights(init, model))
        run.init = str(init)
        if run.init == "shipped":
            from xtomo.learning import shipped

            run.based_on = shipped.manifest()
    run.average = WeightAverage(model, p.ema) if p.ema else None
    if resume_from is not None and resume_from.exists():
        ck = load_checkpoint(resume_from, p, resuming=True)
        model.load_state_dict(ck["model"])
        if run.average:
            run.average.load_state_dict(ck["ema"])
        optimiser.load_state_dict(ck["optimiser"])
        schedule.load_state_dict(ck["schedule"])
        run.step, run.history, run.baseline, run.running = ck["step"], ck["history"], ck["baseline_l2"], ck["running"]
        run.init, run.based_on, run.exposure, run.real = ck.get("init"), ck.get("based_on"), ck.get("exposure"), \
            ck.get("real")
        run.code = _resumed_code(ck["code_version"], run.code, run.step)
    return run


def _resumed_code(before: str, now: str, step: int) -> str:
    """The code version of a run resumed at ``step``: its checkpoint's, and the code now running where
    that is other code (the commit a run ends with need not be the one it started from)."""
    last = before.rsplit(" then ", 1)[-1].split(" from step ")[0]
    return before if now == last else f"{before} then {now} from step {step}"


def initial_weights(init: str | os.PathLike, model) -> dict:
    """The weights a new run starts from (fine-tuning): ``"shipped"``, the package's model (its sha256
    checked), or a checkpoint file (its moving average where it kept one); they must be for the same network
    as ``model``."""
    from xtomo.learning import shipped

    ck = shipped.checkpoint() if str(init) == "shipped" else load_checkpoint(init)
    if ck["model_config"] != dataclasses.asdict(model.config):
        raise CheckpointError(f"init: {init} holds another network ({ck['model_config']}) than the profile's "
                              f"({dataclasses.asdict(model.config)})")
    return evaluated_weights(ck)


def _loop(run: _Run, train_set, validation: tuple, minutes: float | None, progress: bool,
          paths: tuple[Path, Path]) -> float | None:
    """Train from ``run.step`` to ``run.total`` (or until ``minutes`` have passed), validating every
    ``val_every`` steps and saving every ``checkpoint_every`` steps and at the end, to ``paths``
    (checkpoint, log); returns the last validation L2.

    Each rank takes its share of every batch (``_Steps``); only rank 0 validates and saves.
    """
    from tqdm.auto import tqdm

    p, rank, world, device = run.p, run.rank, run.world, run.device
    net = torch.nn.parallel.DistributedDataParallel(run.model) if world > 1 else run.model
    steps = _Steps(p.seed, run.step, run.total, p.batch_size, len(train_set), rank, world)
    loader = train_set.batches(steps) if isinstance(train_set, DevicePipeline) else torch.utils.data.DataLoader(
        train_set, batch_sampler=steps, num_workers=p.workers, persistent_workers=False)
    bar = tqdm(total=run.total, initial=run.step, desc=f"training {p.model}", unit="step",
               disable=not progress or rank != 0)
    autocast = mixed_precision(device, p.precision)
    began, seen, last_val = time.perf_counter(), 0, run.history[-1]["val_l2"] if run.history else None
    before = run.history[-1]["seconds"] if run.history else 0.0  # a resumed run's clock goes on from its log
    run.model.train()
    for batch in loader:
        seen += _step(run, net, batch, autocast) * world
        elapsed = time.perf_counter() - began
        bar.set_postfix(loss=f"{run.running[-1]:.4f}", samples_s=f"{seen / elapsed:.1f}")
        bar.update()
        out_of_time = minutes is not None and elapsed > 60 * minutes
        if run.step % p.val_every == 0 or run.step == run.total or out_of_time:
            if rank == 0:
                last_val = validation_l2(run.average.model if run.average else run.model, *validation,
                                         p.batch_size, device)
            _log(run, last_val, before + elapsed)
        if (run.step % p.checkpoint_every == 0 or run.step == run.total or out_of_time) and rank == 0:
            _save(run, last_val, *paths)
        if out_of_time:
            break
    bar.close()
    return last_val


def objective_loss(pred: torch.Tensor, target: torch.Tensor, objective: str = "l2",
                   weight: float = SURFACE_WEIGHT) -> torch.Tensor:
    """The training loss of ``objective`` between predicted and true volumes (float32).

    ``"l2"`` is the paper's mean squared error between voxels. Where the x-ray leaves depth
    ambiguous, L2's best answer is the average of the possible skulls: a blur whose iso-surface
    sits in the wrong place or vanishes. ``"surface"`` adds a cross-entropy on the side of the
    iso-surface (``SURFACE_LEVEL``, the level renders and DSSIM use) each voxel falls: the
    predicted density minus the level, over ``SURFACE_WIDTH``, is the logit of "inside the bone".
    A voxel that is bone in the truth and below the level in the prediction costs far more than
    its squared error; the L2 term keeps densities true. Measured (chapter 3), it does not make the
    network commit: a cross-entropy is minimised by a calibrated probability, and an ambiguous
    voxel's lands at the level itself. ``weight`` is the cross-entropy's beside L2 (a profile's
    ``surface_weight``).
    """
    checks.choice(objective, "objective", OBJECTIVES, "objective_loss")
    loss = F.mse_loss(pred, target)
    if objective == "surface":
        logit = (pred - SURFACE_LEVEL) / SURFACE_WIDTH
        inside = (target > SURFACE_LEVEL).to(pred.dtype)
        loss = loss + weight * F.binary_cross_entropy_with_logits(logit, inside)
    return loss


def _step(run: _Run, net, batch: dict, autocast) -> int:
    """One optimisation step on a batch (the profile's objective); the number of samples it held."""
    x, y = batch["xray"].to(run.device, non_blocking=True), batch["volume"].to(run.device, non_blocking=True)
    x = physical_xrays(x, run.p.physical, seed=run.p.seed * 1_000_003 + run.step, chi=run.p.chi)
    x = x.contiguous(memory_format=torch.channels_last)
    with autocast:
        loss = objective_loss(net(x).float(), y, run.p.objective, run.p.surface_weight)
    run.optimiser.zero_grad(set_to_none=True)
    loss.backward()
    run.optimiser.step()
    run.schedule.step()
    if run.average:
        run.average.update(run.model)
    run.step += 1
    run.running.append(loss.item())
    return x.shape[0]


def _log(run: _Run, val: float | None, elapsed: float) -> None:
    """Close a logging interval: its mean training loss, the validation L2 and the learning rate."""
    run.history.append(dict(step=run.step, samples=run.step * run.p.batch_size,
                            train_l2=sum(run.running) / len(run.running), val_l2=val,
                            lr=run.schedule.get_last_lr()[0], seconds=round(elapsed, 2)))
    run.running = []


def _save(run: _Run, val: float | None, ck_path: Path, log_path: Path) -> None:
    """The checkpoint (everything a resumed run needs) and the training log, both written atomically."""
    state = dict(model=run.model.state_dict(), optimiser=run.optimiser.state_dict(),
                 schedule=run.schedule.state_dict(), step=run.step, history=run.history, baseline_l2=run.baseline,
                 val_l2=val, total_steps=run.total, model_config=dataclasses.asdict(run.model.config),
                 profile=dataclasses.asdict(run.p), seed=run.p.seed, code_version=run.code,
                 world_size=run.world, running=run.running, machine=machine(), generator=run.generator, init=run.init,
                 based_on=run.based_on, exposure=run.exposure, real=run.real,
                 ema=run.average.state_dict() if run.average else None)
    save_torch(state, ck_path)
    write_csv(log_path, run.history, LOG_FIELDS)


def _check_in_sync(model) -> None:
    """All ranks must hold the same weights after DDP training; fail loudly otherwise.

    Parameters only: batch-norm running statistics follow each rank's last local batch until
    DDP broadcasts rank 0's at the next forward, and rank 0's are the ones saved.
    """
    flat = torch.cat([t.detach().float().flatten().cpu() for t in model.parameters()])
    checksum = torch.tensor([flat.sum().item(), flat.abs().sum().item()], dtype=torch.float64)
    gathered = [torch.zeros_like(checksum) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, checksum)
    if any(not torch.allclose(g, gathered[0]) for g in gathered):
        raise RuntimeError(f"DDP ranks diverged: weight checksums {[g.tolist() for g in gathered]}")
