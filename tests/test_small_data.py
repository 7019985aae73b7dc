"""``minicnn experiment small-data`` (minicnn/experiments/small_data.py) in a small mode:
a synthetic MNIST and a tiny exported image folder, the NumPy backend, one epoch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from minicnn import cli
from minicnn.experiments import small_data, small_data_report
from minicnn.layers import Dropout, Flatten

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_smooth_curve_is_the_books_moving_average() -> None:
    assert small_data_report.smooth_curve([1.0, 0.0, 0.0], 0.8) == pytest.approx([1.0, 0.8, 0.64])
    assert small_data_report.smooth_curve([], 0.8) == []
    assert small_data_report.smooth_curve([0.3, 0.7], 0.0) == [0.3, 0.7]


def test_arm_models() -> None:
    plain = small_data.arm_model("mnist", dropout=False)
    dropped = small_data.arm_model("mnist", dropout=True)
    assert plain.count_params() == dropped.count_params() == 93_322
    kinds = [type(layer) for layer in dropped.layers]
    assert kinds.count(Dropout) == 1 and kinds.index(Dropout) == kinds.index(Flatten) + 1
    assert dropped.get_layer(index=kinds.index(Dropout)).rate == 0.5
    folder = small_data.arm_model("folder", dropout=True)
    assert folder.count_params() == 3_453_121  # the registry's cats-dogs-convnet
    assert not any(isinstance(layer, Dropout)
                   for layer in small_data.arm_model("folder", dropout=False).layers)
    assert small_data.arm_model("folder", dropout=False, image_size=62).output_shape == (None, 1)
    with pytest.raises(ValueError, match="kind"):
        small_data.arm_model("cifar", dropout=False)


def test_mnist_study_writes_table_curves_and_json(synthetic_mnist, tmp_path: Path,  # noqa: F811
                                                  capsys) -> None:
    out = tmp_path / "study"
    status = cli.main(["experiment", "small-data", "--epochs", "2", "--seeds", "0", "1",
                       "--train-images", "64", "--validation-images", "32", "--test-images",
                       "40", "--backend", "numpy", "--smooth", "0.8", "--out", str(out),
                       "--verbose", "0"])
    assert status == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "small_data.json").read_text())
    assert [row["arm"] for row in result["rows"]] == ["plain", "dropout", "augment", "both"]
    budget = result["budget"]
    assert budget["images"] == {"train": 64, "validation": 32, "test": 40}
    assert budget["seeds"] == [0, 1] and budget["smooth"] == 0.8 and budget["epochs"] == 2
    assert "horizontal_flip" not in budget["augmentation"]  # no flips for digits
    for row in result["rows"]:
        assert len(row["runs"]) == 2 and [run["seed"] for run in row["runs"]] == [0, 1]
        low, high = row["test_accuracy_range"]
        assert low <= row["test_accuracy"] <= high
        assert len(row["mean_curves"]["val_accuracy"]) == 2
    table = (out / "small_data.md").read_text()
    assert table in printed and "| both | + Dropout(0.5) and data augmentation |" in table
    assert (out / "small_data.png").read_bytes().startswith(PNG_MAGIC)
    # The same seed gives the same numbers (only the seconds may differ).
    status = cli.main(["experiment", "small-data", "--epochs", "2", "--seeds", "0",
                       "--arms", "augment", "--train-images", "64", "--validation-images",
                       "32", "--test-images", "40", "--backend", "numpy", "--out",
                       str(tmp_path / "again"), "--verbose", "0"])
    assert status == 0
    again = json.loads((tmp_path / "again" / "small_data.json").read_text())["rows"][0]
    first = result["rows"][2]["runs"][0]
    assert again["runs"][0]["history"] == first["history"]
    assert again["runs"][0]["test_accuracy"] == first["test_accuracy"]


def test_folder_study_uses_the_chapter_convnet(synthetic_mnist, tmp_path: Path,  # noqa: F811
                                               capsys) -> None:
    folder = tmp_path / "digits"
    assert cli.main(["data", "mnist", "--export", str(folder), "--train", "4", "--validation",
                     "2", "--test", "2", "--size", "62"]) == 0
    out = tmp_path / "study"
    assert cli.main(["experiment", "small-data", "--data", str(folder), "--image-size", "62",
                     "--epochs", "1", "--seeds", "3", "--arms", "plain", "both",
                     "--batch-size", "4", "--backend", "numpy", "--out", str(out),
                     "--verbose", "0"]) == 0
    result = json.loads((out / "small_data.json").read_text())
    assert result["budget"]["model"] == "folder" and result["budget"]["classes"] == [
        "digit3", "digit5"]
    assert result["budget"]["augmentation"]["horizontal_flip"] is True  # the book's settings
    assert result["budget"]["images"] == {"train": 8, "validation": 4, "test": 4}
    assert [row["arm"] for row in result["rows"]] == ["plain", "both"]
    capsys.readouterr()


@pytest.mark.parametrize("arguments, message", [
    (["downsampling", "--smooth", "0.8"], "--smooth is an option of 'experiment small-data'"),
    (["invariance", "--arms", "plain"], "--arms is an option of 'experiment small-data'"),
    (["small-data", "--small"], "--small is an option of 'experiment invariance'"),
    (["small-data", "--image-size", "64"], "--image-size is for"),
    (["small-data", "--data", "x", "--train-images", "5"], "--train-images is for"),
    (["small-data", "--optimizer", "adam"], "uses RMSprop"),
    (["transfer", "--test-images", "5"],
     "--test-images is an option of 'experiment invariance' and 'experiment small-data'"),
])
def test_options_of_other_studies_are_refused(arguments: list[str], message: str,
                                              capsys) -> None:
    assert cli.main(["experiment", *arguments]) == 2
    assert message in capsys.readouterr().err


def test_bad_arguments(synthetic_mnist, tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(ValueError, match="unknown arm"):
        small_data.run(arms=["plain", "extra"], out=tmp_path)
    with pytest.raises(ValueError, match="smooth"):
        small_data.run(smooth=1.0, out=tmp_path)
    with pytest.raises(ValueError, match="seeds"):
        small_data.run(seeds=[1, 1], out=tmp_path)
    with pytest.raises(ValueError, match="training set holds"):
        small_data.run(epochs=1, train_images=250, validation_images=100, out=tmp_path)
    assert np.isfinite(small_data.MNIST_AUGMENTATION["rotation_range"])
