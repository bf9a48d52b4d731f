"""The interactive explorers build their widgets, link what the browser can link, and clip live."""
import warnings

import pytest
import torch

from xtomo.specimens import phantoms
from xtomo.viz import explore


@pytest.fixture(scope="module")
def balls():
    return {"truth": phantoms.ball(40, 0.3), "ours": phantoms.ball(40, 0.25)}


def test_compare_shares_one_camera_and_one_transfer_function(balls):
    view = explore.compare(balls, max_size=20)
    panels, controls = view.children
    figures = [panel.children[1] for panel in panels.children]
    assert len(figures) == 2 and figures[0].camera is figures[1].camera
    tfs = [fig.volumes[0].tf for fig in figures]
    assert tfs[0] is tfs[1]
    assert figures[0].volumes[0].data_original.shape == (20, 20, 20)   # averaged down
    level = controls.children[0].children[1]
    assert level.description == "iso-level 2" and level.value == pytest.approx(explore.LEVELS[1])


def test_compare_clip_cuts_every_volume_along_depth(balls):
    view = explore.compare(balls, max_size=20)
    clip = view.children[1].children[2]
    volumes = [panel.children[1].volumes[0] for panel in view.children[0].children]
    full = [v.data_original.sum() for v in volumes]
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # the explorer keeps ipyvolume's warnings quiet
        clip.value = 0.5
    for v, before in zip(volumes, full):
        assert v.data_original.sum() == pytest.approx(before / 2, rel=0.05)
        assert v.data_original[:9].max() == 0      # the front half is gone
    clip.value = 0.0
    assert [v.data_original.sum() for v in volumes] == pytest.approx(full)


def test_slice_viewer_has_one_image_per_slice_linked_to_its_slider(balls):
    viewer = explore.slice_viewer(balls["truth"], axis=1, size=64)
    slider, stack = viewer.children
    assert len(stack.children) == 40 and stack.selected_index == 20 == slider.value
    assert stack.children[0].value[:8] == b"\x89PNG\r\n\x1a\n"
    assert stack.children[20].value != stack.children[0].value    # the middle cuts the ball


def test_explorers_reject_bad_input():
    with pytest.raises(ValueError, match="D, H, W"):
        explore.volume(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="at least one"):
        explore.compare({})
    with pytest.raises(ValueError, match="axis"):
        explore.slice_viewer(torch.zeros(4, 4, 4), axis=3)
