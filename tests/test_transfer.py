"""``minicnn experiment transfer`` on a tiny synthetic MNIST, offline (NumPy backend)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import minicnn
from minicnn import cli
from minicnn.experiments import transfer
from minicnn.backend import using_backend
from tests.test_train_cli import PNG_MAGIC


def test_digit_subset_renumbers_and_draw_labeled_is_balanced_and_seeded() -> None:
    digits = np.array([5, 0, 9, 7, 5, 3, 6, 8, 9, 4])
    x = np.arange(10).reshape(10, 1, 1, 1)
    kept, labels = transfer.digit_subset(x, digits, transfer.TARGET_DIGITS)
    assert kept.ravel().tolist() == [0, 2, 3, 4, 6, 7, 8]
    assert labels.tolist() == [0, 4, 2, 0, 1, 3, 4]

    labels = np.repeat(np.arange(5), 40)
    first = transfer.draw_labeled(labels, 12, seed=0)
    assert len(set(first.tolist())) == 12
    assert np.bincount(labels[first], minlength=5).tolist() == [3, 3, 2, 2, 2]
    np.testing.assert_array_equal(first, transfer.draw_labeled(labels, 12, seed=0))
    assert set(first.tolist()) != set(transfer.draw_labeled(labels, 12, seed=1).tolist())
    with pytest.raises(ValueError, match="at least 5"):
        transfer.draw_labeled(labels, 4, seed=0)
    with pytest.raises(ValueError, match="class 0 has only 40"):
        transfer.draw_labeled(labels, 205, seed=0)


def test_feature_extraction_freezes_the_base_and_fine_tuning_moves_only_the_last_conv() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((10, 28, 28, 1), dtype=np.float32)
    y = minicnn.utils.to_categorical(np.arange(10) % 5, 5)
    with using_backend("numpy"):
        minicnn.set_random_seed(3)
        pretrained = transfer.transfer_convnet(5)
        before = [w.copy() for w in pretrained.get_weights()]
        results = transfer.run_seed(pretrained, (x, y), (x, y), seed=0, epochs=1,
                                    fine_tune_epochs=1, batch_size=5, learning_rate=1e-3,
                                    fine_tune_learning_rate=1e-4)
        for kept, now in zip(before, pretrained.get_weights()):  # copied, not shared
            np.testing.assert_array_equal(kept, now)
        assert {m: r["trainable_parameters"] for m, r in results.items()} == {
            "scratch": 92_997,                                  # the whole 5-way convnet
            "feature-extraction": 576 * 64 + 64 + 64 * 5 + 5,   # the head alone
            "fine-tuning": 37_253 + 3 * 3 * 64 * 64 + 64}        # + the last convolution

        model = transfer._with_pretrained_base(pretrained, freeze=True)
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
        model.fit(x, y, epochs=1, batch_size=5, verbose=0)
        conv_indices = (0, 2, transfer.LAST_CONV_INDEX)
        for index in conv_indices:
            for a, b in zip(model.layers[index].get_weights(), pretrained.layers[index].get_weights()):
                np.testing.assert_array_equal(a, b)
        head = [w.copy() for w in model.layers[-1].get_weights()]
        assert not np.array_equal(head[0], pretrained.layers[-1].get_weights()[0])

        model.layers[transfer.LAST_CONV_INDEX].trainable = True
        model.compile(optimizer=minicnn.optimizers.RMSprop(1e-4), loss="categorical_crossentropy")
        model.fit(x, y, epochs=1, batch_size=5, verbose=0)
        for index in (0, 2):
            np.testing.assert_array_equal(model.layers[index].get_weights()[0],
                                          pretrained.layers[index].get_weights()[0])
        assert not np.array_equal(model.layers[transfer.LAST_CONV_INDEX].get_weights()[0],
                                  pretrained.layers[transfer.LAST_CONV_INDEX].get_weights()[0])


def run_cli(out: Path, *options: str) -> int:
    return cli.main(["experiment", "transfer", "--labeled", "10", "--epochs", "2",
                     "--pretrain-epochs", "1", "--out", str(out), "--backend", "numpy",
                     "--verbose", "0", *options])


def test_cli_writes_json_table_plot_and_pretrains_once(synthetic_mnist, tmp_path: Path,
                                                       capsys) -> None:
    out = tmp_path / "transfer"
    assert run_cli(out, "--seeds", "0", "1") == 0
    accuracies = json.loads((out / "transfer.json").read_text())
    assert list(accuracies) == list(transfer.METHODS)
    for values in accuracies.values():
        assert len(values) == 2 and all(0.0 <= value <= 1.0 for value in values)
    details = json.loads((out / "transfer_details.json").read_text())
    assert details["accuracies"] == accuracies
    assert details["options"]["labeled"] == 10 and details["options"]["seeds"] == [0, 1]
    assert details["options"]["batch_size"] == 20 and details["options"]["backend"] == "numpy"
    expected_test = int(np.isin(synthetic_mnist["y_test"], transfer.TARGET_DIGITS).sum())
    assert details["options"]["test_images"] == expected_test
    for method in ("feature-extraction", "fine-tuning"):
        margins = np.subtract(accuracies[method], accuracies["scratch"])
        assert details["margins"][method]["per_seed"] == pytest.approx(margins.tolist())
    assert details["pretraining"]["cached"] is False
    assert details["pretraining"]["key"]["train_images"] == int(
        np.isin(synthetic_mnist["y_train"], transfer.SOURCE_DIGITS).sum())
    assert (out / "transfer.png").read_bytes().startswith(PNG_MAGIC)
    table = (out / "transfer.md").read_text()
    for method in transfer.METHODS:
        assert f"| {method} |" in table
    assert "| seed 0 | seed 1 | mean |" in table
    assert table in capsys.readouterr().out  # printed as well as saved
    pretrained = (out / transfer.PRETRAINED_FILE).read_bytes()

    # Again, another seed: the pretrained model comes from the cache, untouched.
    assert run_cli(out, "--seeds", "2") == 0
    details = json.loads((out / "transfer_details.json").read_text())
    assert details["pretraining"]["cached"] is True and details["options"]["seeds"] == [2]
    assert (out / transfer.PRETRAINED_FILE).read_bytes() == pretrained
    assert len(json.loads((out / "transfer.json").read_text())["scratch"]) == 1


def test_cli_rejects_options_of_the_other_study(synthetic_mnist, tmp_path: Path,
                                                capsys) -> None:
    assert run_cli(tmp_path / "a", "--seed", "0") == 2
    assert "use --seeds" in capsys.readouterr().err
    assert run_cli(tmp_path / "b", "--optimizer", "adam") == 2
    assert "RMSprop" in capsys.readouterr().err
    assert cli.main(["experiment", "downsampling", "--labeled", "5", "--out",
                     str(tmp_path / "c")]) == 2
    assert "--labeled is an option of 'experiment transfer'" in capsys.readouterr().err
    assert run_cli(tmp_path / "d", "--seeds", "0", "0") == 2
    assert run_cli(tmp_path / "e", "--labeled", "3") == 2
    assert not (tmp_path / "a").exists() and not (tmp_path / "e" / "transfer.json").exists()
