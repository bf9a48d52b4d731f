"""The 2D→3D network of Henzler et al. (2018): one x-ray in, a view-aligned density volume out.

The ``paper`` preset is the network the authors released (``hourglass256x128x128``; its figures
are in ``book/architecture-reference.md``): a stem at half resolution, one hourglass of
bottleneck residual units with 2×2 max pooling down to 8², fixed bilinear upsampling back up with
additive skips, and a 1×1 head whose output channels are the depth slices of the volume (depth as
channels, Sec. 4.1).

Skip connections, as read from the released table: the skip at each resolution is the feature map
the down path has there just before it is pooled (res6's output at 128², the last unit of a level
below), added unchanged to the upsampled map; it passes through no unit of its own. That is the
only reading that gives the table's 68 convolutions, 25 residual additions and ~4.1 M parameters.
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

import xtomo._checks as checks
from xtomo.imaging.fusion import alpha_floor

__all__ = ["ModelConfig", "PRESETS", "XrayToVolume", "build_model", "describe", "footprint"]


HEADS = ("linear", "projected")


@dataclass(frozen=True)
class ModelConfig:
    """Every size of the network; ``PRESETS`` holds the ones the profiles use."""

    in_size: int              # x-ray edge, pixels (paper: 256)
    slices: int               # output depth = output channels (paper: 128)
    width: int = 256          # feature channels in the hourglass (paper: 256)
    stem_width: int = 64      # channels after the 7×7 stem; res1-res5 run at twice this (paper: 64)
    levels: int = 4           # 2×2 poolings; the smallest map is out_size / 2**levels (paper: 4, 8²)
    units_per_level: int = 3  # bottleneck units after each pooling above the bottom (paper: 3)
    bottom_units: int = 5     # bottleneck units at the smallest resolution (paper: 5 at 8²)
    up_units: int = 1         # bottleneck units after each skip addition, except at out_size (paper: 1)
    stride: int = 2           # stride of the stem: 2 halves the x-ray (paper 256 → 128), 1 keeps it
    head: str = "linear"      # "linear": densities as plain numbers (paper); "projected": see XrayToVolume
    chi: float = 10.0         # extinction coefficient the "projected" head assumes (Eq. 1)

    def __post_init__(self):
        """Fail on a size that cannot build the network; keep integers plain (checkpoints store them)."""
        what = "ModelConfig"
        for name in ("in_size", "slices", "width", "stem_width", "levels"):
            object.__setattr__(self, name, checks.integer(getattr(self, name), name, minimum=1, what=what))
        for name in ("units_per_level", "bottom_units", "up_units"):
            object.__setattr__(self, name, checks.integer(getattr(self, name), name, minimum=0, what=what))
        checks.choice(self.head, "head", HEADS, what=what)
        checks.positive(self.chi, "chi", what=what)
        stride = checks.integer(self.stride, "stride", what=what)
        object.__setattr__(self, "stride", checks.choice(stride, "stride", (1, 2), what=what))
        if self.width % 2:
            raise ValueError(f"ModelConfig: width must be even (its units narrow to width / 2), "
                             f"got {self.width}")
        if self.in_size % self.stride:
            raise ValueError(f"ModelConfig: in_size {self.in_size} is not divisible by stride {self.stride}")
        if self.out_size % 2 ** self.levels:
            raise ValueError(
                f"ModelConfig: out_size {self.out_size} (in_size {self.in_size} / stride {self.stride}) "
                f"must be divisible by 2**levels = {2 ** self.levels} so that every pooling halves "
                f"it exactly; the smallest map would be {self.out_size / 2 ** self.levels:g}")

    @property
    def out_size(self) -> int:
        """Edge of each output slice: the x-ray edge divided by the stem's stride."""
        return self.in_size // self.stride


