"""The renderer (xtomo.imaging.render) and its light (xtomo.imaging.shading): geometry, lighting, occlusion
and compositing against closed forms."""
import math

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from xtomo import cli
from xtomo.imaging import render, shading, xray
from xtomo.specimens import phantoms

N = 48
R = 0.3


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These volumes are small: one thread is faster, and keeps timing stable on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sphere():
    return phantoms.ball(N, R)


def camera_coords(size: int):
    """Camera x (right) and y (up) of every pixel centre, in units of the cube."""
    t = (torch.arange(size, dtype=torch.float32) + 0.5) / size - 0.5
    return t[None, :].expand(size, size), -t[:, None].expand(size, size)


def test_sphere_iso_is_a_disc_of_area_pi_r_squared(sphere):
    image = render.iso(sphere, xray.direction(37.0, 25.0), level=0.5)
    assert image.shape == (N, N) and image.min() >= 0 and image.max() <= 1
    area = (image > 0).sum().item()
    assert area == pytest.approx(math.pi * (R * N) ** 2, rel=0.04)


def test_sphere_normals_point_out_of_the_sphere(sphere):
    aligned = render.to_camera(sphere, xray.direction(-60.0, 50.0))
    surf = shading.surface(aligned[None], level=0.5)
    x, y = camera_coords(N)
    rho2 = x**2 + y**2
    inner = rho2 < (0.85 * R) ** 2
    expected = torch.stack([x, y, (R**2 - rho2).clamp_min(0).sqrt()], dim=-1) / R
    cos = (surf.normal[0] * expected).sum(-1)[inner]
    assert surf.hit[0][inner].all()
    assert cos.mean() > 0.995 and cos.min() > 0.98
    # The refined crossing lies on the sphere: camera z of sample i is 0.5 - (i + 0.5) / N.
    depth = (0.5 - (R**2 - rho2).clamp_min(0).sqrt()) * N - 0.5
    assert (surf.depth[0] - depth)[inner].abs().max() < 0.25


def test_centre_of_a_sphere_faces_the_viewer(sphere):
    """Facing the camera, a Lambertian point reflects E(view direction) / pi; a headlight
    environment makes the centre the brightest pixel."""
    plain = dict(ao=0.0, specular=0.0, depth_cue=0.0, albedo=1.0, level=0.5)
    image = render.iso(sphere, xray.direction(10.0, 30.0), **plain)
    expected = shading.irradiance(torch.tensor([0.0, 0.0, 1.0])) / math.pi
    centre = image[N // 2 - 1:N // 2 + 1, N // 2 - 1:N // 2 + 1]
    assert centre.mean().item() == pytest.approx(expected.item(), rel=0.02)

    def headlight(d):
        return d[..., 2].clamp_min(0)

    lit = render.iso(sphere, xray.direction(10.0, 30.0), environment=headlight, **plain)
    row, col = divmod(lit.argmax().item(), N)
    assert abs(row + 0.5 - N / 2) <= 2 and abs(col + 0.5 - N / 2) <= 2


def test_sh_irradiance_of_a_constant_environment_is_pi_l():
    normals = torch.randn(200, 3, generator=torch.Generator().manual_seed(0))
    normals = normals / normals.norm(dim=-1, keepdim=True)

    def constant(d):
        return torch.full(d.shape[:-1], 0.7, dtype=d.dtype)

    assert torch.allclose(shading.irradiance(normals, constant), torch.full((200,), 0.7 * math.pi), rtol=1e-3)


def test_sh_irradiance_of_a_band_limited_environment_is_exact():
    """L = 0.5 + 0.3 z + 0.2 x y lies in bands 0-2, which the cosine lobe scales by
    pi, 2 pi / 3 and pi / 4: E(n) = 0.5 pi + 0.2 pi n_z + 0.05 pi n_x n_y."""
    def environment(d):
        return 0.5 + 0.3 * d[..., 2] + 0.2 * d[..., 0] * d[..., 1]

    n = torch.nn.functional.normalize(torch.randn(100, 3, generator=torch.Generator().manual_seed(1)), dim=-1)
    expected = math.pi * (0.5 + 0.2 * n[:, 2] + 0.05 * n[:, 0] * n[:, 1])
    assert torch.allclose(shading.irradiance(n, environment), expected, rtol=2e-3)


def test_default_environment_is_brighter_above_than_below():
    up, down = shading.irradiance(torch.tensor([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]]))
    assert up > 3 * down > 0


