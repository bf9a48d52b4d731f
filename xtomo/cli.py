"""The ``xtomo`` command: one small function per subcommand, registered with ``@command``.

A new subcommand is a private function ``def _name(args) -> int | None`` decorated with ``@command(arg(...), ...)``:
it becomes ``xtomo name`` (``_fetch_data`` is ``xtomo fetch-data``), its docstring's first line its help. The handlers
stay private so that they never shadow the library's functions of the same name (``xtomo.simulate``,
``learning.train.train``, ...). Errors the library raises for bad input end as one ``xtomo: error:`` line.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable

import xtomo._checks as checks
from xtomo import __version__
from xtomo._options import box as _box
from xtomo._options import mm as _mm
from xtomo._options import tube as _tube
from xtomo._options import view as _view
from xtomo.files import writable_target
from xtomo.profiles import OBJECTIVES, PIPELINES, PRECISIONS, PROFILES, TRAIN_OPTIONS, get_profile

__all__ = ["main", "command", "arg"]

_COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int | None], tuple]] = {}


def arg(*flags, **options) -> tuple:
    """One argument of a subcommand, as given to ``ArgumentParser.add_argument``."""
    return flags, options


#: ``--bone`` of the commands that read a CT: where its bone starts (``xtomo.data.io.load_volume``'s ``bone``)
_BONE = arg("--bone", type=float, default=None, metavar="VALUE",
            help="where bone starts, in the CT's own units: for CT numbers the bone window's lower end (default 150 "
                 "HU); for a CT in other units with soft tissue, what is lighter is dropped, e.g. 0.45 for 0.40")
_POLICY = arg("--policy", default="proportional", help="how fusion spreads the x-ray's correction along each ray: "
              "first, even, proportional or scaled (default: the paper's proportional; even: crisper iso-surfaces)")


def command(*arguments: tuple):
    """Register the decorated function as the subcommand of its name, without the leading ``_``
    (other ``_`` become ``-``)."""
    def register(function):
        _COMMANDS[function.__name__.lstrip("_").replace("_", "-")] = (function, arguments)
        return function
    return register


PROFILE = arg("--profile", default="quick", metavar="P",
              help=f"scale profile: {', '.join(PROFILES)} (default: quick)")
PARAMETER = arg("-p", "--parameter", dest="parameters", action="append", default=[], metavar="KEY=VALUE",
                help="set a parameter of the chapter's parameters cell; repeatable; the value is read with the type "
                     "of the default")


def _key_values(items: list[str]) -> dict[str, str]:
    """``["seed=3"]`` as ``{"seed": "3"}``; typing the values is the chapter's parameters' job."""
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"-p expects KEY=VALUE, got {item!r}")
        pairs[key.strip()] = value
    return pairs


@command(PROFILE, arg("--seed", type=int, default=None, help="override the profile's seed"))
def _simulate(args) -> None:
    """Build the species volumes and the train/validation split; print the counts."""
    from xtomo.data.datasets import simulate_collection
    from xtomo.profiles import get_profile

    overrides = {} if args.seed is None else {"seed": args.seed}
    manifest = simulate_collection(get_profile(args.profile, **overrides), progress=sys.stderr.isatty())
    c, paper = manifest["counts"], manifest["counts"]["paper"]
    rows = [("species", c["species"], paper["species"]),
            ("  training species", c["train_species"], paper["species"] - paper["val_species"]),
            ("  held-out species", c["val_species"], paper["val_species"]),
            ("views per species", c["views"], paper["views"]),
            ("mirrors per view", c["mirrors"], paper["mirrors"]),
            ("samples", c["samples"], paper["samples"]),
            ("  training samples", c["train_samples"], paper["samples"] - paper["val_samples"]),
            ("  validation samples", c["val_samples"], paper["val_samples"])]
    print(f"profile {c['profile']}: volumes {c['volume_size']}^3, x-rays {c['xray_size']}^2")
    print(f"{'':24}{'this profile':>14}{'paper':>10}")
    for name, ours, theirs in rows:
        print(f"{name:24}{ours:>14,}{theirs:>10,}")
    print(f"volumes cached in {manifest['volumes']}")


@command(PROFILE, arg("--resume", action="store_true", help="continue from the last checkpoint"),
         arg("--overwrite", action="store_true", help="replace a checkpoint already in the folder with a new run"),
         arg("--steps", type=int, default=None, help="override the profile's number of steps"),
         arg("--minutes", type=float, default=None, help="stop (with a checkpoint) after this much time"),
         arg("--out", default=None, help="folder for checkpoint.pt and training_log.csv "
                                         "(default: artifacts/<profile>/)"),
         arg("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if present)"),
         arg("--precision", choices=PRECISIONS, default=None,
             help="training arithmetic (default: the profile's); auto: bf16 where the device computes it natively"),
         arg("--objective", choices=OBJECTIVES, default=None,
             help="training loss (default: the profile's); surface: L2 plus a cross-entropy on the iso-surface"),
         arg("--init", default=None, help="start a new run from these weights: 'shipped' (the package's "
                                          "model) or a checkpoint file (fine-tuning)"),
         arg("--blur", type=float, default=None,
             help="blur each training specimen by a Gaussian of random sigma up to this many voxels "
                  "(default: the profile's)"),
         arg("--gain", type=float, default=None,
             help="scale each training specimen's densities by a random factor in [1/GAIN, GAIN] "
                  "(default: the profile's)"),
         arg("--cut", type=float, default=None,
             help="cut half the training specimens from below by a plane removing a random share up to CUT of "
                  "their height, then fit them into the cube again (default: the profile's)"),
         arg("--stretch", type=float, default=None, metavar="F",
             help="scale each training specimen along each of its axes by a random factor in [1/F, F], then "
                  "fit it again (e.g. 1.2; 1: none)"),
         arg("--pose", type=float, default=None, metavar="DEG",
             help="turn half the training specimens by a random pitch, roll and yaw, each up to DEG degrees, "
                  "as a head lies tilted in a scanner (default: the profile's, 0)"),
         arg("--individuals", type=int, default=None, metavar="N",
             help="train on N individuals of each training species (sex, size, proportions jittered by 3 %%; "
                  "default: the profile's, 1 as in the paper); held-out species keep one"),
         arg("--ct", action="append", default=[], metavar="CT",
             help="a skull CT to train on beside the crania (repeatable): a file or folder `xtomo evaluate` reads, "
                  "or a fetched real head (head, second-head, phantom-head; 'third head', held out of the shipped "
                  "model); made a dry skull, set upright, stretched and turned"),
         arg("--ct-share", type=float, default=0.25, metavar="S", help="share of the samples from --ct (default 0.25)"),
         arg("--ema", type=float, default=None, metavar="DECAY",
             help="keep a moving average of the weights (decay per step, e.g. 0.999; 0: none), then validate and "
                  "export it (default: the profile's)"),
         arg("--physical", type=float, default=None, metavar="SHARE", help="re-take this share of the training x-rays "
             "by physical acquisitions drawn at random: spectrum, scatter, noise, blur, 8-bit gamma (default: 0)"),
         arg("--pipeline", choices=PIPELINES, default="auto",
             help="where the batches are made: device (on the training device, all specimens held there), "
                  "loader (a DataLoader's CPU workers), auto (device on a GPU, loader on a CPU); same samples"))
def _train(args) -> None:
    """Train the network of a profile; torchrun-compatible (torchrun --nproc-per-node N -m xtomo train)."""
    from xtomo.learning.train import train as run

    overrides = {k: v for k in TRAIN_OPTIONS if (v := getattr(args, k)) is not None}
    profile = get_profile(args.profile, **overrides)
    summary = run(profile, resume=args.resume, steps=args.steps, minutes=args.minutes,
                  out_dir=args.out, device=args.device, progress=sys.stderr.isatty(), pipeline=args.pipeline,
                  init=args.init, overwrite=args.overwrite, real=args.ct, real_share=args.ct_share)
    if summary["world_size"] == 1 or int(os.environ.get("RANK", "0")) == 0:
        print(f"step {summary['step']}/{summary['total_steps']}: validation L2 {summary['val_l2']:.5f} "
              f"(mean-volume baseline {summary['baseline_l2']:.5f}); checkpoint {summary['checkpoint']}")


@command(arg("checkpoint", help="a checkpoint written by `xtomo train` (e.g. artifacts/pretrained/checkpoint.pt)"),
         arg("--name", default=None, help="the shipped model's name (default: quick)"),
         arg("--folder", default=None, help="where to write it (default: the package's xtomo/learning/pretrained/)"),
         arg("--command", default=None, help="how the checkpoint was trained, for the manifest "
                                              "(default: the xtomo train command of its profile)"))
def _export_model(args) -> None:
    """Store a trained network as the package's shipped model: float16 weights and a manifest."""
    from xtomo.learning import shipped

    info = shipped.export(args.checkpoint, name=args.name, folder=args.folder, command=args.command)
    weights, manifest = shipped.paths(info["name"], args.folder)
    print(f"{weights} ({info['bytes'] / 2**20:.2f} MiB, sha256 {info['sha256'][:12]}…) and {manifest}: "
          f"step {info['step']}, {info['samples_seen']:,} samples seen, validation L2 {info['val_l2']:.5f}")


