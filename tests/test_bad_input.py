"""The bad-input catalogue, the cases ``tests/test_errors.py`` does not already cover.

Each case asserts the error type and a fragment of the message saying what was wrong
and what was expected, raised where the user called.  Model files: missing, empty,
truncated, corrupted, of a newer format version, not a model (another .npz, a .npy, a
text file), an unknown layer class, weights of the wrong shape, a pickle payload, and a
plain model given where a checkpoint is needed.  The CLI: one line on stderr, exit
status 2, never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import minicnn
from minicnn import cli, layers
from minicnn.callbacks import BackupAndRestore, restore_checkpoint
from minicnn.datasets import image_folder, mnist
from minicnn.io import ModelFileError
from minicnn.models import NonFiniteLossError
from minicnn.utils import to_categorical


def convnet(loss: str = "categorical_crossentropy") -> minicnn.Sequential:
    model = minicnn.Sequential([
        minicnn.Input((8, 8, 1)),
        layers.Conv2D(4, (3, 3), activation="relu", name="first_conv"),
        layers.Flatten(),
        layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="rmsprop", loss=loss, metrics=["accuracy"])
    return model


X = np.zeros((4, 8, 8, 1), np.float32)
Y = to_categorical([0, 1, 2, 0], 3)


def escaped(fragment: str) -> str:
    return fragment.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")


# ------------------------------------------------------------------ arrays and labels
@pytest.mark.parametrize("y, fragment", [
    (np.zeros((4, 5), np.float32), "expects one-hot labels of shape (4, 3), received (4, 5)"),
    (np.zeros((4, 3, 1), np.float32), "expects one-hot labels of shape (4, 3), received (4, 3, 1)"),
])
def test_one_hot_labels_of_the_wrong_shape(y, fragment):
    with pytest.raises(ValueError, match=escaped(fragment)):
        convnet().fit(X, y, verbose=0)


def test_one_hot_labels_given_to_a_sparse_loss():
    with pytest.raises(ValueError, match="expects integer labels of shape .* received "
                                         r"\(4, 3\); use categorical_crossentropy"):
        convnet("sparse_categorical_crossentropy").fit(X, Y, verbose=0)


@pytest.mark.parametrize("labels, fragment", [
    ([0, -1, 2, 0], "expects labels in [0, 3) for 3 classes, received -1"),
    ([0, 1.5, 2, 0], "expects integer labels, received 1.5"),
])
def test_sparse_labels_negative_or_fractional(labels, fragment):
    with pytest.raises(ValueError, match=escaped(fragment)):
        convnet("sparse_categorical_crossentropy").fit(X, np.array(labels), verbose=0)


def test_non_finite_targets_are_refused():
    y = Y.copy()
    y[2, 1] = np.nan
    with pytest.raises(ValueError, match="y contains 1 NaN or infinite values"):
        convnet().fit(X, y, verbose=0)


def test_ragged_input_is_refused_as_not_an_array_of_numbers():
    with pytest.raises(TypeError, match="x must be an array of numbers"):
        convnet().predict([[1.0, 2.0], [3.0]], verbose=0)


def test_complex_input_is_refused():
    with pytest.raises(TypeError, match="array of numbers"):
        convnet().predict(np.zeros((2, 8, 8, 1), np.complex64), verbose=0)


@pytest.mark.parametrize("call", ["predict", "evaluate"])
def test_empty_input_to_predict_and_evaluate(call):
    model = convnet()
    arguments = (X[:0],) if call == "predict" else (X[:0], Y[:0])
    with pytest.raises(ValueError, match=escaped("x is empty (shape (0, 8, 8, 1)); expected "
                                                 "at least one sample")):
        getattr(model, call)(*arguments, verbose=0)


@pytest.mark.parametrize("call", ["predict", "evaluate"])
def test_batch_size_of_predict_and_evaluate_must_be_positive(call):
    model = convnet()
    arguments = (X,) if call == "predict" else (X, Y)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, received 0"):
        getattr(model, call)(*arguments, batch_size=0, verbose=0)


def test_epochs_given_as_a_float_is_refused():
    with pytest.raises(ValueError, match=r"epochs must be a positive integer, received 2\.0"):
        convnet().fit(X, Y, epochs=2.0, verbose=0)


# ------------------------------------------------------------------ names and layers
@pytest.mark.parametrize("make", [lambda: layers.Dense(3, activation="swishy"),
                                  lambda: layers.Activation("swishy")])
def test_unknown_activation_names_the_known_ones(make):
    with pytest.raises(ValueError, match=r"unknown activation 'swishy'; expected one of "
                                         r"\['linear', 'relu'"):
        make()


def test_something_that_is_not_a_layer_in_a_model():
    with pytest.raises(TypeError, match="Sequential.add expects a minicnn layer or model, received "
                                        "str: 'conv'"):
        minicnn.Sequential(["conv"])


def test_optimizer_of_the_wrong_type():
    with pytest.raises(ValueError, match="unknown optimizer 3; expected one of"):
        convnet().compile(optimizer=3, loss="mse")


def test_kernel_larger_than_its_input_after_pooling_names_the_layer():
    with pytest.raises(ValueError, match=r"Layer 'deep_conv': kernel_size \(5, 5\) is larger "
                                         r"than its 4x4 input with padding='valid'"):
        minicnn.Sequential([minicnn.Input((8, 8, 1)), layers.MaxPooling2D(2),
                            layers.Conv2D(2, 5, name="deep_conv")])


def test_kernel_larger_than_its_input_in_a_lazily_built_model():
    model = minicnn.Sequential([layers.Conv2D(2, 5, name="lazy_conv")])
    with pytest.raises(ValueError, match=r"'lazy_conv': kernel_size \(5, 5\) is larger than "
                                         r"its 4x4 input"):
        model.predict(np.zeros((1, 4, 4, 1), np.float32), verbose=0)


def test_pool_larger_than_one_side_of_its_input():
    with pytest.raises(ValueError, match=r"pool_size \(3, 3\) is larger than its 8x2 input"):
        minicnn.Sequential([minicnn.Input((8, 2, 1)), layers.MaxPooling2D(3)])


def test_layer_that_needs_an_image_after_flatten():
    with pytest.raises(ValueError, match="expected ndim=4 .* found ndim=2"):
        minicnn.Sequential([minicnn.Input((8, 8, 1)), layers.Flatten(), layers.Conv2D(2, 3)])


# ------------------------------------------------------------------ model files
@pytest.fixture
def saved(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    """A compiled, trained model file and its arrays."""
    model = convnet()
    model.fit(X, Y, epochs=1, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    with np.load(path) as archive:
        return path, {name: archive[name] for name in archive.files}


def rewrite(tmp_path: Path, arrays: dict[str, np.ndarray], **changes) -> Path:
    path = tmp_path / "edited.npz"
    np.savez(path, **{**arrays, **changes})
    return path


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelFileError, match=r"model file '.*nowhere\.npz' does not exist"):
        minicnn.load_model(tmp_path / "nowhere.npz")


def test_empty_model_file(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ModelFileError, match="is not a minicnn model file .* it is empty"):
        minicnn.load_model(tmp_path / "empty.npz")


@pytest.mark.parametrize("keep", [0.999, 0.5, 0.01])
def test_truncated_model_file(saved, tmp_path, keep):
    path, _ = saved
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ModelFileError, match="not a readable minicnn model file .* may be "
                                             "truncated or corrupted: BadZipFile"):
        minicnn.load_model(tmp_path / "cut.npz")


def test_corrupted_model_file_is_caught_by_the_zip_checksum(saved, tmp_path):
    path, _ = saved
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10  # inside a weight array
    (tmp_path / "flipped.npz").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="may be truncated or corrupted: BadZipFile: "
                                             "Bad CRC-32"):
        minicnn.load_model(tmp_path / "flipped.npz")


def test_corrupted_zip_header_flags(saved, tmp_path):
    """Found by the fuzz tests: zipfile raises NotImplementedError for these."""
    path, _ = saved
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")  # the central directory's first entry
    data[central + 6] = 0x63  # its "version needed to extract": 9.9
    (tmp_path / "flags.npz").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="may be truncated or corrupted: "
                                             "NotImplementedError: zip file version 9.9"):
        minicnn.load_model(tmp_path / "flags.npz")


def test_model_file_whose_header_declares_an_array_larger_than_memory(tmp_path):
    """Found by the fuzz tests: a 1 KB file made np.load raise MemoryError."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10**13,)})
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("format_version.npy", header.getvalue() + bytes(16))
    with pytest.raises(ModelFileError, match="declares arrays larger than this machine's "
                                             "memory .* Unable to allocate 36.4 TiB"):
        minicnn.load_model(path)