PRESETS: dict[str, ModelConfig] = {
    # The released network: 256² x-ray → 128 slices of 128², ~4.1 M parameters, ~12.8 GMAC.
    "paper": ModelConfig(in_size=256, slices=128, width=256, stem_width=64, levels=4,
                         units_per_level=3, bottom_units=5, up_units=1, stride=2),
    # The quick profile (128² x-rays, 64³ volumes) at half width, down to 8² as in the paper.
    "quick": ModelConfig(in_size=128, slices=64, width=128, stem_width=32, levels=3,
                         units_per_level=3, bottom_units=5, up_units=1, stride=2),
    # The smoke profile (32² x-rays, 32³ volumes): no stem stride, tiny, for tests in seconds.
    "smoke": ModelConfig(in_size=32, slices=32, width=16, stem_width=8, levels=2,
                         units_per_level=1, bottom_units=2, up_units=1, stride=1),
}


# --------------------------------------------------------------------------- building blocks

class ConvBN(nn.Sequential):
    """Convolution without bias and batch norm (Caffe's BatchNorm + Scale); foldable for inference."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1):
        super().__init__(OrderedDict(
            conv=nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False),
            bn=nn.BatchNorm2d(out_ch)))

    def fold(self):
        """Fold the batch norm's running statistics and affine into the convolution, in place."""
        conv, bn = self.conv, self.bn
        if isinstance(bn, nn.Identity):
            return
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        with torch.no_grad():
            conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
            conv.bias = nn.Parameter(bn.bias - bn.running_mean * scale)
        self.bn = nn.Identity()


class Stem(nn.Sequential):
    """7×7 convolution (stride 1 or 2), BN, ReLU: the x-ray's first features."""

    kind = "stem"

    def __init__(self, out_ch: int, stride: int):
        super().__init__(OrderedDict(convbn=ConvBN(1, out_ch, 7, stride), relu=nn.ReLU(inplace=True)))


class Bottleneck(nn.Module):
    """Residual unit 1×1 → 3×3 → 1×1 (ResNet's bottleneck); projection shortcut if channels change.

    ReLU after each inner BN and after the addition, as in the Caffe ResNets the released net follows.
    """

    kind = "residual"

    def __init__(self, in_ch: int, out_ch: int, mid_ch: int):
        super().__init__()
        self.reduce = ConvBN(in_ch, mid_ch, 1)
        self.spatial = ConvBN(mid_ch, mid_ch, 3)
        self.expand = ConvBN(mid_ch, out_ch, 1)
        self.shortcut = ConvBN(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x):
        y = F.relu(self.reduce(x), inplace=True)
        y = F.relu(self.spatial(y), inplace=True)
        return F.relu(self.expand(y) + self.shortcut(x), inplace=True)


class Pool(nn.MaxPool2d):
    """2×2 max pooling, stride 2: one level down the hourglass."""

    kind = "pool"

    def __init__(self):
        super().__init__(kernel_size=2, stride=2)


class UpsampleAdd(nn.Module):
    """Fixed (parameter-free) bilinear 2× upsampling, plus the skip from the same resolution.

    The released Caffe net upsamples with a 4×4 deconvolution per channel whose weights are the
    bilinear kernel at learning rate 0; that equals this interpolation except on the outermost
    pixel ring, where the deconvolution's zero padding darkens what this clamps to the edge.
    """

    kind = "upsample"

    def forward(self, x, skip):
        return F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False) + skip


class UpLevel(nn.Module):
    """One level up: ``upsample`` (with the skip added), then residual units ``unit1``, ``unit2``…"""

    def __init__(self, units: list[nn.Module]):
        super().__init__()
        self.upsample = UpsampleAdd()
        for i, unit in enumerate(units):
            self.add_module(f"unit{i + 1}", unit)

    def forward(self, x, skip):
        x = self.upsample(x, skip)
        for name, unit in self.named_children():
            if name != "upsample":
                x = unit(x)
        return x


class Head(nn.Sequential):
    """1×1 conv + BN + ReLU, then a linear 1×1 conv with bias to one channel per depth slice.

    The bias is the one exception to the released "no bias" rule: the last layer has no BN after
    it, so without a bias the volume could not shift its baseline; it adds ``slices`` parameters.
    """

    kind = "head"

    def __init__(self, width: int, slices: int):
        super().__init__(OrderedDict(convbn=ConvBN(width, width, 1), relu=nn.ReLU(inplace=True),
                                     out=nn.Conv2d(width, slices, 1, bias=True)))


