"""MetaImage (.mha, .mhd) and NRRD (.nrrd, .nhdr): one volume written as NIfTI and in every
variant of both formats loads as the same cube with the same affine; every type and byte order
reads; every malformed header is one line naming the file and the problem."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from xtomo.cli import main
from xtomo.data import formats, io, itkfiles

SHAPE_IJK = (14, 11, 9)   # x, y, z voxel counts: x fastest in every file
LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def ct_volume(dtype=np.int16) -> np.ndarray:
    """A CT-like (x, y, z) array: air, a dense off-centre blob and a thin plate, some noise."""
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in SHAPE_IJK), indexing="ij")
    blob = ((x - 0.2) ** 2 + (y + 0.1) ** 2 + (z * 1.2) ** 2) < 0.45
    plate = (np.abs(x + 0.5) < 0.12) & (np.abs(z) < 0.7)
    noise = np.random.default_rng(3).integers(0, 40, SHAPE_IJK)
    return (np.where(blob, 1400, -1000) + np.where(plate, 900, 0) + noise).astype(dtype)


def oblique_affine() -> np.ndarray:
    """Voxel (i, j, k) to RAS mm: anisotropic voxels, axes permuted and flipped, turned 20 degrees."""
    angle = np.radians(20.0)
    turn = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    permute = np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float)   # i -> A, j -> -S, k -> -R
    affine = np.eye(4)
    affine[:3, :3] = turn @ permute @ np.diag([0.7, 0.95, 1.6])
    affine[:3, 3] = (-41.5, 12.25, 7.0)
    return affine


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Save, and return the affine as the file holds it (single precision) for the other formats."""
    nib.save(nib.Nifti1Image(data, affine), path)
    return nib.load(path).affine


def _text(values, separator=" ") -> str:
    return separator.join(repr(float(v)) for v in values)


def _raw(data: np.ndarray, big: bool) -> bytes:
    return data.astype(data.dtype.newbyteorder(">" if big else "<")).tobytes(order="F")


def write_metaimage(path: Path, data: np.ndarray, affine: np.ndarray, *, compressed=False, big=False,
                    element_type="MET_SHORT", data_file: str | None = None, **override) -> Path:
    """A MetaImage as ITK writes it: LPS world, TransformMatrix a row per axis; ``.mhd`` beside
    ``data_file`` (default: the name with ``.raw``/``.zraw``)."""
    world = LPS @ affine
    spacing = np.sqrt((world[:3, :3] ** 2).sum(axis=0))
    payload = _raw(data, big)
    payload = zlib.compress(payload) if compressed else payload
    fields = {"ObjectType": "Image", "NDims": "3", "BinaryData": "True", "BinaryDataByteOrderMSB": str(big),
              "CompressedData": str(compressed),
              "TransformMatrix": _text((world[:3, :3] / spacing).T.ravel()),
              "Offset": _text(world[:3, 3]), "CenterOfRotation": "0 0 0",
              "AnatomicalOrientation": "RAI", "ElementSpacing": _text(spacing),
              "DimSize": " ".join(map(str, data.shape)), "ElementType": element_type}
    if compressed:
        fields["CompressedDataSize"] = str(len(payload))
    fields.update(override)
    detached = path.suffix == ".mhd"
    name = data_file or path.with_suffix(".zraw" if compressed else ".raw").name
    fields.setdefault("ElementDataFile", name if detached else "LOCAL")
    header = "".join(f"{k} = {v}\n" for k, v in fields.items() if v is not None).encode()
    if detached:
        path.write_bytes(header)
        (path.parent / name).write_bytes(payload)
    else:
        path.write_bytes(header + payload)
    return path