def test_model_file_of_a_newer_format_version(saved, tmp_path):
    _, arrays = saved
    path = rewrite(tmp_path, arrays, format_version=np.array(99))
    with pytest.raises(ModelFileError, match=r"has model format version 99, newer than this "
                                             r"minicnn reads \(1\); upgrade minicnn"):
        minicnn.load_model(path)


@pytest.mark.parametrize("content, fragment", [
    (lambda path: np.savez(path, x=np.zeros(3)),
     "is a .npz file but not a minicnn model: it lacks 'format_version' and 'model_config'"),
    (lambda path: path.write_bytes(b"\x93NUMPY" + bytes(120)),
     "it is a single NumPy array (a .npy file)"),
    (lambda path: path.write_text("Epoch 1/5\nloss: 0.2\n"),
     "it is not a .npz (zip) archive: it starts with b'Epoch '"),
])
def test_a_file_that_is_not_a_model(tmp_path, content, fragment):
    path = tmp_path / "other.npz"
    content(path)
    with pytest.raises(ModelFileError, match=escaped(fragment)):
        minicnn.load_model(path)


def test_model_file_with_an_unknown_layer_class(saved, tmp_path):
    _, arrays = saved
    config = json.loads(str(arrays["model_config"]))
    config["layers"][0]["class_name"] = "Conv3D"
    path = rewrite(tmp_path, arrays, model_config=np.array(json.dumps(config)))
    with pytest.raises(ModelFileError, match=r"unknown layer class 'Conv3D'; known: "
                                             r"\['Activation', 'AveragePooling2D', 'Conv2D'"):
        minicnn.load_model(path)


