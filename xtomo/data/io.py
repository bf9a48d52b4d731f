"""Reading and writing volumes and x-rays in the project's conventions.

A volume is a float32 tensor ``[D, H, W]`` of linear density in [0, 1], index order (z, y, x),
filling the unit cube, with the specimen inside the cube's inscribed sphere. An x-ray is the
transparency alpha ``[H, W]`` in [0, 1]; image files hold the opacity ``1 - alpha`` (bone bright).
Bad input raises ``ValueError`` (``FileNotFoundError`` for a missing path) naming the file and
the problem; nothing is clipped silently.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage

from xtomo.files import atomic_path

__all__ = ["HU_WINDOW", "FIT_RADIUS", "load_volume", "prepare_volume", "save_volume",
           "load_xray", "save_xray"]

HU_WINDOW = (150.0, 2000.0)
"""Default CT window (lo, hi) in HU: density = (HU - lo) / (hi - lo), limited to [0, 1].

Attenuation relative to water is mu / mu_water = 1 + HU / 1000: air -1000 HU (mu = 0), fat and
soft tissue -100..100 HU (mu ~ 0.9..1.1), trabecular bone ~300..800, cortical bone ~1000..2000
(mu ~ 2..3). The paper's volumes are bone-dominated crania, so the window starts above soft
tissue (soft tissue and air map to 0) and ends at dense cortical bone (1). Within the window
density is linear in mu: density = (1000 * mu / mu_water - 1000 - lo) / (hi - lo).
"""

FIT_RADIUS = 0.48
"""Radius, in unit-cube lengths, of the sphere that ``fit`` scales the specimen into (margin 0.02)."""

_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # Rec. 709 luminance; the weights sum to 1
_HU_DETECT = -500.0  # data whose minimum lies below this are taken to be CT numbers
_VIDEO = (".mp4", ".avi", ".mov", ".mkv")
_TIFF = (".tif", ".tiff")


class _Invalid(ValueError):
    """A problem this module found itself, already worded with the file's name."""


class _Raw(NamedTuple):
    """A volume as read: values, spacing (z, y, x) in mm, CT-ness (None: detect), integer full scale."""
    array: np.ndarray
    spacing: tuple = (1.0, 1.0, 1.0)
    hu: bool | None = None
    full_scale: float | None = None


# ---------------------------------------------------------------------------------------------
# volumes

def load_volume(path, size: int = 128, *, hu_window=None, fit: bool = True, threshold=None,
                spacing=None) -> torch.Tensor:
    """Read a volume file and resample it to a ``[size, size, size]`` density cube.

    Formats: ``.npy``, ``.npz`` (key ``volume``, or its single array; optional ``spacing``),
    NIfTI ``.nii``/``.nii.gz``, DICOM (a directory of ``.dcm`` slices or one multi-frame
    ``.dcm``), TIFF (a multi-page ``.tif``/``.tiff`` or a directory of single-page slices) and
    slice videos (``.mp4 .avi .mov .mkv``: each frame a z-slice, RGB folded to grey, 8-bit values
    read as linear density / 255 as the paper did for its UTCT slice videos).

    NIfTI and DICOM are put in nibabel's closest canonical RAS+ orientation and stored (z, y, x) =
    (S, A, R): x grows to the patient's Right, y to Anterior, z to Superior. Other formats keep
    their array order. ``spacing`` (z, y, x) overrides the voxel size read from the file
    (npy, TIFF and videos carry none and default to isotropic). The remaining arguments are
    those of :func:`prepare_volume`.
    """
    path = _existing(path)
    raw = _read(_volume_reader(path), path, "volume")
    if spacing is not None:
        raw = raw._replace(spacing=spacing)
    return _prepare(raw, size, hu_window, fit, threshold, str(path))


