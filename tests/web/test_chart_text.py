"""A chart's text alternative names what it plots and the values a reader would take from it."""

from __future__ import annotations

from tinymlaas.web.chart_text import describe


def test_a_line_chart_is_read_as_its_axes_and_each_series_range() -> None:
    figure = {
        "data": [
            {"type": "scatter", "name": "train", "x": [1, 2, 3], "y": [0.9, 0.4, 0.5]},
            {"type": "scatter", "name": "validation", "x": [1], "y": [1.25]},
        ],
        "layout": {"title": {"text": "loss per epoch"}, "xaxis": {"title": {"text": "epoch"}}, "yaxis": {}},
    }
    assert describe(figure) == (
        "Chart: loss per epoch; across epoch. "
        "train: 3 points from 0.9 to 0.5, lowest 0.4, highest 0.9; validation: 1 point, 1.25."
    )


def test_a_few_bars_are_read_one_by_one_and_a_grid_by_its_size() -> None:
    bars = {
        "data": [
            {"type": "bar", "name": "model", "x": ["tiny v1 · int8", "tiny v1 · float32"], "y": [3.75, 12.0]}
        ],
        "layout": {"title": "Size", "yaxis": {"title": {"text": "KiB"}}},
    }
    assert describe(bars) == "Chart: Size; up KiB. model: tiny v1 · int8 3.75, tiny v1 · float32 12."
    grid = {"data": [{"type": "heatmap", "z": [[1, 2], [3, 4]]}], "layout": {}}
    assert describe(grid) == "Chart: untitled. heatmap: a grid of 2 by 2 cells."
    assert describe(None) == "Chart with nothing to show"