# --------------------------------------------------------------------------- the network

class XrayToVolume(nn.Module):
    """X-ray transparency ``alpha`` [B, 1, n, n] → density volume [B, slices, m, m], m = n / stride.

    The output is view-aligned, depth first (channel 0 is the slice nearest the viewer). With the
    ``linear`` head it is linear (no activation), as released. The ``projected`` head (our
    addition) instead reads the head's channels as logits of *where along each ray* the density
    lies: a softmax over depth, times the density sum that Beer–Lambert demands of that pixel
    (Eq. 1, averaged over the stem's stride). The volume then re-projects to the input by
    construction, is never negative, and the network only has to learn the depth structure.
    The network sees the opacity ``1 - alpha``, what a radiograph shows: zero where rays pass
    freely, so empty background is zero input. Runs as is under ``torch.autocast`` (bf16) and with
    ``.to(memory_format=torch.channels_last)``.
    """

    def __init__(self, config: ModelConfig, seed: int | None = None):
        super().__init__()
        self.config = c = config
        half, pre = c.width // 2, 2 * c.stem_width
        self.stem = Stem(c.stem_width, c.stride)
        # Names as in the released prototxt (res1, res4, res5, res6).
        self.pre = nn.Sequential(OrderedDict(
            res1=Bottleneck(c.stem_width, pre, c.stem_width),
            res4=Bottleneck(pre, pre, c.stem_width),
            res5=Bottleneck(pre, pre, c.stem_width),
            res6=Bottleneck(pre, c.width, half)))
        # down[r] pools to r² and runs its units; up[r] upsamples to r², adds the skip, runs its units.
        self.down = nn.ModuleDict()
        for level in range(1, c.levels + 1):
            n_units = c.bottom_units if level == c.levels else c.units_per_level
            units = [(f"unit{i + 1}", Bottleneck(c.width, c.width, half)) for i in range(n_units)]
            self.down[str(c.out_size >> level)] = nn.Sequential(OrderedDict([("pool", Pool()), *units]))
        self.up = nn.ModuleDict()
        for level in range(c.levels - 1, -1, -1):
            n_units = c.up_units if level > 0 else 0
            self.up[str(c.out_size >> level)] = UpLevel(
                [Bottleneck(c.width, c.width, half) for _ in range(n_units)])
        self.head = Head(c.width, c.slices)
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int | None = None):
        """Kaiming-normal convolutions, BN at identity, zero biases; the output layer starts small.

        A full-scale linear output layer would start by predicting densities of order one
        everywhere, a loss a hundred times that of predicting nothing; scaled down it starts near
        zero, the value of most voxels, and training spends no steps unlearning noise.

        With a seed, a private generator makes the weights a function of the seed alone.
        """
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                gain = "linear" if m is self.head.out else "relu"
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity=gain, generator=gen)
                if m is self.head.out:
                    m.weight.data.mul_(0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
                m.reset_running_stats()

    def forward(self, alpha: torch.Tensor) -> torch.Tensor:
        n = self.config.in_size
        if alpha.dim() != 4 or alpha.shape[1] != 1 or tuple(alpha.shape[-2:]) != (n, n):
            raise ValueError(f"XrayToVolume expects alpha of shape [B, 1, {n}, {n}], "
                             f"got {list(alpha.shape)}")
        x = self.pre(self.stem(1 - alpha))
        skips = []
        for level in self.down.values():
            skips.append(x)
            x = level(x)
        for level, skip in zip(self.up.values(), reversed(skips)):
            x = level(x, skip)
        out = self.head(x)
        if self.config.head == "projected":
            out = out.float().softmax(dim=1) * self.ray_sums(alpha)
        return out

    def ray_sums(self, alpha: torch.Tensor) -> torch.Tensor:
        """``[B, 1, m, m]``: the density sum over the output's slices that each output pixel's rays
        need to composite to ``alpha`` (``-ln(alpha) n / chi``, averaged over the stride)."""
        c = self.config
        depth = -alpha.float().clamp_min(alpha_floor(c.chi)).log() * (c.slices / c.chi)
        return F.avg_pool2d(depth, c.stride) if c.stride > 1 else depth

    def fuse_for_inference(self, channels_last: bool = True) -> XrayToVolume:
        """An eval-mode copy with every batch norm folded into its convolution (same outputs).

        By default also channels_last, which oneDNN runs faster on CPU; a plain [B, 1, n, n] input
        needs no conversion (one channel has the same layout either way). For inference only.
        """
        fused = copy.deepcopy(self).eval()
        for m in fused.modules():
            if isinstance(m, ConvBN):
                m.fold()
        return fused.to(memory_format=torch.channels_last) if channels_last else fused


def build_model(preset: str | ModelConfig, seed: int | None = None) -> XrayToVolume:
    """The network of a preset name (see ``PRESETS``) or a config, initialised from ``seed``."""
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown model preset {preset!r}; choose one of {sorted(PRESETS)}")
        preset = PRESETS[preset]
    if not isinstance(preset, ModelConfig):
        raise TypeError(f"preset must be a preset name or a ModelConfig, got {type(preset).__name__}")
    return XrayToVolume(preset, seed=seed)


# --------------------------------------------------------------------------- inspection

def _conv_macs(conv: nn.Conv2d, out: torch.Tensor) -> int:
    """Multiply-accumulates of one convolution per sample, from its output shape."""
    kh, kw = conv.kernel_size
    return out.shape[-2] * out.shape[-1] * conv.out_channels * conv.in_channels // conv.groups * kh * kw


def describe(model: XrayToVolume) -> list[dict]:
    """One row per block (stem, residual unit, pool, upsample, head), in execution order.

    Rows come from forward hooks on a batch-1 dummy pass: ``name``, ``kind``, ``in_shape`` and
    ``out_shape`` (per sample, [C, H, W]), ``params``, ``macs`` (convolutions, per sample),
    ``convs`` and, for upsampling blocks, ``skip_from``: the block whose output is added.
    """
    blocks = {m: name for name, m in model.named_modules() if hasattr(type(m), "kind")}
    rows, conv_macs, made_by, handles, keep = [], {}, {}, [], []

    def on_conv(conv, inputs, out):
        conv_macs[conv] = _conv_macs(conv, out)

    def on_block(block, inputs, out):
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        row = dict(name=blocks[block], kind=block.kind, in_shape=list(inputs[0].shape[1:]),
                   out_shape=list(out.shape[1:]), params=sum(p.numel() for p in block.parameters()),
                   macs=sum(conv_macs[m] for m in convs), convs=len(convs))
        if block.kind == "upsample":
            row["skip_from"] = made_by[id(inputs[1])]
        made_by[id(out)] = row["name"]
        rows.append(row)
        keep.append(out)  # keeps ids unique for the whole pass

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(on_conv))
    for m in blocks:
        handles.append(m.register_forward_hook(on_block))
    param = next(model.parameters())
    n = model.config.in_size
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 1, n, n, device=param.device, dtype=param.dtype))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return rows


def footprint(model: XrayToVolume, rows: list[dict] | None = None) -> dict:
    """Totals: parameters, MACs and GMAC per x-ray, convolutions, additions, blocks, shapes
    (from ``rows`` of ``describe(model)`` when already made, which saves its dummy pass)."""
    rows = describe(model) if rows is None else rows
    residual_adds = sum(r["kind"] == "residual" for r in rows)
    skip_adds = sum(r["kind"] == "upsample" for r in rows)
    macs = sum(r["macs"] for r in rows)
    return dict(params=sum(p.numel() for p in model.parameters()), macs=macs, gmac=macs / 1e9,
                convs=sum(r["convs"] for r in rows),
                additions=residual_adds + skip_adds,
                blocks=len(rows),
                in_shape=rows[0]["in_shape"], out_shape=rows[-1]["out_shape"])
