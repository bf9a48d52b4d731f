"""Physical size: x-ray pixel sizes from files and users, NIfTI affines as nibabel reads them, and
a volume's affine kept through a read and a write."""
from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian, generate_uid

from xtomo import geometry
from xtomo.data.io import load_volume, load_volume_affine, save_volume, save_xray, xray_pixel_size


def radiograph(path, **tags):
    """A small DX radiograph, 12 bits, 20 rows x 30 columns, with ``tags``."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = DigitalXRayImageStorageForPresentation, generate_uid(), "DX"
    for name, value in tags.items():
        setattr(ds, name, value)
    pixels = (np.arange(600).reshape(20, 30) * 6).astype(np.uint16)
    ds.set_pixel_data(pixels, photometric_interpretation="MONOCHROME2", bits_stored=12)
    ds.save_as(path, enforce_file_format=True)
    return path


def world_extent(affine: np.ndarray, shape_xyz) -> np.ndarray:
    """What a viewer shows: the extent in mm of the box of voxel faces, per world axis."""
    corners = np.array([[*c, 1.0] for c in itertools.product(*[(-0.5, n - 0.5) for n in shape_xyz])])
    world = corners @ affine.T
    return world[:, :3].max(axis=0) - world[:, :3].min(axis=0)


@pytest.mark.parametrize("tags, expected, source", [
    ({"PixelSpacing": [0.2, 0.25], "ImagerPixelSpacing": [0.3, 0.3]}, (0.2, 0.25), "PixelSpacing"),
    ({"PixelSpacing": [0, 0], "ImagerPixelSpacing": [0.3, 0.3]}, (0.3, 0.3), "ImagerPixelSpacing"),
    ({"ImagerPixelSpacing": [0.3, 0.3], "EstimatedRadiographicMagnificationFactor": 1.2}, (0.25, 0.25),
     "EstimatedRadiographicMagnificationFactor"),
    ({"ImagerPixelSpacing": [0.3, 0.3], "DistanceSourceToDetector": 1200, "DistanceSourceToPatient": 1000},
     (0.25, 0.25), "DistanceSourceToDetector"),
    ({"PixelSpacing": [0, 0]}, (geometry.DEFAULT_FOV_MM / 30,) * 2, "default"),  # a zero is no size
])
def test_the_pixel_size_of_a_dicom_radiograph(tmp_path, tags, expected, source):
    path = radiograph(tmp_path / "x.dcm", **tags)
    size, said_by = xray_pixel_size(path, (20, 30))
    np.testing.assert_allclose(size, expected)
    assert source in said_by


def test_the_user_says_the_pixel_size_or_the_field_of_view(tmp_path):
    path = radiograph(tmp_path / "x.dcm", PixelSpacing=[0.2, 0.2])
    assert xray_pixel_size(path, (20, 30), pixel_size=0.5) == ((0.5, 0.5), "--pixel-size")
    assert xray_pixel_size(path, (20, 30), pixel_size=(0.5, 0.4)) == ((0.5, 0.4), "--pixel-size")
    assert xray_pixel_size(path, (20, 30), fov=300) == ((10.0, 10.0), "--fov")  # along the longer side
    png = save_xray(torch.rand(20, 40), tmp_path / "x.png")  # a PNG does not say
    assert xray_pixel_size(png, (20, 40)) == ((geometry.DEFAULT_FOV_MM / 40,) * 2, "default")
    with pytest.raises(ValueError, match="not both"):
        xray_pixel_size(path, (20, 30), pixel_size=1, fov=2)
    with pytest.raises(ValueError, match="positive"):
        xray_pixel_size(path, (20, 30), pixel_size=(1, -1))
    with pytest.raises(ValueError, match="field of view"):
        xray_pixel_size(path, (20, 30), fov=0)


def test_a_reconstruction_affine_spans_the_squared_xray_in_the_detector_frame():
    shape = (16, 30, 30)  # depth, rows, columns: a 20 x 30 x-ray squared to 30 x 30
    affine = geometry.reconstruction_affine(shape, (20, 30), (0.2, 0.25))
    np.testing.assert_allclose(world_extent(affine, shape[::-1]), [7.5, 6.0, 7.5])  # x, y, z in mm
    np.testing.assert_allclose(affine[:3, :3] @ [1, 0, 0], [7.5 / 30, 0, 0])   # columns to the right
    np.testing.assert_allclose(affine[:3, :3] @ [0, 1, 0], [0, -6.0 / 30, 0])  # rows downwards
    np.testing.assert_allclose(affine[:3, :3] @ [0, 0, 1], [0, 0, -7.5 / 16])  # depth away from the source
    centre = affine @ [*(np.array(shape[::-1]) - 1) / 2, 1]
    np.testing.assert_allclose(centre[:3], 0, atol=1e-12)
    assert np.linalg.det(affine[:3, :3]) > 0  # right-handed


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nibabel_reads_the_affine_units_and_forms_that_save_volume_writes(tmp_path, suffix):
    volume = torch.rand(6, 8, 10)
    affine = geometry.reconstruction_affine(tuple(volume.shape), (8, 10), (0.5, 0.5))
    image = nib.load(save_volume(volume, tmp_path / f"v{suffix}", affine=affine))
    assert image.shape == (10, 8, 6)
    np.testing.assert_allclose(image.affine, affine)
    np.testing.assert_allclose(image.get_qform(), affine, atol=1e-6)
    np.testing.assert_allclose(image.get_sform(), affine)
    assert int(image.header["qform_code"]) == 1 and int(image.header["sform_code"]) == 1
    assert image.header.get_xyzt_units()[0] == "mm"
    np.testing.assert_allclose(image.header.get_zooms(), [5 / 10, 5 / 8, 5 / 6], rtol=1e-6)  # 5 mm each way
    np.testing.assert_allclose(world_extent(image.affine, image.shape), [5.0, 5.0, 5.0])
    np.testing.assert_allclose(np.asarray(image.dataobj).transpose(2, 1, 0), volume.numpy())
    default = nib.load(save_volume(volume, tmp_path / f"d{suffix}"))  # no size said: the default cube
    np.testing.assert_allclose(world_extent(default.affine, default.shape), [geometry.DEFAULT_FOV_MM] * 3)
    with pytest.raises(ValueError, match="spacing or its affine, not both"):
        save_volume(volume, tmp_path / f"e{suffix}", spacing=1, affine=affine)
    with pytest.raises(ValueError, match="invertible 4 x 4"):
        save_volume(volume, tmp_path / f"e{suffix}", affine=np.zeros((4, 4)))


def test_a_volume_read_and_written_again_keeps_its_affine(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.random((12, 12, 12)).astype(np.float32)
    ras = np.array([[0.8, 0, 0, -40.0], [0, 0.8, 0, 12.5], [0, 0, 0.8, 7.0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(data, ras), tmp_path / "ras.nii.gz")
    volume, affine = load_volume_affine(tmp_path / "ras.nii.gz", size=12, fit=False)
    np.testing.assert_allclose(affine, ras, atol=1e-12)
    again = nib.load(save_volume(volume, tmp_path / "again.nii.gz", affine=affine))
    np.testing.assert_allclose(again.affine, ras, atol=1e-6)
    np.testing.assert_allclose(np.asarray(again.dataobj), data, atol=1e-6)

    # stored another way round (L, P, S): reoriented to RAS, every voxel stays where it was in the world
    lps = ras @ np.array([[-1, 0, 0, 11], [0, -1, 0, 11], [0, 0, 1, 0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(data[::-1, ::-1].copy(), lps), tmp_path / "lps.nii")
    volume, affine = load_volume_affine(tmp_path / "lps.nii", size=12, fit=False)
    np.testing.assert_allclose(affine, ras, atol=1e-12)
    np.testing.assert_allclose(volume.numpy(), load_volume(tmp_path / "ras.nii.gz", size=12, fit=False).numpy())


def test_a_resampled_cube_says_where_it_lies(tmp_path):
    data = np.zeros((20, 10, 10), np.float32)  # 20 voxels of 1 mm along x, 10 of 2 mm along y and z
    data[12, 3, 6] = 1.0
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 2.0, 2.0, 1.0])), tmp_path / "v.nii")
    volume, affine = load_volume_affine(tmp_path / "v.nii", size=10, fit=False)  # 20 mm on every side
    np.testing.assert_allclose(np.abs(np.diag(affine)[:3]), [2.0, 2.0, 2.0])
    peak = np.unravel_index(volume.numpy().argmax(), volume.shape)  # (z, y, x)
    world = affine @ [peak[2], peak[1], peak[0], 1]
    np.testing.assert_allclose(world[:3], [12, 6, 12], atol=1.0)  # within one output voxel of 1 mm
    _, scaled = load_volume_affine(tmp_path / "v.nii", size=10, fit=False, spacing=(4.0, 4.0, 2.0))
    np.testing.assert_allclose(np.abs(np.diag(scaled)[:3]), [4.0, 4.0, 4.0])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3).flatmap(lambda n: st.tuples(
    hnp.arrays(bool, hnp.array_shapes(min_dims=n, max_dims=n, min_side=1, max_side=7)),
    st.lists(st.floats(0.1, 4.0), min_size=n, max_size=n))))
def test_enclosing_ball_reaches_every_far_corner_from_the_bounding_box_centre(case):
    """Against the brute force over every true element's every corner, in 1, 2 and 3 dimensions and on
    anisotropic spacing: the centre is the bounding box's, the radius the farthest corner's distance."""
    mask, spacing = case
    if not mask.any():
        with pytest.raises(ValueError, match="empty"):
            geometry.enclosing_ball(mask, spacing)
        return
    centre, radius = geometry.enclosing_ball(mask, spacing)
    index = np.argwhere(mask)
    low, high = index.min(axis=0) * spacing, (index.max(axis=0) + 1) * spacing
    assert centre == pytest.approx((low + high) / 2)
    corners = np.array(list(itertools.product((0, 1), repeat=mask.ndim)))
    points = ((index[:, None, :] + corners[None]) * spacing).reshape(-1, mask.ndim)
    assert radius == pytest.approx(np.sqrt(((points - centre) ** 2).sum(axis=1)).max())