@command(arg("xray", help="x-ray image: PNG (8/16-bit), TIFF, JPEG or DICOM radiograph"),
         arg("--checkpoint", default=None,
             help="a checkpoint written by `xtomo train` (default: the model shipped with the package)"),
         arg("--out", required=True, help="volume file to write: .nii or .nii.gz (streamed), or .npz"),
         arg("--no-fusion", action="store_true",
             help="keep the network's coarse volume instead of fusing it with the full-resolution x-ray"),
         arg("--single-pass", action="store_true",
             help="run the network once, without averaging in its answer to the mirrored x-ray"),
         arg("--symmetry", default=None, choices=("lateral", "frontal", "estimate"),
             help="make the answer bilaterally symmetric about the skull's mid-sagittal plane: that of a "
                  "lateral or frontal view, or the plane it finds itself (default: as the network answers)"),
         arg("--level", action="store_true",
             help="with --symmetry lateral or frontal: first turn the x-ray in its plane by up to 20 degrees, as "
                  "far as makes the answer most symmetric (a head that nods in its x-ray)"),
         _POLICY,
         arg("--gamma", type=float, default=None, help="undo this display gamma of the image (e.g. 2.2)"),
         arg("--crop", default=None, metavar="TOP,LEFT,SIDE",
             help="reconstruct only this square of the image, in pixels"),
         arg("--air", type=float, default=None, metavar="Q",
             help="a real radiograph: take the fraction Q of least opaque pixels as air and make "
                  "them empty, and fade out the corners outside the inscribed disc (e.g. 0.01)"),
         arg("--tube", default=None, metavar="KVP[,MM]", help="a real radiograph's tube voltage and aluminium filter "
             "(default 2.5 mm): undo the beam hardening in its bone before reconstructing (e.g. 70)"),
         arg("--fit", action="store_true",
             help="crop or pad the image around the specimen so that it is as large as in the training "
                  "x-rays (inference.FRAMING of the side); a real radiograph needs --air first"),
         arg("--preview", default=None, metavar="PNG",
             help="also write a preview: the x-ray and iso-surfaces from three views"),
         arg("--pixel-size", default=None, metavar="MM[,MM]",
             help="the x-ray's pixel size in mm (rows,columns if they differ); default: the file's "
                  "(DICOM), else a field of view of 250 mm"),
         arg("--fov", type=float, default=None, metavar="MM",
             help="the x-ray's field of view in mm along its longer side (instead of --pixel-size)"),
         arg("--frame", type=int, default=None, metavar="N",
             help="the frame of a multi-frame DICOM file to reconstruct from (0-based)"),
         arg("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)"))