def prepare_volume(array, size: int = 128, *, spacing=(1.0, 1.0, 1.0), hu_window=None,
                   fit: bool = True, threshold=None, source: str = "array") -> torch.Tensor:
    """Map an in-memory volume (numpy or torch, (z, y, x)) to a ``[size]*3`` density cube.

    The path every volume takes, so real and procedural volumes are treated alike:

    * Densities: CT numbers (``hu_window`` given, or minimum below -500 HU) map through the window
      (see :data:`HU_WINDOW`); otherwise integers are divided by their dtype's maximum, floats
      are kept when within [0, 1] and divided by their maximum when above 1; negative non-CT
      values are an error.
    * Resampling respects ``spacing`` (physical size per axis, any unit): the output is isotropic
      and the physical shape is kept. Each axis is Gaussian-prefiltered before trilinear sampling,
      with sigma = 0.5 * sqrt(f**2 - 1) input voxels for a downsampling factor f (which tops the
      half-voxel blur already present up to half an output voxel; none when upsampling).
    * ``fit=True``: the specimen (voxels above ``threshold``, default 5% of the maximum density)
      is centred and scaled, equally on all axes, so that all of it lies within radius
      :data:`FIT_RADIUS` of the cube's centre. ``fit=False`` centres the whole field of view,
      its longest side spanning the cube.

    ``source`` names the data in error messages.
    """
    if torch.is_tensor(array):
        array = array.detach().cpu().numpy()
    return _prepare(_Raw(np.asarray(array), spacing), size, hu_window, fit, threshold, source)


def save_volume(volume, path, spacing=None) -> Path:
    """Write a volume as NIfTI (``.nii``/``.nii.gz``, float32) or ``.npz`` (key ``volume``), atomically.

    ``spacing`` (z, y, x, or one number) defaults to 1/side per axis, so that the field of view
    is the unit cube. NIfTI is written (x, y, z) with a positive diagonal affine centred on 0,
    which :func:`load_volume` (``fit=False``, same size) reads back to the same array.
    """
    path = Path(path)
    array = _as_numpy(volume, "volume", str(path)).astype(np.float32)
    if array.ndim != 3:
        raise ValueError(f"{path}: expected a 3-D volume [D, H, W] to save, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: the volume to save holds NaN or inf values")
    spacing = _spacing(np.reciprocal(np.array(array.shape, float)) if spacing is None else spacing,
                       str(path))
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        import nibabel as nib
        zooms = np.array(spacing[::-1])  # (x, y, z)
        affine = np.diag([*zooms, 1.0])
        affine[:3, 3] = -zooms * (np.array(array.shape[::-1]) - 1) / 2
        image = nib.Nifti1Image(np.ascontiguousarray(array.transpose(2, 1, 0)), affine)
        with atomic_path(path) as tmp:
            nib.save(image, tmp)
    elif name.endswith(".npz"):
        with atomic_path(path) as tmp:
            np.savez_compressed(tmp, volume=array, spacing=np.array(spacing))
    else:
        raise ValueError(f"{path}: cannot save a volume as '{_suffix(path)}'; use .nii, .nii.gz or .npz")
    return path


def _volume_reader(path: Path):
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file()]
        if any(p.suffix.lower() == ".dcm" for p in files):
            return _read_dicom_volume
        if any(p.suffix.lower() in _TIFF for p in files):
            return _read_tiff_volume
        raise _Invalid(f"{path}: directory holds no .dcm or .tif/.tiff slices")
    name = path.name.lower()
    readers = {".npy": _read_npy, ".npz": _read_npz, ".nii": _read_nifti, ".nii.gz": _read_nifti,
               ".dcm": _read_dicom_volume, **dict.fromkeys(_TIFF, _read_tiff_volume),
               **dict.fromkeys(_VIDEO, _read_video)}
    for suffix, reader in readers.items():
        if name.endswith(suffix):
            return reader
    raise _Invalid(f"{path}: unknown volume format '{_suffix(path)}'; expected a directory of "
                   f"DICOM or TIFF slices or one of {', '.join(readers)}")


def _read_npy(path: Path) -> _Raw:
    return _Raw(np.load(path, allow_pickle=False))


