"""From a real radiograph to a volume: preparing the image, `xtomo reconstruct` with a preview."""
from pathlib import Path

import imageio.v3 as iio
import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import cli, require

from xtomo.data import io, realdata
from xtomo.imaging import render, xray
from xtomo.learning import inference
from xtomo.learning.inference import prepare_radiograph
from xtomo.learning.train import train
from xtomo.profiles import get_profile

SMOKE = get_profile("smoke")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train(SMOKE, steps=2, out_dir=out, progress=False)
    return out / "checkpoint.pt"


def test_prepare_makes_air_empty_and_keeps_the_specimen_in_the_disc():
    alpha = torch.full((64, 80), 0.7)                 # a scanner offset: air is 30 % opaque
    alpha[20:44, 30:50] = 0.2                         # the specimen
    out = prepare_radiograph(alpha, air=0.05)
    assert out.shape == (80, 80)                      # squared, padded with air
    assert out[0, 0] == 1 and out[40, 40] == pytest.approx(1 - (0.8 - 0.3) / 0.7, abs=1e-5)
    crop = prepare_radiograph(alpha, box=(16, 24, 32), air=0.05)
    assert crop.shape == (32, 32) and crop[16, 16] == out[32, 40]
    bare = prepare_radiograph(alpha, air=None, vignette=False)
    assert torch.allclose(bare[8:72], alpha)          # nothing but the square padding
    with pytest.raises(ValueError, match="no air"):
        prepare_radiograph(torch.zeros(50, 50), air=0.5)
    vignetted = prepare_radiograph(torch.full((50, 50), 0.5), air=None)
    assert vignetted[25, 25] == 0.5 and vignetted[0, 0] == 1 and vignetted[0, 25] > 0.5


@pytest.mark.parametrize("box,message", [((0, 0, 100), "does not fit"), ((-1, 0, 8), "does not fit"),
                                         ((0, 0, 1), "does not fit")])
def test_prepare_rejects_bad_crops(box, message):
    with pytest.raises(ValueError, match=message):
        prepare_radiograph(torch.rand(40, 60), box=box)


def disc(shape, centre, radius, opacity=0.6) -> torch.Tensor:
    """An x-ray ``shape`` of a disc of ``opacity`` (alpha 1 - opacity) on empty air."""
    rows, cols = torch.meshgrid(torch.arange(shape[0]) + 0.5, torch.arange(shape[1]) + 0.5, indexing="ij")
    inside = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius ** 2
    return torch.where(inside, 1 - opacity, 1.0)


def test_specimen_circle_of_a_disc():
    cy, cx, r = inference.specimen_circle(disc((50, 80), (20, 30), 10))
    assert abs(cy - 20) <= 0.5 and abs(cx - 30) <= 0.5 and 10 <= r <= 10 + 2 ** 0.5
    faint = disc((50, 80), (20, 30), 10) * disc((50, 80), (40, 70), 5, opacity=0.02)  # under 5 %: air
    assert inference.specimen_circle(faint) == (cy, cx, r)
    with pytest.raises(ValueError, match="empty"):
        inference.specimen_circle(torch.ones(8, 8))


@pytest.mark.parametrize("radius", [6, 30])
def test_frame_makes_the_specimen_as_large_as_in_training(radius):
    """A small specimen in a large image is cropped to; a large one is padded with air: either way its
    circle ends at FRAMING of the side, its pixels unchanged (no resampling)."""
    alpha = disc((64, 64), (28, 36), radius)
    framed = inference.frame(alpha)
    side = framed.shape[-1]
    assert framed.shape == (side, side)
    assert inference.specimen_circle(framed)[2] / side == pytest.approx(inference.FRAMING, abs=1 / side)
    assert float((1 - framed).sum()) == pytest.approx(float((1 - alpha).sum()))   # all of it, as it was
    assert (side > 64) == (radius > 0.38 * 64 / 2)
    if side > 64:
        assert framed[0, 0] == 1 and framed[-1, -1] == 1                      # the padding is air
    with pytest.raises(ValueError, match="radius must be"):
        inference.framing_box(alpha, radius=0.7)


