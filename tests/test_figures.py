"""Shared figures: the labelled grid lays out grey and RGB renders under their titles."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from xtomo.viz import figures  # noqa: E402


def test_labelled_grid_shows_grey_and_rgb_images_in_named_rows():
    grey, rgb = torch.rand(8, 8), torch.rand(3, 8, 8)
    fig = figures.labelled_grid({"ours": [grey, rgb], "truth": [None, grey, grey]}, ["a", "b", "c"])
    axes = np.array(fig.axes).reshape(2, 3)
    assert [ax.get_title() for ax in axes[0]] == ["a", "b", "c"]
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["ours", "truth"]
    assert [len(ax.images) for ax in axes.flat] == [1, 1, 0, 0, 1, 1]
    shown = axes[0, 1].images[0].get_array()
    assert shown.shape == (8, 8, 3) and np.allclose(shown, rgb.permute(1, 2, 0).numpy())
    matplotlib.pyplot.close(fig)


def test_labelled_grid_rejects_rows_longer_than_the_titles():
    with pytest.raises(ValueError, match="more images"):
        figures.labelled_grid({"ours": [torch.rand(4, 4)] * 3}, ["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        figures.labelled_grid({}, ["a"])
