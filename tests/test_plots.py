"""The figures' contents (the notebooks' tests check that every figure is written)."""

import matplotlib.pyplot as plt
import numpy as np

from helpers.core import plots


def test_layer_histograms_draw_one_log_scaled_panel_per_layer_with_every_value_counted():
    rng = np.random.default_rng(0)
    values = {
        f"layer{i}.weight": rng.normal(size=100 * (i + 1)) for i in range(7)
    }  # 7 layers: 2 rows of 6
    fig = plots.plot_layer_histograms(values, "weights per layer")
    try:
        assert len(fig.axes) == 7  # the grid's 5 unused cells are removed, not left as blank panels
        for ax, (name, v) in zip(fig.axes, values.items(), strict=True):
            assert ax.get_title() == name.removesuffix(".weight") and ax.get_yscale() == "log"
            (stairs,) = ax.patches
            assert stairs.get_data().values.sum() == v.size
            assert not ax.yaxis.get_minorticklocs().size  # decades only
    finally:
        plt.close(fig)