def write_nrrd(path: Path, data: np.ndarray, affine: np.ndarray, *, encoding="raw", big=False, space="LPS",
               kind="short", **override) -> Path:
    """A NRRD as 3D Slicer writes it (``.nhdr``: data in ``<name>.raw`` or ``.raw.gz`` beside it)."""
    world = (LPS if space in ("LPS", "left-posterior-superior") else np.eye(4)) @ affine
    payload = _raw(data, big)
    payload = gzip.compress(payload) if encoding == "gzip" else payload
    vectors = " ".join("(" + _text(world[:3, i], ",") + ")" for i in range(3))
    fields = {"type": kind, "dimension": "3", "space": space, "sizes": " ".join(map(str, data.shape)),
              "space directions": vectors, "kinds": "domain domain domain", "endian": "big" if big else "little",
              "encoding": encoding, "space origin": "(" + _text(world[:3, 3], ",") + ")"}
    fields.update(override)
    detached = path.suffix == ".nhdr"
    if detached and "data file" not in fields:
        fields["data file"] = path.with_suffix(".raw.gz" if encoding == "gzip" else ".raw").name
    header = ("NRRD0004\n# written by the tests\n"
              + "".join(f"{k}: {v}\n" for k, v in fields.items() if v is not None)).encode()
    if detached:
        path.write_bytes(header)
        (path.parent / fields["data file"]).write_bytes(payload)
    else:
        path.write_bytes(header + b"\n" + payload)
    return path


def one_line_error(path: Path, pattern: str, **kwargs) -> str:
    """The error ``io.load_volume(path)`` raises: one line, naming the file, matching ``pattern``."""
    with pytest.raises(ValueError, match=pattern) as caught:
        io.load_volume(path, size=8, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path)), message
    return message


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("formats")
    data = ct_volume()
    affine = write_nifti(folder / "v.nii.gz", data, oblique_affine())
    return folder, data, affine, io.load_volume_affine(folder / "v.nii.gz", size=24)


