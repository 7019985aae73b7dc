"""Jupyter as a first-class place: the progress bar, Figures, and the notebook check.

The real kernel is exercised by tests/test_notebooks.py; here the notebook is faked
(``IPython`` and ``IPython.display`` replaced in ``sys.modules``), so these run anywhere.
"""

from __future__ import annotations

import io
import sys
import types
from pathlib import Path

import pytest

from minicnn import notebook
from minicnn.models.progress import ProgressBar
from minicnn.plots import plot_bars, plot_training_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HISTORY = {"loss": [0.5, 0.3, 0.2], "accuracy": [0.8, 0.9, 0.95],
           "val_loss": [0.4, 0.35, 0.3], "val_accuracy": [0.85, 0.88, 0.9]}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeHandle:
    def __init__(self, log: list) -> None:
        self.log = log

    def update(self, data: dict, raw: bool = False) -> None:
        self.log.append(("update", data["text/plain"]))


@pytest.fixture
def fake_notebook(monkeypatch: pytest.MonkeyPatch) -> list:
    """A kernel as far as minicnn can tell; returns the log of displays and updates."""
    log: list = []
    shell = types.SimpleNamespace(kernel=object())
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell
    display_module = types.ModuleType("IPython.display")

    def display(data: dict, raw: bool = False, display_id: bool = False) -> FakeHandle:
        assert raw and display_id is True
        log.append(("display", data["text/plain"]))
        return FakeHandle(log)

    display_module.display = display
    ipython.display = display_module
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)
    return log


# ----------------------------------------------------------------------------- progress bar


def test_terminal_bar_redraws_with_carriage_returns() -> None:
    stream = Terminal()
    bar = ProgressBar(4, stream=stream, interval=0)
    for step in range(1, 5):
        bar.update(step, {"loss": 1.0 / step})
    bar.finish({"loss": 0.25})
    text = stream.getvalue()
    assert text.count("\r") == 5 and text.endswith("\n") and text.count("\n") == 1
    assert "4/4" in text.split("\r")[-1] and "loss: 0.2500" in text.split("\r")[-1]


def test_a_log_gets_only_the_final_line() -> None:
    stream = io.StringIO()
    bar = ProgressBar(4, stream=stream, interval=0)
    for step in range(1, 5):
        bar.update(step, {"loss": 1.0})
    bar.finish({"loss": 0.5})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("4/4 ") and "\r" not in stream.getvalue()


def test_outside_a_kernel_is_not_a_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not notebook.in_notebook()
    shell_without_kernel = types.ModuleType("IPython")
    shell_without_kernel.get_ipython = lambda: types.SimpleNamespace()  # terminal IPython
    monkeypatch.setitem(sys.modules, "IPython", shell_without_kernel)
    assert not notebook.in_notebook()
    assert ProgressBar(3).notebook is False


def test_notebook_bar_is_one_display_updated_in_place(fake_notebook: list,
                                                      capsys: pytest.CaptureFixture) -> None:
    assert notebook.in_notebook()
    bar = ProgressBar(3, interval=0)
    assert bar.notebook and bar.live
    for step in range(1, 4):
        bar.update(step, {"accuracy": 0.5})
    bar.finish({"accuracy": 0.75})
    kinds = [kind for kind, _ in fake_notebook]
    assert kinds == ["display", "update", "update", "update"]
    assert fake_notebook[0][1].startswith("1/3 ")
    assert fake_notebook[-1][1].startswith("3/3 ") and "accuracy: 0.7500" in fake_notebook[-1][1]
    assert capsys.readouterr().out == ""  # nothing printed as stream text


def test_a_stream_named_by_the_caller_keeps_text_even_in_a_notebook(fake_notebook: list) -> None:
    stream = io.StringIO()
    bar = ProgressBar(2, stream=stream, interval=0)
    bar.update(1, {})
    bar.finish({})
    assert fake_notebook == [] and stream.getvalue().startswith("2/2 ")


def test_fit_verbose_1_in_a_notebook_updates_the_display(fake_notebook: list,
                                                          capsys: pytest.CaptureFixture) -> None:
    import numpy as np

    from minicnn import Input, Sequential, layers

    model = Sequential([Input((4,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(16) % 3]
    model.fit(x, y, epochs=2, batch_size=4, verbose=1)
    displays = [text for kind, text in fake_notebook if kind == "display"]
    assert len(displays) == 2  # one bar per epoch
    assert fake_notebook[-1][1].startswith("4/4 ")
    assert capsys.readouterr().out.splitlines() == ["Epoch 1/2", "Epoch 2/2"]


# ----------------------------------------------------------------------------- figures


@pytest.mark.parametrize("draw", [
    lambda path: plot_training_curves(HISTORY, path, test={"loss": 0.3, "accuracy": 0.9}, title="t"),
    lambda path: plot_bars(["a", "b"], [("error", [1.0, 2.0], "{:.1f}")], path, title="t"),
], ids=["training_curves", "bars"])
def test_plots_return_the_figure_and_save_only_when_given_a_path(draw, tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    figure = draw(None)
    assert isinstance(figure, Figure) and figure.axes
    assert list(tmp_path.iterdir()) == []
    path = tmp_path / "out.png"
    assert isinstance(draw(path), Figure)
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temporary files left


def test_inline_figures_outside_a_notebook_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    notebook.enable_inline_figures(object())  # does not import IPython
    assert "IPython" not in sys.modules
