"""The notebooks run top to bottom, and Jupyter gets live progress and inline figures.

Every notebook in notebooks/ is executed in a fresh Jupyter kernel with its small
settings (``MINICNN_NOTEBOOK_SMALL=1``, a minute or two each); a cell that raises fails
the test. A notebook that needs Keras says so in its metadata (``minicnn.needs``) and is
marked ``keras``. Deselect them all with ``-m "not notebooks"``.

A small notebook made here checks what a notebook user sees: ``fit(verbose=1)`` sends
progress updates to one display, and a plotting call's Figure shows as a PNG.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SECTIONS = ("5.1", "5.2", "5.3", "5.4")

pytestmark = pytest.mark.notebooks


def needs(path: Path) -> list[str]:
    return json.loads(path.read_text(encoding="utf-8"))["metadata"].get("minicnn", {}).get("needs", [])


def notebook_params() -> list:
    return [pytest.param(path, id=path.stem,
                         marks=[pytest.mark.keras] if "keras" in needs(path) else [])
            for path in NOTEBOOKS]


def execute(notebook, cwd: Path, monkeypatch: pytest.MonkeyPatch, client_class=None, timeout: int = 900):
    """Run ``notebook`` (an nbformat node) in a fresh kernel with the small settings."""
    pytest.importorskip("ipykernel")
    from nbclient import NotebookClient

    monkeypatch.setenv("MINICNN_NOTEBOOK_SMALL", "1")  # the kernel inherits the environment
    client = (client_class or NotebookClient)(notebook, timeout=timeout, kernel_name="python3",
                                              resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return notebook


def test_there_is_one_notebook_per_section() -> None:
    assert [path.name.split("-")[0] for path in NOTEBOOKS] == list(SECTIONS)


@pytest.mark.parametrize("path", notebook_params())
def test_saved_outputs_come_from_a_full_run(path: Path) -> None:
    """Every code cell ran (in order) with the small settings off."""
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    first = "".join(output.get("text", "") for output in code[0].outputs)
    assert "small settings: False" in first
    for cell in code:
        assert not [output for output in cell.outputs if output.output_type == "error"]


@pytest.mark.parametrize("path", notebook_params())
def test_notebook_runs_top_to_bottom_in_small_mode(path: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    if "keras" in needs(path):
        pytest.importorskip("keras")
    notebook = nbformat.read(path, as_version=4)
    execute(notebook, tmp_path, monkeypatch)  # raises CellExecutionError if a cell raises
    first = "".join(output.get("text", "") for output in notebook.cells[1].outputs)
    assert "small settings: True" in first


PROGRESS_CELLS = [
    """
import time

import numpy as np

from minicnn import Input, Sequential, callbacks, layers


class Slow(callbacks.Callback):
    # Slower batches than the bar's redraw interval, so every batch redraws it.
    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.06)


model = Sequential([Input((4,)), layers.Dense(3, activation="softmax")])
model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
x = np.random.default_rng(0).normal(size=(40, 4)).astype("float32")
y = np.eye(3, dtype="float32")[np.arange(40) % 3]
history = model.fit(x, y, epochs=2, batch_size=4, verbose=1, callbacks=[Slow()])
""",
    """
from minicnn.plots import plot_training_curves

plot_training_curves(history.history)
""",
]


def test_progress_updates_in_place_and_figures_show_inline(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")

    messages: list[str] = []

    class Recording(nbclient.NotebookClient):
        def process_message(self, msg, cell, cell_index):
            messages.append(msg["header"]["msg_type"])
            return super().process_message(msg, cell, cell_index)

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source.strip()) for source in PROGRESS_CELLS]
    execute(notebook, tmp_path, monkeypatch, client_class=Recording, timeout=300)

    fit_outputs = notebook.cells[0].outputs
    bars = [output for output in fit_outputs if output.output_type == "display_data"]
    assert len(bars) == 2  # one bar per epoch, each one output
    assert all(bar.data["text/plain"].startswith("10/10 ") for bar in bars)  # their final state
    assert messages.count("update_display_data") >= 10  # redrawn while training
    text = "".join(output.get("text", "") for output in fit_outputs if output.output_type == "stream")
    assert text.split() == ["Epoch", "1/2", "Epoch", "2/2"] and "\r" not in text

    figure_outputs = [output for output in notebook.cells[1].outputs
                      if output.output_type == "execute_result"]
    assert len(figure_outputs) == 1
    assert "image/png" in figure_outputs[0].data
    assert figure_outputs[0].data["text/plain"].startswith("<Figure size")