def test_model_file_with_weights_of_the_wrong_shape(saved, tmp_path):
    _, arrays = saved
    path = rewrite(tmp_path, arrays, weight_00002=np.zeros((5, 3), np.float32))
    with pytest.raises(ModelFileError, match=r"do not make a valid minicnn model \(ValueError: "
                                             r"set_weights: weight 2 .* has shape \(144, 3\), "
                                             r"received an array of shape \(5, 3\)"):
        minicnn.load_model(path)


def test_model_file_with_bad_layer_arguments(saved, tmp_path):
    _, arrays = saved
    config = json.loads(str(arrays["model_config"]))
    config["layers"][0]["config"]["filters"] = 0
    path = rewrite(tmp_path, arrays, model_config=np.array(json.dumps(config)))
    with pytest.raises(ModelFileError, match="filters must be a positive integer, received 0"):
        minicnn.load_model(path)


@pytest.mark.parametrize("config, fragment", [
    ("{not json", "entry 'model_config' is not valid JSON"),
    ("[" * 50_000 + "]" * 50_000, "entry 'model_config' is not valid JSON: maximum recursion"),
])
def test_model_file_whose_config_is_not_json(saved, tmp_path, config, fragment):
    _, arrays = saved
    path = rewrite(tmp_path, arrays, model_config=np.array(config))
    with pytest.raises(ModelFileError, match=fragment):
        minicnn.load_model(path)