def _read_npz(path: Path) -> _Raw:
    with np.load(path, allow_pickle=False) as npz:
        keys = list(npz.keys())
        if "volume" in npz:
            return _Raw(npz["volume"], npz["spacing"] if "spacing" in npz else (1.0, 1.0, 1.0))
        if len(keys) != 1:
            raise _Invalid(f"{path}: expected an array named 'volume' or a single array, "
                           f"found {keys or 'none'}")
        return _Raw(npz[keys[0]])


def _read_nifti(path: Path) -> _Raw:
    import nibabel as nib
    image = nib.load(path)
    proxy = image.dataobj
    data = np.asarray(proxy, dtype=np.float32)
    if data.ndim > 3 and math.prod(data.shape[3:]) == 1:
        data = data.reshape(data.shape[:3])
    elif data.ndim != 3:
        raise _Invalid(f"{path}: expected a 3-D NIfTI image, got shape {data.shape}")
    stored = image.get_data_dtype()
    scaled = getattr(proxy, "slope", 1.0) != 1.0 or getattr(proxy, "inter", 0.0) != 0.0
    full_scale = float(np.iinfo(stored).max) if stored.kind in "iu" and not scaled else None
    array, spacing = _ras_zyx(data, image.affine, image.header.get_zooms()[:3])
    return _Raw(array, spacing, None, full_scale)


def _ras_zyx(data_ijk: np.ndarray, affine: np.ndarray, zooms) -> tuple[np.ndarray, tuple]:
    """Reorient voxel data to the closest canonical RAS+ axes, returned as (S, A, R) = (z, y, x)."""
    from nibabel import orientations
    ornt = orientations.io_orientation(affine)
    data = orientations.apply_orientation(data_ijk, ornt)
    spacing = np.empty(3)
    spacing[ornt[:, 0].astype(int)] = zooms
    return np.ascontiguousarray(data.transpose(2, 1, 0)), tuple(spacing[::-1])


