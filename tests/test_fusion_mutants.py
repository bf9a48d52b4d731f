"""Fusion, the behaviour mutation testing found untested: the error messages that name each front
door and the bad argument, the streamed file's defaults, progress bar and upper-case suffixes,
single-slice and single-row inputs, and float64 volumes fused with float32 x-rays."""
from __future__ import annotations

import gzip
import io
import re

import nibabel as nib
import numpy as np
import pytest
import torch

from xtomo.imaging import fusion
from xtomo.imaging.xray import composite


def exactly(message):
    """A ``pytest.raises`` pattern that matches the whole message and nothing more."""
    return "^" + re.escape(message) + "$"


def good(seed=0, n=4, h=3, w=3):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, h, w, generator=g), torch.rand(h, w, generator=g) * 0.9 + 0.05


def front_doors(tmp_path):
    """Every public entry point as ``name -> call(mu, alpha, **kwargs)``."""
    return {
        "density_error": lambda mu, alpha, **kw: fusion.density_error(alpha, mu, **kw),
        "paper_density_error": lambda mu, alpha, **kw: fusion.paper_density_error(alpha, mu, **kw),
        "fuse": lambda mu, alpha, **kw: fusion.fuse(mu, alpha, **kw),
        "fuse_upsampled": lambda mu, alpha, **kw: fusion.fuse_upsampled(mu, alpha, **kw),
        "fuse_to_file": lambda mu, alpha, **kw: fusion.fuse_to_file(mu, alpha, tmp_path / "v.nii",
                                                                    progress=False, **kw),
    }


ALL = ["density_error", "paper_density_error", "fuse", "fuse_upsampled", "fuse_to_file"]
WITH_POLICY = ["fuse", "fuse_upsampled", "fuse_to_file"]
COARSE = ["fuse_upsampled", "fuse_to_file"]


@pytest.mark.parametrize("what", ALL)
def test_every_front_door_names_itself_and_the_bad_chi(what, tmp_path):
    mu, alpha = good()
    with pytest.raises(ValueError, match=exactly(
            f"{what}: chi (extinction coefficient) must be a finite number > 0, got 0")):
        front_doors(tmp_path)[what](mu, alpha, chi=0)


@pytest.mark.parametrize("what", ALL)
def test_every_front_door_names_itself_and_the_bad_alpha(what, tmp_path):
    mu, alpha = good()
    with pytest.raises(ValueError, match=exactly(
            f"{what}: alpha must be transparency in [0, 1], got values in [0.25, 1.5]")):
        front_doors(tmp_path)[what](mu, torch.tensor([[0.25, 1.5, 1.0]] * 3))
    with pytest.raises(ValueError, match=exactly(f"{what}: alpha (x-ray transparency) holds NaN or inf")):
        front_doors(tmp_path)[what](mu, torch.full((3, 3), float("nan")))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("what", ALL)
def test_every_front_door_rejects_negative_densities_by_name(what, tmp_path):
    _, alpha = good()
    name = "mu_coarse" if what in COARSE else "mu (predicted densities)"
    with pytest.raises(ValueError, match=exactly(f"{what}: {name} must be non-negative, got minimum -1.0")):
        front_doors(tmp_path)[what](torch.full((4, 3, 3), -1.0), alpha)
    with pytest.raises(TypeError, match=exactly(f"{what}: {name} must be a torch tensor or numpy array, got list")):
        front_doors(tmp_path)[what]([[[0.5]]], alpha)


@pytest.mark.parametrize("what", WITH_POLICY)
def test_every_fusing_door_names_a_bad_policy_and_beta(what, tmp_path):
    mu, alpha = good()
    call = front_doors(tmp_path)[what]
    with pytest.raises(ValueError, match=exactly(
            f"{what}: policy must be one of first, even, proportional, scaled, got 'magic'")):
        call(mu, alpha, policy="magic")
    with pytest.raises(ValueError, match=exactly(f"{what}: beta (sharpness) must be a finite number >= 0, got -1")):
        call(mu, alpha, beta=-1)
    with pytest.raises(ValueError, match=exactly(
            f"{what}: beta (sharpness) must be a finite number >= 0, got None")):
        call(mu, alpha, policy="first", beta=None)  # checked even where the policy takes no beta


@pytest.mark.parametrize("what", ["density_error", "paper_density_error", "fuse"])
def test_shapes_of_a_volume_and_its_xray_are_checked_by_name(what, tmp_path):
    call = front_doors(tmp_path)[what]
    with pytest.raises(ValueError, match=exactly(
            f"{what}: mu (predicted densities) must be a view-aligned volume [..., n, H, W], got shape (3, 3)")):
        call(torch.rand(3, 3), torch.rand(3, 3))
    with pytest.raises(ValueError, match=exactly(
            f"{what}: alpha has shape (3, 4) but the volume (4, 3, 3) needs an x-ray of shape (3, 3)")):
        call(torch.rand(4, 3, 3), torch.rand(3, 4))
    with pytest.raises(ValueError, match=exactly(
            f"{what}: alpha has shape (3, 3) but the volume (2, 4, 3, 3) needs an x-ray of shape (2, 3, 3)")):
        call(torch.rand(2, 4, 3, 3), torch.rand(3, 3))


