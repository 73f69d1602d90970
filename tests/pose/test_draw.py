"""Pose pictures: the header (title, legend) never overlaps the captions, whatever the rows."""

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from eglpp.pose.draw import draw_pose, pose_grid
from eglpp.pose.skeleton import LSP


@pytest.mark.parametrize("n_rows", [1, 4, 16])
def test_header_and_captions_do_not_overlap(n_rows):
    title = "egl++: 16 of the 50 selected images, best first\nbeside their neighbours"
    fig, axes = pose_grid(n_rows, 4, title)
    joints = np.random.default_rng(0).uniform(0, 31, (LSP.n_joints, 2))
    for ax in axes.ravel():
        draw_pose(ax, np.zeros((3, 32, 32)), joints, None, LSP.limbs, "#1 a.jpg\nscore 1", "y")
    renderer = FigureCanvasAgg(fig).get_renderer()
    header = [fig._suptitle.get_window_extent(renderer), fig.legends[0].get_window_extent(renderer)]
    captions = [ax.title.get_window_extent(renderer) for ax in axes.ravel()]
    frames = [ax.get_window_extent(renderer) for ax in axes.ravel()]
    assert not header[0].overlaps(header[1]), "title over the legend"
    for box in captions + frames:
        assert not any(box.overlaps(h) for h in header), "header over the first row"
    for r in range(n_rows):  # a caption sits above its own image, clear of the row above
        for c in range(4):
            k = r * 4 + c
            assert captions[k].y0 >= frames[k].y1 - 1
            if r:
                assert captions[k].y1 <= frames[k - 4].y0 + 1
