"""``python -m compare.cats_vs_dogs`` end to end on tiny generated Kaggle-layout folders.

The split needs only Pillow; every training step runs in minicnn alone (no Keras), and
in Keras and in both engines side by side (marked ``keras``), with ``--weights none`` on
a few small images: the point is that every step runs, writes what it promises and,
side by side, that the two engines start from the same weights and see the same
batches, not the accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from compare.cats_vs_dogs.__main__ import main

# Keras's own code trips NumPy 2's copy-keyword deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Kaggle numbering with a gap and a two-digit number: numeric order is 0, 1, 2, 3, 10, 11.
NUMBERS = (0, 1, 2, 3, 10, 11)


def make_kaggle_folder(folder: Path, numbers=NUMBERS, size: int = 40) -> Path:
    """cat.N.jpg (reddish) and dog.N.jpg (bluish) noise images, plus a stray file."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, channel in (("cat", 0), ("dog", 2)):
        for number in numbers:
            pixels = rng.integers(0, 120, (size, size, 3), dtype=np.uint8)
            pixels[..., channel] += 120
            Image.fromarray(pixels).save(folder / f"{prefix}.{number}.jpg", quality=90)
    (folder / "README.txt").write_text("not an image, not Kaggle-named: ignored")
    return folder


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# ------------------------------------------------------------------------------ split
def test_split_copies_in_numeric_order_and_is_safe_to_rerun(tmp_path: Path, capsys) -> None:
    source = make_kaggle_folder(tmp_path / "kaggle")
    before = names(source)
    destination = tmp_path / "small"
    arguments = ["split", str(source), str(destination), "--train", "2", "--validation", "1",
                 "--test", "2"]
    assert main(arguments) == 0
    assert names(destination / "train" / "cats") == ["cat.0.jpg", "cat.1.jpg"]
    assert names(destination / "validation" / "dogs") == ["dog.2.jpg"]
    assert names(destination / "test" / "cats") == ["cat.10.jpg", "cat.3.jpg"]
    assert names(source) == before  # copied, never moved
    copy = destination / "test" / "dogs" / "dog.10.jpg"
    assert copy.read_bytes() == (source / "dog.10.jpg").read_bytes()
    report = json.loads((destination / "split.json").read_text())
    assert report["copied"] == 10 and report["per_class"] == {"train": 2, "validation": 1,
                                                             "test": 2}
    capsys.readouterr()

    assert main(arguments) == 0  # again: nothing copied, nothing changed
    assert "copied 0 file(s), 10 already there" in capsys.readouterr().out
    assert not list(destination.rglob("*.partial"))
    # A damaged copy is put right on the next run.
    copy.write_bytes(b"damaged")
    assert main(arguments) == 0
    assert copy.read_bytes() == (source / "dog.10.jpg").read_bytes()


def test_split_refuses_too_few_images_bad_files_and_mixed_splits(tmp_path: Path,
                                                                 capsys) -> None:
    source = make_kaggle_folder(tmp_path / "kaggle")
    destination = tmp_path / "small"
    assert main(["split", str(source), str(destination)]) == 2  # 1000 + 500 + 500 by default
    error = capsys.readouterr().err
    assert "holds 6 cat images" in error and "needs 2000 per class" in error
    assert not destination.exists()

    (source / "dog.1.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    assert main(["split", str(source), str(destination), "--train", "2", "--validation", "1",
                 "--test", "1"]) == 2
    error = capsys.readouterr().err
    assert "dog.1.jpg" in error and "not a readable image" in error
    assert not destination.exists()  # checked before anything is written

    make_kaggle_folder(source)  # repair
    assert main(["split", str(source), str(destination), "--train", "2", "--validation", "1",
                 "--test", "1"]) == 0
    assert main(["split", str(source), str(destination), "--train", "1", "--validation", "1",
                 "--test", "1"]) == 2
    assert "already holds 1 file(s)" in capsys.readouterr().err
    assert main(["split", str(source), str(destination), "--train", "0"]) == 2


def test_split_names_the_unreadable_file(tmp_path: Path, capsys) -> None:
    source = make_kaggle_folder(tmp_path / "kaggle", numbers=(0, 1, 2))
    (source / "cat.2.jpg").write_bytes(b"not a jpeg at all")
    assert main(["split", str(source), str(tmp_path / "out"), "--train", "1",
                 "--validation", "1", "--test", "1"]) == 2
    error = capsys.readouterr().err
    assert "cat.2.jpg" in error and "not a readable image" in error


