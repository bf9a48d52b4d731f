"""Reading and writing volumes and x-rays in the project's conventions (``formats`` reads the files).

A volume is a float32 tensor ``[D, H, W]`` of linear density in [0, 1], index order (z, y, x),
filling the unit cube, with the specimen inside the cube's inscribed sphere. An x-ray is the
transparency alpha ``[H, W]`` in [0, 1]; image files hold the opacity ``1 - alpha`` (bone bright).
Bad input raises ``ValueError`` (``FileNotFoundError`` for a missing path) naming the file and
the problem; nothing is clipped silently.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy import ndimage

import xtomo._checks as checks
from xtomo import geometry
from xtomo.data.formats import (
    RawVolume,
    dtype_full_scale,
    file_suffix,
    radiograph_pixel_size,
    read_radiograph,
    read_volume,
)
from xtomo.data.patient import patient_bone, soft_tissue, stored_offset
from xtomo.files import atomic_path

if TYPE_CHECKING:  # pose reads augment, which reads this module
    from xtomo.data.pose import Pose

__all__ = ["HU_WINDOW", "FIT_RADIUS", "MAX_VOLUME_SIZE", "MAX_XRAY_SIZE", "load_volume", "load_volume_affine",
           "load_volume_pose", "prepare_volume", "framing", "dry_skull", "save_volume", "load_xray", "xray_pixel_size",
           "save_xray"]

HU_WINDOW = (150.0, 2000.0)
"""Default CT window (lo, hi) in HU: the dry skull of a CT. Voxels below ``lo`` (air, fat, soft
tissue, brain) become 0; the rest keep their attenuation relative to air, scaled so that ``hi`` is
1: density = (HU + 1000) / (hi + 1000), limited to [0, 1].

