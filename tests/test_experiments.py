"""``minicnn experiment downsampling`` on a tiny synthetic MNIST, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from minicnn import cli
from minicnn.datasets import mnist
from minicnn.experiments import downsampling
from tests.test_train_cli import PNG_MAGIC


def test_variants_have_the_expected_shapes_and_sizes() -> None:
    expected = {  # (map before Flatten, parameters), from Keras's arithmetic
        "max-pool": ((3, 3, 64), 93_322),
        "avg-pool": ((3, 3, 64), 93_322),
        # 28 -> 13 -> 6 -> 4: Dense 64 sees 1,024 values instead of 576.
        "strided-conv": ((4, 4, 64), 93_322 + (1024 - 576) * 64),
        # 55,744 in the convolutions + a Dense 10 on 30,976 values.
        "no-downsampling": ((22, 22, 64), 55_744 + 22 * 22 * 64 * 10 + 10),
    }
    for name, (shape, parameters) in expected.items():
        model = downsampling.build_variant(name)
        assert downsampling.feature_map_shape(model) == shape, name
        assert model.count_params() == parameters, name
    with pytest.raises(ValueError, match="'fractional'"):
        downsampling.build_variant("fractional")


def test_dense_512_on_the_unpooled_map_costs_15_8_million() -> None:
    cost = downsampling.dense_on_unpooled_map_parameters()
    assert cost["feature_map"] == [22, 22, 64] and cost["flattened"] == 30_976
    assert cost["parameters"] == 22 * 22 * 64 * 512 + 512 == 15_860_224


def test_experiment_writes_its_table_and_plot(synthetic_mnist, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv(mnist.SUBSET_ENV, "64")  # the no-downsampling model is the slow one
    out = tmp_path / "study"
    status = cli.main(["experiment", "downsampling", "--epochs", "1", "--out", str(out),
                       "--backend", "numpy", "--seed", "0", "--verbose", "0"])
    assert status == 0

    report = json.loads((out / "downsampling.json").read_text())
    assert [row["model"] for row in report["rows"]] == list(downsampling.VARIANTS)
    for row in report["rows"]:
        assert {"parameters", "test_accuracy", "seconds_per_epoch", "cpu_seconds_per_epoch",
                "feature_map", "runs"} <= set(row)
        assert 0 <= row["test_accuracy"] <= 1 and row["seconds_per_epoch"] > 0
        assert [run["seed"] for run in row["runs"]] == [0]
        assert row["test_accuracy"] == row["runs"][0]["test_accuracy"]
    assert report["budget"]["epochs"] == 1 and report["budget"]["batch_size"] == 64
    assert report["budget"]["seeds"] == [0]
    assert report["budget"]["train_images"] == 64 and report["budget"]["backend"] == "numpy"
    assert report["dense_512_on_unpooled_map"]["parameters"] == 15_860_224

    table = (out / "downsampling.md").read_text()
    for name in downsampling.VARIANTS:
        assert f"| {name} |" in table
    assert "15,860,224" in table
    assert table in capsys.readouterr().out  # printed as well as saved
    assert (out / "downsampling.png").read_bytes().startswith(PNG_MAGIC)
    assert sorted(p.name for p in out.iterdir()) == ["downsampling.json", "downsampling.md",
                                                     "downsampling.png"]


def test_experiment_repeats_a_chosen_subset_over_seeds(synthetic_mnist, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(mnist.SUBSET_ENV, "64")
    out = tmp_path / "s"
    status = cli.main(["experiment", "downsampling", "--epochs", "1", "--out", str(out),
                       "--backend", "numpy", "--seeds", "1", "2", "--verbose", "0",
                       "--variants", "strided-conv", "max-pool"])
    assert status == 0
    report = json.loads((out / "downsampling.json").read_text())
    assert [row["model"] for row in report["rows"]] == ["strided-conv", "max-pool"]
    assert report["rows"][0]["parameters"] == 121_994
    for row in report["rows"]:
        runs = row["runs"]
        assert [run["seed"] for run in runs] == [1, 2]
        mean = (runs[0]["test_accuracy"] + runs[1]["test_accuracy"]) / 2
        assert row["test_accuracy"] == pytest.approx(mean)
    # The same seed gives the same run: seed 1 here matches a run of seed 1 alone.
    alone = downsampling.run(epochs=1, out=tmp_path / "t", backend="numpy", seed=1,
                             variants=["strided-conv"], verbose=0)
    assert alone["rows"][0]["test_loss"] == report["rows"][0]["runs"][0]["test_loss"]
    assert "(" in (out / "downsampling.md").read_text()  # the accuracy's range


def test_experiment_refuses_repeated_seeds(synthetic_mnist, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="distinct"):
        downsampling.run(epochs=1, out=tmp_path / "r", seeds=[3, 3], verbose=0)