# -------------------------------------------------------------------- training steps
@pytest.fixture(scope="module")
def small_split(tmp_path_factory) -> Path:
    """2 / 1 / 1 images per class."""
    root = tmp_path_factory.mktemp("cats_vs_dogs")
    source = make_kaggle_folder(root / "kaggle", numbers=(0, 1, 2, 3))
    assert main(["split", str(source), str(root / "small"), "--train", "2", "--validation",
                 "1", "--test", "1"]) == 0
    return root / "small"


def train(step: str, data: Path, out: Path, *options: str, engine: str = "minicnn") -> dict:
    status = main([step, "--data", str(data), "--out", str(out), "--epochs", "1",
                   "--batch-size", "2", "--weights", "none", "--verbose", "0",
                   "--engine", engine, *options])
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (out / "curves.png").read_bytes().startswith(PNG_MAGIC)
    engines = ["minicnn", "keras"] if engine == "both" else [engine]
    assert sorted(metrics["engines"]) == sorted(engines)
    for values in metrics["engines"].values():
        assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(values["history"])
        assert 0.0 <= values["test_accuracy"] <= 1.0 and np.isfinite(values["test_loss"])
    assert metrics["images"] == {"train": 4, "validation": 2, "test": 2}
    assert metrics["classes"] == ["cats", "dogs"]
    assert metrics["options"]["weights"] == "none"
    if engine != "both":
        assert metrics["history"] == metrics["engines"][engine]["history"]
    return metrics


# 48 -> 46 -> 23 -> 21 -> 10 -> 8 -> 4 -> 2 -> 1: 128 values into Dense 512.
SMALL_CONVNET_48 = ((3 * 9 * 32 + 32) + (32 * 9 * 64 + 64) + (64 * 9 * 128 + 128)
                    + (128 * 9 * 128 + 128) + (128 * 512 + 512) + (512 + 1))
HEAD_ON_1x1x512 = 512 * 256 + 256 + 256 + 1


def test_scratch_and_augment_in_minicnn(small_split: Path, tmp_path: Path) -> None:
    scratch = train("scratch", small_split, tmp_path / "scratch", "--image-size", "48")
    assert scratch["step"] == "scratch" and len(scratch["history"]["loss"]) == 1
    assert scratch["engines"]["minicnn"]["parameters"]["total"] == SMALL_CONVNET_48
    assert scratch["engines"]["minicnn"]["parameters"]["trainable_arrays"] == 12
    augment = train("augment", small_split, tmp_path / "augment", "--image-size", "48",
                    "--steps-per-epoch", "1")
    assert augment["engines"]["minicnn"]["parameters"]["total"] == SMALL_CONVNET_48
    assert augment["augmentation"]["horizontal_flip"] is True
    assert "degrees" in augment["augmentation_note"]
    assert main(["scratch", "--data", str(small_split), "--out", str(tmp_path / "x"),
                 "--image-size", "40", "--engine", "minicnn"]) == 2


def test_vgg16_steps_in_minicnn(small_split: Path, tmp_path: Path) -> None:
    out = tmp_path / "extract"
    extract = train("extract", small_split, out, "--image-size", "32")
    assert extract["feature_shape"] == [1, 1, 512] and extract["conv_base_parameters"] == 14_714_688
    assert extract["engines"]["minicnn"]["parameters"]["total"] == HEAD_ON_1x1x512
    with np.load(out / "features_minicnn.npz") as saved:
        assert saved["train_features"].shape == (4, 1, 1, 512)
        np.testing.assert_array_equal(saved["train_labels"], [0, 0, 1, 1])  # cats, then dogs
    head = train("extract-augment", small_split, tmp_path / "head", "--image-size", "32")
    parameters = head["engines"]["minicnn"]["parameters"]
    # The book's count: 30 trainable weight arrays before freezing the base, 4 after.
    assert parameters == {"total": 14_714_688 + HEAD_ON_1x1x512, "trainable": HEAD_ON_1x1x512,
                          "trainable_arrays": 4}
    assert (tmp_path / "head" / "weights_minicnn.npz").is_file()
    tuned = train("finetune", small_split, tmp_path / "tuned", "--image-size", "32",
                  "--head-from", str(tmp_path / "head"))
    assert tuned["unfrozen"] == ["block5_conv1", "block5_conv2", "block5_conv3"]
    assert tuned["engines"]["minicnn"]["parameters"]["trainable"] == (
        3 * 2_359_808 + HEAD_ON_1x1x512)
    assert tuned["engines"]["minicnn"]["parameters"]["trainable_arrays"] == 10  # as the book
    assert tuned["head_epochs"] == 0 and len(tuned["history"]["loss"]) == 1
    alone = train("finetune", small_split, tmp_path / "alone", "--image-size", "32",
                  "--head-epochs", "1")
    assert alone["head_epochs"] == 1 and len(alone["history"]["val_loss"]) == 2


