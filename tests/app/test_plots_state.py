"""Plots follow the theme, keep their legends off the data and tell their series apart;
opening another document clears the previous run from the screen."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.test_training_panel import _configure, _start, window  # noqa: F401

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def test_plots_follow_the_theme_with_legends_outside_the_data(qtbot):
    from PySide6.QtGui import QColor

    from app.training.plots import SERIES, TrainingPlotsWidget

    plots = TrainingPlotsWidget()
    qtbot.addWidget(plots)
    plots.resize(900, 600)
    plots.show()
    qtbot.waitExposed(plots)
    for name, dark in (("light", False), ("dark", True)):
        plots.set_theme(name)
        bg = plots.curves_view.backgroundBrush().color()
        assert (bg.lightness() < 80) == dark, name
        axis = plots.loss_plot.getAxis("left")
        assert (QColor(axis.textPen().color()).lightness() > 128) == dark
    qtbot.wait(20)
    for plot in (plots.loss_plot, plots.acc_plot, plots.lr_plot, plots.grad_plot):
        data = plot.getViewBox().sceneBoundingRect()
        assert not plot.legend.sceneBoundingRect().intersects(data)
    # every series its own colour: far apart in RGB
    cols = list(SERIES.values())
    for i, a in enumerate(cols):
        for b in cols[i + 1:]:
            assert sum(abs(x - y) for x, y in zip(a, b)) > 120, (a, b)


@pytest.mark.slow
def test_opening_another_document_clears_the_previous_run(qtbot, window):  # noqa: F811
    _configure(window, epochs=2)
    ui = _start(qtbot, window)
    qtbot.waitUntil(lambda: ui.controller.state in ("finished", "failed"), timeout=60000)
    assert ui.plots.curves["loss"].getData()[0] is not None
    assert len(ui.plots.curves["loss"].getData()[0]) > 0
    window.open_example(EXAMPLES / "lenet5.json")
    x, _ = ui.plots.curves["loss"].getData()
    assert x is None or len(x) == 0
    assert ui.panel.progress.value() == 0 and ui.panel.progress_label.text() == "not started"
    assert ui.plots.conf_img.image is None
    assert not ui.panel.run_label.isVisible()
