"""Physical size: where a volume's voxels lie in millimetres, and the NIfTI header that says so.

An x-ray's pixel size comes from its file where the file says it, from the user where the user
says it, and otherwise from :data:`DEFAULT_FOV_MM` (``xtomo.data.io.xray_pixel_size``). A
reconstruction fills the cube whose side is the squared x-ray's width, so its voxels follow from
the x-ray's pixels; its affine places it in the *detector frame* (``view_affine``). A volume read
from a NIfTI, DICOM, MetaImage or NRRD file keeps that file's own (patient, RAS) frame instead.
How far a specimen reaches in a volume or an x-ray, in the same units, is ``enclosing_ball``'s; the cube a
real volume is read into is cut from its array by ``cube_to_array`` and sampled by ``resample_cube``.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["DEFAULT_FOV_MM", "enclosing_ball", "view_affine", "reconstruction_affine", "grid_affine", "nifti_header",
           "cube_to_array", "resample_cube"]

DEFAULT_FOV_MM = 250.0
"""Field of view (mm) of an x-ray's longer side when neither its file nor the user gives a pixel
size: an adult human head with a margin. Pass ``fov=``/``pixel_size=`` (``--fov``,
``--pixel-size``) for anything else; the shape of a reconstruction does not depend on it."""


def view_affine(shape: tuple[int, int, int], extent_mm: tuple[float, float, float]) -> np.ndarray:
    """The NIfTI affine of a view-aligned volume ``[D, H, W]`` spanning ``extent_mm`` (depth, height,
    width), in the detector frame, centred on 0.

    The NIfTI voxel (i, j, k) is (column, row, depth). World +x points to the image's right
    (columns grow), +y to its top (rows grow downwards), +z towards the x-ray source (depth grows
    from the source to the detector): a right-handed frame, in mm, in which a viewer shows the
    volume as the x-ray was seen. It is not the patient's frame: a radiograph does not say it.
    """
    steps = np.array(extent_mm, float)[::-1] / np.array(shape, float)[::-1]  # (x, y, z) mm per voxel
    affine = np.diag([steps[0], -steps[1], -steps[2], 1.0])
    affine[:3, 3] = -affine[:3, :3] @ ((np.array(shape[::-1], float) - 1) / 2)
    return affine


def reconstruction_affine(shape: tuple[int, int, int], xray_shape: tuple[int, int],
                          pixel_mm: tuple[float, float]) -> np.ndarray:
    """The affine of a volume ``[D, H, W]`` reconstructed from an x-ray of ``xray_shape`` = (rows,
    columns) pixels of ``pixel_mm`` = (row, column) mm: the x-ray is squared (padded to its longer
    side) and the volume fills that square's cube, its depth as deep as the square is wide."""
    side = max(xray_shape)
    row, col = pixel_mm
    return view_affine(shape, (side * col, side * row, side * col))


def grid_affine(spacing_zyx, shape: tuple[int, int, int]) -> np.ndarray:
    """The NIfTI affine of a ``[D, H, W]`` = (z, y, x) array of voxels ``spacing_zyx`` mm that is
    centred on 0, its axes those of the world (+x, +y, +z as the indices grow)."""
    steps = np.array(spacing_zyx, float)[::-1]
    affine = np.diag([*steps, 1.0])
    affine[:3, 3] = -steps * (np.array(shape[::-1], float) - 1) / 2
    return affine


def nifti_header(shape: tuple[int, int, int], affine: np.ndarray):
    """The NIfTI-1 header of a float32 volume ``[D, H, W]`` (stored (x, y, z), x fastest) placed by
    ``affine``: qform and sform both the affine (code 1, scanner), voxel sizes from it, units mm."""
    import nibabel as nib
    header = nib.Nifti1Header()
    header.set_data_shape(tuple(shape[::-1]))
    header.set_data_dtype(np.float32)
    header.set_qform(affine, code=1)
    header.set_sform(affine, code=1)
    header.set_xyzt_units(xyz="mm")
    return header


