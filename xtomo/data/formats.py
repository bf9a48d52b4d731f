"""File formats in, as stored arrays: the readers behind ``io.load_volume`` and ``io.load_xray``.

A reader returns the values as the file holds them, with what the file says about them (voxel
size, CT numbers or not, integer full scale); ``io`` maps them to the project's conventions. Bad
or unreadable files raise ``ValueError`` (``FileNotFoundError`` for a missing path) naming the file.
"""
from __future__ import annotations

import math
import os
import re
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["FormatError", "RawVolume", "read_volume", "read_radiograph", "radiograph_pixel_size", "file_suffix",
           "natural_order", "ras_zyx", "dtype_full_scale", "MAX_VOXELS_VARIABLE", "DEFAULT_MAX_VOXELS", "max_voxels",
           "check_claim", "inflate"]

_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # Rec. 709 luminance; the weights sum to 1
_VIDEO = (".mp4", ".avi", ".mov", ".mkv")
_TIFF = (".tif", ".tiff")

MAX_VOXELS_VARIABLE = "XTOMO_MAX_VOXELS"
DEFAULT_MAX_VOXELS = 2 ** 30
"""The most voxels a volume file may claim (1024 cubed; a float32 copy is 4 GiB), unless the
environment variable ``XTOMO_MAX_VOXELS`` says another number."""
_DEFLATE_RATIO = 1032   # deflate (zlib, gzip, zip) expands its input at most about 1032-fold


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
    from xtomo.data import dicom, itkfiles
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file()]
        if any(p.name.upper() == "DICOMDIR" or dicom.is_dicom(p) for p in files):
            return dicom.read_dicom_volume
        if any(p.suffix.lower() in _TIFF for p in files):
            return _read_tiff_volume
        raise FormatError(f"{path}: directory holds no DICOM files or .tif/.tiff slices")
    name = path.name.lower()
    readers = {".npy": _read_npy, ".npz": _read_npz, ".nii": _read_nifti, ".nii.gz": _read_nifti,
               ".mha": itkfiles.read_metaimage, ".mhd": itkfiles.read_metaimage, ".nrrd": itkfiles.read_nrrd,
               ".nhdr": itkfiles.read_nrrd, ".dcm": dicom.read_dicom_volume, **dict.fromkeys(_TIFF, _read_tiff_volume),
               **dict.fromkeys(_VIDEO, _read_video)}
    for suffix, reader in readers.items():
        if name.endswith(suffix):
            return reader
    if dicom.is_dicom(path):
        return dicom.read_dicom_volume
    raise FormatError(f"{path}: unknown volume format '{file_suffix(path)}'; expected a directory of "
                   f"DICOM or TIFF slices, a DICOM file (named anyhow) or one of {', '.join(readers)}")


def _read_npy(path: Path) -> RawVolume:
    with open(path, "rb") as fh:
        shape, dtype = _npy_header(fh)
        check_claim(path, shape, dtype, path.stat().st_size - fh.tell())
    return RawVolume(np.load(path, allow_pickle=False))


def _npy_header(fh) -> tuple[tuple, np.dtype]:
    """The shape and dtype an ``.npy`` header claims (the stream left at the data)."""
    version = np.lib.format.read_magic(fh)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(fh)
    return shape, dtype


def _check_npz(path: Path) -> None:
    """Every array of an ``.npz`` claims no more than its compressed bytes can hold (numpy
    allocates what a member's header claims before reading it)."""
    import zipfile
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            most = info.compress_size * (_DEFLATE_RATIO if info.compress_type != zipfile.ZIP_STORED else 1) + 4096
            if info.compress_size > path.stat().st_size or info.file_size > most:
                raise FormatError(f"{path} ({info.filename}): cannot read this volume file: the archive claims "
                                  f"{info.file_size:,} bytes in {info.compress_size:,}, and holds "
                                  f"{path.stat().st_size:,} bytes in all")
            with archive.open(info) as fh:
                shape, dtype = _npy_header(fh)
                start = fh.tell()
            check_claim(path, shape, dtype, info.file_size - start, what=info.filename)