class RunsCode:
    """Unpickling this would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_model_file_with_a_pickle_payload_is_refused_without_running_it(saved, tmp_path):
    _, arrays = saved
    marker = tmp_path / "ran"
    path = rewrite(tmp_path, arrays, weight_00000=np.array([RunsCode(marker)], dtype=object))
    with pytest.raises(ModelFileError, match="Object arrays cannot be loaded when "
                                             "allow_pickle=False"):
        minicnn.load_model(path)
    assert not marker.exists()


def test_a_plain_model_file_is_not_a_checkpoint(saved):
    path, _ = saved
    with pytest.raises(ModelFileError, match="is a model file but not a training checkpoint"):
        restore_checkpoint(convnet(), path)


def test_a_checkpoint_of_another_model_is_refused_on_resume(tmp_path):
    convnet().fit(X, Y, epochs=1, verbose=0,
                  callbacks=[BackupAndRestore(tmp_path, delete_checkpoint=False)])
    other = minicnn.Sequential([minicnn.Input((8, 8, 1)), layers.Flatten(),
                                layers.Dense(3, activation="softmax")])
    other.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    with pytest.raises(ModelFileError, match="cannot be restored into this model: ValueError: "
                                             "You called `set_weights"):
        other.fit(X, Y, epochs=2, verbose=0, callbacks=[BackupAndRestore(tmp_path)])


@pytest.mark.parametrize("save_freq", [0, -2, 1.5, "batch"])
def test_backup_save_freq_must_be_epoch_or_a_positive_integer(tmp_path, save_freq):
    with pytest.raises(ValueError, match="save_freq must be 'epoch' or a positive integer"):
        BackupAndRestore(tmp_path, save_freq=save_freq)


# ------------------------------------------------------------------ data files
def test_mnist_sidecar_nested_too_deep_is_a_dataset_error(tmp_path):
    """Found by the fuzz tests: json.loads raised RecursionError."""
    path = tmp_path / "mnist.npz"
    np.savez(path, x=np.zeros(1))
    (tmp_path / "mnist.npz.json").write_text("[" * 100_000)
    with pytest.raises(mnist.DatasetError, match="mnist.npz.json is not a readable sidecar: "
                                                 "RecursionError"):
        mnist.verify(path)


def test_mnist_file_that_is_a_npy_array(tmp_path, monkeypatch):
    path = tmp_path / "mnist.npz"
    np.save(tmp_path / "array.npy", np.zeros((2, 28, 28), np.uint8))
    (tmp_path / "array.npy").rename(path)
    monkeypatch.setattr(mnist, "KERAS_NPZ_SHA256", mnist.sha256_file(path))
    with pytest.raises(mnist.DatasetError, match=r"holds a single NumPy array \(a .npy file\)"):
        mnist.load_data(path, sources=(), progress=False)


def test_image_declaring_too_many_pixels_is_refused_before_allocation(tmp_path):
    """Found by the fuzz tests: Pillow's DecompressionBombError escaped the loader."""
    from PIL import Image

    path = tmp_path / "cats" / "huge.png"
    path.parent.mkdir()
    Image.new("L", (4, 4)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = (100_000).to_bytes(4, "big") * 2  # IHDR width and height, then its CRC
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    path.write_bytes(bytes(data))
    with pytest.raises(image_folder.ImageFolderError,
                       match=r"huge.png' is not a readable image \(DecompressionBombError"):
        image_folder.list_image_folder(tmp_path)


def test_eps_file_named_like_an_image_is_refused_without_running_ghostscript(tmp_path,
                                                                               monkeypatch):
    """Pillow picks the format from the content; EPS would run Ghostscript on it."""
    ran = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: ran.append(a) or 1 / 0)
    monkeypatch.setattr(subprocess, "check_call", lambda *a, **k: ran.append(a) or 1 / 0)
    path = tmp_path / "cats" / "cat.jpg"
    path.parent.mkdir()
    path.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 4 4\nshowpage\n")
    with pytest.raises(image_folder.ImageFolderError, match="cat.jpg' is not a readable image"):
        image_folder.list_image_folder(tmp_path)
    with pytest.raises(image_folder.ImageFolderError, match="cannot read image"):
        image_folder.load_image(path)
    assert ran == []


# ------------------------------------------------------------------ the command line
def run_command(*arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minicnn.cli", *arguments], text=True,
                          capture_output=True, timeout=120,
                          env={**os.environ, "MINICNN_BACKEND": "numpy", **(env or {})})