def enclosing_ball(mask, spacing=None) -> tuple[np.ndarray, float]:
    """Centre (the bounding box's centre of ``mask``'s true elements) and radius of the ball about it
    that reaches every one's far corner, in physical units: element i spans [i, i + 1] * spacing along
    each axis (default spacing 1). Any number of axes: a specimen in a volume, or in an x-ray.

    Along the last axis only the first and last true element of each row can be the farthest, so the
    search is linear in the element count.
    """
    mask = np.asarray(mask, dtype=bool)
    spacing = np.ones(mask.ndim) if spacing is None else np.asarray(spacing, dtype=float)
    if not mask.any():
        raise ValueError("enclosing_ball: the mask is empty")
    others = lambda i: tuple(j for j in range(mask.ndim) if j != i)  # noqa: E731
    axes = [np.flatnonzero(mask.any(axis=others(i))) for i in range(mask.ndim)]
    centre = np.array([(a[0] + a[-1] + 1) * s / 2 for a, s in zip(axes, spacing)])

    def reach(index, axis):  # distance along `axis` from the centre to element `index`'s far side
        return np.abs((index + 0.5) * spacing[axis] - centre[axis]) + spacing[axis] / 2

    first = mask.argmax(axis=-1)
    last = mask.shape[-1] - 1 - mask[..., ::-1].argmax(axis=-1)
    d2 = np.maximum(reach(first, mask.ndim - 1), reach(last, mask.ndim - 1)) ** 2
    for i in range(mask.ndim - 1):   # the leading axes, broadcast over the rows
        d2 = d2 + reach(np.arange(mask.shape[i]), i).reshape([-1 if j == i else 1 for j in range(mask.ndim - 1)]) ** 2
    return centre, float(np.sqrt(d2[mask.any(axis=-1)].max()))


def cube_to_array(spacing: np.ndarray, centre: np.ndarray, side: float, size: int,
                   rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The map from the cube's voxel index to the array's (both (z, y, x)): ``matrix @ o + offset``. The cube
    of edge ``side`` around ``centre`` (physical units) is turned by ``rotation`` (``xtomo.data.pose``: the cube at
    ``q`` shows the array at ``R^T q``)."""
    step = side / size
    matrix = np.diag(1 / spacing) @ rotation.T * step
    offset = centre / spacing - 0.5 - matrix @ np.full(3, (size - 1) / 2)
    return matrix, offset


def resample_cube(density: np.ndarray, spacing: np.ndarray, centre: np.ndarray, side: float,
              size: int, rotation: np.ndarray) -> np.ndarray:
    """``density`` sampled on the size**3 grid of the cube of edge ``side`` around ``centre`` (physical units,
    ``spacing`` per array axis), turned by ``rotation``: each axis Gaussian-prefiltered where the cube's voxels
    are coarser than the array's (``io.prepare_volume``), then trilinear; outside the array is empty."""
    matrix, offset = cube_to_array(spacing, centre, side, size, rotation)
    sigma = 0.5 * np.sqrt(np.maximum((side / size / spacing) ** 2 - 1, 0))  # input voxels per output voxel
    # crop to what the cube touches (plus the filter's reach) before filtering
    corners = offset[:, None] + matrix @ (np.array(np.meshgrid(*[[0, size - 1]] * 3)).reshape(3, -1))
    margin = np.ceil(4 * sigma).astype(int) + 2
    lo = np.clip(np.floor(corners.min(1)).astype(int) - margin, 0, density.shape)
    hi = np.clip(np.ceil(corners.max(1)).astype(int) + margin + 1, 0, density.shape)
    crop = density[tuple(slice(a, b) for a, b in zip(lo, hi))]
    if crop.size == 0:
        return np.zeros((size,) * 3, np.float32)
    crop = ndimage.gaussian_filter(crop, sigma, mode="constant") if sigma.any() else crop
    diagonal = np.allclose(matrix, np.diag(np.diag(matrix)))  # the 1-D form is faster
    return ndimage.affine_transform(crop, np.diag(matrix) if diagonal else matrix, offset - lo,
                                    output_shape=(size,) * 3, order=1, mode="grid-constant",
                                    cval=0.0).astype(np.float32, copy=False)