def _reconstruct(args) -> None:
    """Reconstruct a view-aligned density volume from one x-ray (fused to its full resolution)."""
    import numpy as np

    from xtomo import geometry
    from xtomo.data import io
    from xtomo.imaging import fusion, microct
    from xtomo.imaging import render as rendering
    from xtomo.learning import shipped
    from xtomo.learning.inference import framing_note, prepare_radiograph, square, to_network_input
    from xtomo.learning.inference import reconstruct as infer
    from xtomo.learning.train import load_checkpoint, model_from_checkpoint

    _answer_options(args, ("lateral", "frontal"))
    box = None if args.crop is None else _box(args.crop)
    writable_target(args.out, (".nii", ".nii.gz", ".npz"), "--out")  # before the work, not after it
    if args.preview is not None:
        writable_target(args.preview, (".png",), "--preview")
    ck = shipped.checkpoint() if args.checkpoint is None else load_checkpoint(args.checkpoint)
    chi = ck["profile"]["chi"]
    model = model_from_checkpoint(ck).to(checks.device(args.device))  # fusion stays on the CPU
    alpha = io.load_xray(args.xray, gamma=args.gamma, frame=args.frame)
    pixel_mm, said_by = io.xray_pixel_size(args.xray, tuple(alpha.shape), fov=args.fov,
                                           pixel_size=None if args.pixel_size is None else _mm(args.pixel_size))
    if box is not None or args.air is not None or args.fit:
        alpha = prepare_radiograph(alpha, box=box, air=args.air, vignette=args.air is not None, fit=args.fit)
    if args.tube is not None:
        from xtomo.learning.acquisition import reading_tube

        alpha = microct.unharden(alpha, reading_tube(chi, *_tube(args.tube)))
    if not args.fit and (note := framing_note(alpha)):
        print(note, file=sys.stderr)
    mirror = not args.single_pass
    coarse = infer(alpha, model, fuse=False, mirror=mirror, symmetry=args.symmetry, level=args.level)
    preview = None
    if args.preview is not None:   # made first, so a failure costs no volume; fused at no more than 256^2
        small = to_network_input(alpha, min(256, max(alpha.shape[-2:])))[0, 0]
        shown = coarse if args.no_fusion else fusion.fuse_upsampled(coarse, small, chi=chi, policy=args.policy)
        preview = rendering.preview(shown, small)
    full = square(alpha)[0, 0]
    shape = tuple(coarse.shape) if args.no_fusion else (coarse.shape[0], *full.shape)
    affine = geometry.reconstruction_affine(shape, tuple(alpha.shape), pixel_mm)
    if args.no_fusion:
        io.save_volume(coarse, args.out, affine=affine)
    elif args.out.lower().endswith((".nii", ".nii.gz")):  # streamed: memory stays bounded
        fusion.fuse_to_file(coarse, full, args.out, chi=chi, policy=args.policy,
                            progress=sys.stderr.isatty(), affine=affine)
    else:
        io.save_volume(fusion.fuse_upsampled(coarse, full, chi=chi, policy=args.policy), args.out, affine=affine)
    extent = np.abs(np.diag(affine)[:3]) * shape[::-1]
    print(f"{args.out}: volume {shape} (depth first, front to back along the ray), "
          f"{extent[0]:.1f} x {extent[1]:.1f} x {extent[2]:.1f} mm (pixel size from {said_by})")
    if preview is not None:
        print(rendering.save_png(preview, args.preview))


