"""The 2D→3D network of Henzler et al. (2018): one x-ray in, a view-aligned density volume out.

The ``paper`` preset is the network the authors released (``hourglass256x128x128``, see
``released-architecture.md``): a stem at half resolution, one hourglass of bottleneck residual
units with 2×2 max pooling down to 8², fixed bilinear upsampling back up with additive skips, and
a 1×1 head whose output channels are the depth slices of the volume (depth as channels, Sec. 4.1).

Skip connections, as read from the released table: the skip at each resolution is the feature map
the down path has there just before it is pooled (res6's output at 128², the last unit of a level
below), added unchanged to the upsampled map; it passes through no unit of its own. That is the
only reading that gives the table's 68 convolutions, 25 residual additions and ~4.1 M parameters.
"""
from __future__ import annotations

import copy
import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from xtomo.imaging.fusion import alpha_floor

__all__ = ["ModelConfig", "PRESETS", "XrayToVolume", "build_model", "describe", "footprint", "draw"]


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
        for name in ("in_size", "slices", "width", "stem_width", "levels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ModelConfig: {name} must be a positive integer, got {value!r}")
        for name in ("units_per_level", "bottom_units", "up_units"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"ModelConfig: {name} must be a non-negative integer, got {value!r}")
        if self.head not in HEADS:
            raise ValueError(f"ModelConfig: head must be one of {HEADS}, got {self.head!r}")
        if not (isinstance(self.chi, (int, float)) and self.chi > 0):
            raise ValueError(f"ModelConfig: chi must be a positive number, got {self.chi!r}")
        if self.stride not in (1, 2) or isinstance(self.stride, bool):
            raise ValueError(f"ModelConfig: stride must be 1 or 2, got {self.stride!r}")
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


def footprint(model: XrayToVolume) -> dict:
    """Totals: parameters, MACs and GMAC per x-ray, convolutions, additions, blocks, shapes."""
    return _totals(model, describe(model))


def _totals(model: XrayToVolume, rows: list[dict]) -> dict:
    """``summary`` from rows already described (so ``draw`` needs one dummy pass, not two)."""
    residual_adds = sum(r["kind"] == "residual" for r in rows)
    skip_adds = sum(r["kind"] == "upsample" for r in rows)
    macs = sum(r["macs"] for r in rows)
    return dict(params=sum(p.numel() for p in model.parameters()), macs=macs, gmac=macs / 1e9,
                convs=sum(r["convs"] for r in rows),
                additions=residual_adds + skip_adds,
                blocks=len(rows),
                in_shape=rows[0]["in_shape"], out_shape=rows[-1]["out_shape"])


# --------------------------------------------------------------------------- drawing

#: Fill colour per block kind, after the paper's Fig. 4 (grey before, orange/blue around, pink after).
KIND_COLOURS = {"stem": "#9e9e9e", "residual": "#f4a261", "pool": "#e76f51",
                "upsample": "#4a90d9", "head": "#e58fb5"}


def draw(model: XrayToVolume, ax=None):
    """The architecture drawn from ``describe(model)``; returns the figure.

    Boxes in execution order: height ∝ spatial resolution, width ∝ log2(channels), colour by kind;
    arrows for the flow, curved lines from each skip's source to the upsampling that adds it.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, PathPatch, Rectangle
    from matplotlib.path import Path as MplPath

    rows = describe(model)
    total = _totals(model, rows)
    top_res = max(r["out_shape"][-1] for r in rows)
    tall, per_bit, gap = 3.0, 0.1, 0.35

    xs, x = [], 0.0
    for r in rows:
        w = per_bit * math.log2(max(r["out_shape"][0], 2))
        h = tall * r["out_shape"][-1] / top_res
        xs.append((x, w, h))
        x += w + gap
    # Skips: innermost first, each arc above the blocks it spans and above the arcs inside it.
    index = {r["name"]: i for i, r in enumerate(rows)}
    links = sorted(((index[r["skip_from"]], i) for i, r in enumerate(rows) if "skip_from" in r),
                   key=lambda ab: ab[1] - ab[0])
    peak_of = {}
    for a, b in links:
        inner = [p for (a2, b2), p in peak_of.items() if a <= a2 and b2 <= b]
        peak_of[(a, b)] = max([xs[k][2] / 2 for k in range(a, b + 1)] + inner) + 0.45
    labels = []
    for i, r in enumerate(rows):  # the block's own name; its output shape where that changes
        c, n, _ = r["out_shape"]
        new_shape = i == 0 or r["out_shape"] != rows[i - 1]["out_shape"]
        labels.append(r["name"].rsplit(".", 1)[-1] + (f"  {c}×{n}²" if new_shape else ""))
    left, right = -gap - 1.8, x + 1.6
    scale = max(0.42, 9.0 / (right - left))  # inches per data unit when we make the figure
    label_depth = 0.3 + max(map(len, labels)) * 0.055 / scale  # 7 pt text, rotated
    bottom, top = -tall / 2 - label_depth, max(peak_of.values(), default=tall / 2) + 1.0
    if ax is None:
        fig, ax = plt.subplots(figsize=(scale * (right - left), scale * (top - bottom) + 0.4))
    fig = ax.figure

    for r, label, (x0, w, h) in zip(rows, labels, xs):
        ax.add_patch(Rectangle((x0, -h / 2), w, h, facecolor=KIND_COLOURS[r["kind"]],
                               edgecolor="#333333", linewidth=0.6, zorder=3))
        ax.text(x0 + w / 2, -tall / 2 - 0.15, label, rotation=90, ha="center", va="top", fontsize=7)
    for (x0, w, _), (x1, _, _) in zip(xs, xs[1:]):
        ax.add_patch(FancyArrowPatch((x0 + w, 0), (x1, 0), arrowstyle="-|>", mutation_scale=7,
                                     linewidth=0.7, color="#333333", shrinkA=0, shrinkB=0, zorder=4))
    for (a, b), peak in peak_of.items():
        xa, wa, ha = xs[a]
        xb, wb, hb = xs[b]
        p0, p3 = (xa + wa / 2, ha / 2), (xb + wb / 2, hb / 2)
        ctrl = peak + (peak - max(p0[1], p3[1])) / 3  # a cubic Bézier reaches 3/4 of its controls
        path = MplPath([p0, (p0[0], ctrl), (p3[0], ctrl), p3],
                       [MplPath.MOVETO, MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4])
        ax.add_patch(PathPatch(path, facecolor="none", edgecolor=KIND_COLOURS["upsample"],
                               linewidth=1.1, linestyle="--", zorder=2))

    c_in, n_in, _ = rows[0]["in_shape"]
    c_out, n_out, _ = rows[-1]["out_shape"]
    ax.text(-gap, 0, f"x-ray\n{c_in}×{n_in}²", ha="right", va="center", fontsize=8)
    ax.text(x, 0, f"volume\n{c_out}×{n_out}²", ha="left", va="center", fontsize=8)
    handles = [Rectangle((0, 0), 1, 1, facecolor=col, edgecolor="#333333") for col in KIND_COLOURS.values()]
    handles.append(plt.Line2D([], [], color=KIND_COLOURS["upsample"], linestyle="--"))
    ax.legend(handles, [*KIND_COLOURS, "skip"], loc="upper left", fontsize=7, ncol=6, frameon=False,
              bbox_to_anchor=(0, 1.0))
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"{type(model).__name__}: {total['params']:,} parameters, "
                 f"{total['gmac']:.3g} GMAC per x-ray, {total['convs']} convolutions", fontsize=9)
    fig.tight_layout()
    return fig