@pytest.fixture(scope="module")
def bowl(sphere):
    """A hollow hemispherical shell, open towards +z: concave inside, seen from the top."""
    shell = sphere - phantoms.ball(N, 0.18)
    z = (torch.arange(N, dtype=torch.float32) + 0.5) / N - 0.5
    return shell * (z <= 0.02).float()[:, None, None]


def centre_openness(volume: torch.Tensor) -> float:
    aligned = render.to_camera(volume, xray.direction(0.0, 90.0))[None]
    surf = shading.surface(aligned, 0.5)
    openness = shading.ambient_occlusion(aligned, surf, 0.5)
    return openness[0, N // 2 - 2:N // 2 + 2, N // 2 - 2:N // 2 + 2].mean().item()


def test_ambient_occlusion_darkens_a_cavity_not_a_convex_sphere(sphere, bowl):
    assert centre_openness(sphere) > 0.97
    assert centre_openness(bowl) < 0.85
    top = xray.direction(0.0, 90.0)
    c = slice(N // 2 - 2, N // 2 + 2)
    darkening = render.iso(bowl, top, 0.5)[c, c].mean() / render.iso(bowl, top, 0.5, ao=0)[c, c].mean()
    assert darkening < 0.85


def test_mip_of_a_uniform_sphere_is_its_density_inside_the_disc():
    image = render.mip(phantoms.ball(N, R, density=0.6), xray.direction(123.0, 40.0))
    x, y = camera_coords(N)
    rho = (x**2 + y**2).sqrt()
    assert torch.allclose(image[rho < R - 0.05], torch.tensor(0.6), atol=1e-4)
    assert (image[rho > R + 0.05] == 0).all()


def test_dvr_transparent_transfer_shows_the_background(sphere):
    def clear(d):
        return torch.ones(*d.shape, 3), torch.zeros_like(d)

    out = render.dvr(sphere, xray.direction(20.0, 20.0), clear, background=(0.2, 0.4, 0.6))
    assert out.shape == (3, N, N)
    assert torch.allclose(out, torch.tensor([0.2, 0.4, 0.6])[:, None, None].expand(3, N, N), atol=1e-6)


def test_dvr_opaque_transfer_shows_the_first_surface():
    top = xray.direction(0.0, 90.0)           # camera z is world z: +z is nearer the viewer

    def orange_solid(d):
        return torch.tensor([1.0, 0.5, 0.0]).expand(*d.shape, 3), (d > 0.2).float()

    out = render.dvr(phantoms.ball(N, R), top, orange_solid, shading=0)
    x, y = camera_coords(N)
    rho = (x**2 + y**2).sqrt()
    assert torch.allclose(out[:, rho < R - 0.03], torch.tensor([1.0, 0.5, 0.0])[:, None], atol=1e-3)
    assert (out[:, rho > R + 0.03] == 0).all()

    # A red body (density 0.4) in front of a blue one (0.9): the front one hides the back one.
    scene = (phantoms.ball(N, 0.12, 0.4, centre=(0.0, 0.0, 0.2))
             + phantoms.ball(N, 0.2, 0.9, centre=(0.0, 0.0, -0.15)))

    def red_blue(d):
        rgb = torch.where((d < 0.6)[..., None], torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0]))
        return rgb, (d > 0.2).float()

    out = render.dvr(scene, top, red_blue, shading=0)
    c = N // 2
    red = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
    assert torch.allclose(out[:, c - 1:c + 1, c - 1:c + 1], red, atol=1e-3)
    ring = out[:, c, c + int(0.16 * N)]                       # only the back body on this ray
    assert ring.sum() == pytest.approx(1.0, abs=1e-3)         # opaque (its rim passes 0.2-0.6: red)


