"""The 2D→3D network: shapes per preset, the released network's size and cost, init, gradients."""
import dataclasses

import pytest
import torch

from xtomo.learning.model import PRESETS, ModelConfig, UpsampleAdd, build_model, describe, footprint
from xtomo.profiles import PROFILES
from xtomo.viz.architecture import draw

PAPER_PARAMS, PAPER_GMAC = 4.1e6, 12.8  # the released network's figures: book/architecture-reference.md


@pytest.fixture(scope="module")
def paper():
    return build_model("paper", seed=0).eval()


@pytest.fixture(scope="module")
def paper_summary(paper):
    return footprint(paper)


@pytest.mark.parametrize("name", ["smoke", "quick"])
def test_output_shape_small_presets(name):
    model = build_model(name, seed=0)
    c = model.config
    y = model(torch.rand(2, 1, c.in_size, c.in_size))
    assert y.shape == (2, c.slices, c.out_size, c.out_size)
    assert y.dtype == torch.float32


def test_output_shape_paper(paper):
    with torch.no_grad():
        y = paper(torch.rand(1, 1, 256, 256))
    assert y.shape == (1, 128, 128, 128)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", ["smoke", "quick", "paper"])
def test_presets_fit_their_profiles(name):
    """Each preset maps its profile's x-ray size to its volume size (slices = edge)."""
    config, profile = PRESETS[name], PROFILES[name]
    assert config.in_size == profile.xray_size
    assert config.out_size == config.slices == profile.volume_size
    assert config.out_size // 2 ** config.levels >= 8 or name == "smoke"


def test_paper_matches_released_counts(paper_summary):
    """book/architecture-reference.md: ~4.1 M parameters, ~12.8 GMAC, 68 convolutions, 25 additions."""
    s = paper_summary
    assert abs(s["params"] - PAPER_PARAMS) / PAPER_PARAMS < 0.02
    assert abs(s["gmac"] - PAPER_GMAC) / PAPER_GMAC < 0.10
    assert s["convs"] == 68
    assert s["additions"] == 25
    assert s["in_shape"] == [1, 256, 256] and s["out_shape"] == [128, 128, 128]


def test_paper_describe_rows(paper):
    rows = describe(paper)
    assert sum(r["params"] for r in rows) == sum(p.numel() for p in paper.parameters())
    kinds = [r["kind"] for r in rows]
    assert kinds[0] == "stem" and kinds[-1] == "head"
    assert kinds.count("pool") == kinds.count("upsample") == 4
    assert kinds.count("residual") == 4 + 3 * 3 + 5 + 3
    skips = {r["name"]: r["skip_from"] for r in rows if r["kind"] == "upsample"}
    assert skips == {"up.16.upsample": "down.16.unit3", "up.32.upsample": "down.32.unit3",
                     "up.64.upsample": "down.64.unit3", "up.128.upsample": "pre.res6"}
    bottom = [r for r in rows if r["name"].startswith("down.8.unit")]
    assert len(bottom) == 5 and all(r["out_shape"] == [256, 8, 8] for r in bottom)


@pytest.mark.parametrize("name", ["smoke", "quick"])
def test_describe_rows_add_up(name):
    model = build_model(name, seed=0)
    rows = describe(model)
    assert sum(r["params"] for r in rows) == footprint(model)["params"]
    assert footprint(model)["params"] == sum(p.numel() for p in model.parameters())
    for a, b in zip(rows, rows[1:]):
        assert b["in_shape"] == a["out_shape"]
    assert model.training  # describe restores the mode


def test_macs_counted_analytically():
    """The stem's MACs are out_h * out_w * out_c * in_c * 7 * 7."""
    row = describe(build_model("quick"))[0]
    assert row["kind"] == "stem"
    assert row["macs"] == 64 * 64 * 32 * 1 * 7 * 7


def test_seeded_init_is_deterministic():
    a, b, c = (build_model("smoke", seed=s).state_dict() for s in (3, 3, 4))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


def test_gradients_reach_every_parameter():
    model = build_model("smoke", seed=0)
    y = model(torch.rand(3, 1, 32, 32))
    (y - torch.rand_like(y)).pow(2).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_sees_opacity():
    """A fully transparent x-ray (alpha = 1) is zero input: the stem's conv contributes nothing."""
    model = build_model("smoke", seed=0).eval()
    seen = {}
    model.stem.register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))
    with torch.no_grad():
        model(torch.ones(1, 1, 32, 32))
    assert torch.equal(seen["x"], torch.zeros(1, 1, 32, 32))


def test_channels_last_matches_contiguous():
    model = build_model("smoke", seed=0).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_autocast_bfloat16():
    model = build_model("smoke", seed=0)
    x = torch.rand(2, 1, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x)
    assert y.dtype == torch.bfloat16 and y.shape == (2, 32, 32, 32)
    y.float().pow(2).mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_fused_inference_matches():
    model = build_model("quick", seed=0)
    model(torch.rand(4, 1, 128, 128))  # one training pass so the running statistics are not trivial
    model.eval()
    x = torch.rand(2, 1, 128, 128)
    for channels_last in (True, False):
        fused = model.fuse_for_inference(channels_last=channels_last)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
        weight = fused.pre.res1.spatial.conv.weight  # 3×3: the layouts differ
        assert weight.is_contiguous(memory_format=torch.channels_last) == channels_last
        with torch.no_grad():
            torch.testing.assert_close(fused(x), model(x), atol=1e-4, rtol=1e-4)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # a copy


