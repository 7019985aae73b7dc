"""``minicnn train mnist`` end to end on a tiny synthetic MNIST, offline.

The ``synthetic_mnist`` fixture (tests/conftest.py) writes a small Keras-layout ``mnist.npz`` into a
temporary cache folder (``MINICNN_DATA_DIR``), accepts its checksum in place of the real
file's, and makes both network sources fail loudly, so no test can download anything.
The NumPy backend is used: it needs no JIT compilation and is deterministic.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import minicnn
from minicnn import cli
from minicnn.datasets import mnist
from minicnn.callbacks import EpochTimer
from tests.helpers import SYNTHETIC_MNIST_TEST, SYNTHETIC_MNIST_TRAIN
from minicnn.experiments.train_mnist import default_batch_size, train_mnist
from tests.helpers import backend_set_to

N_TRAIN, N_TEST = SYNTHETIC_MNIST_TRAIN, SYNTHETIC_MNIST_TEST
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
METRICS_KEYS = {"test_accuracy", "test_loss", "epoch_seconds", "seconds_per_epoch",
                "epoch_cpu_seconds", "cpu_seconds_per_epoch", "history",
                "options", "backend", "minicnn_version", "seed", "parameters", "train_images"}
# Wall-clock measurements: the only values two seeded runs may differ in.
TIMING_KEYS = {"epoch_seconds", "seconds_per_epoch", "epoch_cpu_seconds", "cpu_seconds_per_epoch"}


def run_cli(out: Path, *options: str) -> dict:
    """``minicnn train mnist --out OUT --backend numpy --verbose 0 OPTIONS``; returns metrics.json."""
    status = cli.main(["train", "mnist", "--epochs", "1", "--out", str(out), "--backend", "numpy",
                       "--verbose", "0", *options])
    assert status == 0
    return json.loads((out / "metrics.json").read_text())


def test_cli_writes_model_metrics_and_curves(synthetic_mnist, tmp_path: Path) -> None:
    out = tmp_path / "run"
    metrics = run_cli(out, "--seed", "0")

    assert METRICS_KEYS <= set(metrics)
    assert metrics["backend"] == "numpy"
    assert metrics["minicnn_version"] == minicnn.__version__
    assert metrics["seed"] == 0
    assert metrics["options"] == {"dataset": "mnist", "model": "convnet", "epochs": 1,
                                  "batch_size": 64, "optimizer": "rmsprop",
                                  "validation_split": 0.0, "seed": 0}
    assert metrics["parameters"] == 93_322
    assert metrics["train_images"] == N_TRAIN and metrics["test_images"] == N_TEST
    assert len(metrics["epoch_seconds"]) == 1 and metrics["epoch_seconds"][0] > 0
    assert len(metrics["epoch_cpu_seconds"]) == 1 and metrics["cpu_seconds_per_epoch"] > 0
    assert set(metrics["history"]) == {"loss", "accuracy"}
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and np.isfinite(metrics["test_loss"])

    assert (out / "curves.png").read_bytes().startswith(PNG_MAGIC)
    # Atomic writes leave no temporary files behind.
    assert sorted(path.name for path in out.iterdir()) == [
        "checkpoint.npz", "curves.png", "metrics.json", "model.npz"]

    # The saved model is the trained one: it scores exactly what metrics.json says.
    model = minicnn.load_model(out / "model.npz")
    x_test = synthetic_mnist["x_test"].reshape(-1, 28, 28, 1).astype("float32") / 255
    y_test = minicnn.utils.to_categorical(synthetic_mnist["y_test"], 10)
    with backend_set_to("numpy"):
        loss, accuracy = model.evaluate(x_test, y_test, batch_size=64, verbose=0)
        predictions = model.predict(x_test, verbose=0)
    assert accuracy == pytest.approx(metrics["test_accuracy"], abs=1e-12)
    assert loss == pytest.approx(metrics["test_loss"], rel=1e-5)
    assert predictions.shape == (N_TEST, 10)
    assert np.mean(predictions.argmax(1) == synthetic_mnist["y_test"]) == pytest.approx(accuracy)


def test_seed_makes_runs_repeatable(synthetic_mnist, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(mnist.SUBSET_ENV, "128")  # two full runs: keep them short
    first = run_cli(tmp_path / "a", "--seed", "7")
    second = run_cli(tmp_path / "b", "--seed", "7")

    def without_timings(metrics: dict) -> dict:
        return {key: value for key, value in metrics.items() if key not in TIMING_KEYS}

    assert without_timings(first) == without_timings(second)
    weights_a = minicnn.load_model(tmp_path / "a" / "model.npz").get_weights()
    weights_b = minicnn.load_model(tmp_path / "b" / "model.npz").get_weights()
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_array_equal(a, b)


def test_dense_model_uses_flat_inputs_batch_128_and_validation(synthetic_mnist, tmp_path: Path) -> None:
    metrics = run_cli(tmp_path / "dense", "--model", "dense", "--seed", "1",
                      "--validation-split", "0.25")

    assert metrics["options"]["batch_size"] == 128 == default_batch_size("dense")
    assert metrics["parameters"] == 784 * 512 + 512 + 512 * 10 + 10
    assert metrics["train_images"] == 192 and metrics["validation_images"] == 64
    assert set(metrics["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert (tmp_path / "dense" / "curves.png").read_bytes().startswith(PNG_MAGIC)


def test_train_mnist_restores_the_backend_and_rejects_unknown_models(synthetic_mnist,
                                                                       tmp_path: Path) -> None:
    before = minicnn.get_backend_name()
    train_mnist("dense", epochs=1, backend="numpy", out=tmp_path / "r", verbose=0)
    assert minicnn.get_backend_name() == before
    with pytest.raises(ValueError, match="'resnet'"):
        train_mnist("resnet", out=tmp_path / "x", verbose=0)
    assert not (tmp_path / "x").exists()


def test_cli_reports_a_user_error_in_one_line(synthetic_mnist, tmp_path: Path, capsys) -> None:
    status = cli.main(["train", "mnist", "--epochs", "0", "--out", str(tmp_path / "z"),
                       "--backend", "numpy", "--verbose", "0"])
    assert status == 2
    assert "epochs must be a positive integer" in capsys.readouterr().err


def test_epoch_timer_records_one_duration_per_epoch() -> None:
    timer = EpochTimer()
    for epoch in range(3):
        timer.on_epoch_begin(epoch)
        timer.on_epoch_end(epoch, {})
    assert len(timer.epoch_seconds) == 3 and all(s >= 0 for s in timer.epoch_seconds)
    assert len(timer.epoch_cpu_seconds) == 3 and all(s >= 0 for s in timer.epoch_cpu_seconds)
