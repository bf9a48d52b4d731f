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

__all__ = ["FormatError", "RawVolume", "read_volume", "read_radiograph", "radiograph_pixel_size", "file_suffix",
           "natural_order", "ras_zyx", "dtype_full_scale"]

_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # Rec. 709 luminance; the weights sum to 1
_VIDEO = (".mp4", ".avi", ".mov", ".mkv")
_TIFF = (".tif", ".tiff")


class FormatError(ValueError):
    """A problem a reader found itself, already worded with the file's name."""


class RawVolume(NamedTuple):
    """A volume as read: values, spacing (z, y, x) in mm, CT-ness (None: detect), integer full scale,
    and the file's affine from the array's (x, y, z) indices to world (RAS) mm, if it has one."""
    array: np.ndarray
    spacing: tuple = (1.0, 1.0, 1.0)
    hu: bool | None = None
    full_scale: float | None = None
    affine: np.ndarray | None = None


# ---------------------------------------------------------------------------------------------
# volumes

def read_volume(path) -> RawVolume:
    """The volume in ``path`` as stored: a directory of DICOM or TIFF slices, a DICOMDIR, or a file
    whose suffix names its format or that starts with the DICOM preamble (see ``io.load_volume``)."""
    path = _existing(path)
    return _read(_volume_reader(path), path, "volume")


def _volume_reader(path: Path):
    from xtomo.data import dicom
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file()]
        if any(p.name.upper() == "DICOMDIR" or dicom.is_dicom(p) for p in files):
            return dicom.read_dicom_volume
        if any(p.suffix.lower() in _TIFF for p in files):
            return _read_tiff_volume
        raise FormatError(f"{path}: directory holds no DICOM files or .tif/.tiff slices")
    name = path.name.lower()
    readers = {".npy": _read_npy, ".npz": _read_npz, ".nii": _read_nifti, ".nii.gz": _read_nifti,
               ".dcm": dicom.read_dicom_volume, **dict.fromkeys(_TIFF, _read_tiff_volume),
               **dict.fromkeys(_VIDEO, _read_video)}
    for suffix, reader in readers.items():
        if name.endswith(suffix):
            return reader
    if dicom.is_dicom(path):
        return dicom.read_dicom_volume
    raise FormatError(f"{path}: unknown volume format '{file_suffix(path)}'; expected a directory of "
                   f"DICOM or TIFF slices, a DICOM file (named anyhow) or one of {', '.join(readers)}")


def _read_npy(path: Path) -> RawVolume:
    return RawVolume(np.load(path, allow_pickle=False))


def _read_npz(path: Path) -> RawVolume:
    with np.load(path, allow_pickle=False) as npz:
        keys = list(npz.keys())
        if "volume" in npz:  # its array order kept; an affine, if saved, still places it
            return RawVolume(npz["volume"], npz["spacing"] if "spacing" in npz else (1.0, 1.0, 1.0),
                             affine=npz["affine"] if "affine" in npz else None)
        if len(keys) != 1:
            raise FormatError(f"{path}: expected an array named 'volume' or a single array, "
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
        raise FormatError(f"{path}: expected a 3-D NIfTI image, got shape {data.shape}")
    stored = image.get_data_dtype()
    scaled = getattr(proxy, "slope", 1.0) != 1.0 or getattr(proxy, "inter", 0.0) != 0.0
    full_scale = float(np.iinfo(stored).max) if stored.kind in "iu" and not scaled else None
    array, spacing, affine = ras_zyx(data, image.affine)
    return RawVolume(array, spacing, None, full_scale, affine)


def ras_zyx(data_ijk: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, tuple, np.ndarray]:
    """Reorient voxel data to the closest canonical RAS+ axes, returned as (S, A, R) = (z, y, x),
    with its spacing (z, y, x) and the affine of the reoriented array's (x, y, z) indices."""
    from nibabel import orientations
    ornt = orientations.io_orientation(affine)
    data = orientations.apply_orientation(data_ijk, ornt)
    affine = affine @ orientations.inv_ornt_aff(ornt, data_ijk.shape[:3])
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    return np.ascontiguousarray(data.transpose(2, 1, 0)), tuple(spacing[::-1]), affine


def _read_tiff_volume(path: Path) -> RawVolume:
    import tifffile
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() in _TIFF), key=natural_order)
        slices = [tifffile.imread(p) for p in files]
        shapes = {s.shape for s in slices}
        if len(shapes) > 1:
            raise FormatError(f"{path}: TIFF slices differ in shape: {sorted(shapes)}")
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

def read_radiograph(path, frame: int | None = None) -> tuple[np.ndarray, float | None]:
    """One 2-D image in ``path`` (PNG, JPEG, TIFF or DICOM, the last named anyhow), colour folded to
    grey, and its full scale (the largest value its integers can hold; None for floats).
    ``frame`` chooses one frame of a multi-frame DICOM file, which needs it."""
    from xtomo.data import dicom
    path = _existing(path)
    suffix = file_suffix(path)
    readers = {".png": _read_image, ".jpg": _read_image, ".jpeg": _read_image,
               **dict.fromkeys(_TIFF, _read_tiff_image), ".dcm": dicom.read_dicom_radiograph}
    reader = readers.get(suffix) or (dicom.read_dicom_radiograph if dicom.is_dicom(path) else None)
    if path.is_dir() or reader is None:
        raise FormatError(f"{path}: unknown x-ray format '{suffix}'; expected a DICOM file (named anyhow) "
                       f"or one of {', '.join(readers)}")
    if reader is dicom.read_dicom_radiograph:
        array, full_scale = _read(lambda p: reader(p, frame), path, "x-ray")
    elif frame is not None:
        raise FormatError(f"{path}: frame={frame!r} chooses a frame of a multi-frame DICOM file; this is not one")
    else:
        array, full_scale = _read(reader, path, "x-ray")
    full_scale = full_scale or dtype_full_scale(array)
    image = _grey(array, 2)
    if image.ndim != 2 or min(image.shape) < 2:
        raise FormatError(f"{path}: expected one 2-D image, got shape {array.shape}; "
                       f"a stack of images is not an x-ray, pass one image")
    return image, full_scale


def radiograph_pixel_size(path) -> tuple[tuple[float, float], str] | None:
    """The (row, column) pixel size in mm of the x-ray in ``path``, and the attributes it came from,
    where the file says it (DICOM, see ``dicom.dicom_pixel_size``); None otherwise."""
    from xtomo.data import dicom
    path = _existing(path)
    return _read(dicom.dicom_pixel_size, path, "x-ray")


def _read_image(path: Path):
    import imageio.v3 as iio
    return iio.imread(path), None


def _read_tiff_image(path: Path):
    """One TIFF image with any sample (colour) axis moved last."""
    import tifffile
    with tifffile.TiffFile(path) as tif:
        if len(tif.series) > 1:
            raise FormatError(f"{path}: holds {len(tif.series)} images; pass one image")
        series = tif.series[0]
        array = series.asarray()
        if "S" in series.axes:
            array = np.moveaxis(array, series.axes.index("S"), -1)
    return array, None


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
    except FormatError:
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


def natural_order(path: Path):
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