def _answer_options(args, known: tuple[str, ...]) -> None:
    """Refuse, before any work, a ``--policy`` that fusion does not know and ``--level`` without a ``known`` view."""
    from xtomo.imaging import fusion

    if args.policy not in fusion.POLICIES:
        raise ValueError(f"unknown fusion policy {args.policy!r}; choose one of {sorted(fusion.POLICIES)}")
    if args.level and args.symmetry not in known:
        raise ValueError("--level turns the x-ray to make the answer most symmetric about a known view's plane: "
                         f"give --symmetry {' or '.join(known)}")


@command(arg("volume", help="a CT of a skull: NIfTI, MetaImage, NRRD, DICOM, TIFF stack, npy/npz or slice video"),
         arg("--checkpoint", default=None,
             help="a checkpoint written by `xtomo train` (default: the model shipped with the package)"),
         arg("--views", type=int, default=8, help="seeded view directions to x-ray it from (default 8)"),
         _BONE,
         arg("--as-scanned", action="store_true", help="keep the skull as it lies in its scan (default: turned "
             "upright and facing as the training skulls, xtomo.data.pose, as the paper aligned its specimens)"),
         arg("--seed", type=int, default=0, help="seed of the view directions and of the physical x-rays' noise"),
         arg("--acquisition", default="both", choices=("ideal", "physical", "both"),
             help="Beer-Lambert x-rays, chapter 8's physical ones (spectrum, scatter, noise, blur, 8-bit "
                  "gamma), or both (default)"),
         arg("--symmetry", default=None, choices=("view", "estimate"),
             help="make our answers bilaterally symmetric about the mid-sagittal plane of each view's known "
                  "direction, or about the plane each answer finds itself (default: as the network answers)"),
         arg("--level", action="store_true",
             help="with --symmetry view: first turn each x-ray in its plane by up to 20 degrees, as far as makes "
                  "the answer most symmetric (a head that nods in its x-ray)"),
         _POLICY,
         arg("--csv", default=None, metavar="CSV", help="also write every view's scores of every method"),
         arg("--figure", default=None, metavar="PNG",
             help="also write the first two views: x-ray, then ours, the even spread and the CT as "
                  "iso-surfaces from the x-ray's view and a novel one"),
         arg("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)"))