def _read_npz(path: Path) -> RawVolume:
    _check_npz(path)
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
    proxy = image.dataobj   # where the voxels start; nib.load's header has its offset reset
    shape, dtype, offset = proxy.shape, image.get_data_dtype(), int(proxy.offset)
    if path.name.lower().endswith(".gz"):
        check_claim(path, shape, dtype, path.stat().st_size, compressed=True)
        with open(path, "rb") as fh:   # counted, not kept: nibabel allocates what the header claims
            held = inflate(path, fh, shape, dtype, header=offset, keep=False)
    else:
        held = path.stat().st_size - offset
    check_claim(path, shape, dtype, held)
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
    grey, and its full scale: the largest value of the significant bits the file states (PNG
    sBIT, TIFF BitsPerSample or S/MaxSampleValue, DICOM Bits Stored; see ``io.load_xray``), else
    the largest its integers can hold; None for floats.
    ``frame`` chooses one frame of a multi-frame DICOM file, which needs it."""
    from xtomo.data import dicom
    path = _existing(path)
    suffix = file_suffix(path)
    readers = {".png": _read_png, ".jpg": _read_image, ".jpeg": _read_image,
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


def _read_png(path: Path):
    """A PNG and its full scale: ``2**sBIT - 1`` where its sBIT chunk says fewer significant bits
    than its samples have and the values are stored as they are (none above that, not all
    multiples of ``2**(depth - sBIT)``); None (the container's) otherwise, as for values scaled up
    to the sample depth as the PNG specification asks."""
    import imageio.v3 as iio
    array = iio.imread(path)
    depth, bits = _png_bits(path)
    if bits is None or not 0 < bits < depth or array.dtype.kind != "u" or 8 * array.dtype.itemsize != depth:
        return array, None   # (a 16-bit colour PNG comes as 8 bits from Pillow)
    samples = array[..., :-1] if array.ndim == 3 and array.shape[-1] in (2, 4) else array  # not alpha
    top = 2 ** bits - 1
    scaled_up = samples.max() > top or not (samples % (1 << (depth - bits))).any()
    return array, None if scaled_up else float(top)


def _png_bits(path: Path) -> tuple[int, int | None]:
    """The sample depth (IHDR) of a PNG and the significant bits of its grey or colour samples
    (sBIT, None without it or for a palette image), read from the chunks before the image data."""
    depth, colour, bits = 0, 0, None
    with open(path, "rb") as fh:
        if fh.read(8) != b"\x89PNG\r\n\x1a\n":
            return depth, bits
        while len(head := fh.read(8)) == 8:
            length, kind = int.from_bytes(head[:4], "big"), head[4:]
            if kind in (b"IDAT", b"IEND"):
                break
            data = fh.read(min(length, 64))
            fh.seek(length - len(data) + 4, 1)   # the rest, and the CRC
            if kind == b"IHDR" and len(data) >= 10:
                depth, colour = data[8], data[9]
            elif kind == b"sBIT" and data and colour != 3:
                bits = max(data[:3] if colour in (2, 6) else data[:1])
    return depth, bits


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
        return array, _tiff_full_scale(series.pages[0], array)


def _tiff_full_scale(page, array: np.ndarray) -> float | None:
    """The largest of fewer significant bits than the samples' type holds, where the TIFF says so:
    BitsPerSample (12-bit data unpacked to 16), or an SMaxSampleValue/MaxSampleValue of the form
    ``2**k - 1`` (other values are statistics of the image, as TIFF 6.0 defines MaxSampleValue);
    the smallest of them. None: the type's. SMinSampleValue is not used (0 stays 0)."""
    if array.dtype.kind != "u":
        return None
    container = np.iinfo(array.dtype).max
    tops = [2 ** page.bitspersample - 1] if 0 < page.bitspersample < 8 * array.dtype.itemsize else []
    for code in (341, 281):   # SMaxSampleValue, MaxSampleValue
        tag = page.tags.get(code)
        value = int(np.max(tag.value)) if tag is not None and np.size(tag.value) else 0
        if 0 < value < container and (value + 1) & value == 0:
            tops.append(value)
    return float(min(tops)) if tops else None


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


# ---------------------------------------------------------------------------------------------
# what a header claims, checked before anything of that size is allocated

def max_voxels() -> int:
    """The most voxels a volume file may claim: ``XTOMO_MAX_VOXELS`` if set, else :data:`DEFAULT_MAX_VOXELS`."""
    text = os.environ.get(MAX_VOXELS_VARIABLE)
    if text is None or not text.strip():
        return DEFAULT_MAX_VOXELS
    try:
        limit = int(text.strip().replace("_", ""))
    except ValueError:
        limit = 0
    if limit < 1:
        raise ValueError(f"{MAX_VOXELS_VARIABLE}={text!r}: expected a positive whole number of voxels")
    return limit


def _claim(path: Path, shape, dtype, what: str = "") -> tuple[tuple, int, int, str]:
    """The shape a header claims as ints, its voxels and bytes, and the words that say so."""
    shape = tuple(int(n) for n in shape)
    voxels = math.prod(shape)  # Python integers: a lying header cannot overflow them
    claimed = voxels * np.dtype(dtype).itemsize
    where = f"{path}{f' ({what})' if what else ''}: cannot read this volume file: its header claims shape " \
            f"{shape} of {np.dtype(dtype)} ({claimed:,} bytes)"
    return shape, voxels, claimed, where


def check_claim(path: Path, shape, dtype, held: int, *, compressed: bool = False, what: str = "",
                size: int | None = None) -> int:
    """The byte count that a header claims (``shape`` of ``dtype``), checked against the ``held`` bytes
    of data the file has (``compressed``: the compressed bytes, which deflate expands at most
    about 1032-fold) and against :func:`max_voxels`; a ``FormatError`` naming both otherwise.
    ``what`` names the part of the file (a zip member); ``size`` is the files' length in all
    (default: ``path``'s)."""
    shape, voxels, claimed, where = _claim(path, shape, dtype, what)
    if min(shape, default=0) < 0:
        raise FormatError(f"{where}, a negative size")
    total = path.stat().st_size if size is None else size
    if compressed and claimed > held * _DEFLATE_RATIO + 4096:
        raise FormatError(f"{where}, more than its {held:,} compressed bytes can hold ({total:,} bytes in all)")
    if not compressed and claimed != held:
        raise FormatError(f"{where}, but the file holds {held:,} bytes of data ({total:,} bytes in all)")
    if voxels > max_voxels():
        raise FormatError(f"{where}: {voxels:,} voxels, more than the {max_voxels():,} allowed "
                          f"(set {MAX_VOXELS_VARIABLE} to read larger volumes)")
    return claimed


def inflate(path: Path, stream, shape, dtype, *, header: int = 0, keep: bool = True) -> bytearray | int:
    """Decompress the zlib or gzip data (members one after another) read from ``stream``: ``header``
    bytes, then the voxels a header claims (``shape`` of ``dtype``). Never holds more than that:
    memory grows with the data found, not with the claim. Returns the voxels' bytes (``keep``) or
    their count; a ``FormatError`` if there are more or fewer than claimed."""
    shape, _, claimed, where = _claim(path, shape, dtype)
    claimed += header
    out, count, pending = bytearray(), 0, b""
    decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)  # either header
    while True:
        if not pending:
            pending = stream.read(1 << 20)
            if not pending:
                break
        if decoder.eof:
            if not pending.strip(b"\0"):  # zero padding after the last member
                pending = b""
                continue
            decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)
        piece = decoder.decompress(pending, claimed + 1 - count)
        count += len(piece)
        if count > claimed:
            raise FormatError(f"{where}, but its compressed data hold more")
        if keep:
            out += piece
        pending = decoder.unused_data if decoder.eof else decoder.unconsumed_tail
    if not decoder.eof or count != claimed:
        raise FormatError(f"{where}, but its compressed data hold {max(count - header, 0):,} bytes"
                          f"{'' if decoder.eof else ' and end early'}")
    return out[header:] if keep and header else out if keep else count - header