def test_square_at_reaches_past_the_image_with_air():
    alpha = torch.rand(10, 12)
    out = inference.square_at(alpha, -3, 4, 15)
    assert out.shape == (15, 15) and torch.equal(out[3:13, :8], alpha[:, 4:])
    assert bool((out[:3] == 1).all()) and bool((out[:, 8:] == 1).all())


def test_framing_is_what_the_training_xrays_show():
    """FRAMING and FRAMING_RANGE were measured on the `quick` profile's training x-rays; the crania's
    x-rays at 128 pixels still show their specimens that large (median within 0.02, and the 5th and
    95th percentiles within 0.04 of the range's ends)."""
    from xtomo.learning.train import train_val_sets

    p = SMOKE.replace(volume_size=64, xray_size=128)
    found, _ = train_val_sets(p)
    found.augment = False
    picked = torch.randperm(len(found), generator=torch.Generator().manual_seed(0))[:96].tolist()
    shares = torch.tensor([inference.specimen_circle(found[i]["xray"][0])[2] / p.xray_size for i in picked])
    low, mid, high = torch.quantile(shares, torch.tensor([0.05, 0.5, 0.95])).tolist()
    assert abs(mid - inference.FRAMING) < 0.02, mid
    assert abs(low - inference.FRAMING_RANGE[0]) < 0.04 and abs(high - inference.FRAMING_RANGE[1]) < 0.04


