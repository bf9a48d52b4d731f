"""The trained network that ships with the package, stored in half precision beside its manifest.

It is made by two documented commands: ``xtomo train --profile pretrained`` (resumable; on a CPU
the same seed gives the same weights) and ``xtomo export-model artifacts/pretrained/checkpoint.pt``,
which stores the weights as float16 (``<name>.pt``) with a manifest (``<name>.json``: the commands,
seed, code version, samples seen, wall time, machine, validation curve and the weights' sha256).
``load()``, ``xtomo.load_model()`` and ``xtomo reconstruct`` without ``--checkpoint`` read it back,
checked against that sha256.
"""
from __future__ import annotations

import dataclasses
import os
import shlex
from pathlib import Path

from xtomo.files import read_json, save_torch, write_json
from xtomo.files import sha256 as _sha256

__all__ = ["FOLDER", "NAME", "MAX_BYTES", "paths", "available", "export", "manifest", "checkpoint", "load",
           "same_data", "name_for", "for_profile", "how_made", "trained_on", "held_out", "ShippedModelError"]

FOLDER = Path(__file__).parent / "pretrained"   #: where the package keeps its shipped models
NAME = "quick"          #: the default: the ``quick`` preset, which runs on a CPU at the book's scale
MAX_BYTES = 16 * 2**20  #: a shipped model's weights must stay under 16 MiB


class ShippedModelError(ValueError):
    """A shipped model that is missing, altered (its sha256 differs from the manifest's) or too large."""