Attenuation relative to water is mu / mu_water = 1 + HU / 1000: air -1000 HU (mu = 0), fat and soft
tissue -100..100 HU (mu ~ 0.9..1.1), trabecular bone ~300..800, cortical bone ~1000..2000 (mu ~ 2..3).
The paper's specimens were dry crania x-rayed in air, and the network learns from such: each bone
voxel darkens the x-ray by its whole attenuation, so bone keeps mu itself (not mu less a soft-tissue
level, which would make thin and trabecular bone all but vanish) and everything lighter than bone
goes, as it had in a dry skull; islands of bone under 64 voxels (and under 1 % of the bone: noise,
calcifications) go too, so that a speck cannot move the fit, and so does bone-dense matter outside the
patient's body, the table and head holder of a clinical CT (``xtomo.data.patient``). A window from -1000
keeps every tissue.
"""

FIT_RADIUS = 0.42
"""Radius, in unit-cube lengths, of the sphere that ``fit`` scales the specimen into. Measured as this
module measures a CT, the procedural skulls the network learned from fill about 0.40 (their nominal
``xtomo.specimens.sdf.FIT_RADIUS`` of 0.46 is found on a coarse grid that over-reaches); of the radii
``benchmarks/fit_radius.py`` tries, 0.40 to 0.42 frame held-out procedural species, new procedural
humans and the second real head (blind to the generator) best, and 0.42 costs the first real head least."""

MAX_VOLUME_SIZE = 1024
"""The largest cube side ``load_volume``/``prepare_volume`` resample to (1024 cubed float32 is 4 GiB)."""

MAX_XRAY_SIZE = 8192
"""The largest side ``load_xray(size=...)`` resizes to."""

_HU_DETECT = -500.0  # data whose minimum lies below this are taken to be CT numbers


# ---------------------------------------------------------------------------------------------
# volumes

def load_volume(path, size: int = 128, *, hu_window=None, fit: bool = True, threshold=None,
                spacing=None, bone=None, upright: bool = False) -> torch.Tensor:
    """Read a volume file and resample it to a ``[size, size, size]`` density cube.

    Formats: ``.npy``, ``.npz`` (key ``volume``, or its single array; optional ``spacing`` and
    ``affine``), NIfTI ``.nii``/``.nii.gz``, MetaImage ``.mha`` (data inline) and ``.mhd`` (data in
    one file, a ``LIST`` or a ``%d`` pattern of files beside it), NRRD ``.nrrd`` (data attached)
    and ``.nhdr`` (detached), DICOM (a directory of slices, a DICOMDIR, or one multi-frame file;
    named ``*.dcm`` or anyhow, recognised by the DICOM preamble), TIFF (a multi-page
    ``.tif``/``.tiff`` or a directory of single-page slices) and slice videos
    (``.mp4 .avi .mov .mkv``: each frame a z-slice, RGB folded to grey, 8-bit values read as
    linear density / 255 as the paper did for its UTCT slice videos). MetaImage and NRRD: one
    channel, 3-D, 8- to 64-bit integers or floats of either byte order, raw or deflated
    (``CompressedData = True``; ``encoding: gzip``), placed by ``ElementSpacing``, ``Offset`` and
    ``TransformMatrix`` (LPS, as ITK writes them) or by ``space``, ``space directions`` (else
    ``spacings``) and ``space origin`` (LPS, RAS or LAS; scanner-xyz and 3D-right-handed are taken
    as RAS); lengths are read as mm.

    NIfTI, MetaImage, NRRD and DICOM are put in nibabel's closest canonical RAS+ orientation and
    stored (z, y, x) = (S, A, R): x grows to the patient's Right, y to Anterior, z to Superior; one
    volume saved in any of them loads as the same cube with the same affine. Other formats keep
    their array order. ``spacing`` (z, y, x) overrides the voxel size read from the file (npy,
    TIFF and videos carry none and default to isotropic). The remaining arguments are those of
    :func:`~xtomo.data.io.prepare_volume`. :func:`~xtomo.data.io.load_volume_affine` also returns
    where the cube lies in the file's world (mm).

    A file whose header claims more voxel bytes than it holds (or, deflated, more than its
    compressed bytes can hold), or more voxels than ``XTOMO_MAX_VOXELS`` (an environment
    variable; default ``2**30``, 1024 cubed), fails before anything of that size is allocated;
    ``size`` is at most :data:`~xtomo.data.io.MAX_VOLUME_SIZE`.
    """
    return load_volume_affine(path, size, hu_window=hu_window, fit=fit, threshold=threshold, spacing=spacing,
                              bone=bone, upright=upright)[0]


def load_volume_affine(path, size: int = 128, *, hu_window=None, fit: bool = True, threshold=None,
                       spacing=None, bone=None, upright: bool = False) -> tuple[torch.Tensor, np.ndarray]:
    """:func:`load_volume`, and the cube's NIfTI affine: from its (x, y, z) voxel indices (the
    array's last, middle, first) to the file's world in mm, RAS for the formats that have one.

    ``save_volume(volume, path, affine=affine)`` writes the cube where it was in the file: read
    with ``fit=False`` at the file's own cubic size, a volume is written back with its affine.
    """
    return load_volume_pose(path, size, hu_window=hu_window, fit=fit, threshold=threshold, spacing=spacing,
                            bone=bone, upright=upright)[:2]


def load_volume_pose(path, size: int = 128, *, hu_window=None, fit: bool = True, threshold=None,
                     spacing=None, bone=None, upright: bool = False) -> tuple[torch.Tensor, np.ndarray, Pose | None]:
    """:func:`load_volume_affine`, and with ``upright`` the ``xtomo.data.pose.Pose`` found in the scan (its
    family, match and margin say how sure the turn is; a margin under ``pose.SURE_MARGIN`` left the volume
    as scanned); None without ``upright``."""
    path = Path(path)
    checks.integer(size, "size", minimum=2, maximum=MAX_VOLUME_SIZE, what=str(path))  # before reading
    raw = read_volume(path)
    if spacing is not None:
        new = np.array(_spacing(spacing, str(path)))
        if raw.affine is not None:  # keep the file's directions and origin, at the new voxel size
            affine = raw.affine.copy()
            affine[:3, :3] *= (new / np.array(raw.spacing))[::-1]
            raw = raw._replace(affine=affine)
        raw = raw._replace(spacing=tuple(new))
    return _prepare(raw, size, hu_window, fit, threshold, str(path), bone, upright)


def prepare_volume(array, size: int = 128, *, spacing=(1.0, 1.0, 1.0), hu_window=None,
                   fit: bool = True, threshold=None, source: str = "array", bone=None,
                   upright: bool = False) -> torch.Tensor:
    """Map an in-memory volume (numpy or torch, (z, y, x)) to a ``[size]*3`` density cube.

    The path every volume takes, so real and procedural volumes are treated alike:

    * Densities: CT numbers (``hu_window`` given, or minimum below -500 HU) become the dry skull of
      the window (see :data:`HU_WINDOW`); otherwise integers are divided by their dtype's maximum, floats
      are kept when within [0, 1] and divided by their maximum when above 1; negative non-CT
      values are an error. ``bone``, in the data's own units, is where bone starts: the window's
      lower end for CT numbers, and for other data the threshold of :func:`dry_skull` (what is
      lighter goes, with islands of under 64 voxels), which a CT with soft tissue but no HU needs.
    * Resampling respects ``spacing`` (physical size per axis, any unit): the output is isotropic
      and the physical shape is kept. Each axis is Gaussian-prefiltered before trilinear sampling,
      with sigma = 0.5 * sqrt(f**2 - 1) input voxels for a downsampling factor f (which tops the
      half-voxel blur already present up to half an output voxel; none when upsampling).
    * ``fit=True``: the specimen (voxels above ``threshold``, default 5% of the maximum density)
      is centred and scaled, equally on all axes, so that all of it lies within radius
      :data:`FIT_RADIUS` of the cube's centre. ``fit=False`` centres the whole field of view,
      its longest side spanning the cube.
    * ``upright=True``: the specimen is also turned about the cube's centre as ``xtomo.data.pose.find``
      finds, upright and facing as the training skulls do (the paper aligned its specimens; a dry skull's
      scan says nothing of how it lay), in the same single resampling; a volume whose pose is unsure
      (``pose.Pose.margin`` under ``pose.SURE_MARGIN``: not a skull, or like none) is kept as scanned, with a warning.

    ``source`` names the data in error messages.
    """
    if torch.is_tensor(array):
        array = array.detach().cpu().numpy()
    return _prepare(RawVolume(np.asarray(array), spacing), size, hu_window, fit, threshold, source, bone,
                    upright)[0]


def _without_specks(bone: np.ndarray, min_island: int) -> np.ndarray:
    """A bone mask less its islands (26-connected) smaller than ``min_island`` voxels: noise, calcifications.
    (A CT read through the HU window drops islands under 64 voxels that are also under 1 % of its bone,
    so a coarse or tiny scan keeps its few voxels.)"""
    if min_island <= 1:
        return bone
    labels, n = ndimage.label(bone, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return bone
    keep = np.bincount(labels.ravel()) >= min_island
    keep[0] = False
    return keep[labels]


def dry_skull(array, threshold: float, *, min_island: int = 64) -> np.ndarray:
    """A head CT as the dry skull the paper's specimens were: every voxel below ``threshold`` (air,
    skin, muscle, brain, marrow) set to 0, and islands of bone smaller than ``min_island`` voxels
    (26-connected: noise, calcifications) removed. Bone keeps its values; the array's own units.

    Then fit it with :func:`prepare_volume` as any other volume.
    """
    data = _as_numpy(array, "array", "dry_skull")
    if data.ndim != 3:
        raise ValueError(f"dry_skull: expected a 3-D volume, got shape {data.shape}")
    threshold = checks.number(threshold, "threshold", what="dry_skull")
    min_island = checks.integer(min_island, "min_island", minimum=1, what="dry_skull")
    bone = data > threshold
    if not bone.any():
        raise ValueError(f"dry_skull: no voxel above the threshold {threshold:g} "
                         f"(values span {float(data.min()):g}..{float(data.max()):g})")
    return np.where(_without_specks(bone, min_island), data, 0).astype(data.dtype, copy=False)


def save_volume(volume, path, spacing=None, *, affine=None) -> Path:
    """Write a volume as NIfTI (``.nii``/``.nii.gz``, float32) or ``.npz`` (keys ``volume``, ``spacing``,
    ``affine``), atomically.

    ``affine`` (4 x 4, from (x, y, z) voxel indices to world mm; e.g. from :func:`~xtomo.data.io.load_volume_affine`
    or ``xtomo.geometry.view_affine``) places it; else ``spacing`` (z, y, x in mm, or one number) centres
    it on 0 with the array's axes as the world's; neither: it fills the cube of side
    ``xtomo.geometry.DEFAULT_FOV_MM``. NIfTI holds the array (x, y, z), x fastest, its qform and sform both
    the affine (code 1, scanner) and its units mm, as nibabel and viewers read them.
    """
    path = Path(path)
    array = _as_numpy(volume, "volume", str(path)).astype(np.float32)
    if array.ndim != 3:
        raise ValueError(f"{path}: expected a 3-D volume [D, H, W] to save, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: the volume to save holds NaN or inf values")
    affine = _affine(array.shape, spacing, affine, str(path))
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        import nibabel as nib
        header = geometry.nifti_header(array.shape, affine)
        image = nib.Nifti1Image(np.ascontiguousarray(array.transpose(2, 1, 0)), None, header)
        with atomic_path(path) as tmp:
            nib.save(image, tmp)
    elif name.endswith(".npz"):
        spacing = tuple(np.sqrt((affine[:3, :3] ** 2).sum(axis=0))[::-1])
        with atomic_path(path) as tmp:
            np.savez_compressed(tmp, volume=array, spacing=np.array(spacing), affine=affine)
    else:
        raise ValueError(f"{path}: cannot save a volume as '{file_suffix(path)}'; use .nii, .nii.gz or .npz")
    return path


def _affine(shape, spacing, affine, source) -> np.ndarray:
    """The affine ``save_volume`` writes: ``affine`` checked, else a centred grid of ``spacing``."""
    if affine is None:
        spacing = np.array(geometry.DEFAULT_FOV_MM) / np.array(shape, float) if spacing is None else spacing
        return geometry.grid_affine(_spacing(spacing, source), shape)
    if spacing is not None:
        raise ValueError(f"{source}: give the volume's spacing or its affine, not both")
    affine = np.asarray(affine, float)
    if affine.shape != (4, 4) or not np.isfinite(affine).all() or not np.allclose(affine[3], [0, 0, 0, 1]) \
            or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise ValueError(f"{source}: affine must be a finite invertible 4 x 4 matrix with last row "
                         f"0, 0, 0, 1, got {affine.tolist()!r}")
    return affine


def _prepare(raw: RawVolume, size, hu_window, fit, threshold, source, bone=None,
             upright=False) -> tuple[torch.Tensor, np.ndarray, Pose | None]:
    """The density cube of a volume as read, its affine and, with ``upright``, its pose (``load_volume_pose``)."""
    size = checks.integer(size, "size", minimum=2, maximum=MAX_VOLUME_SIZE, what=source)
    if upright and not fit:
        raise ValueError(f"{source}: upright needs fit=True: the pose is judged on the specimen centred in the cube")
    array = np.squeeze(raw.array)
    if array.ndim != 3 or min(array.shape) < 2:
        raise ValueError(f"{source}: expected a 3-D volume with every side >= 2 voxels, "
                         f"got shape {tuple(raw.array.shape)}")
    spacing = np.array(_spacing(raw.spacing, source))
    density = _to_density(array, raw.hu, raw.full_scale, hu_window, source, bone, spacing)
    if fit:
        centre, radius = framing(density, spacing, threshold, source)
        side = radius / FIT_RADIUS
    else:
        extent = np.array(array.shape) * spacing
        centre, side = extent / 2, extent.max()
    rotation, found = np.eye(3), None
    if upright:  # judged on a coarse cube, then applied in the one resampling
        from xtomo.data import neck, pose  # here: pose reads augment, which reads this module
        coarse = geometry.resample_cube(density, spacing, centre, side, pose.TEMPLATE_SIZE, rotation)
        found = pose.find(torch.from_numpy(coarse))
        if found.sure:
            rotation = found.rotation.double().numpy()
            headed = neck.without(density, spacing, centre, side, rotation)
            if headed is not density:  # the skull framed again without its neck
                density, found = headed, found._replace(neck=True)
                centre, radius = framing(density, spacing, threshold, source)
                side = radius / FIT_RADIUS
        else:
            warnings.warn(f"{source}: not set upright: no turn of it resembles a skull template clearly more than the "
                          f"others (xtomo.data.pose margin {found.margin:.2f} < {pose.SURE_MARGIN}): it may not be a "
                          "skull, or one unlike every training family; it is read as scanned", stacklevel=3)
    out = geometry.resample_cube(density, spacing, centre, side, size, rotation)
    matrix, offset = geometry.cube_to_array(spacing, centre, side, size, rotation)
    to_array = np.eye(4)
    to_array[:3, :3], to_array[:3, 3] = matrix[::-1, ::-1], offset[::-1]  # (x, y, z) as NIfTI indexes
    affine = (raw.affine if raw.affine is not None else np.diag([*spacing[::-1], 1.0])) @ to_array
    return torch.from_numpy(np.clip(out, 0.0, 1.0, out=out)), affine, found  # clips float rounding only


def _to_density(array: np.ndarray, hu, full_scale, hu_window, source, bone=None, spacing=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Values to linear density in [0, 1] (float32): CT numbers through the window (the patient's bone only,
    ``patient.patient_bone``), others scaled; ``bone`` moves the window's lower end, or makes other data a
    dry skull first."""
    if array.dtype.kind not in "iuf" and array.dtype != bool:
        raise ValueError(f"{source}: expected numbers, got dtype {array.dtype}")
    bad = array.size - np.count_nonzero(np.isfinite(array)) if array.dtype.kind == "f" else 0
    if bad:
        raise ValueError(f"{source}: {bad} NaN or inf values; expected finite densities")
    bone = None if bone is None else checks.number(bone, "bone", what=source)
    lowest = float(array.min())
    own_units = not hu and hu_window is None and lowest >= _HU_DETECT  # nothing says CT numbers (its soft tissue may)
    level = soft_tissue(array) if own_units else None
    offset = stored_offset(array, level) if hu is None and own_units else 0.0
    if offset:
        warnings.warn(f"{source}: read as CT numbers stored with {offset:g} added (nothing below 0, soft tissue near "
                      f"{offset:g}): HU = value - {offset:g}; bone= is then in HU", stacklevel=3)
    if hu_window is not None or hu or offset or (hu is None and lowest < _HU_DETECT):
        lo, hi = map(float, HU_WINDOW if hu_window is None else hu_window)
        lo = lo if bone is None else bone
        if not hi > lo:
            raise ValueError(f"{source}: hu_window must be (lo, hi) with hi > lo, got {hu_window!r}")
        if not hi > -1000:
            raise ValueError(f"{source}: hu_window's top must be above air (-1000 HU), got {hu_window!r}")
        hu_values = array.astype(np.float32) - np.float32(offset)
        bone = patient_bone(hu_values, hu_values >= lo, spacing)  # not the table or head holder
        bone = _without_specks(bone, min(64, int(0.01 * np.count_nonzero(bone))))
        density = np.where(bone, np.clip((hu_values + 1000) / np.float32(hi + 1000), 0.0, 1.0), np.float32(0))
        window = f" after the HU window ({lo:g}, {hi:g}): nothing is denser than {lo:g} HU"
    else:
        density = _unit_range(array if bone is None else dry_skull(array, bone), full_scale, source, "density")
        window = ""
        if level is not None and bone is None:
            warnings.warn(f"{source}: most of its voxels lie near one value, {level:.4g}, below half its densest: "
                          f"soft tissue, which is read as density like bone; for the dry skull give bone= (--bone of "
                          f"xtomo evaluate and render) a value between it and the bone's", stacklevel=3)
    if not density.any():
        raise ValueError(f"{source}: empty volume: all densities are zero{window}")
    if density.min() == density.max():
        raise ValueError(f"{source}: constant volume (every voxel is {density.flat[0]:g}); "
                         f"nothing to see")
    return density


