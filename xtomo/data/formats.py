"""File formats in, as stored arrays: the readers behind ``io.load_volume`` and ``io.load_xray``.

A reader returns the values as the file holds them, with what the file says about them (voxel
size, CT numbers or not, integer full scale); ``io`` maps them to the project's conventions. Bad
or unreadable files raise ``ValueError`` (``FileNotFoundError`` for a missing path) naming the file.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["RawVolume", "read_volume", "read_radiograph", "file_suffix", "dtype_full_scale"]

_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # Rec. 709 luminance; the weights sum to 1
_VIDEO = (".mp4", ".avi", ".mov", ".mkv")
_TIFF = (".tif", ".tiff")


class _Invalid(ValueError):
    """A problem this module found itself, already worded with the file's name."""


class RawVolume(NamedTuple):
    """A volume as read: values, spacing (z, y, x) in mm, CT-ness (None: detect), integer full scale."""
    array: np.ndarray
    spacing: tuple = (1.0, 1.0, 1.0)
    hu: bool | None = None
    full_scale: float | None = None


# ---------------------------------------------------------------------------------------------
# volumes

def read_volume(path) -> RawVolume:
    """The volume in ``path`` as stored: a directory of DICOM or TIFF slices, or a file whose suffix
    names its format (see ``io.load_volume``)."""
    path = _existing(path)
    return _read(_volume_reader(path), path, "volume")


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
    raise _Invalid(f"{path}: unknown volume format '{file_suffix(path)}'; expected a directory of "
                   f"DICOM or TIFF slices or one of {', '.join(readers)}")


def _read_npy(path: Path) -> RawVolume:
    return RawVolume(np.load(path, allow_pickle=False))


def _read_npz(path: Path) -> RawVolume:
    with np.load(path, allow_pickle=False) as npz:
        keys = list(npz.keys())
        if "volume" in npz:
            return RawVolume(npz["volume"], npz["spacing"] if "spacing" in npz else (1.0, 1.0, 1.0))
        if len(keys) != 1:
            raise _Invalid(f"{path}: expected an array named 'volume' or a single array, "
                           f"found {keys or 'none'}")
        return RawVolume(npz[keys[0]])


def _read_nifti(path: Path) -> RawVolume:
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
    return RawVolume(array, spacing, None, full_scale)


def _ras_zyx(data_ijk: np.ndarray, affine: np.ndarray, zooms) -> tuple[np.ndarray, tuple]:
    """Reorient voxel data to the closest canonical RAS+ axes, returned as (S, A, R) = (z, y, x)."""
    from nibabel import orientations
    ornt = orientations.io_orientation(affine)
    data = orientations.apply_orientation(data_ijk, ornt)
    spacing = np.empty(3)
    spacing[ornt[:, 0].astype(int)] = zooms
    return np.ascontiguousarray(data.transpose(2, 1, 0)), tuple(spacing[::-1])


def _read_dicom_volume(path: Path) -> RawVolume:
    """A DICOM series (directory) or one multi-frame file, sorted and reoriented to RAS+."""
    frames = _dicom_frames(path)
    ds0 = frames[0][0]
    order, affine = _dicom_geometry(frames, path)
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
    return RawVolume(array, spacing, hu, None if rescaled else 2.0 ** int(ds0.BitsStored) - 1)


def _dicom_frames(path: Path) -> list:
    """``(dataset, frame index, pixels)`` for every slice of one series, all of one size."""
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
    return frames


def _dicom_geometry(frames: list, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The slices' order along depth and the RAS affine of (column, row, slice) indices; without
    position tags, instance order and the spacing tags with the array's axes kept."""
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
    return order, affine


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


def _read_tiff_volume(path: Path) -> RawVolume:
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
    return RawVolume(_grey(array, 3), full_scale=dtype_full_scale(array))


def _read_video(path: Path) -> RawVolume:
    import imageio.v3 as iio
    frames = iio.imread(path, plugin="FFMPEG", index=None)
    return RawVolume(_grey(frames, 3), full_scale=255.0)


# ---------------------------------------------------------------------------------------------
# radiographs

def read_radiograph(path) -> tuple[np.ndarray, float | None]:
    """One 2-D image in ``path`` (PNG, JPEG, TIFF or DICOM), colour folded to grey, and its full scale
    (the largest value its integers can hold; None for floats)."""
    path = _existing(path)
    suffix = file_suffix(path)
    readers = {".png": _read_image, ".jpg": _read_image, ".jpeg": _read_image,
               **dict.fromkeys(_TIFF, _read_tiff_image), ".dcm": _read_dicom_image}
    if path.is_dir() or suffix not in readers:
        raise _Invalid(f"{path}: unknown x-ray format '{suffix}'; expected one of {', '.join(readers)}")
    array, full_scale = _read(readers[suffix], path, "x-ray")
    full_scale = full_scale or dtype_full_scale(array)
    image = _grey(array, 2)
    if image.ndim != 2 or min(image.shape) < 2:
        raise _Invalid(f"{path}: expected one 2-D image, got shape {array.shape}; "
                       f"a stack of images is not an x-ray, pass one image")
    return image, full_scale


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


def file_suffix(path: Path) -> str:
    """The lower-case suffix, ``.nii.gz`` as one."""
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


def dtype_full_scale(array: np.ndarray) -> float | None:
    """The largest value an integer array's dtype holds (None for floats)."""
    return float(np.iinfo(array.dtype).max) if array.dtype.kind in "iu" else None