@pytest.mark.parametrize("what", COARSE)
def test_shapes_of_the_high_resolution_inputs_are_checked_by_name(what, tmp_path):
    call = front_doors(tmp_path)[what]
    with pytest.raises(ValueError, match=exactly(f"{what}: mu_coarse must be [n, h, w], got shape (1, 4, 3, 3)")):
        call(torch.rand(1, 4, 3, 3), torch.rand(8, 8))
    with pytest.raises(ValueError, match=exactly(f"{what}: alpha_full must be [H, W], got shape (1, 8, 8)")):
        call(torch.rand(4, 3, 3), torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match=exactly(f"{what}: empty input: mu_coarse (0, 3, 3), alpha_full (8, 8)")):
        call(torch.rand(0, 3, 3), torch.rand(8, 8))
    with pytest.raises(ValueError, match=exactly(f"{what}: empty input: mu_coarse (4, 3, 3), alpha_full (8, 0)")):
        call(torch.rand(4, 3, 3), torch.rand(8, 0))
    assert list(tmp_path.iterdir()) == []


def test_required_sum_and_alpha_floor_name_themselves():
    with pytest.raises(ValueError, match=exactly("required_sum: n (slices per ray) must be an integer >= 1, got 0")):
        fusion.required_sum(torch.rand(2, 2), n=0)
    with pytest.raises(ValueError, match=r"^required_sum: alpha must be transparency"):
        fusion.required_sum(torch.full((2, 2), 2.0))
    with pytest.raises(ValueError, match=exactly(
            "required_sum: chi (extinction coefficient) must be a finite number > 0, got -1.0")):
        fusion.required_sum(torch.rand(2, 2), chi=-1.0)
    with pytest.raises(ValueError, match=exactly(
            "alpha_floor: chi (extinction coefficient) must be a finite number > 0, got 0.0")):
        fusion.alpha_floor(0.0)
    # one slice is a valid ray: S = -ln(alpha) / chi
    assert torch.allclose(fusion.required_sum(torch.tensor([[0.5]]), chi=2.0, n=1),
                          torch.tensor([[0.6931472 / 2]]), atol=1e-7)


def test_fuse_to_file_names_a_bad_path_and_tile(tmp_path):
    mu, alpha = good()
    bad = tmp_path / "v.npz"
    with pytest.raises(ValueError, match=exactly(f"fuse_to_file: {bad}: expected a .nii or .nii.gz path")):
        fusion.fuse_to_file(mu, alpha, bad)
    with pytest.raises(ValueError, match=exactly("fuse_to_file: tile must be an integer >= 1, got 0")):
        fusion.fuse_to_file(mu, alpha, tmp_path / "v.nii", tile=0)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- the streamed file

def read_nifti(path):
    image = nib.as_closest_canonical(nib.load(path))
    return torch.from_numpy(np.asarray(image.dataobj, dtype=np.float32).transpose(2, 1, 0).copy())