def test_reconstruct_fits_a_misframed_xray_and_says_when_it_is_not(checkpoint, tmp_path):
    io.save_xray(disc((96, 96), (48, 48), 8), tmp_path / "small.png")
    done = cli("reconstruct", "small.png", "--checkpoint", str(checkpoint), "--out", "v.npz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "fills a circle of radius 0.09" in done.stderr and "--fit" in done.stderr
    done = cli("reconstruct", "small.png", "--checkpoint", str(checkpoint), "--out", "f.npz", "--fit",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "fills a circle" not in done.stderr
    side = inference.framing_box(disc((96, 96), (48, 48), 8))[2]            # about 8 / 0.38 pixels
    assert np.load(tmp_path / "f.npz")["volume"].shape[-1] == side and 20 <= side <= 24


def test_reconstruct_undoes_a_named_tubes_beam_hardening(checkpoint, tmp_path):
    """``--tube 70``: the x-ray is unhardened for a 70 kVp tube through 2.5 mm of aluminium before the network and
    fusion, so the fused volume re-projects to the unhardened x-ray; a bad value is named."""
    from xtomo.imaging import fusion, microct

    io.save_xray(disc((64, 64), (32, 32), 20), tmp_path / "x.png", bits=16)
    done = cli("reconstruct", "x.png", "--checkpoint", str(checkpoint), "--out", "t.npz", "--tube", "70",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    read = io.load_xray(tmp_path / "x.png")
    wanted = microct.unharden(read, microct.Scanner(kvp=70, filter_mm=2.5))
    volume = torch.from_numpy(np.load(tmp_path / "t.npz")["volume"])
    assert fusion.density_error(wanted, volume).abs().max() < 1e-3
    assert float(wanted.min()) < float(read.min()) - 0.05, "bone attenuates more once unhardened"
    for bad in ("hot", "70,-1", "500"):
        done = cli("reconstruct", "x.png", "--checkpoint", str(checkpoint), "--out", "b.npz", "--tube", bad,
                   cwd=tmp_path)
        assert done.returncode != 0 and "xtomo: error:" in done.stderr and "Traceback" not in done.stderr, bad


def test_preview_is_the_xray_beside_three_views():
    volume = xray.align(torch.nn.functional.pad(torch.ones(12, 12, 12), [10] * 6), xray.direction(20, 30))
    strip = render.preview(volume, xray.composite(volume), size=24)
    assert strip.shape == (3, 24, 4 * 24) and strip.max() > 0.5
    assert render.preview(volume, size=24).shape == (3, 24, 3 * 24)
    with pytest.raises(ValueError, match="one view-aligned volume"):
        render.preview(volume[None])


def test_reconstruct_a_real_dicom_radiograph_with_a_preview(checkpoint, tmp_path):
    try:
        cat = realdata.RADIOGRAPHS["cat chest"].path
    except FileNotFoundError as missing:
        require(missing, str(missing))
    done = cli("reconstruct", str(cat), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "cat.nii.gz"),
               "--crop", "700,400,640", "--air", "0.01", "--gamma", "1.0", "--preview", str(tmp_path / "cat.png"))
    assert done.returncode == 0, done.stderr
    volume = nib.load(tmp_path / "cat.nii.gz")
    assert volume.shape == (640, 640, SMOKE.volume_size)      # x fastest: the crop at full resolution
    # the file's PixelSpacing, 0.14 mm: the crop is 89.6 mm wide, and so deep
    np.testing.assert_allclose(volume.header.get_zooms(), [0.14, 0.14, 89.6 / SMOKE.volume_size], rtol=1e-5)
    assert volume.header.get_xyzt_units()[0] == "mm" and "89.6 x 89.6 x 89.6 mm (pixel size from PixelSpacing)" \
        in done.stdout
    picture = iio.imread(tmp_path / "cat.png")
    assert picture.shape == (192, 4 * 192, 3) and picture.std() > 5
    assert str(tmp_path / "cat.png") in done.stdout


def test_a_whole_dicom_radiograph_reconstructs_to_its_physical_width(checkpoint, tmp_path):
    try:
        cat = realdata.RADIOGRAPHS["cat chest"].path   # 3072 columns x 2614 rows of 0.14 mm
    except FileNotFoundError as missing:
        require(missing, str(missing))
    done = cli("reconstruct", str(cat), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "cat.nii"),
               "--no-fusion")
    assert done.returncode == 0, done.stderr
    volume = nib.load(tmp_path / "cat.nii")
    width = 3072 * 0.14                                   # the detector's width, 430.08 mm
    corners = np.array([[x, y, z, 1] for x in (-0.5, volume.shape[0] - 0.5) for y in (-0.5, volume.shape[1] - 0.5)
                        for z in (-0.5, volume.shape[2] - 0.5)]) @ volume.affine.T
    np.testing.assert_allclose(np.ptp(corners[:, :3], axis=0), [width] * 3, rtol=1e-5)  # what a viewer shows
    np.testing.assert_allclose(volume.get_qform(), volume.get_sform(), atol=1e-4)


def test_the_user_says_how_large_a_png_xray_is(checkpoint, tmp_path):
    io.save_xray(torch.linspace(0.4, 1.0, 512).reshape(16, 32), tmp_path / "x.png")
    sizes = {"--fov": ("100", 100.0), "--pixel-size": ("0.5", 16.0), None: (None, 250.0)}  # 32 columns
    for option, (value, width) in sizes.items():
        given = [option, value] if option else []
        done = cli("reconstruct", "x.png", "--checkpoint", str(checkpoint), "--out", "v.nii", *given, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        affine = nib.load(tmp_path / "v.nii").affine
        assert affine[0, 0] == pytest.approx(width / 32) and affine[1, 1] == pytest.approx(-width / 32)
        assert f"from {option or 'default'})" in done.stdout


@pytest.mark.parametrize("args,message", [
    (["--pixel-size", "0,1"], "--pixel-size expects MM or ROW,COLUMN"),
    (["--pixel-size", "1", "--fov", "2"], "not both"),
    (["--frame", "2"], "chooses a frame of a multi-frame DICOM"),
    (["--crop", "1,2"], "--crop expects TOP,LEFT,SIDE"),
    (["--crop", "0,0,999"], "does not fit"),
    (["--air", "1.5"], "air must be a fraction"),
    (["--preview", "p.jpg"], "p.jpg: --preview must be a .png file"),
    (["--gamma", "inf"], "gamma must be a finite number > 0, got inf"),
    (["--gamma", "0"], "gamma must be a finite number > 0, got 0"),
])
def test_reconstruct_rejects_bad_options(checkpoint, tmp_path, args, message):
    io.save_xray(torch.linspace(0.4, 1.0, 256).reshape(16, 16), tmp_path / "x.png")
    done = cli("reconstruct", str(tmp_path / "x.png"), "--checkpoint", str(checkpoint), "--out", "v.npz",
               *args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_the_networks_input_stays_a_transparency_after_resampling():
    """Anti-aliased resampling is a convex combination, but in float32 an all-air 1955^2 image comes
    back at 1 + 3.6e-7 (measured); the input is clamped to [0, 1], so the documented radiograph recipe
    (``--air --preview``) accepts every bundled radiograph."""
    from xtomo.learning.inference import to_network_input

    for side in (1955, 1760):
        x = to_network_input(torch.ones(side, side), 256)
        assert x.shape == (1, 1, 256, 256) and float(x.max()) == 1.0 and float(x.min()) > 1 - 1e-6


@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "RG3_UNCR.dcm"])
def test_the_radiograph_recipe_with_a_preview_works_on_the_bundled_radiographs(checkpoint, tmp_path, name):
    path = realdata.data_dir() / name
    require(path.exists(), f"{path} is missing (xtomo fetch-data)")
    # .nii: compressing the full-resolution volume (32 x 1955^2) would take most of the test's time, and
    # test_fusion writes .nii.gz the same streamed way
    done = cli("reconstruct", str(path), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "v.nii"),
               "--air", "0.01", "--gamma", "2.2", "--preview", str(tmp_path / "p.png"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "p.png").exists() and (tmp_path / "v.nii").exists()


def test_single_pass_runs_the_network_once(checkpoint, tmp_path):
    """By default the network's answer is averaged with its answer to the mirrored x-ray;
    ``--single-pass`` writes the network's own, as the paper's did."""
    from xtomo.learning.inference import reconstruct
    from xtomo.learning.train import load_model

    alpha = torch.rand(32, 32) * 0.6 + 0.4
    io.save_xray(alpha, tmp_path / "x.png", bits=16)
    alpha = io.load_xray(tmp_path / "x.png")
    model = load_model(checkpoint)
    for extra, mirror in (([], True), (["--single-pass"], False)):
        done = cli("reconstruct", "x.png", "--checkpoint", str(checkpoint), "--out", "v.npz", "--no-fusion",
                   *extra, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        written = torch.from_numpy(np.load(tmp_path / "v.npz")["volume"])
        torch.testing.assert_close(written, reconstruct(alpha, model, fuse=False, mirror=mirror), atol=1e-6, rtol=1e-5)


def test_symmetry_option_is_the_librarys(checkpoint, tmp_path):
    """``--symmetry lateral`` writes what ``reconstruct(symmetry="lateral")`` returns, fused or not;
    an unknown choice is refused by name."""
    from xtomo.learning.inference import reconstruct
    from xtomo.learning.train import load_model

    io.save_xray(torch.rand(32, 32) * 0.6 + 0.4, tmp_path / "x.png", bits=16)
    alpha = io.load_xray(tmp_path / "x.png")
    model = load_model(checkpoint)
    for extra, fuse in ((["--no-fusion"], False), ([], True)):
        done = cli("reconstruct", "x.png", "--checkpoint", str(checkpoint), "--out", "v.npz", "--symmetry", "lateral",
                   *extra, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        written = torch.from_numpy(np.load(tmp_path / "v.npz")["volume"])
        expected = reconstruct(alpha, model, fuse=fuse, symmetry="lateral")
        torch.testing.assert_close(written, expected, atol=1e-6, rtol=1e-5)
        assert not torch.allclose(written, reconstruct(alpha, model, fuse=fuse), atol=1e-4)
    done = cli("reconstruct", "x.png", "--out", "v.npz", "--symmetry", "oblique", cwd=tmp_path)
    assert done.returncode != 0 and "invalid choice: 'oblique'" in done.stderr


def test_level_option_is_the_librarys_and_needs_symmetry(checkpoint, tmp_path):
    """``--symmetry lateral --level`` writes what ``reconstruct(symmetry="lateral", level=True)`` returns;
    ``--level`` alone, or about an estimated plane, is refused before any work, naming what it needs."""
    from xtomo.learning.inference import reconstruct
    from xtomo.learning.train import load_model

    io.save_xray(torch.rand(32, 32) * 0.6 + 0.4, tmp_path / "x.png", bits=16)
    alpha = io.load_xray(tmp_path / "x.png")
    done = cli("reconstruct", "x.png", "--checkpoint", str(checkpoint), "--out", "v.npz", "--symmetry", "lateral",
               "--level", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    written = torch.from_numpy(np.load(tmp_path / "v.npz")["volume"])
    expected = reconstruct(alpha, load_model(checkpoint), symmetry="lateral", level=True)
    torch.testing.assert_close(written, expected, atol=1e-6, rtol=1e-5)
    for extra in ([], ["--symmetry", "estimate"]):
        done = cli("reconstruct", "x.png", "--checkpoint", str(checkpoint), "--out", "w.npz", "--level", *extra,
                   cwd=tmp_path)
        assert done.returncode == 2 and "give --symmetry lateral or frontal" in done.stderr, done.stderr
        assert not (tmp_path / "w.npz").exists()


def test_evaluate_scores_a_ct_against_the_even_spread(checkpoint, tmp_path):
    """``xtomo evaluate CT`` x-rays the CT from seeded views, reconstructs each x-ray and prints ours
    over the even spread per acquisition; the CSV holds every view's scores, the even spread's
    re-projecting exactly as ours does."""
    import csv

    from xtomo.specimens import crania

    io.save_volume(crania.skull(crania.catalog(12)[0], size=48), tmp_path / "skull.npz")
    done = cli("evaluate", "skull.npz", "--checkpoint", str(checkpoint), "--views", "3", "--acquisition",
               "ideal", "--csv", "scores.csv", "--figure", "grid.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("ideal "))
    l2, rmse = (float(v) for v in line.split()[1:3])
    with open(tmp_path / "scores.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["method"] for r in rows} == {"ours", "ours_unfused", "extrude"}
    assert {r["acquisition"] for r in rows} == {"ideal"} and len(rows) == 9
    by = {m: [float(r["l2"]) for r in rows if r["method"] == m] for m in ("ours", "extrude")}
    assert l2 == pytest.approx(sum(by["ours"]) / sum(by["extrude"]), abs=6e-4)
    assert rmse == pytest.approx(sum(v ** 0.5 for v in by["ours"]) / sum(v ** 0.5 for v in by["extrude"]), abs=6e-4)
    assert max(float(r["reprojection"]) for r in rows if r["method"] in ("ours", "extrude")) < 1e-3
    assert iio.imread(tmp_path / "grid.png").ndim == 3


def test_evaluate_with_symmetry_or_policy_changes_ours_only_and_still_reprojects(checkpoint, tmp_path):
    """``xtomo evaluate --symmetry view``: our answers made symmetric about each view's plane score
    differently, still re-project to their x-rays, and the even spread is untouched; so does ``--policy even``,
    which leaves the network's answer as it was."""
    import csv

    from xtomo.specimens import crania

    io.save_volume(crania.skull(crania.catalog(12)[0], size=48), tmp_path / "skull.npz")
    rows = {}
    for name, extra in (("plain", []), ("view", ["--symmetry", "view"]), ("even", ["--policy", "even"])):
        done = cli("evaluate", "skull.npz", "--checkpoint", str(checkpoint), "--views", "2", "--acquisition",
                   "ideal", "--csv", f"{name}.csv", "--as-scanned", *extra, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        with open(tmp_path / f"{name}.csv", newline="") as fh:
            rows[name] = {(r["method"], r["view"]): r for r in csv.DictReader(fh)}
    # symmetry changes the network's answer, --policy only how it is fused
    for name, unchanged in (("view", {"extrude"}), ("even", {"extrude", "ours_unfused"})):
        assert rows["plain"].keys() == rows[name].keys()
        for key, r in rows[name].items():
            same = r["l2"] == rows["plain"][key]["l2"]
            assert same == (key[0] in unchanged), (name, key)
            if key[0] in ("ours", "extrude"):
                assert float(r["reprojection"]) < 1e-3


def test_evaluate_scores_the_dry_skull_of_a_ct_with_soft_tissue(checkpoint, tmp_path):
    """``--bone``: a skull CT in its own units with soft tissue around the bone scores as its dry skull."""
    from xtomo.specimens import crania

    skull = crania.skull(crania.catalog(12)[0], size=48)
    near = torch.nn.functional.max_pool3d(skull[None, None], 9, 1, 4)[0, 0] > 0   # the bone and around it
    wet = skull.where(skull > 0.25, near * 0.2)                                   # soft tissue at 0.2
    io.save_volume(wet, tmp_path / "wet.npz")
    io.save_volume(torch.from_numpy(io.dry_skull(wet.numpy(), 0.25)), tmp_path / "dry.npz")
    found = {}
    for name, extra in (("dry", []), ("wet", ["--bone", "0.25"])):
        done = cli("evaluate", f"{name}.npz", "--checkpoint", str(checkpoint), "--views", "2", "--acquisition",
                   "ideal", "--as-scanned", *extra, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        found[name] = next(x for x in done.stdout.splitlines() if x.startswith("ideal ")).split()[1:]
    assert found["wet"] == found["dry"]


def test_evaluate_sets_a_skull_upright_unless_told_to_keep_it_as_scanned(checkpoint, tmp_path):
    """A skull stored on its side scores as the same skull stored upright (``xtomo.data.pose`` turns it back
    within a few degrees); ``--as-scanned`` x-rays it as it lies, and scores differently."""
    from xtomo.specimens import crania

    skull = crania.skull(crania.catalog(12)[0], size=48)
    io.save_volume(skull, tmp_path / "upright.npz")
    io.save_volume(skull.transpose(0, 2).flip(0), tmp_path / "side.npz")
    found = {}
    for name, extra in (("upright", ["--as-scanned"]), ("side", []), ("side as scanned", ["--as-scanned"])):
        done = cli("evaluate", f"{name.split()[0]}.npz", "--checkpoint", str(checkpoint), "--views", "3",
                   "--acquisition", "ideal", *extra, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        line = next(x for x in done.stdout.splitlines() if x.startswith("ideal "))
        found[name] = [float(v) for v in line.split()[1:4]]
        turned = [x for x in done.stdout.splitlines() if "set upright (xtomo.data.pose)" in x]
        assert len(turned) == (name == "side"), done.stdout
        if turned:
            assert 80 <= int(turned[0].split("turned ")[1].split()[0]) <= 100, turned
            margin = float(turned[0].split("median turn by ")[1].split()[0])
            assert margin >= 0.1 and "template (correlation 0." in turned[0], turned
    assert found["side"] == pytest.approx(found["upright"], abs=0.03)
    assert max(abs(a - b) for a, b in zip(found["side as scanned"], found["upright"])) > 0.05


@pytest.mark.parametrize("args,message", [
    (["--views", "0"], "--views must be"),
    (["--bone", "nan"], "bone must be a finite number"),
    (["--csv", "s.txt"], "--csv must be a .csv file"),
    (["--acquisition", "xray"], "invalid choice"),
    (["--level"], "most symmetric about a known view's plane: give --symmetry view"),
    (["--level", "--symmetry", "estimate"], "give --symmetry view"),
    (["--policy", "nope"], "unknown fusion policy 'nope'"),
])
def test_evaluate_rejects_bad_options(checkpoint, tmp_path, args, message):
    io.save_volume(torch.zeros(16, 16, 16).index_fill_(0, torch.tensor([8]), 0.5), tmp_path / "v.npz")
    done = cli("evaluate", "v.npz", "--checkpoint", str(checkpoint), *args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