def _evaluate(args) -> None:
    """Score a network on x-rays of a skull CT against the CT, beside the even spread along each ray."""
    from xtomo.data import io, pose
    from xtomo.evaluation import realcase, scoring
    from xtomo.files import write_csv
    from xtomo.learning import shipped
    from xtomo.learning.train import checkpoint_profile, load_checkpoint, model_from_checkpoint

    views = checks.integer(args.views, "--views", minimum=1, what="xtomo evaluate")
    _answer_options(args, ("view",))
    for target, suffixes, flag in ((args.csv, (".csv",), "--csv"), (args.figure, (".png",), "--figure")):
        if target is not None:
            writable_target(target, suffixes, flag)  # before the work, not after it
    ck = shipped.checkpoint() if args.checkpoint is None else load_checkpoint(args.checkpoint)
    p = checkpoint_profile(ck)
    model = model_from_checkpoint(ck).to(checks.device(args.device))
    volume, affine, found = io.load_volume_pose(args.volume, size=p.volume_size, bone=args.bone,
                                                upright=not args.as_scanned)
    if found is not None and found.sure:
        print(f"{args.volume}: {found.told(pose.affine_turn(affine))}; --as-scanned keeps it as it lies")
    acquisitions = realcase.ACQUISITIONS if args.acquisition == "both" else (args.acquisition,)
    rows, shown = [], None
    for acquisition in acquisitions:
        found, seen = realcase.evaluate_volume(volume, model, p, views=views, seed=args.seed, name=args.volume,
                                               show=2 if shown is None else 0, acquisition=acquisition,
                                               symmetry=args.symmetry, level=args.level, policy=args.policy)
        rows += found
        shown = shown or seen
    print(f"{args.volume}: {views} views at {p.xray_size}^2 -> {p.volume_size}^3; "
          f"ours over the even spread (below 1: ours is closer to the CT)")
    print(realcase.ratio_table(realcase.against_even(rows)))
    if args.csv is not None:
        print(write_csv(args.csv, rows, list(dict.fromkeys(key for row in rows for key in row))))
    if args.figure is not None:
        from xtomo.viz import figures

        columns = scoring.grid_columns(shown, {"even spread": shown["extrude"], "CT": shown["truth"]})
        _save_figure(figures.method_grid(shown["xrays"], columns, pixels=128), args.figure)


