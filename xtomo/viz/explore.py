"""Interactive 3-D views with ipyvolume and ipywidgets: turn volumes in your hands, in the notebook
or in the published book.

The controls are linked in the browser (``jslink``) where a widget property can carry them —
turning, the iso-levels and opacities, the slice slider — so they work in the static book too.
The clip plane rewrites the volume's data, so it needs a live kernel.
"""
from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from xtomo.imaging.render import cut

__all__ = ["volume", "compare", "slice_viewer"]

LEVELS = (0.2, 0.45, 0.8)          # thin bone, bone, dense bone
OPACITIES = (0.1, 0.3, 0.6)
WIDTH = 0.06                       # of each level's bump: narrow enough that empty space stays clear


def _small(vol: torch.Tensor, max_size: int, what: str) -> np.ndarray:
    """A ``[D, H, W]`` volume averaged down to at most ``max_size`` voxels per edge, as numpy.

    This keeps the widget state that the book embeds small (about 1 MB at 64^3).
    """
    if not torch.is_tensor(vol) or vol.dim() != 3:
        shape = tuple(vol.shape) if hasattr(vol, "shape") else type(vol).__name__
        raise ValueError(f"{what} needs a [D, H, W] volume tensor, got {shape}")
    factor = max(1, -(-max(vol.shape) // max_size))
    if factor > 1:
        vol = F.avg_pool3d(vol[None, None].float(), factor)[0, 0]
    return vol.detach().cpu().float().numpy()


def _figure(data: np.ndarray, tf, width: int, height: int, camera=None):
    """One ipyvolume figure of ``data`` under the transfer function ``tf``, axes and box hidden."""
    import ipyvolume as ipv

    fig = ipv.figure(width=width, height=height, **({} if camera is None else {"camera": camera}))
    with warnings.catch_warnings():  # ipyvolume normalises zero gradients of empty space to NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        vol = ipv.volshow(data, tf=tf, data_min=0.0, data_max=1.0, controls=False)
    ipv.style.box_off()
    ipv.style.axes_off()
    return fig, vol


def _transfer(levels: Sequence[float], opacities: Sequence[float]):
    import ipyvolume as ipv

    if len(levels) != 3 or len(opacities) != 3:
        raise ValueError(f"levels and opacities need three values each, got {levels!r} and {opacities!r}")
    values = {f"{k}{i + 1}": float(v) for k, vs in (("level", levels), ("opacity", opacities))
              for i, v in enumerate(vs)}
    return ipv.transferfunction.TransferFunctionWidgetJs3(**values, width1=WIDTH, width2=WIDTH, width3=WIDTH)


def volume(vol: torch.Tensor, levels=LEVELS, opacities=OPACITIES, max_size: int = 64, width: int = 420,
           height: int = 420, azimuth: float = 60, elevation: float = 20):
    """An ipyvolume figure of a density volume, with ipyvolume's own transfer-function controls."""
    import ipyvolume as ipv

    data = _small(vol, max_size, "explore.volume")
    ipv.figure(width=width, height=height)
    with warnings.catch_warnings():  # ipyvolume normalises zero gradients of empty space to NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        ipv.volshow(data, level=list(levels), opacity=list(opacities), level_width=WIDTH,
                    data_min=0.0, data_max=1.0, controls=True)
    ipv.view(azimuth, elevation)
    ipv.style.box_off()
    ipv.style.axes_off()
    return ipv.gcc()


def compare(volumes: dict[str, torch.Tensor], levels=LEVELS, opacities=OPACITIES, max_size: int = 64,
            size: int = 320, azimuth: float = 60, elevation: float = 20):
    """Volumes side by side (e.g. ground truth and reconstruction) under one camera and one
    transfer function: turning one turns all; the iso-level and opacity sliders act on every
    volume; a clip-plane slider cuts away the front of all of them, the fraction of the depth it
    reads (live kernel only).
    """
    import ipyvolume as ipv
    import ipywidgets as widgets

    if not volumes:
        raise ValueError("explore.compare needs at least one volume")
    data = {name: _small(v, max_size, f"explore.compare ({name!r})") for name, v in volumes.items()}
    tf = _transfer(levels, opacities)
    camera, panels, shown = None, [], []
    for name, array in data.items():
        fig, vol = _figure(array, tf, size, size, camera)
        if camera is None:
            ipv.view(azimuth, elevation)
            camera = fig.camera
        shown.append(vol)
        panels.append(widgets.VBox([widgets.HTML(f"<b>{name}</b>"), fig]))
    sliders = []
    for i, (label, values) in enumerate((("iso-level", levels), ("opacity", opacities))):
        for k in range(3):
            trait = f"{'level' if i == 0 else 'opacity'}{k + 1}"
            slider = widgets.FloatSlider(value=float(values[k]), min=0.0, max=1.0, step=0.01,
                                         description=f"{label} {k + 1}", readout_format=".2f")
            widgets.jslink((slider, "value"), (tf, trait))
            sliders.append(slider)
    clip = widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, readout_format=".2f",
                               description="cut away", continuous_update=False)

    def reclip(change):
        with warnings.catch_warnings():   # as in _figure: empty space has no gradient
            warnings.simplefilter("ignore", RuntimeWarning)
            for vol, array in zip(shown, data.values()):
                vol.data_original = cut(torch.from_numpy(array), (0, 0, -1), 1 - 2 * change["new"]).numpy()

    clip.observe(reclip, names="value")
    controls = widgets.VBox([widgets.HBox(sliders[:3]), widgets.HBox(sliders[3:]), clip])
    return widgets.VBox([widgets.HBox(panels), controls])


def slice_viewer(vol: torch.Tensor, axis: int = 0, size: int = 256, vmax: float = 1.0, cmap: str = "gray",
           width: int = 320):
    """A slice viewer: one pre-rendered PNG per slice along ``axis`` (``size`` pixels on its long
    side, shown ``width`` pixels wide) in a stack, chosen by a slider linked in the browser, so it
    also works in the static book."""
    import ipywidgets as widgets
    import matplotlib

    if not torch.is_tensor(vol) or vol.dim() != 3:
        raise ValueError(f"explore.slice_viewer needs a [D, H, W] volume tensor, got {getattr(vol, 'shape', vol)!r}")
    if axis not in (0, 1, 2):
        raise ValueError(f"explore.slice_viewer: axis must be 0, 1 or 2, got {axis!r}")
    from imageio.v3 import imwrite

    stack = vol.detach().float().cpu().movedim(axis, 0)
    shape = stack.shape[1:]
    scale = size / max(shape)
    shape = (max(2, round(shape[0] * scale)), max(2, round(shape[1] * scale)))
    stack = F.interpolate(stack[None], size=shape, mode="bilinear", align_corners=False)[0]
    colours = matplotlib.colormaps[cmap]((stack / vmax).clamp(0, 1).numpy())[..., :3]
    images = []
    for rgb in (colours * 255).round().astype(np.uint8):
        buffer = io.BytesIO()
        imwrite(buffer, rgb, extension=".png")
        images.append(widgets.Image(value=buffer.getvalue(), format="png", width=width))
    view = widgets.Stack(images, selected_index=len(images) // 2)
    slider = widgets.IntSlider(value=len(images) // 2, min=0, max=len(images) - 1,
                               description=f"slice (axis {axis})")
    widgets.jslink((slider, "value"), (view, "selected_index"))
    return widgets.VBox([slider, view])