def test_exported_digits_are_a_split_folder(tmp_path: Path) -> None:
    """The layout ``minicnn data mnist --export`` writes is one the steps read."""
    from minicnn.datasets.export import export_mnist
    from tests.test_export import tiny_mnist

    export_mnist(tmp_path / "digits", names=("cats", "dogs"), train=2, validation=1, test=1,
                 size=48, data=tiny_mnist(), verbose=False)
    train("scratch", tmp_path / "digits", tmp_path / "out", "--image-size", "48")


def test_bad_folders_are_named(tmp_path: Path, capsys) -> None:
    assert main(["scratch", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o"),
                 "--engine", "minicnn"]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "one" / "train" / "cats").mkdir(parents=True)
    assert main(["scratch", "--data", str(tmp_path / "one"), "--out", str(tmp_path / "o"),
                 "--engine", "minicnn"]) == 2
    assert "must hold two class folders" in capsys.readouterr().err


@pytest.mark.keras
@pytest.mark.parametrize("step, options", [
    ("scratch", ("--image-size", "48")),
    ("augment", ("--image-size", "48")),
    ("extract", ("--image-size", "32")),
    ("extract-augment", ("--image-size", "32")),
    ("finetune", ("--image-size", "32", "--head-epochs", "1")),
])
def test_both_engines_side_by_side(step: str, options: tuple[str, ...], small_split: Path,
                                   tmp_path: Path, capsys) -> None:
    pytest.importorskip("keras")
    metrics = train(step, small_split, tmp_path / step, *options, engine="both")
    printed = capsys.readouterr().out
    assert "epoch | loss: minicnn keras gap" in printed
    gaps = metrics["gaps"]
    assert [row["epoch"] for row in gaps] == list(range(1, len(gaps) + 1))
    assert metrics["engines"]["minicnn"]["parameters"] == metrics["engines"]["keras"]["parameters"]
    if step == "scratch":  # no Dropout: same weights and batches give the same numbers
        assert abs(gaps[0]["loss"]["gap"]) < 1e-4 and abs(gaps[0]["val_loss"]["gap"]) < 1e-4
        assert metrics["largest_gaps"]["val_accuracy"] == 0.0
    if step == "extract":
        assert metrics["feature_max_abs_gap"] < 1e-2  # VGG16 features, random weights
    for engine in ("minicnn", "keras"):
        assert metrics["engines"][engine]["seconds"] > 0


@pytest.mark.keras
def test_keras_alone_and_imagenet_offline(small_split: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    pytest.importorskip("keras")
    alone = train("scratch", small_split, tmp_path / "keras", "--image-size", "48",
                  engine="keras")
    mine = train("scratch", small_split, tmp_path / "minicnn", "--image-size", "48")
    # The same starting weights and batches: the first epoch's losses agree.
    assert alone["history"]["loss"][0] == pytest.approx(mine["history"]["loss"][0], abs=1e-4)
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- "
                        "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    capsys.readouterr()
    for step in ("extract", "extract-augment", "finetune"):
        status = main([step, "--data", str(small_split), "--out", str(tmp_path / step),
                       "--epochs", "1", "--image-size", "32", "--weights", "imagenet"])
        assert status == 2
        error = capsys.readouterr().err
        assert "VGG16 ImageNet weights" in error and "offline" in error
        assert "--weights PATH" in error and "--weights none" in error
    status = main(["extract", "--data", str(small_split), "--out", str(tmp_path / "p"),
                   "--weights", str(tmp_path / "missing.h5")])
    assert status == 2 and "missing.h5" in capsys.readouterr().err