def test_fuse_to_file_defaults_and_progress_bar(tmp_path, capsys):
    """Defaults are those of ``fuse_upsampled`` (Eq. 2, beta = 2); the bar counts rows under 'fusion'."""
    coarse, _ = good(seed=1, n=6, h=4, w=5)
    alpha = torch.rand(9, 11, generator=torch.Generator().manual_seed(2)) * 0.5 + 0.3
    path = fusion.fuse_to_file(coarse, alpha, tmp_path / "v.nii", tile=4)  # 16 // 11 = 1 row per block
    assert (read_nifti(path) - fusion.fuse_upsampled(coarse, alpha)).abs().max() <= 1e-6  # float32 file
    err = capsys.readouterr().err
    assert "fusion: 100%" in err and "9/9" in err and "row/s" in err and "10/9" not in err
    fusion.fuse_to_file(coarse, alpha, tmp_path / "w.nii", progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("name, gzipped", [("V.NII", False), ("v.NII.GZ", True), ("v.Nii.Gz", True)])
def test_fuse_to_file_reads_the_suffix_in_any_case(tmp_path, name, gzipped):
    coarse, _ = good(seed=3, n=5, h=3, w=3)
    alpha = torch.rand(6, 7, generator=torch.Generator().manual_seed(4)) * 0.5 + 0.3
    path = fusion.fuse_to_file(coarse, alpha, tmp_path / name, tile=3, progress=False)
    with open(path, "rb") as f:
        assert (f.read(2) == b"\x1f\x8b") == gzipped  # the gzip magic number
    data = gzip.decompress(path.read_bytes()) if gzipped else path.read_bytes()
    assert len(data) == 352 + 4 * 5 * 6 * 7  # header, then float32 voxels, nothing more
    assert nib.Nifti1Header.from_fileobj(io.BytesIO(data[:348])).get_data_offset() == 352
    volume = torch.from_numpy(np.frombuffer(data[352:], dtype=np.float32).reshape(5, 6, 7).copy())
    assert (volume - fusion.fuse_upsampled(coarse, alpha)).abs().max() <= 1e-6
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_fuse_to_file_failing_before_any_block_keeps_its_own_error(tmp_path, monkeypatch):
    def failing(*args):
        raise RuntimeError("no header")

    monkeypatch.setattr(fusion, "nifti_header", failing)
    for name in ("v.nii", "v.nii.gz"):
        with pytest.raises(RuntimeError, match="no header"):
            fusion.fuse_to_file(*good(), tmp_path / name, progress=False)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- edges and dtypes

def test_a_single_slice_and_a_single_row_are_valid_inputs():
    one = torch.tensor([[[0.2, 0.4]]])               # n = 1, h = 1, w = 2
    alpha = torch.full((1, 3), 0.5)                  # H = 1
    fused = fusion.fuse_upsampled(one, alpha)
    assert fused.shape == (1, 1, 3)
    assert torch.allclose(composite(fused), alpha, atol=1e-6)


@pytest.mark.parametrize("policy", list(fusion.POLICIES))
def test_float64_volumes_fuse_in_float64_whatever_the_xray_dtype(policy):
    # a float32 x-ray holds values exactly representable in float64: fusing in float64 must not
    # round them (or their logarithm) to float32, which would cost ~1e-7 relative
    g = torch.Generator().manual_seed(5)
    mu = torch.rand(8, 4, 4, generator=g, dtype=torch.float64)
    alpha32 = torch.rand(4, 4, generator=g) * 0.8 + 0.1
    fused = fusion.fuse(mu, alpha32, policy=policy)
    assert fused.dtype == torch.float64
    assert (fused - fusion.fuse(mu, alpha32.double(), policy=policy)).abs().max() < 1e-13
    coarse = mu[:, :2, :2]
    up = fusion.fuse_upsampled(coarse, alpha32, policy=policy)
    assert up.dtype == torch.float64
    assert (up - fusion.fuse_upsampled(coarse, alpha32.double(), policy=policy)).abs().max() < 1e-13


def test_paper_density_error_is_per_ray():
    """``log(1 - (alpha_pred - alpha)) / (chi dt)`` pixel by pixel, ``alpha_pred`` from each ray's own sum."""
    g = torch.Generator().manual_seed(6)
    mu = torch.rand(10, 2, 3, generator=g, dtype=torch.float64)
    alpha = torch.rand(2, 3, generator=g, dtype=torch.float64) * 0.5 + 0.4
    chi, n = 7.0, 10
    for i in range(2):
        for j in range(3):
            predicted = np.exp(-chi / n * mu[:, i, j].sum().item())
            expected = np.log(1 - (predicted - alpha[i, j].item())) * n / chi
            assert fusion.paper_density_error(alpha, mu, chi=chi)[i, j].item() == pytest.approx(expected, rel=1e-12)


def test_the_gzipped_file_shows_progress_and_is_compressed_at_the_fastest_level(tmp_path, capsys):
    coarse, _ = good(seed=7, n=4, h=3, w=3)
    alpha = torch.rand(5, 6, generator=torch.Generator().manual_seed(8)) * 0.5 + 0.3
    path = fusion.fuse_to_file(coarse, alpha, tmp_path / "v.nii.gz", tile=3)
    assert "fusion: 100%" in capsys.readouterr().err    # progress by default, as for .nii
    # RFC 1952: byte 8 (XFL) is 4 when the compressor used its fastest level (gzip's level 1)
    assert path.read_bytes()[8] == 4


def test_scaled_on_its_own_defaults_to_beta_2_and_leaves_an_empty_ray_that_needs_nothing_empty():
    mu = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)[:, None, None]
    delta = torch.tensor([[-0.5]], dtype=torch.float64)          # too light: 0.5 added as mu ** 2
    expected = mu + 0.5 * mu ** 2 / 5
    assert torch.allclose(fusion.scaled(mu, delta), expected, atol=1e-15)
    empty = fusion.scaled(torch.zeros(4, 1, 1), torch.zeros(1, 1))  # nothing there, nothing needed
    assert torch.equal(empty, torch.zeros(4, 1, 1))


def test_float64_upsampling_is_exact_bilinear_interpolation():
    # source rows (r + 0.5) h / H - 0.5 in float64: a float32 grid would miss by ~1e-8
    coarse = torch.rand(3, 7, 5, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    up = torch.nn.functional.interpolate(coarse[None], size=(29, 5), mode="bilinear", align_corners=False)[0]
    fused = fusion.fuse_upsampled(coarse, composite(up))
    assert fused.dtype == torch.float64
    assert (fused - up).abs().max() < 1e-12
