"""The live plots stay readable in a short dock: every plot keeps a usable height (the tab
scrolls instead), log-axis labels never pile up, another document starts from fresh
axes, and the Inside tab's channel captions sit right under their maps."""
from __future__ import annotations

import numpy as np


def _plots(qtbot, w=900, h=300):
    from app.training.plots import TrainingPlotsWidget

    plots = TrainingPlotsWidget()
    qtbot.addWidget(plots)
    plots.resize(w, h)
    plots.show()
    qtbot.waitExposed(plots)
    qtbot.wait(20)
    return plots


def test_plots_keep_a_usable_height_in_a_short_dock(qtbot):
    plots = _plots(qtbot, h=260)
    for plot in (plots.loss_plot, plots.grad_plot, plots.acc_plot, plots.lr_plot):
        assert plot.getViewBox().sceneBoundingRect().height() >= 140


def test_log_axis_labels_do_not_overlap(qtbot):
    plots = _plots(qtbot, h=300)  # a short dock (was 44 px of axis: 11 px per label)
    axis = plots.grad_plot.getAxis("left")
    # a few decades (all standard spacings under one decade: pyqtgraph then labels 1..9 of
    # every decade) and 25 decades (one label per decade would pile up)
    for decades in (2, 25):
        plots.reset()
        events = [{"event": "grad_norms", "step": s,
                   "norms": {"a": 10.0 ** -(s % (decades + 1)), "b": 0.5}}
                  for s in range(1, 60)]
        plots.ingest(events)
        plots.redraw(everything=True)
        qtbot.wait(20)
        lo, hi = plots.grad_plot.getViewBox().viewRange()[1]
        height = axis.geometry().height()
        labelled = axis.tickValues(lo, hi, height)[0][1]
        assert len(labelled) >= 2, (decades, labelled)
        gaps = np.diff(sorted(labelled)) * height / (hi - lo)
        assert gaps.min() >= 18, (decades, labelled, height)


def test_a_long_gradient_legend_stays_off_the_plot_below(qtbot):
    plots = _plots(qtbot, h=700)
    for n in (5, 12):
        plots.reset()
        plots.ingest([{"event": "grad_norms", "step": s,
                       "norms": {f"layer{i}": 0.1 * (i + 1) for i in range(n)}}
                      for s in range(1, 20)])
        plots.redraw(everything=True)
        qtbot.wait(20)
        below = plots.lr_plot.sceneBoundingRect()
        right = plots.curves_view.viewport().width()
        for sample, label in plots.grad_plot.legend.items:
            assert label.isVisible()
            assert not label.sceneBoundingRect().intersects(below), (n, label.text)
            assert label.sceneBoundingRect().right() <= right, (n, label.text)
    plots.resize(1500, 700)  # a wider dock: more entries per line, still inside
    qtbot.wait(30)
    wide = plots.grad_plot.legend.columnCount
    plots.resize(1000, 700)
    qtbot.wait(30)
    assert plots.grad_plot.legend.columnCount < wide
    right = plots.curves_view.viewport().width()
    for sample, label in plots.grad_plot.legend.items:
        assert label.sceneBoundingRect().right() <= right, label.text


def test_another_document_starts_from_fresh_axes(qtbot):
    plots = _plots(qtbot, h=420)
    plots.ingest([{"event": "step", "step": s, "loss": 1000.0 + s, "lr": 5.0}
                  for s in range(1, 3000, 10)])
    plots.redraw(everything=True)
    assert plots.loss_plot.getViewBox().viewRange()[0][1] > 2000
    plots.reset()
    xr, yr = plots.loss_plot.getViewBox().viewRange()
    assert xr[1] <= 100 and yr[1] < 100
    assert plots.lr_plot.getViewBox().viewRange()[1][1] < 5
    assert plots.grad_plot.getViewBox().viewRange()[0][1] <= 100


def test_channel_captions_sit_under_their_maps(qtbot):
    from PySide6.QtWidgets import QLabel

    from app.training.inside import InsidePanel

    panel = InsidePanel(None)
    qtbot.addWidget(panel)
    panel.resize(1200, 700)
    panel.show()
    qtbot.waitExposed(panel)
    panel._show_maps(np.random.default_rng(0).random((4, 6, 6)).astype(np.float32))
    qtbot.wait(30)
    labels = panel.maps.findChildren(QLabel)
    caps = [lab for lab in labels if lab.text().startswith("ch ")]
    cells = [lab for lab in labels if lab.pixmap() is not None and not lab.pixmap().isNull()]
    assert len(caps) == 4 and len(cells) == 4
    for cap, cell in zip(caps, cells):
        pm = cell.pixmap()
        img_bottom = cell.mapTo(panel.maps, cell.rect().center()).y() + pm.height() / 2
        cap_top = cap.mapTo(panel.maps, cap.rect().topLeft()).y()
        text_top = cap_top + (cap.height() - cap.fontMetrics().height()) / 2
        assert text_top - img_bottom <= 8, (text_top, img_bottom)