def _save_figure(fig, path: str) -> None:
    """Write a matplotlib figure as a PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    from xtomo.files import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    print(path)


@command(arg("volume", help="volume file: .npy, .npz, NIfTI, MetaImage, NRRD, DICOM, TIFF stack or slice video"),
         arg("--mode", required=True, choices=["xray", "iso", "dvr", "mip", "anaglyph"],
             help="x-ray (opacity, bone bright), shaded iso-surface, direct volume rendering, "
                  "maximum intensity projection or red-cyan anaglyph"),
         arg("--view", default="30,20", metavar="AZ,EL",
             help="view azimuth and elevation in degrees (default: 30,20; --view=-30,20 for a "
                  "negative azimuth)"),
         arg("--size", type=int, default=256, metavar="N", help="image side in pixels, 2 to 8192 (default: 256)"),
         arg("--volume-size", type=int, default=128, metavar="V",
             help="resample the volume to V^3 voxels first, V from 2 to 1024 (default: 128); V x N x N "
                  "is at most XTOMO_MAX_VOXELS (default 2^30)"),
         arg("--level", type=float, default=0.1, help="iso level for iso and anaglyph (default: 0.1)"),
         _BONE,
         arg("--upright", action="store_true", help="set the skull upright and facing as the training skulls "
             "first (xtomo.data.pose; xtomo evaluate does by default): an x-ray for xtomo reconstruct"),
         arg("--transfer", default="bone", metavar="NAME",
             help="transfer function for dvr: bone, skin-bone, rainbow (default: bone)"),
         arg("--out", required=True, metavar="PNG", help="image file to write (.png)"),
         arg("--bits", type=int, choices=(8, 16), default=8,
             help="bits per pixel of the PNG: 16 for --mode xray (opacity, as load_xray reads it; default: 8)"),
         arg("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)"))
def _render(args) -> None:
    """Render a volume from a view as a PNG: x-ray, iso-surface, DVR, MIP or anaglyph."""
    from xtomo.data import io
    from xtomo.data.formats import MAX_VOXELS_VARIABLE, max_voxels
    from xtomo.imaging import render as rendering
    from xtomo.imaging import xray

    az, el = _view(args.view)
    if not (2 <= args.size <= io.MAX_XRAY_SIZE and 2 <= args.volume_size <= io.MAX_VOLUME_SIZE):
        raise ValueError(f"--size must be 2 to {io.MAX_XRAY_SIZE} and --volume-size 2 to {io.MAX_VOLUME_SIZE}, "
                         f"got {args.size} and {args.volume_size}")
    samples = args.volume_size * args.size ** 2   # the camera-frame volume every mode renders through
    if samples > max_voxels():
        raise ValueError(f"--size {args.size} with --volume-size {args.volume_size} renders through {samples:,} "
                         f"samples, more than the {max_voxels():,} allowed ({MAX_VOXELS_VARIABLE}); lower either")
    writable_target(args.out, (".png",), "--out")
    if args.bits == 16 and args.mode != "xray":
        raise ValueError(f"--bits 16 is for --mode xray; --mode {args.mode} writes an 8-bit PNG")
    if args.mode == "dvr" and args.transfer not in rendering.TRANSFERS:
        raise ValueError(f"unknown --transfer {args.transfer!r}; choose one of {sorted(rendering.TRANSFERS)}")
    device = checks.device(args.device)
    volume = io.load_volume(args.volume, size=args.volume_size, bone=args.bone, upright=args.upright).to(device)
    picture = rendering.image(volume, args.mode, xray.direction(az, el).to(device), size=args.size,
                              level=args.level, transfer=args.transfer).cpu()
    if args.mode == "xray" and args.bits == 16:   # picture is the opacity 1 - alpha
        print(io.save_xray(1 - picture, args.out, bits=16))
    else:
        print(rendering.save_png(picture, args.out))


@command(arg("volume", help="volume file: .npy, .npz, NIfTI, MetaImage, NRRD, DICOM, TIFF stack or slice video"),
         arg("--level", type=float, required=True, help="the iso-level, a density in [0, 1] (e.g. 0.1)"),
         arg("--out", required=True, metavar="MESH", help="mesh file to write: .stl or .ply"),
         arg("--volume-size", type=int, default=128, metavar="V",
             help="resample the volume to V^3 voxels first, keeping its extent (default: 128)"))
def _mesh(args) -> None:
    """Write the iso-surface of a volume at a level as a closed STL or PLY mesh, in millimetres."""
    from pathlib import Path

    import numpy as np

    from xtomo.data import io, meshes
    from xtomo.data.formats import file_suffix

    if file_suffix(Path(args.out)) not in meshes.MESH_FORMATS:
        raise ValueError(f"--out must name a .stl or .ply file, got {args.out!r}")
    volume, affine = io.load_volume_affine(args.volume, size=args.volume_size, fit=False)
    vertices, faces = meshes.iso_mesh(volume, args.level, affine)
    extent = vertices.max(axis=0) - vertices.min(axis=0)
    meshes.save_mesh(vertices, faces, args.out)
    print(f"{args.out}: {len(faces):,} triangles, {len(vertices):,} vertices, "
          f"{' x '.join(f'{v:.1f}' for v in extent)} mm ({np.abs(np.diag(affine)[:3]).mean():.3g} mm voxels)")


@command()
def _fetch_data(args) -> int | None:
    """Fetch the real CT volume and radiographs used by the tests and chapters (data/real/)."""
    from xtomo.data.realdata import data_dir, fetch

    missing = fetch()
    if missing:  # files already there count as fetched: offline, this passes once they all are
        return _error(RuntimeError(f"could not fetch {', '.join(missing)} into {data_dir()} (the package "
                                   "registry is unreachable, or see the messages above)"), 1)
    print(data_dir())


@command(arg("chapter", help="chapter number (1, 01), name (01_data_simulation) or notebook path"),
         PROFILE, PARAMETER)
def _run(args) -> None:
    """Execute one chapter with papermill into _build/<profile>/notebooks/."""
    from xtomo.publish.chapters import run_chapter

    path = run_chapter(args.chapter, args.profile, _key_values(args.parameters),
                       progress_bar=sys.stderr.isatty())
    print(path)


@command(PROFILE, arg("--force", action="store_true",
                     help="rerun every chapter and rebuild the HTML, changed or not (default: only what changed)"))
def _book(args) -> None:
    """Execute the chapters that changed (or read one that did), then build the HTML book into _build/html/."""
    from xtomo.publish.website import build_book

    # one line as each chapter starts and ends, at once, also into a log file (make book > log 2>&1)
    report = lambda line: print(line, file=sys.stderr, flush=True)
    print(build_book(args.profile, progress_bar=sys.stderr.isatty(), force=args.force, report=report))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xtomo", description="Single-image tomography: the library's command line and the book.")
    parser.add_argument("--version", action="version", version=f"xtomo {__version__}")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (function, arguments) in _COMMANDS.items():
        summary = (function.__doc__ or "").strip().splitlines()[0]
        sub = subcommands.add_parser(name, help=summary, description=summary)
        for flags, options in arguments:
            sub.add_argument(*flags, **options)
        sub.set_defaults(function=function)
    return parser


def _error(error: Exception, status: int) -> int:
    print("xtomo: error: " + " ".join(str(error).split()), file=sys.stderr)
    return status


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """The library's own warnings as one ``xtomo: warning:`` line; others as Python shows them."""
    if "xtomo" in str(filename):
        print(f"xtomo: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the subcommand; exit status 2 for bad input, 1 for a failed chapter/book or
    a failure of the system (a full disk, a permission refused), each in one ``xtomo: error:`` line."""
    from xtomo.publish.chapters import BookError

    args = _parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.function(args) or 0
    except (ValueError, FileNotFoundError) as error:
        return _error(error, 2)
    except BookError as error:
        return _error(error, 1)
    except OSError as error:  # the disk, not the input: full, read-only, permission refused
        where = next((str(f) for f in (error.filename, error.filename2) if f is not None), "")
        return _error(f"{where}: {error.strerror}" if where and error.strerror else error, 1)
    except KeyboardInterrupt:
        print("xtomo: interrupted", file=sys.stderr)
        return 130
