"""xtomo mesh: a closed iso-surface in millimetres, as STL and PLY, from a volume's affine."""
from __future__ import annotations

import collections

import nibabel as nib
import numpy as np
import pytest
import torch

from xtomo.cli import main
from xtomo.data import meshes
from xtomo.data.io import save_volume
from xtomo.geometry import reconstruction_affine


def read_stl(path) -> tuple[np.ndarray, np.ndarray]:
    """Triangle corners ``[F, 3, 3]`` and stored normals ``[F, 3]`` of a binary STL."""
    data = path.read_bytes()
    count = int(np.frombuffer(data[80:84], "<u4")[0])
    record = np.dtype([("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
    assert len(data) == 84 + count * record.itemsize
    table = np.frombuffer(data[84:], record)
    return table["corners"], table["normal"]


def closed(faces: np.ndarray) -> bool:
    """Every edge shared by exactly two faces, once in each direction (consistently wound)."""
    edges = collections.Counter(map(tuple, np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])))
    return all(n == 1 and edges[(b, a)] == 1 for (a, b), n in edges.items())


def signed_volume(corners: np.ndarray) -> float:
    return float(np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum() / 6)


def test_a_box_touching_the_faces_gives_a_closed_outward_mesh_in_mm():
    volume = np.zeros((10, 12, 14), np.float32)
    volume[:, 3:9, 2:] = 1.0  # touches the first and last depth slices and the last column
    affine = reconstruction_affine(volume.shape, (12, 14), (0.5, 0.5))  # 7 mm wide, mirrored y and z
    vertices, faces = meshes.iso_mesh(volume, 0.5, affine)
    assert closed(faces)
    corners = vertices[faces]
    assert signed_volume(corners) > 0  # normals point out of the dense side
    extent = vertices.max(axis=0) - vertices.min(axis=0)
    np.testing.assert_allclose(extent, [12 * 0.5, 6 * 7 / 12, 10 * 0.7], rtol=1e-5)  # to the faces of the voxels


@pytest.mark.parametrize("suffix", [".stl", ".ply"])
def test_xtomo_mesh_writes_a_closed_mesh_of_a_reconstruction_in_mm(tmp_path, suffix, capsys):
    z, y, x = np.mgrid[:32, :32, :32]
    ball = (((x - 15.5) ** 2 + (y - 15.5) ** 2 + (z - 15.5) ** 2) < 12 ** 2).astype(np.float32)
    affine = reconstruction_affine(ball.shape, (32, 32), (2.0, 2.0))  # 64 mm across, 2 mm voxels
    save_volume(torch.from_numpy(ball), tmp_path / "v.nii.gz", affine=affine)
    out = tmp_path / f"skull{suffix}"
    assert main(["mesh", str(tmp_path / "v.nii.gz"), "--level", "0.5", "--out", str(out), "--volume-size", "32"]) == 0
    assert "mm (2 mm voxels)" in capsys.readouterr().out
    if suffix == ".stl":
        corners, normals = read_stl(out)
        _, faces = np.unique(corners.reshape(-1, 3), axis=0, return_inverse=True)
        assert closed(faces.reshape(-1, 3))
        assert signed_volume(corners) == pytest.approx(4 / 3 * np.pi * 24 ** 3, rel=0.05)  # mm^3
        assert np.einsum("ij,ij->i", normals, corners.mean(axis=1)).min() > 0  # outwards from the centre
        extent = np.ptp(corners.reshape(-1, 3), axis=0)
    else:
        header, body = out.read_bytes().split(b"end_header\n")
        n = int(header.split(b"element vertex ")[1].split()[0])
        vertices = np.frombuffer(body[:12 * n], "<f4").reshape(n, 3)
        table = np.frombuffer(body[12 * n:], np.dtype([("count", "u1"), ("corners", "<i4", 3)]))
        assert (table["count"] == 3).all() and closed(table["corners"])
        extent = np.ptp(vertices, axis=0)
    np.testing.assert_allclose(extent, [48.0] * 3, rtol=0.05)  # the ball's 24 mm radius
    assert nib.load(tmp_path / "v.nii.gz").header.get_xyzt_units()[0] == "mm"


def test_mesh_errors_are_one_line(tmp_path, capsys):
    save_volume(torch.rand(8, 8, 8), tmp_path / "v.nii")
    assert main(["mesh", str(tmp_path / "v.nii"), "--level", "0.5", "--out", str(tmp_path / "m.obj")]) == 2
    assert main(["mesh", str(tmp_path / "v.nii"), "--level", "7", "--out", str(tmp_path / "m.stl")]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert errors[0] == f"xtomo: error: --out must name a .stl or .ply file, got '{tmp_path / 'm.obj'}'"
    assert errors[1].startswith("xtomo: error: iso_mesh: level 7 is outside the volume's densities")
    assert not (tmp_path / "m.stl").exists()