def _read_dicom_volume(path: Path) -> _Raw:
    """A DICOM series (directory) or one multi-frame file, sorted and reoriented to RAS+."""
    import pydicom
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() == ".dcm"), key=_natural)
        datasets = [pydicom.dcmread(p) for p in files]
        series = {ds.get("SeriesInstanceUID") for ds in datasets}
        if len(series) > 1:
            raise _Invalid(f"{path}: holds {len(series)} DICOM series; put each in its own directory")
        frames = [(ds, 0, ds.pixel_array) for ds in datasets]
    else:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
        frames = [(ds, i, f) for i, f in enumerate(pixels if int(ds.get("NumberOfFrames", 1) or 1) > 1
                                                   else pixels[None])]
    shapes = {f.shape for _, _, f in frames}
    if len(shapes) > 1:
        raise _Invalid(f"{path}: DICOM slices differ in size: {sorted(shapes)}")

    ds0 = frames[0][0]
    row_spacing, col_spacing = map(float, _dicom_attr(ds0, "PixelSpacing", "PixelMeasuresSequence")
                                   or (1.0, 1.0))
    orientation = _dicom_attr(ds0, "ImageOrientationPatient", "PlaneOrientationSequence")
    positions = [_dicom_attr(ds, "ImagePositionPatient", "PlanePositionSequence", i)
                 for ds, i, _ in frames]
    if orientation is not None and all(p is not None for p in positions):
        row_dir, col_dir = np.array(orientation[:3], float), np.array(orientation[3:], float)
        positions = np.array(positions, float)
        depth = positions @ np.cross(row_dir, col_dir)
        order = np.argsort(depth, kind="stable")
        gaps = np.diff(depth[order])
        if len(gaps) and gaps.min() <= 1e-3 * max(abs(gaps).max(), 1e-6):
            raise _Invalid(f"{path}: DICOM slices share a position; is more than one series here?")
        if len(gaps) and gaps.max() - gaps.min() > 0.01 * gaps.mean() + 1e-3:
            raise _Invalid(f"{path}: DICOM slices are unevenly spaced "
                           f"({gaps.min():.3g} to {gaps.max():.3g} mm)")
        step = ((positions[order[-1]] - positions[order[0]]) / len(gaps) if len(gaps)
                else np.cross(row_dir, col_dir) * float(ds0.get("SliceThickness", 1.0) or 1.0))
        affine = np.eye(4)
        affine[:3, :3] = np.column_stack([row_dir * col_spacing, col_dir * row_spacing, step])
        affine[:3, 3] = positions[order[0]]
        affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine  # DICOM's LPS to RAS
    else:  # no geometry: instance order, spacing from the slice tags, array axes kept
        order = np.argsort([int(ds.get("InstanceNumber", 0) or 0) for ds, _, _ in frames], kind="stable")
        thickness = _dicom_attr(ds0, "SpacingBetweenSlices", "PixelMeasuresSequence") or \
            _dicom_attr(ds0, "SliceThickness", "PixelMeasuresSequence") or 1.0
        affine = np.diag([col_spacing, row_spacing, float(thickness), 1.0])

    slices, rescaled = [], False
    for k in order:
        ds, i, pixels = frames[k]
        slope = float(_dicom_attr(ds, "RescaleSlope", "PixelValueTransformationSequence", i) or 1.0)
        intercept = float(_dicom_attr(ds, "RescaleIntercept", "PixelValueTransformationSequence", i) or 0.0)
        rescaled |= (slope, intercept) != (1.0, 0.0)
        slices.append(pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept))
    volume = np.stack(slices)  # (slice, row, column) = (k, j, i)
    array, spacing = _ras_zyx(volume.transpose(2, 1, 0), affine, np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
    hu = True if ds0.get("Modality") == "CT" else None
    return _Raw(array, spacing, hu, None if rescaled else 2.0 ** int(ds0.BitsStored) - 1)


def _dicom_attr(ds, name: str, group: str, frame: int = 0):
    """A DICOM attribute from the top level or, in enhanced multi-frame files, the frame's functional group."""
    if name in ds:
        return ds[name].value
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        try:
            item = getattr(getattr(ds, groups)[index], group)[0]
        except (AttributeError, IndexError):
            continue
        if name in item:
            return item[name].value
    return None


def _read_tiff_volume(path: Path) -> _Raw:
    import tifffile
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() in _TIFF), key=_natural)
        slices = [tifffile.imread(p) for p in files]
        shapes = {s.shape for s in slices}
        if len(shapes) > 1:
            raise _Invalid(f"{path}: TIFF slices differ in shape: {sorted(shapes)}")
        array = np.stack(slices)
    else:
        array = tifffile.imread(path)
    return _Raw(_grey(array, 3), full_scale=_full_scale(array))


def _read_video(path: Path) -> _Raw:
    import imageio.v3 as iio
    frames = iio.imread(path, plugin="FFMPEG", index=None)
    return _Raw(_grey(frames, 3), full_scale=255.0)


def _prepare(raw: _Raw, size, hu_window, fit, threshold, source) -> torch.Tensor:
    if not isinstance(size, int) or isinstance(size, bool) or size < 2:
        raise ValueError(f"{source}: size must be an integer >= 2, got {size!r}")
    array = np.squeeze(raw.array)
    if array.ndim != 3 or min(array.shape) < 2:
        raise _Invalid(f"{source}: expected a 3-D volume with every side >= 2 voxels, "
                       f"got shape {tuple(raw.array.shape)}")
    spacing = np.array(_spacing(raw.spacing, source))
    density = _to_density(array, raw.hu, raw.full_scale, hu_window, source)

    if fit:
        threshold = 0.05 * density.max() if threshold is None else float(threshold)
        mask = density > threshold
        if not mask.any():
            raise _Invalid(f"{source}: empty volume: no voxel above the threshold {threshold:g} "
                           f"(maximum density {density.max():g})")
        centre, radius = _enclosing_sphere(mask, spacing)
        side = radius / FIT_RADIUS
    else:
        extent = np.array(array.shape) * spacing
        centre, side = extent / 2, extent.max()
    out = _resample(density, spacing, centre, side, size)
    return torch.from_numpy(np.clip(out, 0.0, 1.0, out=out))  # clips float rounding only