def _unit_range(array: np.ndarray, full_scale, source, what) -> np.ndarray:
    """Values / full scale (integer data: the dtype's max or the format's bit depth); other
    floats kept when within [0, 1], else divided by their max. Returns float32."""
    if array.dtype == bool:
        return array.astype(np.float32)
    lowest = float(array.min())
    if lowest < 0:
        raise ValueError(f"{source}: negative values (min {lowest:g}); expected {what} >= 0"
                         + (f" (CT numbers are recognised below {_HU_DETECT:g} HU or with hu_window=)"
                            if what == "density" else ""))
    full_scale = full_scale or dtype_full_scale(array)
    top = float(array.max())
    if full_scale and top > full_scale:
        raise ValueError(f"{source}: values up to {top:g} exceed the full scale {full_scale:g}")
    array = array.astype(np.float32)
    scale = full_scale or (top if top > 1 else 1.0)
    return array / np.float32(scale) if scale != 1 else array


def framing(density, spacing=(1.0, 1.0, 1.0), threshold: float | None = None,
            source: str = "framing") -> tuple[np.ndarray, float]:
    """Centre (z, y, x) and radius, in the units of ``spacing``, of the sphere that ``prepare_volume``
    fits at :data:`FIT_RADIUS` of the cube's side: it reaches every voxel denser than ``threshold``
    (default: 5 % of the densest), around their bounding box's centre."""
    density = np.asarray(density)
    threshold = 0.05 * float(density.max()) if threshold is None else float(threshold)
    mask = density > threshold
    if not mask.any():
        raise ValueError(f"{source}: empty volume: no voxel above the threshold {threshold:g} "
                         f"(maximum density {density.max():g})")
    return geometry.enclosing_ball(mask, spacing)


