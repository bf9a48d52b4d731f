"""Iso-surfaces out: a volume's surface at a density level as a closed triangle mesh in millimetres.

``iso_mesh`` runs marching cubes (scikit-image) on the volume padded with one empty voxel on every
side, so the surface closes where the specimen touches the volume's faces, and places the vertices
in the world by the volume's affine (``io.load_volume_affine``). ``save_mesh`` writes binary STL
or PLY, atomically, with faces wound so that their normals point out of the dense side.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import xtomo._checks as checks
from xtomo.data.formats import file_suffix
from xtomo.files import atomic_path

__all__ = ["MESH_FORMATS", "iso_mesh", "save_mesh"]

MESH_FORMATS = (".stl", ".ply")


def iso_mesh(volume, level: float, affine: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The closed surface of ``volume`` ``[D, H, W]`` at ``level``: vertices ``[V, 3]`` (x, y, z) in
    the world of ``affine`` (default: voxel indices), faces ``[F, 3]`` wound outwards."""
    from skimage.measure import marching_cubes
    data = np.asarray(volume.detach().cpu().numpy() if hasattr(volume, "detach") else volume, np.float32)
    if data.ndim != 3:
        raise ValueError(f"iso_mesh: expected a volume [D, H, W], got shape {data.shape}")
    level = checks.number(level, "level", what="iso_mesh")
    if not data.min() < level < data.max():
        raise ValueError(f"iso_mesh: level {level:g} is outside the volume's densities "
                         f"({data.min():g} to {data.max():g}); no surface there")
    padded = np.pad(data, 1, constant_values=float(data.min()))  # below the level: checked above
    zyx, faces, _, _ = marching_cubes(padded, level)
    xyz = zyx[:, ::-1] - 1.0  # (x, y, z) indices of the unpadded volume
    affine = np.eye(4) if affine is None else np.asarray(affine, float)
    vertices = xyz @ affine[:3, :3].T + affine[:3, 3]
    # marching cubes winds faces in (z, y, x) order, a mirror of (x, y, z); an affine may mirror too
    if np.linalg.det(affine[:3, :3]) < 0:
        faces = faces[:, ::-1]
    return vertices.astype(np.float32), np.ascontiguousarray(faces, dtype=np.int64)


def save_mesh(vertices: np.ndarray, faces: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a triangle mesh as binary STL (``.stl``) or PLY (``.ply``), atomically; units as given."""
    path = Path(path)
    suffix = file_suffix(path)
    if suffix not in MESH_FORMATS:
        raise ValueError(f"{path}: cannot save a mesh as '{suffix}'; use {' or '.join(MESH_FORMATS)}")
    vertices, faces = np.asarray(vertices, np.float32), np.asarray(faces, np.int64)
    with atomic_path(path) as tmp:
        (_write_stl if suffix == ".stl" else _write_ply)(vertices, faces, tmp)
    return path


def _write_stl(vertices: np.ndarray, faces: np.ndarray, path: Path) -> None:
    corners = vertices[faces]  # [F, 3 corners, 3]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-30)
    record = np.dtype([("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
    table = np.zeros(len(faces), record)
    table["normal"], table["corners"] = normals, corners
    with open(path, "wb") as fh:
        fh.write(b"xtomo iso-surface, millimetres".ljust(80, b" "))
        fh.write(np.uint32(len(faces)).tobytes())
        fh.write(table.tobytes())


def _write_ply(vertices: np.ndarray, faces: np.ndarray, path: Path) -> None:
    header = (f"ply\nformat binary_little_endian 1.0\ncomment xtomo iso-surface, millimetres\n"
              f"element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n"
              f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n")
    record = np.dtype([("count", "u1"), ("corners", "<i4", 3)])
    table = np.zeros(len(faces), record)
    table["count"], table["corners"] = 3, faces
    with open(path, "wb") as fh:
        fh.write(header.encode("ascii"))
        fh.write(vertices.astype("<f4").tobytes())
        fh.write(table.tobytes())