def test_upsampling_is_fixed():
    model = build_model("quick")
    ups = [m for m in model.modules() if isinstance(m, UpsampleAdd)]
    assert len(ups) == model.config.levels
    assert all(sum(p.numel() for p in m.parameters()) == 0 for m in ups)
    assert all(r["params"] == 0 for r in describe(model) if r["kind"] in ("upsample", "pool"))


@pytest.mark.parametrize("changes, message", [
    (dict(in_size=250), "divisible by 2\\*\\*levels"),
    (dict(in_size=255), "not divisible by stride"),
    (dict(levels=8), "smallest map would be 0.5"),
    (dict(width=0), "width must be an integer >= 1"),
    (dict(width=255), "width must be even"),
    (dict(stem_width=-8), "stem_width must be an integer >= 1"),
    (dict(slices=1.5), "slices must be an integer >= 1"),
    (dict(stride=3), "stride must be one of 1, 2"),
    (dict(stride=True), "stride must be an integer"),
    (dict(chi=0.0), "chi must be a finite number > 0"),
    (dict(bottom_units=-1), "bottom_units must be an integer >= 0"),
])
def test_bad_configs_raise(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(PRESETS["paper"], **changes)


def test_numpy_integers_are_kept_as_plain_ints():
    """Checkpoints store the config; ``weights_only`` loading accepts plain ints, not numpy scalars."""
    import numpy as np

    config = dataclasses.replace(PRESETS["smoke"], width=np.int64(16), stride=np.int32(1))
    assert config == PRESETS["smoke"] and type(config.width) is int and type(config.stride) is int


def test_unknown_preset_raises():
    with pytest.raises(ValueError, match="unknown model preset 'huge'.*paper"):
        build_model("huge")


@pytest.mark.parametrize("shape", [(1, 1, 64, 64), (1, 3, 32, 32), (32, 32), (1, 1, 32, 16)])
def test_bad_input_shape_raises(shape):
    model = build_model("smoke")
    expected = "expects alpha of shape \\[B, 1, 32, 32\\], got " + str(list(shape)).replace("[", "\\[")
    with pytest.raises(ValueError, match=expected):
        model(torch.rand(shape))


def test_config_out_size():
    assert ModelConfig(in_size=64, slices=32, levels=2).out_size == 32
    assert ModelConfig(in_size=64, slices=64, levels=2, stride=1).out_size == 64


@pytest.mark.parametrize("name", ["smoke", "quick"])
def test_draw(name, tmp_path):
    import matplotlib.pyplot as plt
    model = build_model(name)
    fig = draw(model)
    n_blocks, n_skips = len(describe(model)), model.config.levels
    assert len(fig.axes[0].patches) == n_blocks + (n_blocks - 1) + n_skips  # boxes, arrows, skips
    fig.savefig(tmp_path / "arch.png")
    plt.close(fig)


def test_projected_head_re_projects_to_its_input():
    """The projected head spreads exactly the density sum Beer–Lambert demands along each ray."""
    import dataclasses

    from xtomo.imaging import xray
    from xtomo.learning.model import PRESETS, build_model

    for stride in (1, 2):
        config = dataclasses.replace(PRESETS["smoke"], head="projected", stride=stride)
        net = build_model(config, seed=0).eval()
        alpha = torch.rand(3, 1, 32, 32) * 0.9 + 0.05
        with torch.no_grad():
            out = net(alpha)
        assert out.min() >= 0 and out.shape == (3, 32, 32 // stride, 32 // stride)
        expected = torch.nn.functional.avg_pool2d(alpha.log(), stride).exp()[:, 0]
        assert torch.allclose(xray.composite(out, chi=config.chi), expected, rtol=1e-4, atol=1e-6)


def test_unknown_head_is_rejected():
    import dataclasses

    from xtomo.learning.model import PRESETS

    with pytest.raises(ValueError, match="head must be one of"):
        dataclasses.replace(PRESETS["smoke"], head="sigmoid")


def test_mirrored_inference_answers_a_mirrored_xray_with_the_mirrored_volume():
    """``infer`` averages the network's volume with its volume of the mirrored x-ray, mirrored back:
    mirroring the x-ray left-right mirrors the answer, which a single pass does not do."""
    from xtomo.learning.inference import infer, reconstruct

    model = build_model("smoke", seed=0)
    model(torch.rand(4, 1, 32, 32))  # running statistics that are not trivial
    model.eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        plain, mirrored = model(x), model(x.flip(-1)).flip(-1)
        torch.testing.assert_close(infer(model, x), ((plain + mirrored) / 2).clamp_min(0))
        torch.testing.assert_close(infer(model, x, mirror=False), plain.clamp_min(0))
        torch.testing.assert_close(infer(model, x.flip(-1)), infer(model, x).flip(-1), atol=1e-6, rtol=0)
        assert (plain - mirrored).abs().max() > 1e-3  # the network alone is not symmetric
    alpha = torch.rand(48, 48) * 0.5 + 0.5
    for fuse in (False, True):
        torch.testing.assert_close(reconstruct(alpha.flip(-1), model, fuse=fuse),
                                   reconstruct(alpha, model, fuse=fuse).flip(-1), atol=1e-5, rtol=1e-5)