# ---------------------------------------------------------------------------------------------
# x-rays

def load_xray(path, gamma=None, *, size=None, frame: int | None = None) -> torch.Tensor:
    """Read a radiograph as transparency alpha ``[H, W]`` float32 in [0, 1].

    Formats: PNG (8/16 bit), JPEG, TIFF, DICOM. Files hold opacity with bone bright, so
    alpha = 1 - v for the file's value v scaled to [0, 1] (integers by their full scale; DICOM by
    its Bits Stored after the modality LUT/rescale and VOI LUT/window, MONOCHROME1 inverted so
    that bone is bright). RGB(A) folds to grey by Rec. 709 luminance, dropping alpha.

    The full scale of integers is the largest value of the bits the file says it uses: a PNG's
    ``sBIT`` chunk (12-bit values stored as they are in a 16-bit PNG: 4095; values scaled up to
    16 bits as the PNG specification asks, seen as values above 4095 or low bits all zero:
    65535), a TIFF's BitsPerSample, or its SMaxSampleValue/MaxSampleValue where that is
    ``2**k - 1`` (SMinSampleValue is not used). Where the file does not say, the container's:
    255 for 8-bit, 65535 for 16-bit images, so 12-bit data in a 16-bit file without ``sBIT``
    reads 16 times too transparent (rescale it, or add the chunk).

    ``gamma`` undoes a display gamma: a display value is v = linear ** (1 / gamma), so
    linear = v ** gamma (e.g. gamma=2.2 for sRGB-like images); None leaves values as they are.
    ``size`` (at most :data:`~xtomo.data.io.MAX_XRAY_SIZE`) resizes, anti-aliased, to ``size x size``;
    a non-square image is first padded to a square, centred, with background (alpha = 1).
    ``frame`` chooses one frame of a multi-frame DICOM file (which needs it). ``xray_pixel_size``
    says how many mm its pixels span.
    """
    path = Path(path)
    if size is not None:  # before reading
        checks.integer(size, "size", minimum=2, maximum=MAX_XRAY_SIZE, what=str(path))
    image, full_scale = read_radiograph(path, frame)
    bad = image.size - np.count_nonzero(np.isfinite(image)) if image.dtype.kind == "f" else 0
    if bad:
        raise ValueError(f"{path}: {bad} NaN or inf pixels")
    opacity = _unit_range(image, full_scale, str(path), "pixel values")
    if opacity.min() == opacity.max():
        raise ValueError(f"{path}: constant image (every pixel is {opacity.flat[0]:g}); nothing to see")
    if gamma is not None:
        gamma = checks.positive(gamma, "gamma", str(path))  # inf would make every pixel air
        opacity = opacity ** np.float32(gamma)
    alpha = 1.0 - opacity
    if size is not None:
        alpha = _resize_square(alpha, size, str(path))
    return torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float32))