def paths(name: str | None = None, folder: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """The weights file and the manifest of the shipped model ``name`` (default ``NAME``) in ``folder``
    (default ``FOLDER``)."""
    base, name = Path(folder) if folder is not None else FOLDER, name or NAME
    return base / f"{name}.pt", base / f"{name}.json"


def available(name: str | None = None, folder: str | os.PathLike | None = None) -> bool:
    """Whether the shipped model ``name`` is there (weights and manifest)."""
    return all(p.exists() for p in paths(name, folder))


def export(checkpoint: str | os.PathLike, name: str | None = None, folder: str | os.PathLike | None = None,
           command: str | None = None) -> dict:
    """Store a training checkpoint's network (its moving average of the weights where it kept one) as the
    shipped model ``name``: float16 weights and a manifest; returns the manifest. ``command`` is how the
    checkpoint was trained (default: the ``xtomo train`` command of its profile and step count). The
    network's exposure span goes with it; a checkpoint from before spans were measured has none, and its
    model answers every x-ray as given."""
    from xtomo.learning import exposure
    from xtomo.learning.averaging import evaluated_weights
    from xtomo.learning.train import load_checkpoint as read

    ck = read(checkpoint)
    weights = {k: v.half() if v.is_floating_point() else v for k, v in evaluated_weights(ck).items()}
    span = exposure.of_checkpoint(ck)  # None for checkpoints from before spans: answered as given, not guessed
    span = list(span) if span else None
    shipped = dict(model=weights, model_config=ck["model_config"], profile=ck["profile"], step=ck["step"],
                   seed=ck["profile"]["seed"], code_version=ck.get("code_version"), exposure=span)
    name = name or NAME
    pt, js = paths(name, folder)

    def small_enough(tmp: Path) -> None:
        size = tmp.stat().st_size
        if size >= MAX_BYTES:
            raise ShippedModelError(f"export: {name} would take {size / 2**20:.1f} MiB, over the "
                                    f"{MAX_BYTES / 2**20:.0f} MiB a shipped model may take")

    save_torch(shipped, pt, check=small_enough)
    profile = ck["profile"]
    steps = ck.get("total_steps", ck["step"])
    trained_by = command or _train_command(profile, steps, ck.get("init"), ck.get("real"))
    validation = [{k: row[k] for k in ("step", "samples", "train_l2", "val_l2", "lr", "seconds")}
                  for row in ck["history"]]
    info = dict(name=name, file=pt.name, sha256=_sha256(pt), bytes=pt.stat().st_size, dtype="float16",
                commands=[trained_by, f"xtomo export-model CHECKPOINT --name {name}"],
                seed=profile["seed"], code_version=ck.get("code_version"), step=ck["step"], total_steps=steps,
                samples_seen=ck["step"] * profile["batch_size"],
                wall_seconds=ck["history"][-1]["seconds"] if ck["history"] else 0.0,
                machine=ck.get("machine"), generator=ck.get("generator"), precision=profile.get("precision"),
                real=ck.get("real"), profile=profile,
                model_config=ck["model_config"], baseline_l2=ck.get("baseline_l2"), val_l2=ck.get("val_l2"),
                exposure=span, validation=validation)
    info["runs"] = [_run_record(info, trained_by)]
    if ck.get("based_on"):
        info = _continued(ck["based_on"], info)
    write_json(js, info)
    return info


def _train_command(profile: dict, steps: int, init: str | None, real: dict | None = None) -> str:
    """The ``xtomo train`` command of a checkpoint's profile: its name, steps and start, each recipe
    setting the command line can change that differs from the named profile's, and its real CTs."""
    from xtomo.data.realmix import SHARE
    from xtomo.profiles import PROFILES, TRAIN_OPTIONS

    named = dataclasses.asdict(PROFILES[profile["name"]]) if profile["name"] in PROFILES else {}
    changed = "".join(f" --{k} {profile[k]:g}" if isinstance(profile[k], float) else f" --{k} {profile[k]}"
                      for k in TRAIN_OPTIONS if k in profile and k in named and profile[k] != named[k])
    if real:
        changed += "".join(f" --ct {shlex.quote(ct['name'])}" for ct in real["cts"])
        changed += f" --ct-share {real['share']:g}" if real["share"] != SHARE else ""
    return f"xtomo train --profile {profile['name']} --steps {steps}" + (f" --init {init}" if init else "") + changed


_MADE_WITH = ("generator", "code_version", "machine", "precision", "real")  # crania, code, machine, arithmetic, CTs
_RECIPE = ("lr", "blur", "gain", "cut", "stretch", "pose", "individuals", "ema", "physical")  # ... and its recipe


def _run_record(info: dict, command: str) -> dict:
    """One training run of a manifest: its command, length, crania version, code, machine and recipe."""
    made = info["profile"]
    return dict(command=command, steps=info["step"], samples=info["samples_seen"], seconds=info["wall_seconds"],
                **{k: info.get(k) for k in _MADE_WITH}, **{k: made.get(k) for k in _RECIPE})


def runs(info: dict) -> list[dict]:
    """The training runs that made the model of manifest ``info``, first to last (``_run_record``'s
    fields). A manifest written before runs were recorded one by one gives two at most: the model it
    was fine-tuned from (``based_on``, its commands joined; crania and recipe unknown where that took
    several runs) and its own last run."""
    if "runs" in info:
        return info["runs"]
    commands = [c for c in info["commands"] if c.startswith("xtomo train")]
    last = _run_record(info, commands[-1])
    before = info.get("based_on")
    if not before:
        return [last]
    earlier = _run_record(before, "; ".join(commands[:-1]))
    if len(commands) > 2:  # several runs in one record: their crania and recipes may have differed
        earlier |= dict.fromkeys(("generator", *_RECIPE))
    last |= dict(steps=info["step"] - before["step"], samples=info["samples_seen"] - before["samples_seen"],
                 seconds=round(info["wall_seconds"] - before["wall_seconds"], 2))
    return [earlier, last]


def _continued(before: dict, info: dict) -> dict:
    """The manifest of a model fine-tuned from the shipped model ``before`` (its manifest): the commands,
    steps, samples, wall time and validation curve of both runs end to end, every training run in
    ``runs``, and ``based_on``, the earlier model's sha256, machine, code version and crania generator."""
    offset = {k: before["validation"][-1][k] if before["validation"] else 0 for k in ("step", "samples", "seconds")}
    later = [dict(row, **{k: row[k] + offset[k] for k in offset}) for row in info["validation"]]
    return dict(info, commands=before["commands"] + info["commands"], step=before["step"] + info["step"],
                total_steps=before["total_steps"] + info["total_steps"],
                samples_seen=before["samples_seen"] + info["samples_seen"],
                wall_seconds=before["wall_seconds"] + info["wall_seconds"],
                validation=before["validation"] + later, runs=runs(before) + info["runs"],
                based_on={k: before.get(k) for k in ("name", "sha256", "step", "samples_seen", "wall_seconds",
                                                     "machine", "code_version", "generator", "precision",
                                                     "profile")})


def manifest(name: str | None = None, folder: str | os.PathLike | None = None) -> dict:
    """The manifest of the shipped model ``name``."""
    pt, js = paths(name, folder)
    if not (pt.exists() and js.exists()):
        raise ShippedModelError(f"no shipped model {pt.stem!r} in {pt.parent} (expected {pt.name} and {js.name}); "
                                "make it with `xtomo train --profile pretrained` and `xtomo export-model`, "
                                "or pass a checkpoint")
    return read_json(js)


def checkpoint(name: str | None = None, folder: str | os.PathLike | None = None) -> dict:
    """The shipped model's checkpoint (weights back in float32), after checking its sha256."""
    from xtomo.learning.train import load_checkpoint as read

    info = manifest(name, folder)
    pt = paths(name, folder)[0]
    found = _sha256(pt)
    if found != info["sha256"]:
        raise ShippedModelError(f"shipped model {pt} has sha256 {found}, but its manifest says {info['sha256']}: "
                                "the file was altered or only partly written")
    ck = read(pt)
    ck["model"] = {k: v.float() if v.is_floating_point() else v for k, v in ck["model"].items()}
    ck["manifest"] = info
    return ck


def load(name: str | None = None, folder: str | os.PathLike | None = None, fused: bool = True):
    """The shipped network in eval mode (batch norm folded into the convolutions when ``fused``)."""
    from xtomo.learning.train import model_from_checkpoint

    return model_from_checkpoint(checkpoint(name, folder), fused=fused)


def same_data(info: dict, profile) -> bool:
    """Whether the shipped model was trained on ``profile``'s data and split (so its held-out species
    are the profile's): same crania generator, sizes, species split and seed."""
    from xtomo.specimens import crania

    keys = ("volume_size", "xray_size", "n_species", "n_val_species", "n_views", "mirror", "seed", "chi")
    made = info["profile"]
    return info.get("generator") == crania.VERSION and all(
        made.get(k) == v for k, v in dataclasses.asdict(profile).items() if k in keys)


def name_for(p) -> str:
    """The shipped model that stands for profile ``p``: the one named after it (e.g. ``paper``, made
    by ``benchmarks/paper_run.py`` on a GPU) when it is there and was trained on ``p``'s data, else
    the default ``NAME``."""
    if p.name != NAME and available(p.name) and same_data(manifest(p.name), p):
        return p.name
    return NAME


def for_profile(p, wanted: bool | None = None) -> tuple[object, str | None]:
    """The shipped network (``name_for(p)``) and its sha256 for evaluating profile ``p``, or ``(None, None)``.

    ``wanted=None`` takes it when it is there and was trained on ``p``'s crania, sizes and species
    split (so ``p``'s held-out species are its held-out species too); True insists (an error says
    why it cannot); False leaves it out.
    """
    if wanted is False:
        return None, None
    problem, name = None, name_for(p)
    if not available(name):
        problem = f"there is no shipped model in {FOLDER}"
    elif not same_data(info := manifest(name), p):
        problem = (f"the shipped model was trained on other data than profile {p.name!r}'s "
                   f"(crania {info.get('generator')}, {info['profile']['volume_size']}^3 volumes)")
    if problem is None:
        return load(name), info["sha256"]
    if wanted:
        raise ShippedModelError(f"the shipped model was asked for, but {problem}")
    return None, None


def trained_on(info: dict) -> set[str]:
    """The sha256 of every real CT that any run making the model of manifest ``info`` trained on."""
    return {ct["sha256"] for run in runs(info) if run.get("real") for ct in run["real"]["cts"]}


def held_out(ct, name: str | None = None, folder: str | os.PathLike | None = None) -> str | None:
    """The shipped model that never saw the real CT ``ct`` (a ``realmix.RealCT``): ``name`` (default ``NAME``)
    itself, else its recipe trained without that CT, ``<name>-without-<file name of ct.name>``, if shipped; else
    None."""
    name = name or NAME
    for candidate in (name, f"{name}-without-{Path(ct.name).name}"):
        if available(candidate, folder) and ct.sha256 not in trained_on(manifest(candidate, folder)):
            return candidate
    return None


def _recipe(run: dict) -> str:
    """How one run's specimens were changed, in words ('' when they were used as made)."""
    parts = [f"blurred by up to {run['blur']:g} voxels" if run.get("blur") else "",
             f"densities scaled by a random factor between 1/{run['gain']:g} and {run['gain']:g}"
             if run.get("gain") not in (None, 1) else "",
             f"cut from below by up to {run['cut']:g} of their height" if run.get("cut") else "",
             f"stretched by up to {run['stretch']:g}" if run.get("stretch") not in (None, 1) else "",
             f"half of them turned by up to {run['pose']:g} degrees about each axis" if run.get("pose") else "",
             f"{run['individuals']} individuals of each training species" if run.get("individuals") not in (None, 1)
             else "",
             f"with real CTs ({', '.join(ct['name'] for ct in run['real']['cts'])}) as {run['real']['share']:.0%} of "
             f"the samples" if run.get("real") else ""]
    return ", ".join(p for p in parts if p)


def how_made(info: dict, live_samples: int | None = None) -> str:
    """A paragraph (Markdown) on how the model of manifest ``info`` was made: samples seen, time,
    machine, code, validation L2 and any moving average of the weights, and, when it took several runs,
    each run in order with its length, crania version and augmentation. ``live_samples``: what the book's
    live model saw."""
    made = info["profile"]
    text = (f"The shipped model saw **{info['samples_seen']:,}** training samples ({info['step']:,} steps of "
            f"{made['batch_size']}" + (f"; chapter 3's saw {live_samples:,}" if live_samples else "") + ") in "
            f"{info['wall_seconds'] / 3600:.1f} h on {info['machine']} (precision setting {info['precision']!r}), "
            f"code {info['code_version']}; its validation L2 fell to {info['val_l2']:.5f} "
            f"(the mean volume's: {info['baseline_l2']:.5f})." + (
                f" Its weights are the moving average of its last run's (decay {made['ema']:g} a step)."
                if made.get("ema") else "") + (
                f" Its last run re-took {made['physical']:.0%} of its x-rays by physical acquisitions drawn at random."
                if made.get("physical") else ""))
    made_by = runs(info)
    if len(made_by) == 1:
        return text
    told = [f"`{r['command']}` ({r['steps']:,} steps on crania {r.get('generator') or '?'}"
            + (f"; specimens {recipe}" if (recipe := _recipe(r)) else "") + ")" for r in made_by]
    return text + (f" It was trained in {len(made_by)} runs, each starting from the weights the one before left: "
                   + "; then ".join(told) + ".")
