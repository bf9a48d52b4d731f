"""Hostile input: a few-KB volume file whose header claims a huge shape, a truncated one, or a
deflate bomb fails with one line naming the claimed shape and the file's size, BEFORE anything of
the claimed size is allocated (measured with tracemalloc, which counts numpy's buffers and Python
objects, including pages never touched); absurd ``size``/``--size`` arguments are refused."""
from __future__ import annotations

import gzip
import io as bytes_io
import re
import tracemalloc
import zipfile
import zlib

import nibabel as nib
import numpy as np
import pytest
import torch

from xtomo.cli import main
from xtomo.data import formats, io

BIG = (512, 512, 512)           # int32: 512 MiB claimed, under the default voxel limit
HUGE = (100_000, 100_000, 100_000)
PEAK_LIMIT = 32 * 2 ** 20       # bytes any failed read may hold at once (the files are a few KB)
DATA = np.arange(1000, dtype=np.int32).tobytes()   # the 4,000 bytes the files really hold


def deflate_bomb(head: bytes, mib: int) -> bytes:
    """gzip of ``head`` then ``mib`` MiB of zeros, made a MiB at a time (this test holds no bomb)."""
    packer, zeros = zlib.compressobj(9, zlib.DEFLATED, 31), bytes(2 ** 20)
    return packer.compress(head) + b"".join(packer.compress(zeros) for _ in range(mib)) + packer.flush()


def npy_bytes(shape, dtype="<i4") -> bytes:
    header = bytes_io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    return header.getvalue()


def nifti_bytes(shape) -> bytes:
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.int32)
    header["vox_offset"] = 352
    return header.binaryblock + b"\0" * 4


def npz_with(member: bytes, compression=zipfile.ZIP_STORED) -> bytes:
    out = bytes_io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        archive.writestr("volume.npy", member)
    return out.getvalue()


def mha_bytes(shape, compressed=False) -> bytes:
    payload = zlib.compress(DATA) if compressed else DATA
    return (f"NDims = 3\nDimSize = {' '.join(map(str, shape))}\nElementType = MET_INT\n"
            f"CompressedData = {compressed}\nElementDataFile = LOCAL\n").encode() + payload


def nrrd_bytes(shape, encoding="raw") -> bytes:
    payload = gzip.compress(DATA) if encoding == "gzip" else DATA
    return (f"NRRD0004\ntype: int\ndimension: 3\nsizes: {' '.join(map(str, shape))}\nendian: little\n"
            f"encoding: {encoding}\n\n").encode() + payload


HOSTILE = {   # name: (file bytes, what the one line says)
    "big.npy": (npy_bytes(BIG) + DATA, r"claims shape \(512, 512, 512\) of int32 \(536,870,912 bytes\), but the "
                                       r"file holds 4,000 bytes of data \(4,128 bytes in all\)"),
    "huge.npy": (npy_bytes(HUGE, "<f8") + DATA, r"claims shape \(100000, 100000, 100000\) of float64"),
    "truncated.npy": (npy_bytes((10, 10, 11)) + DATA, r"\(4,400 bytes\), but the file holds 4,000 bytes"),
    "big.nii": (nifti_bytes(BIG) + DATA, r"claims shape \(512, 512, 512\) of int32 \(536,870,912 bytes\), but the "
                                         r"file holds 4,000 bytes of data \(4,352 bytes in all\)"),
    "huge.nii": (nifti_bytes((30000, 30000, 30000)) + DATA, r"claims shape \(30000, 30000, 30000\)"),
    "big.nii.gz": (gzip.compress(nifti_bytes(BIG) + DATA), r"claims shape \(512, 512, 512\) of int32 .*more than "
                                                           r"its [\d,]+ compressed bytes can hold"),
    "truncated.nii.gz": (gzip.compress(nifti_bytes((10, 10, 11)) + DATA),
                         r"claims shape \(10, 10, 11\) of int32 \(4,400 bytes\), but its compressed data hold 4,000"),
    "bomb.nii.gz": (deflate_bomb(nifti_bytes((10, 10, 10)) + DATA, 100),
                    r"claims shape \(10, 10, 10\) of int32 \(4,000 bytes\), but its compressed data hold more"),
    "big.npz": (npz_with(npy_bytes(BIG) + DATA), r"\(volume.npy\): .*claims shape \(512, 512, 512\) of int32"),
    "big-deflated.npz": (npz_with(npy_bytes(BIG) + DATA, zipfile.ZIP_DEFLATED),
                         r"\(volume.npy\): .*claims shape \(512, 512, 512\) of int32"),
    "big.mha": (mha_bytes(BIG), r"claims shape \(512, 512, 512\) of int32 \(536,870,912 bytes\), but the file "
                                r"holds 4,000 bytes"),
    "big-zlib.mha": (mha_bytes(BIG, compressed=True), r"claims shape \(512, 512, 512\) .*compressed bytes can hold"),
    "huge.mha": (mha_bytes(HUGE), r"claims shape \(100000, 100000, 100000\)"),
    "big.nrrd": (nrrd_bytes(BIG), r"claims shape \(512, 512, 512\) of int32 \(536,870,912 bytes\), but the file "
                                  r"holds 4,000 bytes"),
    "big-gzip.nrrd": (nrrd_bytes(BIG, "gzip"), r"claims shape \(512, 512, 512\) .*compressed bytes can hold"),
    "bomb.nrrd": (nrrd_bytes((10, 10, 10), "gzip")[:-len(gzip.compress(DATA))] + deflate_bomb(b"", 100),
                  r"claims shape \(10, 10, 10\) of int32 \(4,000 bytes\), but its compressed data hold more"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_lying_header_fails_before_allocating_what_it_claims(name, tmp_path):
    content, pattern = HOSTILE[name]
    path = tmp_path / name
    path.write_bytes(content)
    assert path.stat().st_size < 400_000   # what the attacker sends is small (a bomb: small and deflated)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as caught:
            io.load_volume(path, size=8)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}") and ": cannot read this volume file: " in message
    assert re.search(pattern, message), message
    assert peak < PEAK_LIMIT, f"{name}: {peak / 2**20:.0f} MiB held while failing"


def test_the_voxel_limit_can_be_lowered_and_raised(tmp_path, monkeypatch):
    path = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((16, 16, 16)).astype(np.float32), np.eye(4)), path)
    assert io.load_volume(path, size=8).shape == (8, 8, 8)
    monkeypatch.setenv("XTOMO_MAX_VOXELS", "4000")
    with pytest.raises(ValueError, match=r"4,096 voxels, more than the 4,000 allowed \(set XTOMO_MAX_VOXELS"):
        io.load_volume(path, size=8)
    np.save(tmp_path / "v.npy", np.ones((16, 16, 16), np.float32))   # uncompressed files too
    with pytest.raises(ValueError, match="more than the 4,000 allowed"):
        io.load_volume(tmp_path / "v.npy", size=8)
    monkeypatch.setenv("XTOMO_MAX_VOXELS", "4096")
    assert io.load_volume(path, size=8).shape == (8, 8, 8)
    monkeypatch.setenv("XTOMO_MAX_VOXELS", "lots")
    with pytest.raises(ValueError, match="XTOMO_MAX_VOXELS='lots': expected a positive whole number"):
        io.load_volume(path, size=8)
    monkeypatch.delenv("XTOMO_MAX_VOXELS")
    assert formats.max_voxels() == formats.DEFAULT_MAX_VOXELS == 2 ** 30


