"""MetaImage and NRRD in: the volume files that ITK tools, 3D Slicer and ITK-SNAP write.

Both are a short text header and the voxels as raw bytes, in the same file (``.mha``, ``.nrrd``)
or in one or more data files beside it (``.mhd``, ``.nhdr``), raw or deflated (MetaImage
``CompressedData``, NRRD ``encoding: gzip``). Read with numpy alone. Their world frame is
patient LPS (MetaImage, as ITK's) or the NRRD's ``space``; both are turned into the RAS+ frame of
the NIfTI path (``formats.ras_zyx``), so one volume saved as NIfTI, MetaImage or NRRD loads as one
cube with one affine. What a header claims is checked against the bytes there are before
anything of that size is allocated (``formats.check_claim``, ``formats.inflate``). Called by
``formats``; a malformed file raises ``ValueError`` naming it and the problem.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from xtomo.data.formats import FormatError, RawVolume, check_claim, inflate, ras_zyx

__all__ = ["METAIMAGE_TYPES", "NRRD_TYPES", "NRRD_SPACES", "read_metaimage", "read_nrrd"]

METAIMAGE_TYPES = {"MET_CHAR": "i1", "MET_UCHAR": "u1", "MET_SHORT": "i2", "MET_USHORT": "u2", "MET_INT": "i4",
                   "MET_UINT": "u4", "MET_LONG_LONG": "i8", "MET_ULONG_LONG": "u8", "MET_FLOAT": "f4",
                   "MET_DOUBLE": "f8"}
"""MetaImage ``ElementType`` to numpy type (byte order from ``BinaryDataByteOrderMSB``)."""


def _aliases(code: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, code)


NRRD_TYPES = {**_aliases("i1", "signed char", "int8", "int8_t"),
              **_aliases("u1", "uchar", "unsigned char", "uint8", "uint8_t"),
              **_aliases("i2", "short", "short int", "signed short", "signed short int", "int16", "int16_t"),
              **_aliases("u2", "ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"),
              **_aliases("i4", "int", "signed int", "int32", "int32_t"),
              **_aliases("u4", "uint", "unsigned int", "uint32", "uint32_t"),
              **_aliases("i8", "longlong", "long long", "long long int", "signed long long",
                         "signed long long int", "int64", "int64_t"),
              **_aliases("u8", "ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t"),
              "float": "f4", "double": "f8"}
"""NRRD ``type`` (every spelling the format allows) to numpy type."""

NRRD_SPACES = {**_aliases("RAS", "right-anterior-superior", "ras"), **_aliases("LAS", "left-anterior-superior", "las"),
               **_aliases("LPS", "left-posterior-superior", "lps"),
               **_aliases("XYZ", "scanner-xyz", "3d-right-handed")}
"""NRRD ``space`` to its frame; scanner-xyz and 3D-right-handed, which name no anatomy, are taken as RAS."""

_TO_RAS = {"RAS": (1.0, 1.0, 1.0), "XYZ": (1.0, 1.0, 1.0), "LAS": (-1.0, 1.0, 1.0), "LPS": (-1.0, -1.0, 1.0)}
_MAX_HEADER = 1 << 20  # bytes: a text header is a few hundred


# ---------------------------------------------------------------------------------------------
# MetaImage

def read_metaimage(path: Path) -> RawVolume:
    """A 3-D, one-channel MetaImage (``.mha`` with ``ElementDataFile = LOCAL``, or a ``.mhd`` header and
    its data files: one name, ``LIST`` or a ``%d`` pattern), reoriented from LPS to RAS+."""
    with open(path, "rb") as fh:
        lines = _header_lines(path, fh, lambda line: _key(line, "=") == "elementdatafile", "MetaImage")
        start, rest = fh.tell(), None
        fields = _fields(path, lines, "=", "MetaImage")
        if fields.get("elementdatafile", "").upper().startswith("LIST"):
            rest = fh.read(_MAX_HEADER).decode("latin-1").split()
    need = _need(path, fields, "MetaImage")
    if int(_numbers(path, need("NDims"), 1, "NDims")[0]) != 3:
        raise FormatError(f"{path}: expected a 3-D MetaImage, got NDims = {fields['ndims']}")
    sizes = _sizes(path, need("DimSize"), "DimSize")
    if fields.get("elementnumberofchannels", "1").strip() != "1":
        raise FormatError(f"{path}: expected one channel, got ElementNumberOfChannels = "
                          f"{fields['elementnumberofchannels']}")
    kind = need("ElementType").upper()
    if kind not in METAIMAGE_TYPES:
        raise FormatError(f"{path}: unknown ElementType {kind!r}; expected one of {', '.join(METAIMAGE_TYPES)}")
    if not _flag(path, fields, "BinaryData", True):
        raise FormatError(f"{path}: BinaryData = False (numbers as text) is not read; expected binary data")
    msb = _flag(path, fields, "BinaryDataByteOrderMSB", _flag(path, fields, "ElementByteOrderMSB", False))
    dtype = np.dtype(METAIMAGE_TYPES[kind]).newbyteorder(">" if msb else "<")
    spacing = _numbers(path, _first(fields, "elementspacing", "elementsize") or "1 1 1", 3, "ElementSpacing",
                       positive=True)
    origin = _numbers(path, _first(fields, "offset", "position", "origin") or "0 0 0", 3, "Offset")
    matrix = _numbers(path, _first(fields, "transformmatrix", "rotation", "orientation") or "1 0 0 0 1 0 0 0 1",
                      9, "TransformMatrix")
    directions = _directions(path, np.reshape(matrix, (3, 3)), "TransformMatrix")  # a row per axis, as ITK reads it
    files = _data_files(path, need("ElementDataFile"), rest, local="LOCAL")
    skip = int(_numbers(path, fields.get("headersize", "0"), 1, "HeaderSize")[0])
    compressed = _flag(path, fields, "CompressedData", False)
    sources = [(f, start if f == path else 0) for f in files]
    array = _voxels(path, sources, sizes, dtype, compressed, byte_skip=0 if files == [path] else skip)
    return _placed(array, directions * spacing[:, None], origin, "LPS")


# ---------------------------------------------------------------------------------------------
# NRRD

def read_nrrd(path: Path) -> RawVolume:
    """A 3-D NRRD (``.nrrd`` with the data attached, or a ``.nhdr`` and its data files), raw or gzip,
    placed by its ``space``, ``space directions`` (else ``spacings``) and ``space origin``."""
    with open(path, "rb") as fh:
        magic = fh.readline(16)
        if not magic.startswith(b"NRRD000"):
            raise FormatError(f"{path}: not a NRRD file: it does not start with NRRD000x")
        lines = _header_lines(path, fh, lambda line: not line.strip(), "NRRD")
        start = fh.tell()
    names = _nrrd_list(lines)
    fields = _fields(path, [line for line in lines if not line.startswith("#") and ":=" not in line], ": ", "NRRD")
    need = _need(path, fields, "NRRD")
    if need("dimension").strip() != "3":
        raise FormatError(f"{path}: expected a 3-D NRRD, got dimension {fields['dimension']}")
    sizes = _sizes(path, need("sizes"), "sizes")
    kind = " ".join(need("type").lower().split())
    if kind not in NRRD_TYPES:
        raise FormatError(f"{path}: unknown NRRD type {fields['type']!r}; expected one of signed char, uchar, short, "
                          "ushort, int, uint, longlong, ulonglong, float, double (or another spelling of these)")
    encoding = {"gz": "gzip"}.get(need("encoding").lower(), fields["encoding"].lower())
    if encoding not in ("raw", "gzip"):
        raise FormatError(f"{path}: NRRD encoding {fields['encoding']!r} is not read; expected raw or gzip")
    dtype = np.dtype(NRRD_TYPES[kind])
    if dtype.itemsize > 1:
        endian = need("endian").lower()
        if endian not in ("little", "big"):
            raise FormatError(f"{path}: endian must be little or big, got {endian!r}")
        dtype = dtype.newbyteorder("<" if endian == "little" else ">")
    frame, directions = _nrrd_frame(path, fields)
    origin = _vectors(path, fields["space origin"], 1, "space origin")[0] if "space origin" in fields else np.zeros(3)
    data = _first(fields, "data file", "datafile")
    files = [path] if data is None else _data_files(path, data, names)
    sources = [(f, start if f == path else 0) for f in files]
    line_skip = int(_numbers(path, fields.get("line skip", fields.get("lineskip", "0")), 1, "line skip")[0])
    byte_skip = int(_numbers(path, fields.get("byte skip", fields.get("byteskip", "0")), 1, "byte skip")[0])
    if encoding == "gzip" and byte_skip:
        raise FormatError(f"{path}: byte skip with gzip encoding is not read")
    array = _voxels(path, sources, sizes, dtype, encoding == "gzip", byte_skip=byte_skip, line_skip=line_skip)
    return _placed(array, directions, origin, frame)


def _nrrd_frame(path: Path, fields: dict) -> tuple[str, np.ndarray]:
    """The NRRD's frame (``NRRD_SPACES``) and its axes' steps in it, a row per axis."""
    if "space directions" not in fields:
        spacings = _numbers(path, fields.get("spacings", "1 1 1"), 3, "spacings", positive=True)
        return "XYZ", np.diag(spacings)
    space = fields.get("space")
    if space is None and "space dimension" not in fields:
        raise FormatError(f"{path}: 'space directions' without a 'space' or 'space dimension' field")
    frame = "XYZ" if space is None else NRRD_SPACES.get(space.lower())
    if frame is None:
        raise FormatError(f"{path}: NRRD space {space!r} is not read; expected one of "
                          f"{', '.join(sorted(set(NRRD_SPACES) - set(map(str.lower, _TO_RAS))))}")
    if "none" in fields["space directions"].lower().split():
        raise FormatError(f"{path}: an axis without a space direction (none): expected 3 spatial axes, "
                          f"got {fields['space directions']!r}")
    return frame, _directions(path, _vectors(path, fields["space directions"], 3, "space directions"),
                              "space directions")


def _nrrd_list(lines: list[str]) -> list[str] | None:
    """The data files listed after ``data file: LIST`` (the header's last field), removed from ``lines``."""
    for i, line in enumerate(lines):
        key, _, value = line.partition(":")
        if key.strip().lower() in ("data file", "datafile") and value.strip().upper().startswith("LIST"):
            names = [n.strip() for n in lines[i + 1:] if n.strip()]
            del lines[i + 1:]
            return names
    return None


# ---------------------------------------------------------------------------------------------
# shared

def _header_lines(path: Path, fh, last, name: str) -> list[str]:
    """The text lines of a header up to the one ``last`` says ends it (or the end of the file)."""
    lines, total = [], 0
    while True:
        raw = fh.readline(_MAX_HEADER)
        if not raw:
            return lines
        total += len(raw)
        if total > _MAX_HEADER:
            raise FormatError(f"{path}: no end of the {name} header in its first {_MAX_HEADER:,} bytes")
        line = raw.decode("latin-1").rstrip("\r\n")
        lines.append(line)
        if last(line):
            return lines


def _key(line: str, separator: str) -> str:
    return line.partition(separator)[0].strip().lower()


def _fields(path: Path, lines: list[str], separator: str, name: str) -> dict[str, str]:
    fields = {}
    for line in lines:
        if not line.strip():
            continue
        key, sep, value = line.partition(separator)
        if not sep or not key.strip():
            raise FormatError(f"{path}: not a {name} header line: {line[:80]!r}")
        fields[" ".join(key.lower().split())] = value.strip()
    return fields


def _need(path: Path, fields: dict, name: str):
    def need(key: str) -> str:
        if key.lower() not in fields:
            raise FormatError(f"{path}: the {name} header has no {key} field")
        return fields[key.lower()]
    return need


def _first(fields: dict, *keys: str) -> str | None:
    return next((fields[k] for k in keys if k in fields), None)


def _flag(path: Path, fields: dict, key: str, default: bool) -> bool:
    value = fields.get(key.lower())
    if value is None:
        return default
    if value.lower() not in ("true", "false", "1", "0"):
        raise FormatError(f"{path}: {key} must be True or False, got {value!r}")
    return value.lower() in ("true", "1")


def _numbers(path: Path, text: str, count: int, name: str, positive: bool = False) -> np.ndarray:
    try:
        values = np.array([float(v) for v in text.split()])
    except ValueError:
        values = np.array([])
    if values.size != count or not np.isfinite(values).all() or (positive and not (values > 0).all()):
        raise FormatError(f"{path}: {name} must be {count} finite{' positive' if positive else ''} "
                          f"number{'s' if count > 1 else ''}, got {text!r}")
    return values


def _sizes(path: Path, text: str, name: str) -> tuple[int, int, int]:
    """The (x, y, z) voxel counts, x fastest in the data."""
    values = _numbers(path, text, 3, name, positive=True)
    if not (values == np.round(values)).all():
        raise FormatError(f"{path}: {name} must be 3 positive whole numbers, got {text!r}")
    return tuple(int(v) for v in values)


def _vectors(path: Path, text: str, count: int, name: str) -> np.ndarray:
    """``count`` vectors written ``(a,b,c)``, a row each."""
    found = re.findall(r"\(([^()]*)\)", text)
    if len(found) != count:
        raise FormatError(f"{path}: {name} must be {count} vector{'s' if count > 1 else ''} (x,y,z), got {text!r}")
    return np.array([_numbers(path, v.replace(",", " "), 3, name) for v in found])


def _directions(path: Path, rows: np.ndarray, name: str) -> np.ndarray:
    if abs(np.linalg.det(rows)) < 1e-12 * max(np.abs(rows).max(), 1e-300) ** 3:
        raise FormatError(f"{path}: {name} does not hold 3 independent directions: {rows.tolist()}")
    return rows


def _data_files(path: Path, value: str, listed: list[str] | None, local: str | None = None) -> list[Path]:
    """The data files a header names: itself (``local``), one file, a ``LIST`` or a ``%d`` pattern."""
    if local is not None and value.upper() == local:
        return [path]
    tokens = value.split()
    if tokens and tokens[0].upper() == "LIST":
        names = listed or []
        if not names:
            raise FormatError(f"{path}: its data file LIST names no file")
    elif len(tokens) >= 4 and "%" in tokens[0]:
        try:
            first, last, step = (int(t) for t in tokens[1:4])
            names = [tokens[0] % i for i in range(first, last + (1 if step > 0 else -1), step)]
        except (ValueError, TypeError):
            raise FormatError(f"{path}: a data file pattern is 'NAME%d FIRST LAST STEP', got {value!r}") from None
    else:
        names = [value]
    files = [path.parent / n for n in names]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FormatError(f"{path}: its data file {missing[0]} is missing"
                          + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return files


def _voxels(path: Path, sources, sizes, dtype: np.dtype, compressed: bool, *, byte_skip: int = 0,
            line_skip: int = 0) -> np.ndarray:
    """The voxels ``[z, y, x]`` in native byte order, from the data of ``(file, offset)`` sources in
    turn, after ``line_skip`` lines and ``byte_skip`` bytes (-1: the data end the file)."""
    shape = sizes[::-1]
    per_file, left = divmod(int(np.prod(shape, dtype=object)), len(sources))
    if left:
        raise FormatError(f"{path}: {len(sources)} data files cannot share {shape} voxels equally")
    starts = []
    for file, offset in sources:
        with open(file, "rb") as fh:
            fh.seek(offset)
            for _ in range(line_skip):
                fh.readline(_MAX_HEADER)
            start = fh.tell()
        size = file.stat().st_size
        starts.append(size - per_file * dtype.itemsize if byte_skip == -1 and not compressed else start + byte_skip)
    if byte_skip < -1 or (byte_skip == -1 and compressed) or any(s < 0 for s in starts):
        raise FormatError(f"{path}: cannot skip {byte_skip} bytes (HeaderSize or byte skip) in its data")
    if line_skip < 0:
        raise FormatError(f"{path}: line skip must be 0 or more, got {line_skip}")
    held = [f.stat().st_size - s for (f, _), s in zip(sources, starts)]
    claimed = check_claim(path, sizes, dtype, sum(held), compressed=compressed,
                          size=sum(f.stat().st_size for f, _ in sources))
    uneven = [(f, h) for (f, _), h in zip(sources, held) if not compressed and h != claimed // len(sources)]
    if uneven:
        raise FormatError(f"{path}: its data file {uneven[0][0]} holds {uneven[0][1]:,} bytes of data, "
                          f"expected {claimed // len(sources):,}")
    parts = []
    for (file, _), start in zip(sources, starts):
        with open(file, "rb") as fh:
            fh.seek(start)
            if compressed:
                parts.append(np.frombuffer(inflate(path, fh, (per_file,) if len(sources) > 1 else sizes, dtype),
                                           dtype))
            else:
                parts.append(np.fromfile(fh, dtype, count=per_file))
    array = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return array.astype(dtype.newbyteorder("="), copy=False).reshape(shape)


def _placed(array: np.ndarray, steps: np.ndarray, origin, frame: str) -> RawVolume:
    """The ``[z, y, x]`` voxels with their axes' steps (a row per axis) and origin in ``frame``,
    reoriented to RAS+ as NIfTI volumes are."""
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(steps).T
    affine[:3, 3] = origin
    affine = np.diag([*_TO_RAS[frame], 1.0]) @ affine
    data, spacing, affine = ras_zyx(array.transpose(2, 1, 0), affine)
    return RawVolume(data, spacing, None, None, affine)
