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


def test_labelled_grid_breaks_row_names_that_would_run_into_the_next_row():
    """A row's name stands beside its row, rotated: a long one is broken at spaces into lines that fit (about 13
    characters an inch of row), its own line breaks kept, short names and blank lines left as they are."""
    name = "ideal x-ray\nours, shipped recipe without it"
    fig = figures.labelled_grid({name: [torch.rand(4, 4)], "ours": [None], "a\n\nb": [None]}, ["x"], size=1.7)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels[0] == "ideal x-ray\nours, shipped recipe\nwithout it" and labels[1:] == ["ours", "a\n\nb"]
    assert max(len(line) for line in labels[0].split("\n")) <= 22
    matplotlib.pyplot.close(fig)


def test_labelled_grid_rejects_rows_longer_than_the_titles():
    with pytest.raises(ValueError, match="more images"):
        figures.labelled_grid({"ours": [torch.rand(4, 4)] * 3}, ["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        figures.labelled_grid({}, ["a"])


def test_opacity_and_show_xray_draw_one_minus_alpha_on_a_fixed_range():
    alpha = torch.tensor([[1.0, 0.25], [0.5, 0.0]])
    assert torch.equal(figures.opacity(alpha), 1 - alpha)
    assert np.array_equal(figures.opacity(alpha.numpy()), 1 - alpha.numpy())
    fig, ax = matplotlib.pyplot.subplots()
    image = figures.show_xray(alpha, ax, title="x-ray")
    assert np.allclose(image.get_array(), [[0.0, 0.75], [0.5, 1.0]])
    assert image.get_clim() == (0, 1) and image.get_cmap().name == "bone" and ax.get_title() == "x-ray"
    assert figures.show_xray(alpha, cmap="gray").get_cmap().name == "gray"
    matplotlib.pyplot.close("all")


def _rows():
    return [dict(sample=str(s), method=m, l2=str(v * (s + 1)), dssim=str(v / 10))
            for s in range(3) for m, v in (("ours", 1.0), ("nn", 1.5), ("oracle", 1.2))]


def test_method_errors_and_error_means_grid_lay_out_one_panel_per_metric_and_group():
    fig = figures.method_errors(_rows())
    assert len(fig.axes) == 4
    assert fig.axes[1].get_xlabel().startswith("mean DSSIM")          # means above, distributions below
    assert fig.axes[2].get_ylabel() == "share of samples with smaller error"
    fig = figures.error_means_grid({"first": _rows(), "second": _rows()[:6]}, {"l2": "L2"})
    assert [ax.get_title() for ax in fig.axes] == ["first", "second"]
    assert len(fig.axes[1].patches) == 3                                  # one bar per method
    matplotlib.pyplot.close("all")


def test_slice_counts_and_paired_scatter():
    import pandas as pd

    table = pd.DataFrame({"count": [3, 3], "mean": [0.02, 0.01], "sem": [0.005, 0.002]},
                         index=pd.Index([8, 16], name="slices"))
    ax = figures.slice_counts(table)
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_xticklabels()] == ["8", "16"]
    ax = figures.paired_scatter({0: 1.0, 1: 3.0}, {0: 0.5, 1: 2.0}, "before", "after")
    assert np.allclose(ax.collections[0].get_offsets(), [[1.0, 0.5], [3.0, 2.0]])
    assert ax.lines[0].get_xdata()[-1] == 3.0 and ax.get_xlabel() == "before"
    matplotlib.pyplot.close("all")


def test_held_out_curves_plot_each_run_against_samples_seen():
    runs = {"short": [dict(samples=8, val_l2=0.004), dict(samples=16, val_l2=0.003)],
            "long": [dict(samples=80, val_l2=0.002)]}
    ax = figures.held_out_curves(runs, baseline=0.005)
    assert [line.get_label() for line in ax.lines] == ["short", "long", "predict the mean training volume"]
    assert list(ax.lines[0].get_xdata()) == [8, 16] and list(ax.lines[0].get_ydata()) == [0.004, 0.003]
    assert ax.lines[2].get_ydata()[0] == 0.005 and ax.get_xscale() == ax.get_yscale() == "log"
    matplotlib.pyplot.close("all")


def test_scaling_ratios_plot_ours_over_each_baseline_with_break_even_and_the_paper():
    from xtomo.evaluation.scoring import PAPER

    rows = [{"samples_seen": 100, "l2/nn": 0.6, "l2/oracle": 0.8, "dssim/nn": 1.1, "dssim/oracle": 1.05},
            {"samples_seen": 1000, "l2/nn": 0.4, "l2/oracle": 0.55, "dssim/nn": 0.8, "dssim/oracle": 0.75}]
    axes = figures.scaling_ratios(rows, paper=PAPER)
    for ax, metric in zip(axes, ("l2", "dssim")):
        lines = {line.get_label(): line for line in ax.lines}
        assert list(lines["ours / NN"].get_xdata()) == [100, 1000]
        assert list(lines["ours / ORACLE"].get_ydata()) == [rows[0][f"{metric}/oracle"], rows[1][f"{metric}/oracle"]]
        paper = PAPER[metric]
        assert lines["paper, ours / NN"].get_ydata()[0] == pytest.approx(paper["ours"] / paper["nn"])
        assert any(list(line.get_ydata()) == [1.0, 1.0] for line in ax.lines)      # break-even
        assert ax.get_xscale() == "log"
    matplotlib.pyplot.close("all")


def test_scaling_caption_says_when_a_record_is_of_older_crania():
    record = dict(measured="2026-12-03 10:00 UTC", machine="a CPU", profile="quick", generator="v3")
    assert figures.scaling_caption(record, "v3") == ("Measured 2026-12-03 10:00 UTC on a CPU, profile `quick`, "
                                                     "crania v3:")
    older = figures.scaling_caption(record, "v5")
    assert older.startswith("Measured 2026-12-03 10:00 UTC on a CPU, profile `quick`, crania v3 (")
    assert "this book's crania are v5" in older and older.endswith(":")