VARIANTS = {
    "mha": lambda f, d, a: write_metaimage(f / "v.mha", d, a),
    "mha-zlib": lambda f, d, a: write_metaimage(f / "vz.mha", d, a, compressed=True),
    "mha-big-endian": lambda f, d, a: write_metaimage(f / "vb.mha", d, a, big=True),
    "mhd+raw": lambda f, d, a: write_metaimage(f / "v.mhd", d, a),
    "mhd+zraw-big-endian": lambda f, d, a: write_metaimage(f / "vzb.mhd", d, a, compressed=True, big=True),
    "nrrd-lps": lambda f, d, a: write_nrrd(f / "v.nrrd", d, a),
    "nrrd-gzip-ras": lambda f, d, a: write_nrrd(f / "vg.nrrd", d, a, encoding="gzip", space="RAS"),
    "nrrd-big-endian": lambda f, d, a: write_nrrd(f / "vb.nrrd", d, a, big=True, space="left-posterior-superior"),
    "nhdr+raw-ras": lambda f, d, a: write_nrrd(f / "v.nhdr", d, a, space="right-anterior-superior"),
    "nhdr+gzip": lambda f, d, a: write_nrrd(f / "vg.nhdr", d, a, encoding="gzip", kind="int16"),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_gives_the_nifti_cube_and_affine(variant, reference, tmp_path):
    folder, data, affine, (cube, cube_affine) = reference
    path = VARIANTS[variant](tmp_path, data, affine)
    got, got_affine = io.load_volume_affine(path, size=24)
    np.testing.assert_allclose(got_affine, cube_affine, atol=1e-5)
    np.testing.assert_allclose(got.numpy(), cube.numpy(), atol=1e-5)
    assert got.numpy().max() > 0.5   # the blob is there: not two empty cubes agreeing


def test_the_same_voxels_land_in_the_same_places(reference, tmp_path):
    """Read as stored (no resampling): the reoriented arrays and affines agree voxel for voxel, and
    each voxel's world position is where the NIfTI affine puts it."""
    folder, data, affine, _ = reference
    nifti = formats.read_volume(folder / "v.nii.gz")
    for path in (write_metaimage(tmp_path / "v.mha", data, affine), write_nrrd(tmp_path / "v.nhdr", data, affine)):
        raw = formats.read_volume(path)
        np.testing.assert_array_equal(raw.array, nifti.array)
        np.testing.assert_allclose(raw.affine, nifti.affine, atol=1e-5)
        np.testing.assert_allclose(raw.spacing, nifti.spacing, atol=1e-6)
    first = nifti.affine @ [0, 0, 0, 1]   # the reoriented array's voxel (0, 0, 0) is some corner of the file's
    corners = [affine @ [i, j, k, 1] for i in (0, SHAPE_IJK[0] - 1) for j in (0, SHAPE_IJK[1] - 1)
               for k in (0, SHAPE_IJK[2] - 1)]
    assert min(np.abs(c - first).max() for c in corners) < 1e-4


@pytest.mark.parametrize("element_type, nrrd_type, dtype", [
    ("MET_UCHAR", "uchar", np.uint8), ("MET_CHAR", "signed char", np.int8), ("MET_USHORT", "unsigned short", np.uint16),
    ("MET_SHORT", "short int", np.int16), ("MET_UINT", "uint32_t", np.uint32), ("MET_INT", "int", np.int32),
    ("MET_FLOAT", "float", np.float32), ("MET_DOUBLE", "double", np.float64)])
@pytest.mark.parametrize("big", [False, True])
def test_every_type_and_byte_order(element_type, nrrd_type, dtype, big, tmp_path):
    data = (np.random.default_rng(5).random(SHAPE_IJK) * 100).astype(dtype)
    affine = np.diag([0.5, 0.5, 2.0, 1.0])
    expected = data.transpose(2, 1, 0)   # RAS already: stored (z, y, x)
    for path in (write_metaimage(tmp_path / "t.mha", data, affine, big=big, element_type=element_type,
                                 compressed=big),
                 write_nrrd(tmp_path / "t.nrrd", data, affine, big=big, kind=nrrd_type, space="RAS")):
        raw = formats.read_volume(path)
        assert raw.array.dtype == np.dtype(dtype) and raw.array.dtype.isnative
        np.testing.assert_array_equal(raw.array, expected)
        assert raw.spacing == pytest.approx((2.0, 0.5, 0.5))


def test_without_a_frame_the_axes_are_kept(tmp_path):
    """No TransformMatrix: ITK's identity, in LPS (x and y turn round in RAS); NRRD with only
    ``spacings``: the axes as they are, the voxel sizes kept."""
    data = ct_volume()
    mha = formats.read_volume(write_metaimage(tmp_path / "v.mha", data, np.eye(4), TransformMatrix=None,
                                              Offset=None, ElementSpacing="0.5 0.6 0.7"))
    np.testing.assert_array_equal(mha.array, data[::-1, ::-1].transpose(2, 1, 0))
    assert mha.spacing == pytest.approx((0.7, 0.6, 0.5))
    nrrd = formats.read_volume(write_nrrd(tmp_path / "v.nrrd", data, np.eye(4), space=None, spacings="0.5 0.6 0.7",
                                          **{"space directions": None, "space origin": None}))
    np.testing.assert_array_equal(nrrd.array, data.transpose(2, 1, 0))
    assert nrrd.spacing == pytest.approx((0.7, 0.6, 0.5))


def test_data_split_over_files(tmp_path):
    """A MetaImage LIST and a NRRD file-name pattern: one file per z slice, read in order."""
    data = ct_volume()
    for k in range(SHAPE_IJK[2]):
        (tmp_path / f"slice{k:02d}.raw").write_bytes(_raw(data[:, :, k], False))
    header = write_metaimage(tmp_path / "list.mhd", data, np.eye(4), data_file="unused.raw").read_text()
    listing = "\n".join(f"slice{k:02d}.raw" for k in range(SHAPE_IJK[2]))
    (tmp_path / "list.mhd").write_text(header.replace("ElementDataFile = unused.raw", "ElementDataFile = LIST 2D\n"
                                                      + listing))
    reference = formats.read_volume(write_metaimage(tmp_path / "one.mha", data, np.eye(4)))
    np.testing.assert_array_equal(formats.read_volume(tmp_path / "list.mhd").array, reference.array)
    write_nrrd(tmp_path / "pattern.nhdr", data, np.eye(4), **{"data file": f"slice%02d.raw 0 {SHAPE_IJK[2] - 1} 1 2"})
    assert (tmp_path / "pattern.nhdr").read_text().count("data file") == 1
    np.testing.assert_array_equal(formats.read_volume(tmp_path / "pattern.nhdr").array,
                                  formats.read_volume(write_nrrd(tmp_path / "one.nrrd", data, np.eye(4))).array)


def test_detached_data_after_a_header_size(tmp_path):
    """HeaderSize: the bytes before the voxels in a data file; -1: the voxels end the file."""
    data = ct_volume()
    expected = formats.read_volume(write_metaimage(tmp_path / "w.mha", data, np.eye(4))).array
    for skip in ("-1", "23"):
        path = write_metaimage(tmp_path / "v.mhd", data, np.eye(4), HeaderSize=skip)
        (tmp_path / "v.raw").write_bytes(b"a 23-byte preamble here" + _raw(data, False))
        np.testing.assert_array_equal(formats.read_volume(path).array, expected)
    one_line_error(write_metaimage(tmp_path / "v.mhd", data, np.eye(4), HeaderSize="-2"), "cannot skip -2 bytes")


def _mha(folder: Path, name="bad.mha", **override) -> Path:
    return write_metaimage(folder / name, ct_volume(), oblique_affine(), **override)


def _nrrd(folder: Path, name="bad.nrrd", **override) -> Path:
    return write_nrrd(folder / name, ct_volume(), oblique_affine(), **override)


def _cut(path: Path, keep: int) -> Path:
    path.write_bytes(path.read_bytes()[:keep])
    return path


def _pad(path: Path, extra: bytes) -> Path:
    path.write_bytes(path.read_bytes() + extra)
    return path


MALFORMED = {
    "mha unknown type": (lambda f: _mha(f, ElementType="MET_FLOAT_MATRIX"), "unknown ElementType 'MET_FLOAT_MATRIX'"),
    "mha no DimSize": (lambda f: _mha(f, DimSize=None), "has no DimSize field"),
    "mha 4-D": (lambda f: _mha(f, NDims="4"), "expected a 3-D MetaImage, got NDims = 4"),
    "mha bad DimSize": (lambda f: _mha(f, DimSize="14 eleven 9"), "DimSize must be 3 finite positive numbers"),
    "mha fractional DimSize": (lambda f: _mha(f, DimSize="14 11.5 9"), "DimSize must be 3 positive whole numbers"),
    "mha zero spacing": (lambda f: _mha(f, ElementSpacing="0.7 0 1.6"), "ElementSpacing must be 3 finite positive"),
    "mha nan offset": (lambda f: _mha(f, Offset="1 nan 2"), "Offset must be 3 finite numbers"),
    "mha flat matrix": (lambda f: _mha(f, TransformMatrix="1 0 0 1 0 0 0 0 1"), "not hold 3 independent directions"),
    "mha channels": (lambda f: _mha(f, ElementNumberOfChannels="3"), "expected one channel"),
    "mha text data": (lambda f: _mha(f, BinaryData="False"), "BinaryData = False"),
    "mha bad flag": (lambda f: _mha(f, CompressedData="maybe"), "CompressedData must be True or False"),
    "mha short data": (lambda f: _cut(_mha(f), -100), r"claims shape \(14, 11, 9\) of int16 \(2,772 bytes\), "
                                                      r"but the file holds 2,672 bytes"),
    "mha long data": (lambda f: _pad(_mha(f), b"\0\0"), "but the file holds 2,774 bytes of data"),
    "mha short zlib": (lambda f: _cut(_mha(f, compressed=True), -20), "compressed data hold .* and end early"),
    "mha long zlib": (lambda f: _mha(f, compressed=True, DimSize="14 11 8"),
                      r"\(2,464 bytes\), but its compressed data hold more"),
    "mhd missing raw": (lambda f: _without(_mha(f, "bad.mhd"), "bad.raw"), "data file .*bad.raw is missing"),
    "mha no data line": (lambda f: _mha(f, "bad.mha", ElementDataFile=None), "has no ElementDataFile"),
    "nrrd magic": (lambda f: _pad(_cut(_nrrd(f), 0), b"NRRX0004\ntype: short\n"), "not a NRRD file"),
    "nrrd 4-D": (lambda f: _nrrd(f, dimension="4"), "expected a 3-D NRRD, got dimension 4"),
    "nrrd block": (lambda f: _nrrd(f, kind="block"), "unknown NRRD type 'block'"),
    "nrrd bzip2": (lambda f: _nrrd(f, encoding="bzip2"), "encoding 'bzip2' is not read"),
    "nrrd no endian": (lambda f: _nrrd(f, endian=None), "has no endian field"),
    "nrrd no sizes": (lambda f: _nrrd(f, sizes=None), "has no sizes field"),
    "nrrd sizes": (lambda f: _nrrd(f, sizes="14 11"), "sizes must be 3 finite positive numbers"),
    "nrrd none axis": (lambda f: _nrrd(f, **{"space directions": "none (1,0,0) (0,1,0)"}), "without a space direction"),
    "nrrd vectors": (lambda f: _nrrd(f, **{"space directions": "(1,0,0) (0,1,0)"}), "space directions must be 3"),
    "nrrd space": (lambda f: _nrrd(f, space="right-anterior-superior-time"), "space 'right-anterior-superior-time'"),
    "nrrd no space": (lambda f: _nrrd(f, space=None), "'space directions' without a 'space'"),
    "nrrd short raw": (lambda f: _cut(_nrrd(f), -1), "but the file holds 2,771 bytes of data"),
    "nrrd long gzip": (lambda f: _nrrd(f, encoding="gzip", sizes="14 11 2"),
                       r"\(616 bytes\), but its compressed data hold more"),
    "nhdr missing data": (lambda f: _without(_nrrd(f, "bad.nhdr"), "bad.raw"), "data file .*bad.raw is missing"),
    "nhdr bad line": (lambda f: _pad(_nrrd(f, "bad.nhdr"), b"garbage without a colon\n"), "not a NRRD header line"),
}


def _without(path: Path, name: str) -> Path:
    (path.parent / name).unlink()
    return path


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_files_are_one_line_naming_the_file(case, tmp_path):
    make, pattern = MALFORMED[case]
    one_line_error(make(tmp_path), pattern)


def test_the_cli_says_it_in_one_line(tmp_path, capsys):
    path = _mha(tmp_path, ElementType="MET_STRING")
    out = tmp_path / "x.png"
    for argv in (["render", str(path), "--mode", "xray", "--out", str(out)],
                 ["mesh", str(path), "--level", "0.1", "--out", str(tmp_path / "m.stl")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err == f"xtomo: error: {path}: unknown ElementType 'MET_STRING'; expected one of " \
                      f"{', '.join(itkfiles.METAIMAGE_TYPES)}\n"
    assert not out.exists()
    good = write_nrrd(tmp_path / "good.nrrd", ct_volume(), oblique_affine(), encoding="gzip")
    assert main(["render", str(good), "--mode", "mip", "--size", "16", "--volume-size", "16", "--out", str(out)]) == 0
    assert out.is_file()