def save_xray(alpha, path, bits: int = 8) -> Path:
    """Write an x-ray as opacity ``1 - alpha`` in an 8- or 16-bit greyscale PNG, atomically."""
    path = Path(path)
    alpha = _as_numpy(alpha, "x-ray", str(path)).astype(np.float64)
    if alpha.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D x-ray [H, W] to save, got shape {alpha.shape}")
    if not np.isfinite(alpha).all() or alpha.min() < 0 or alpha.max() > 1:
        raise ValueError(f"{path}: alpha must be finite and within [0, 1], "
                         f"got range [{np.nanmin(alpha):g}, {np.nanmax(alpha):g}]")
    if bits not in (8, 16):
        raise ValueError(f"{path}: bits must be 8 or 16, got {bits!r}")
    if file_suffix(path) != ".png":
        raise ValueError(f"{path}: x-rays are saved as .png, got '{file_suffix(path)}'")
    import imageio.v3 as iio
    top = 2 ** bits - 1
    values = np.rint((1.0 - alpha) * top).astype(np.uint8 if bits == 8 else np.uint16)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, values, extension=".png")
    return path


def xray_pixel_size(path: str | os.PathLike | None, shape: tuple[int, int], *, pixel_size=None,
                    fov: float | None = None) -> tuple[tuple[float, float], str]:
    """The (row, column) pixel size in mm of the x-ray in ``path`` (``shape`` = (H, W) pixels), and
    where it came from.

    ``pixel_size`` (one number or (row, column)) or ``fov`` (mm spanned by the longer side) win;
    else the file's own (DICOM: PixelSpacing, or ImagerPixelSpacing over the magnification); else
    ``geometry.DEFAULT_FOV_MM`` over the longer side. The source is ``"--pixel-size"``, ``"--fov"``, the
    DICOM attribute, or ``"default"``.
    """
    if pixel_size is not None and fov is not None:
        raise ValueError("give the x-ray's pixel size or its field of view, not both")
    side = max(shape)
    if pixel_size is not None:
        values = np.broadcast_to(np.asarray(pixel_size, float), (2,))
        if not (np.isfinite(values).all() and (values > 0).all()):
            raise ValueError(f"pixel size must be one or two positive numbers in mm, got {pixel_size!r}")
        return (float(values[0]), float(values[1])), "--pixel-size"
    if fov is not None:
        fov = checks.positive(fov, "field of view (mm)", what="x-ray")
        return (fov / side, fov / side), "--fov"
    if path is not None:
        found = radiograph_pixel_size(path)
        if found is not None:
            return found
    return (geometry.DEFAULT_FOV_MM / side, geometry.DEFAULT_FOV_MM / side), "default"