def _to_density(array: np.ndarray, hu, full_scale, hu_window, source) -> np.ndarray:
    """Values to linear density in [0, 1] (float32): CT numbers through the window, others scaled."""
    if array.dtype.kind not in "iuf" and array.dtype != bool:
        raise _Invalid(f"{source}: expected numbers, got dtype {array.dtype}")
    bad = array.size - np.count_nonzero(np.isfinite(array)) if array.dtype.kind == "f" else 0
    if bad:
        raise _Invalid(f"{source}: {bad} NaN or inf values; expected finite densities")
    lowest = float(array.min())
    if hu_window is not None or hu or (hu is None and lowest < _HU_DETECT):
        lo, hi = map(float, HU_WINDOW if hu_window is None else hu_window)
        if not hi > lo:
            raise ValueError(f"{source}: hu_window must be (lo, hi) with hi > lo, got {hu_window!r}")
        density = np.clip((array.astype(np.float32) - lo) / np.float32(hi - lo), 0.0, 1.0)
        window = f" after the HU window ({lo:g}, {hi:g}): nothing is denser than {lo:g} HU"
    else:
        density = _unit_range(array, full_scale, source, "density")
        window = ""
    if not density.any():
        raise _Invalid(f"{source}: empty volume: all densities are zero{window}")
    if density.min() == density.max():
        raise _Invalid(f"{source}: constant volume (every voxel is {density.flat[0]:g}); "
                       f"nothing to see")
    return density


def _unit_range(array: np.ndarray, full_scale, source, what) -> np.ndarray:
    """Values / full scale (integer data: the dtype's max or the format's bit depth); other
    floats kept when within [0, 1], else divided by their max. Returns float32."""
    if array.dtype == bool:
        return array.astype(np.float32)
    lowest = float(array.min())
    if lowest < 0:
        raise _Invalid(f"{source}: negative values (min {lowest:g}); expected {what} >= 0"
                       + (f" (CT numbers are recognised below {_HU_DETECT:g} HU or with hu_window=)"
                          if what == "density" else ""))
    full_scale = full_scale or _full_scale(array)
    top = float(array.max())
    if full_scale and top > full_scale:
        raise _Invalid(f"{source}: values up to {top:g} exceed the full scale {full_scale:g}")
    array = array.astype(np.float32)
    scale = full_scale or (top if top > 1 else 1.0)
    return array / np.float32(scale) if scale != 1 else array