def test_dvr_named_transfers_give_colour_images(sphere):
    for name in ("bone", "skin-bone", "rainbow", "colourful"):
        out = render.dvr(sphere * 0.74, xray.direction(30.0, 20.0), name)
        assert out.shape == (3, N, N) and out.min() >= 0 and out.max() <= 1
        assert out[:, N // 2, N // 2].sum() > 0.3 and out[:, 0, 0].sum() == 0
    with pytest.raises(ValueError, match="transfer"):
        render.dvr(sphere, None, "no-such-transfer")


def test_xray_resynthesis_equals_simulate(sphere):
    volume = sphere * 0.5 + phantoms.ball(N, 0.1, 0.5, centre=(0.15, -0.1, 0.05))
    d = xray.direction(70.0, 15.0)
    assert torch.allclose(render.radiograph(volume, d, size=40, n_steps=64),
                          xray.simulate(volume, d, n_steps=64, size=40), atol=1e-6)
    aligned = xray.align(volume, d, n_steps=N)
    assert torch.allclose(render.radiograph(aligned), xray.composite(aligned), atol=1e-6)


def test_anaglyph_has_parallax_and_red_is_the_left_eye():
    """A ball nearer than the centre is seen further right by the left eye (crossed disparity)."""
    near = phantoms.ball(N, 0.12, centre=(0.25, 0.0, 0.0))       # camera at +x for azimuth 0
    image = render.anaglyph(near, xray.direction(0.0, 0.0), separation=8.0, level=0.5)
    assert image.shape == (3, N, N)
    red, cyan = image[0], image[1]
    assert torch.equal(image[1], image[2]) and not torch.equal(red, cyan)
    cols = torch.arange(N, dtype=torch.float32)

    def centroid(im):
        return ((im > 0).float().sum(0) * cols).sum() / (im > 0).sum()

    assert centroid(red) - centroid(cyan) > 0.5
    # the same parallax from the view-aligned volume alone (stereo from a single x-ray)
    aligned = xray.align(near, xray.direction(0.0, 0.0), n_steps=N)
    stereo = render.anaglyph(aligned, None, separation=8.0, level=0.5)
    assert centroid(stereo[0]) - centroid(stereo[1]) > 0.5
    assert torch.allclose(stereo[0], render.iso(xray.turn(aligned, -4.0), None, 0.5))


def test_cut_empties_the_half_space_and_keeps_the_rest(sphere):
    half = render.cut(sphere, (0, 0, -1))              # removes the front half (z < 0, depth first)
    assert torch.allclose(half.sum(), sphere.sum() / 2, rtol=0.02)
    assert half[: N // 2 - 1].abs().max() == 0 and torch.equal(half[N // 2 + 1:], sphere[N // 2 + 1:])
    assert torch.equal(render.cut(sphere, (1, 1, 1), offset=2.0), sphere)   # plane outside the cube
    assert render.cut(sphere[None], (1, 0, 0)).shape == (1, N, N, N)
    opened = render.iso(render.cut(sphere, (0, 0, -1)), None, level=0.5)
    assert torch.equal(opened > 0, render.iso(sphere, None, level=0.5) > 0)  # same outline, flat face
    for bad in [(0, 0, 0), (1, 0), (float("nan"), 0, 1)]:
        with pytest.raises(ValueError, match="normal"):
            render.cut(sphere, bad)


def test_key_light_brightens_the_side_it_comes_from():
    env = render.key_light((1.0, 0.0, 0.0))
    normals = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    lit, dark = shading.irradiance(normals, env)
    assert lit > 3 * dark
    with pytest.raises(ValueError, match="direction"):
        render.key_light((0, 0, 0))


def test_wiggle_swings_the_camera_and_saves_a_looping_gif(sphere, tmp_path):
    aligned = xray.align(phantoms.ball(N, 0.12, centre=(0.25, 0.0, 0.0)), xray.direction(0.0, 0.0), n_steps=N)
    frames = render.wiggle(aligned, angle=6.0, frames=8, mode="iso", size=32)
    assert frames.shape == (8, 3, 32, 32)
    assert torch.allclose(frames[0], render.image(aligned, "iso", None, size=32))
    assert torch.allclose(frames[2], render.image(xray.turn(aligned, 6.0), "iso", None, size=32))
    assert not torch.allclose(frames[2], frames[6])                 # the two extremes differ
    path = render.save_gif(frames, tmp_path / "wiggle.gif", fps=10)
    back = iio.imread(path, index=None)
    assert back.shape[:3] == (8, 32, 32)
    grey = render.wiggle(sphere, xray.direction(30.0, 20.0), frames=4, mode="mip", size=16)
    assert grey.shape == (4, 16, 16)
    with pytest.raises(ValueError, match="frames"):
        render.wiggle(sphere, None, frames=1)
    with pytest.raises(ValueError, match=".gif"):
        render.save_gif(frames, tmp_path / "wiggle.png")
    with pytest.raises(ValueError, match="within"):
        render.save_gif(frames * 2, tmp_path / "bad.gif")


def test_batched_renders_equal_single_renders(sphere):
    other = phantoms.ball(N, 0.2, 0.8, centre=(0.1, 0.05, -0.1))
    volumes = torch.stack([sphere, other])
    views = xray.direction(torch.tensor([30.0, 200.0]), torch.tensor([20.0, 60.0]))
    for mode in (render.iso, render.dvr, render.mip, render.radiograph):
        batch = mode(volumes, views)
        for i in range(2):
            assert torch.allclose(batch[i], mode(volumes[i], views[i]), atol=1e-5), mode.__name__
    stereo = render.anaglyph(volumes, views)
    assert torch.allclose(stereo[1], render.anaglyph(other, views[1]), atol=1e-5)


def test_view_aligned_input_passes_through_to_camera(sphere):
    d = xray.direction(30.0, 20.0)
    aligned = xray.align(sphere, d, n_steps=N)
    assert torch.equal(render.to_camera(aligned), aligned)
    assert torch.allclose(render.to_camera(sphere, d), aligned)
    assert render.to_camera(aligned, size=24, n_steps=16).shape == (16, 24, 24)


def test_save_png_writes_grey_colour_and_colormapped_images(tmp_path):
    grey = torch.linspace(0, 1, 12).reshape(3, 4)
    render.save_png(grey, tmp_path / "g.png")
    assert np.array_equal(iio.imread(tmp_path / "g.png"), np.rint(grey.numpy() * 255).astype(np.uint8))
    render.save_png(grey, tmp_path / "c.png", cmap="bone")
    assert iio.imread(tmp_path / "c.png").shape == (3, 4, 3)
    assert render.colorize(grey, "ivory").shape == (3, 3, 4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        render.save_png(grey * 2, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="png"):
        render.save_png(grey, tmp_path / "bad.jpg")
    assert not (tmp_path / "bad.png").exists()


@pytest.fixture(scope="module")
def volume_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("render") / "ball.npy"
    volume = phantoms.ball(32, 0.25, 0.7) + phantoms.ball(32, 0.1, 0.3, centre=(0.2, 0.1, 0.1))
    np.save(path, volume.numpy())
    return path


@pytest.mark.parametrize("mode", render.MODES)
def test_cli_renders_each_mode(mode, volume_file, tmp_path, capsys):
    out = tmp_path / f"{mode}.png"
    rc = cli.main(["render", str(volume_file), "--mode", mode, "--view", "40,25", "--size", "32",
                   "--volume-size", "32", "--out", str(out)])
    assert rc == 0 and capsys.readouterr().out.strip() == str(out)
    picture = iio.imread(out)
    assert picture.shape == ((32, 32) if mode in ("xray", "mip") else (32, 32, 3))
    assert picture.max() > 100 and picture[0, 0].max() == 0          # something bright, dark corner


def test_cli_renders_the_dry_skull_with_bone(volume_file, tmp_path):
    """``--bone``: what is lighter than bone (the fixture's fainter ball) goes before rendering."""
    from xtomo.data import io

    np.save(tmp_path / "dry.npy", io.dry_skull(np.load(volume_file), 0.5))
    args = ["--mode", "xray", "--size", "32", "--volume-size", "32"]
    assert cli.main(["render", str(volume_file), *args, "--bone", "0.5", "--out", str(tmp_path / "wet.png")]) == 0
    assert cli.main(["render", str(tmp_path / "dry.npy"), *args, "--out", str(tmp_path / "dry.png")]) == 0
    assert cli.main(["render", str(volume_file), *args, "--out", str(tmp_path / "all.png")]) == 0
    wet, dry, every = (iio.imread(tmp_path / f"{n}.png") for n in ("wet", "dry", "all"))
    assert np.array_equal(wet, dry) and not np.array_equal(wet, every)


def test_cli_renders_a_skull_on_its_side_upright(tmp_path):
    """``--upright``: a skull stored on its side x-rays from the side as the same skull stored upright does."""
    from xtomo.specimens import crania

    skull = crania.skull(crania.catalog(175)[40], size=48).numpy()
    np.save(tmp_path / "upright.npy", skull)
    np.save(tmp_path / "side.npy", np.ascontiguousarray(skull.transpose(2, 1, 0)[::-1]))
    args = ["--mode", "xray", "--view", "0,0", "--size", "48", "--volume-size", "48"]
    for name, extra in (("upright", []), ("side", ["--upright"]), ("side as stored", [])):
        assert cli.main(["render", str(tmp_path / f"{name.split()[0]}.npy"), *args, *extra,
                         "--out", str(tmp_path / f"{name}.png")]) == 0
    upright, side, stored = (iio.imread(tmp_path / f"{n}.png").astype(float).ravel()
                             for n in ("upright", "side", "side as stored"))
    assert np.corrcoef(upright, side)[0, 1] > 0.9 > np.corrcoef(upright, stored)[0, 1]


def test_cli_rejects_bad_views_and_missing_files(volume_file, tmp_path, capsys):
    args = ["--mode", "iso", "--out", str(tmp_path / "x.png")]
    for view in ("1,2,3", "north,20", "30,100"):
        assert cli.main(["render", str(volume_file), "--view", view, *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("xtomo: error: --view expects AZ,EL") and err.count("\n") == 1
    assert cli.main(["render", str(tmp_path / "missing.npy"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xtomo: error: ") and "missing.npy" in err and "no such file" in err
    assert not (tmp_path / "x.png").exists()


def test_cli_writes_a_16_bit_xray(volume_file, tmp_path, capsys):
    """--bits 16: the x-ray as load_xray reads it back, to 1/65535 of the rendered alpha (8 bits:
    only to 1/255); other modes stay 8-bit and say so."""
    from xtomo.data import io

    args = ["render", str(volume_file), "--mode", "xray", "--view", "40,25", "--size", "32", "--volume-size", "32"]
    assert cli.main([*args, "--bits", "16", "--out", str(tmp_path / "x16.png")]) == 0
    assert cli.main([*args, "--out", str(tmp_path / "x8.png")]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "x16.png"), str(tmp_path / "x8.png")]
    stored = iio.imread(tmp_path / "x16.png")
    assert stored.dtype == np.uint16 and stored.shape == (32, 32) and stored.max() > 255
    assert iio.imread(tmp_path / "x8.png").dtype == np.uint8
    alpha = render.radiograph(io.load_volume(volume_file, size=32), xray.direction(40.0, 25.0), size=32)
    error16 = (io.load_xray(tmp_path / "x16.png") - alpha).abs().max().item()
    error8 = (io.load_xray(tmp_path / "x8.png") - alpha).abs().max().item()
    assert error16 <= 0.5 / 65535 + 1e-6 < 1 / 1024 < error8 <= 0.5 / 255 + 1e-6
    iso = ["render", str(volume_file), "--mode", "iso", "--bits", "16", "--out", str(tmp_path / "i.png")]
    assert cli.main(iso) == 2
    assert capsys.readouterr().err == "xtomo: error: --bits 16 is for --mode xray; --mode iso writes an 8-bit PNG\n"
    assert not (tmp_path / "i.png").exists()
    with pytest.raises(SystemExit):
        cli.main([*args, "--bits", "12", "--out", str(tmp_path / "x12.png")])
    assert "invalid choice: 12" in capsys.readouterr().err