def _resize_square(alpha: np.ndarray, size, source) -> np.ndarray:
    """Pad to a centred square with background (alpha = 1), then resize anti-aliased."""
    size = checks.integer(size, "size", minimum=2, maximum=MAX_XRAY_SIZE, what=source)
    from skimage.transform import resize
    h, w = alpha.shape
    n = max(h, w)
    alpha = np.pad(alpha, (((n - h) // 2, n - h - (n - h) // 2), ((n - w) // 2, n - w - (n - w) // 2)),
                   constant_values=1.0)
    out = resize(alpha, (size, size), order=1, anti_aliasing=size < n, mode="edge")
    return np.clip(out, 0.0, 1.0)  # clips float rounding only


# ---------------------------------------------------------------------------------------------
# shared helpers

def _spacing(spacing, source) -> tuple:
    try:
        values = np.broadcast_to(np.asarray(spacing, float), (3,))
    except (TypeError, ValueError):
        values = np.array([np.nan])
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise ValueError(f"{source}: spacing must be 3 positive numbers (z, y, x), got {spacing!r}")
    return tuple(float(v) for v in values)


def _as_numpy(data, what: str, source: str) -> np.ndarray:
    if torch.is_tensor(data):
        data = data.detach().cpu().numpy()
    data = np.asarray(data)
    if data.dtype.kind not in "iuf":
        raise ValueError(f"{source}: expected a numeric {what}, got dtype {data.dtype}")
    return data
