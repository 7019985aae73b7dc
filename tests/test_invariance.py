"""``minicnn experiment invariance``: the shifts, the canvas, the models, and a small run
on tiny synthetic data (no MNIST, no network)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minicnn.applications.registry import build_model
from minicnn.experiments import invariance


def test_shift_fills_with_zeros_and_never_wraps() -> None:
    images = np.arange(1, 17, dtype=np.float32).reshape(1, 4, 4)
    right = invariance.shift_images(images, 0, 1)
    np.testing.assert_array_equal(right[0, :, 0], 0)
    np.testing.assert_array_equal(right[0, :, 1:], images[0, :, :3])
    up = invariance.shift_images(images, -2, 0)
    np.testing.assert_array_equal(up[0, :2], images[0, 2:])
    np.testing.assert_array_equal(up[0, 2:], 0)
    diagonal = invariance.shift_images(images, 1, -1)
    np.testing.assert_array_equal(diagonal[0, 1:, :3], images[0, :3, 1:])
    assert diagonal[0, 0].sum() == 0 and diagonal[0, :, 3].sum() == 0
    np.testing.assert_array_equal(invariance.shift_images(images, 0, 0), images)
    assert invariance.shift_images(images, 0, 4).sum() == 0


def test_canvas_places_the_digit() -> None:
    images = np.ones((2, 28, 28), np.float32)
    placed = invariance.canvas(images, 28)
    assert placed.shape == (2, 28, 56)
    assert placed[:, :, :28].sum() == 0 and placed[:, :, 28:].sum() == 2 * 28 * 28


def test_models() -> None:
    assert invariance.build("convnet").count_params() == build_model("mnist-convnet").count_params()
    assert invariance.build("dense").count_params() == build_model("mnist-dense").count_params()
    global_max = invariance.build("convnet-global-max")
    assert global_max.get_layer(index=5).output_shape == (None, 1, 1, 64)
    wide = invariance.build("convnet-global-max", 28, 56)
    assert wide.get_layer(index=5).pool_size == (3, 10)
    assert wide.output_shape == (None, 10)
    # The wide convnet keeps its Flatten head: 3 x 10 x 64 values into Dense 64.
    assert invariance.build("convnet", 28, 56).get_layer(index=5).output_shape == (None, 1920)
    with pytest.raises(ValueError, match="unknown model"):
        invariance.build("resnet")


def test_small_run_writes_the_tables_and_the_plot(tmp_path, capsys) -> None:
    result = invariance.run(epochs=1, out=tmp_path, small=True, verbose=0, max_shift=2,
                            canvas_step=14, models=["dense", "convnet-global-max"],
                            test_images=40)
    assert result["shift_pixels"] == [0, 1, 2] and result["canvas_offsets"] == [0, 14, 28]
    for name in ("dense", "convnet-global-max"):
        assert set(result["shifts"][name]) == set(invariance.DIRECTIONS)
        assert all(len(values) == 3 and all(0 <= v <= 1 for v in values)
                   for values in result["shifts"][name].values())
        assert len(result["canvas"][name]) == 3
    # A shift of 0 is the same test set in every direction.
    assert len({values[0] for values in result["shifts"]["dense"].values()}) == 1
    saved = json.loads((tmp_path / "invariance.json").read_text())
    assert saved["options"]["small"] is True and saved["options"]["test_images"] == 40
    table = (tmp_path / "invariance.md").read_text()
    assert "| shift (pixels) | dense | convnet-global-max |" in table
    assert table.count("\n| 2 |") == 1 and "\n| 28 |" in table
    assert (tmp_path / "invariance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Translation invariance" in capsys.readouterr().out


def test_bad_options_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown model"):
        invariance.run(out=tmp_path, small=True, models=["vgg"])
    with pytest.raises(ValueError, match="seeds"):
        invariance.run(out=tmp_path, small=True, seeds=(1, 1))
    with pytest.raises(ValueError, match="canvas_step"):
        invariance.run(out=tmp_path, small=True, canvas_step=0)


def test_cli_experiment_invariance(tmp_path, capsys) -> None:
    from minicnn.cli import main

    assert main(["experiment", "invariance", "--small", "--epochs", "1", "--max-shift", "1",
                 "--canvas-step", "28", "--models", "dense", "--test-images", "20",
                 "--out", str(tmp_path), "--verbose", "0"]) == 0
    assert "| shift (pixels) | dense |" in capsys.readouterr().out
    assert json.loads((tmp_path / "invariance.json").read_text())["canvas_offsets"] == [0, 28]
    assert main(["experiment", "downsampling", "--small"]) == 2
    assert "--small is an option of 'experiment invariance'" in capsys.readouterr().err