def assert_one_line_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minicnn: error: "), result.stderr
    assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("content, fragment", [
    (b"", "it is empty"),
    (b"PK\x03\x04" + bytes(40), "may be truncated or corrupted"),
    (b"not a model", "not a .npz (zip) archive"),
])
def test_cli_reports_a_bad_model_file_in_one_line(tmp_path, content, fragment):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    assert_one_line_error(run_command("explain", str(path)), fragment)
    assert_one_line_error(run_command("viz", "activations", "--model", str(path), "--index",
                                      "0", "--out", str(tmp_path / "viz")), fragment)


def test_cli_reports_a_missing_model_file_in_one_line(tmp_path):
    assert_one_line_error(run_command("explain", str(tmp_path / "gone.npz")), "does not exist")


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """A verified synthetic mnist.npz in a temporary cache; the network is refused."""
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (32, 28, 28), dtype=np.uint8),
              "y_train": rng.integers(0, 10, 32).astype(np.uint8),
              "x_test": rng.integers(0, 256, (16, 28, 28), dtype=np.uint8),
              "y_test": rng.integers(0, 10, 16).astype(np.uint8)}
    cache = tmp_path / "cache"
    cache.mkdir()
    np.savez(cache / "mnist.npz", **arrays)
    monkeypatch.setenv(mnist.DATA_DIR_ENV, str(cache))
    monkeypatch.delenv(mnist.SUBSET_ENV, raising=False)
    monkeypatch.setattr(mnist, "KERAS_NPZ_SHA256", mnist.sha256_file(cache / "mnist.npz"))

    def refuse(*args, **kwargs):
        raise AssertionError("network access in a test")

    monkeypatch.setattr(mnist, "_download_url", refuse)
    monkeypatch.setattr(mnist, "_pip_download_wheel", refuse)
    return cache


def train(out: Path, *options: str) -> int:
    return cli.main(["train", "mnist", "--epochs", "1", "--batch-size", "16", "--backend",
                     "numpy", "--verbose", "0", "--out", str(out), *options])


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("minicnn: error: "), err
    return err[0]


@pytest.mark.parametrize("every", ["0", "-4"])
def test_cli_checkpoint_every_must_be_positive(tiny_mnist, tmp_path, capsys, every):
    assert train(tmp_path / "run", "--checkpoint-every", every) == 2
    assert "save_freq must be 'epoch' or a positive integer, received " + every in one_line(capsys)
    assert not (tmp_path / "run").exists()


def test_cli_resume_from_a_checkpoint_of_another_model(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, "--model", "dense") == 0
    capsys.readouterr()
    assert train(out, "--resume") == 2
    assert "cannot be restored into this model" in one_line(capsys)


def test_cli_resume_from_a_damaged_checkpoint(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(b"PK\x03\x04 half a checkpoint")
    assert train(out, "--resume") == 2
    assert "checkpoint.npz' is not a readable minicnn model file" in one_line(capsys)


def test_cli_reports_a_dataset_with_a_bad_checksum_in_one_line(tiny_mnist, tmp_path, capsys,
                                                               monkeypatch):
    monkeypatch.setattr(mnist, "KERAS_NPZ_SHA256", "0" * 64)
    monkeypatch.setattr(mnist, "SOURCES", ())
    monkeypatch.setattr(mnist, "_SOURCE_FUNCTIONS", {})
    status = train(tmp_path / "run")
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    # Before the error: the progress note that the cached copy failed verification.
    assert "\nminicnn: error: could not get MNIST" in err
    assert "SHA-256 mismatch for file" in err and f"expected {'0' * 64}" in err


def test_cli_reports_a_non_finite_loss_in_one_line(monkeypatch, tmp_path, capsys):
    import minicnn.experiments.train_mnist

    def diverge(**options):
        raise NonFiniteLossError("the loss is nan", epoch=1, batch=6)

    monkeypatch.setattr(minicnn.experiments.train_mnist, "train_mnist", diverge)
    assert train(tmp_path / "run") == 2
    assert "training stopped at epoch 2, batch 7: the loss is nan" in one_line(capsys)