def test_absurd_sizes_are_refused_before_reading(tmp_path):
    missing = tmp_path / "not-there.nii"   # the size is checked first: no file needed to refuse it
    with pytest.raises(ValueError, match=r"size must be an integer >= 2 and <= 1024, got 4096"):
        io.load_volume(missing, size=4096)
    with pytest.raises(ValueError, match=r"size must be an integer >= 2 and <= 1024, got 2000"):
        io.load_volume_affine(missing, size=2000)
    with pytest.raises(ValueError, match=r"size must be an integer >= 2 and <= 1024"):
        io.prepare_volume(np.ones((4, 4, 4)), size=1025)
    with pytest.raises(ValueError, match=r"size must be an integer >= 2 and <= 8192, got 10000"):
        io.load_xray(tmp_path / "not-there.png", size=10_000)
    xray = io.save_xray(torch.linspace(0.2, 1.0, 64).reshape(8, 8), tmp_path / "x.png")
    assert io.load_xray(xray, size=16).shape == (16, 16)


@pytest.mark.parametrize("args, problem", [
    (["--size", "9000"], "--size must be 2 to 8192 and --volume-size 2 to 1024, got 9000 and 128"),
    (["--volume-size", "2048"], "--size must be 2 to 8192 and --volume-size 2 to 1024, got 256 and 2048"),
    (["--size", "1"], "--size must be 2 to 8192 and --volume-size 2 to 1024, got 1 and 128"),
    (["--size", "8192", "--volume-size", "1024"], "--size 8192 with --volume-size 1024 renders through "
                                                  "68,719,476,736 samples, more than the 1,073,741,824 allowed "
                                                  "(XTOMO_MAX_VOXELS); lower either"),
])
def test_the_cli_refuses_absurd_render_sizes(args, problem, tmp_path, capsys):
    volume = tmp_path / "big.npy"
    volume.write_bytes(HOSTILE["big.npy"][0])
    assert main(["render", str(volume), "--mode", "xray", "--out", str(tmp_path / "x.png"), *args]) == 2
    assert capsys.readouterr().err == f"xtomo: error: {problem}\n"


def test_the_cli_names_a_lying_file_in_one_line(tmp_path, capsys):
    volume = tmp_path / "big.mha"
    volume.write_bytes(HOSTILE["big.mha"][0])
    for argv in (["render", str(volume), "--mode", "mip", "--out", str(tmp_path / "x.png")],
                 ["mesh", str(volume), "--level", "0.1", "--out", str(tmp_path / "m.stl")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"xtomo: error: {volume}: cannot read this volume file: its header claims shape "
                              "(512, 512, 512) of int32") and err.count("\n") == 1 and "Traceback" not in err
