"""DICOM in: series, multi-frame files, DICOMDIR and radiographs, compressed or not.

A file is DICOM when its name ends in ``.dcm`` or it has the DICOM preamble ("DICM" at byte
128), whatever its name. Compressed pixel data (JPEG Lossless, JPEG-LS, JPEG 2000, RLE) is
decoded by the pylibjpeg plugins that pydicom finds installed. Called by ``formats``; bad files
raise ``ValueError`` naming the file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from xtomo.data.formats import FormatError, RawVolume, natural_order, ras_zyx

__all__ = ["is_dicom", "dicom_files", "read_dicom_volume", "read_dicom_radiograph", "dicom_pixel_size"]

_MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"  # the SOP class of a DICOMDIR


def is_dicom(path: Path) -> bool:
    """Whether ``path`` is a file named ``*.dcm`` or starting with the DICOM preamble."""
    if not path.is_file():
        return False
    if path.suffix.lower() == ".dcm":
        return True
    with open(path, "rb") as fh:
        head = fh.read(132)
    return len(head) == 132 and head[128:] == b"DICM"


def _is_dicomdir(path: Path) -> bool:
    """Whether the file ``path`` is a DICOMDIR (by its name, as the standard names it, or its class)."""
    import pydicom
    if path.name.upper() == "DICOMDIR":
        return True
    meta = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"]).file_meta
    return meta.get("MediaStorageSOPClassUID") == _MEDIA_DIRECTORY


def dicom_files(path: Path) -> list[Path]:
    """The image files of the one series that ``path`` (a DICOMDIR, a folder holding one, or a folder
    of slices, named anyhow) holds, in natural order; empty for a folder without DICOM files."""
    if path.is_file():
        return _dicomdir_series(path)
    if (path / "DICOMDIR").is_file():
        return _dicomdir_series(path / "DICOMDIR")
    return sorted((p for p in path.iterdir() if p.name.upper() != "DICOMDIR" and is_dicom(p)), key=natural_order)


def _dicomdir_series(path: Path) -> list[Path]:
    """The image files a DICOMDIR lists, which must be of one series."""
    import pydicom
    from pydicom.fileset import FileSet
    fs = FileSet(pydicom.dcmread(path))
    series = fs.find_values("SeriesInstanceUID")
    if len(series) != 1:
        listing = "; ".join(f"{uid} ({len(fs.find(SeriesInstanceUID=uid))} images)" for uid in series)
        raise FormatError(f"{path}: this DICOMDIR lists {len(series)} series{': ' + listing if series else ''}; "
                       "pass the folder or file of one series")
    return sorted((Path(instance.path) for instance in fs.find(SeriesInstanceUID=series[0])), key=natural_order)


def read_dicom_volume(path: Path) -> RawVolume:
    """A DICOM series (folder or DICOMDIR) or one multi-frame file, sorted and reoriented to RAS+."""
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
    array, spacing, affine = ras_zyx(volume.transpose(2, 1, 0), affine)
    hu = True if ds0.get("Modality") == "CT" else None
    return RawVolume(array, spacing, hu, None if rescaled else 2.0 ** int(ds0.BitsStored) - 1, affine)


def _dicom_frames(path: Path) -> list:
    """``(dataset, frame index, pixels)`` for every slice of one series, all of one size."""
    import pydicom
    if path.is_dir() or _is_dicomdir(path):
        files = dicom_files(path)
        if not files:
            raise FormatError(f"{path}: holds no DICOM files")
        datasets = [pydicom.dcmread(p) for p in files]
        series = {ds.get("SeriesInstanceUID") for ds in datasets}
        if len(series) > 1:
            raise FormatError(f"{path}: holds {len(series)} DICOM series; put each in its own directory")
        frames = [(ds, 0, ds.pixel_array) for ds in datasets]
    else:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
        frames = [(ds, i, f) for i, f in enumerate(pixels if int(ds.get("NumberOfFrames", 1) or 1) > 1
                                                   else pixels[None])]
    shapes = {f.shape for _, _, f in frames}
    if len(shapes) > 1:
        raise FormatError(f"{path}: DICOM slices differ in size: {sorted(shapes)}")
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
            raise FormatError(f"{path}: DICOM slices share a position; is more than one series here?")
        if len(gaps) and gaps.max() - gaps.min() > 0.01 * gaps.mean() + 1e-3:
            raise FormatError(f"{path}: DICOM slices are unevenly spaced "
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



def read_dicom_radiograph(path: Path, frame: int | None = None):
    """A DICOM radiograph: monochrome data through modality and VOI LUTs, scaled, bone bright.

    A multi-frame file needs ``frame`` (0-based) to say which frame is the x-ray.
    """
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut, pixel_array
    ds = pydicom.dcmread(path)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frame is None and frames > 1:
        raise FormatError(f"{path}: holds {frames} frames; choose the x-ray with frame= "
                       f"(xtomo reconstruct --frame N), 0 to {frames - 1}")
    if frame is not None and not (isinstance(frame, int) and 0 <= frame < frames):
        raise FormatError(f"{path}: frame {frame!r} does not exist; the file holds {frames} frame(s), "
                       f"0 to {frames - 1}")
    pixels = pixel_array(ds, index=frame) if frames > 1 else ds.pixel_array
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
        raise FormatError(f"{path}: pixel values outside the {bits}-bit range that Bits Stored declares")
    return (1.0 - v if interpretation == "MONOCHROME1" else v).astype(np.float32), None




def _positive(values) -> tuple[float, float] | None:
    """Two positive spacings (row, column) from a DICOM value, or None (absent, zero, malformed)."""
    try:
        row, col = (float(v) for v in values)
    except (TypeError, ValueError):
        return None
    return (row, col) if row > 0 and col > 0 else None


def dicom_pixel_size(path) -> tuple[tuple[float, float], str] | None:
    """The (row, column) pixel size in mm at the object of a DICOM radiograph, and the attributes it
    came from; None for another file or a DICOM that does not say.

    PixelSpacing is already calibrated to the object; ImagerPixelSpacing is the detector's, so it is
    divided by the magnification, EstimatedRadiographicMagnificationFactor or else source-detector
    over source-object distance (SID / SOD), and taken as it is when neither is known.
    """
    import pydicom
    path = Path(path)
    if not is_dicom(path):
        return None
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    calibrated = _positive(ds.get("PixelSpacing"))
    if calibrated is not None:
        return calibrated, "PixelSpacing"
    detector = _positive(ds.get("ImagerPixelSpacing"))
    if detector is None:
        return None
    sid, sod = (float(ds.get(name) or 0) for name in ("DistanceSourceToDetector", "DistanceSourceToPatient"))
    factor = float(ds.get("EstimatedRadiographicMagnificationFactor") or 0)
    if factor > 0:
        source = "ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor"
    elif sid > 0 and sod > 0:
        factor, source = sid / sod, "ImagerPixelSpacing / (DistanceSourceToDetector / DistanceSourceToPatient)"
    else:
        factor, source = 1.0, "ImagerPixelSpacing"
    return (detector[0] / factor, detector[1] / factor), source