def _enclosing_sphere(mask: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (the mask's bounding-box centre) and radius reaching every masked voxel's far corner.

    Physical coordinates: voxel i spans [i, i + 1] * spacing. Along each (z, y) row only the
    first and last masked x can be the farthest, so the search is linear in the voxel count.
    """
    axes = [np.flatnonzero(mask.any(axis=tuple(j for j in range(3) if j != i))) for i in range(3)]
    centre = np.array([(a[0] + a[-1] + 1) * s / 2 for a, s in zip(axes, spacing)])

    def reach(index, axis):  # distance along `axis` from the centre to voxel `index`'s far side
        return np.abs((index + 0.5) * spacing[axis] - centre[axis]) + spacing[axis] / 2

    rows = mask.any(axis=2)
    first = mask.argmax(axis=2)
    last = mask.shape[2] - 1 - mask[..., ::-1].argmax(axis=2)
    d2 = (reach(np.arange(mask.shape[0]), 0)[:, None] ** 2 + reach(np.arange(mask.shape[1]), 1) ** 2
          + np.maximum(reach(first, 2), reach(last, 2)) ** 2)
    return centre, float(np.sqrt(d2[rows].max()))


def _resample(density: np.ndarray, spacing: np.ndarray, centre: np.ndarray, side: float,
              size: int) -> np.ndarray:
    """Sample the cube of edge ``side`` around ``centre`` (physical units) on a size**3 grid."""
    scale = side / size / spacing  # input voxels per output voxel, per axis
    offset = (centre - side / 2 + side / size / 2) / spacing - 0.5  # input index of output voxel 0
    sigma = 0.5 * np.sqrt(np.maximum(scale ** 2 - 1, 0))
    # crop to what the cube touches (plus the filter's reach) before filtering
    margin = np.ceil(4 * sigma).astype(int) + 2
    lo = np.clip(np.floor(offset).astype(int) - margin, 0, density.shape)
    hi = np.clip(np.ceil(offset + scale * (size - 1)).astype(int) + margin + 1, 0, density.shape)
    crop = density[tuple(slice(a, b) for a, b in zip(lo, hi))]
    if crop.size == 0:
        return np.zeros((size,) * 3, np.float32)
    crop = ndimage.gaussian_filter(crop, sigma, mode="constant") if sigma.any() else crop
    return ndimage.affine_transform(crop, scale, offset - lo, output_shape=(size,) * 3, order=1,
                                    mode="grid-constant", cval=0.0).astype(np.float32, copy=False)


# ---------------------------------------------------------------------------------------------
# x-rays

def load_xray(path, gamma=None, *, size=None) -> torch.Tensor:
    """Read a radiograph as transparency alpha ``[H, W]`` float32 in [0, 1].

    Formats: PNG (8/16 bit), JPEG, TIFF, DICOM. Files hold opacity with bone bright, so
    alpha = 1 - v for the file's value v scaled to [0, 1] (integers by their full scale; DICOM by
    its Bits Stored after the modality LUT/rescale and VOI LUT/window, MONOCHROME1 inverted so
    that bone is bright). RGB(A) folds to grey by Rec. 709 luminance, dropping alpha.

    ``gamma`` undoes a display gamma: a display value is v = linear ** (1 / gamma), so
    linear = v ** gamma (e.g. gamma=2.2 for sRGB-like images); None leaves values as they are.
    ``size`` resizes, anti-aliased, to ``size x size``; a non-square image is first padded to a
    square, centred, with background (alpha = 1).
    """
    path = _existing(path)
    suffix = _suffix(path)
    readers = {".png": _read_image, ".jpg": _read_image, ".jpeg": _read_image,
               **dict.fromkeys(_TIFF, _read_tiff_image), ".dcm": _read_dicom_image}
    if path.is_dir() or suffix not in readers:
        raise _Invalid(f"{path}: unknown x-ray format '{suffix}'; expected one of {', '.join(readers)}")
    array, full_scale = _read(readers[suffix], path, "x-ray")
    full_scale = full_scale or _full_scale(array)
    image = _grey(array, 2)
    if image.ndim != 2 or min(image.shape) < 2:
        raise _Invalid(f"{path}: expected one 2-D image, got shape {array.shape}; "
                       f"a stack of images is not an x-ray, pass one image")
    bad = image.size - np.count_nonzero(np.isfinite(image)) if image.dtype.kind == "f" else 0
    if bad:
        raise _Invalid(f"{path}: {bad} NaN or inf pixels")
    opacity = _unit_range(image, full_scale, str(path), "pixel values")
    if opacity.min() == opacity.max():
        raise _Invalid(f"{path}: constant image (every pixel is {opacity.flat[0]:g}); nothing to see")
    if gamma is not None:
        if not gamma > 0:
            raise ValueError(f"{path}: gamma must be positive, got {gamma!r}")
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
    if _suffix(path) != ".png":
        raise ValueError(f"{path}: x-rays are saved as .png, got '{_suffix(path)}'")
    import imageio.v3 as iio
    top = 2 ** bits - 1
    values = np.rint((1.0 - alpha) * top).astype(np.uint8 if bits == 8 else np.uint16)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, values, extension=".png")
    return path


def _read_image(path: Path):
    import imageio.v3 as iio
    return iio.imread(path), None


def _read_tiff_image(path: Path):
    """One TIFF image with any sample (colour) axis moved last."""
    import tifffile
    with tifffile.TiffFile(path) as tif:
        if len(tif.series) > 1:
            raise _Invalid(f"{path}: holds {len(tif.series)} images; pass one image")
        series = tif.series[0]
        array = series.asarray()
        if "S" in series.axes:
            array = np.moveaxis(array, series.axes.index("S"), -1)
    return array, None


def _read_dicom_image(path: Path):
    """A DICOM radiograph: monochrome data through modality and VOI LUTs, scaled, bone bright."""
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array
    interpretation = ds.get("PhotometricInterpretation", "MONOCHROME2")
    if not interpretation.startswith("MONOCHROME"):
        return pixels, 2.0 ** int(ds.BitsStored) - 1
    bits = int(ds.BitsStored)
    if ds.get("ModalityLUTSequence"):
        lo, hi = 0.0, 2.0 ** ds.ModalityLUTSequence[0].LUTDescriptor[2] - 1
    else:
        lo, hi = (0.0, 2.0 ** bits - 1) if ds.get("PixelRepresentation", 0) == 0 else \
            (-(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1)
        if "RescaleSlope" in ds and "RescaleIntercept" in ds:
            lo, hi = sorted(v * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for v in (lo, hi))
    values = apply_voi_lut(apply_modality_lut(pixels, ds), ds)
    voi = ds.get("VOILUTSequence")
    if voi and "LUTDescriptor" in voi[0]:  # the LUT (preferred by pydicom) sets its own range
        lo, hi = 0.0, 2.0 ** voi[0].LUTDescriptor[2] - 1
    v = (np.asarray(values, np.float64) - lo) / (hi - lo)
    if v.min() < 0 or v.max() > 1:
        raise _Invalid(f"{path}: pixel values outside the {bits}-bit range that Bits Stored declares")
    return (1.0 - v if interpretation == "MONOCHROME1" else v).astype(np.float32), None


def _resize_square(alpha: np.ndarray, size, source) -> np.ndarray:
    """Pad to a centred square with background (alpha = 1), then resize anti-aliased."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 2:
        raise ValueError(f"{source}: size must be an integer >= 2, got {size!r}")
    from skimage.transform import resize
    h, w = alpha.shape
    n = max(h, w)
    alpha = np.pad(alpha, (((n - h) // 2, n - h - (n - h) // 2), ((n - w) // 2, n - w - (n - w) // 2)),
                   constant_values=1.0)
    out = resize(alpha, (size, size), order=1, anti_aliasing=size < n, mode="edge")
    return np.clip(out, 0.0, 1.0)  # clips float rounding only


# ---------------------------------------------------------------------------------------------
# shared helpers

def _existing(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    return path


def _read(reader, path: Path, what: str):
    """Run a reader; its own failures (unreadable, truncated) come back naming the file."""
    try:
        return reader(path)
    except _Invalid:
        raise
    except Exception as error:
        lines = str(error).strip().splitlines() or [""]
        message = lines[0] if len(lines) < 3 else f"{lines[0]} ... {lines[-1]}"  # ffmpeg is wordy
        raise ValueError(f"{path}: cannot read this {what} file "
                         f"({type(error).__name__}: {message})") from error


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def _natural(path: Path):
    """Sort key that orders slice_2 before slice_10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name.lower())]


def _grey(array: np.ndarray, ndim: int) -> np.ndarray:
    """Fold a trailing colour axis (grey+alpha, RGB, RGBA) of an ``ndim``-D image to grey."""
    if array.ndim == ndim + 1 and array.shape[-1] in (2, 3, 4):
        return array[..., 0] if array.shape[-1] == 2 else array[..., :3] @ _LUMA
    return array


def _full_scale(array: np.ndarray):
    """The largest value an integer array's dtype holds (None for floats)."""
    return float(np.iinfo(array.dtype).max) if array.dtype.kind in "iu" else None


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
