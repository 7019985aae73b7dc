"""``python -m compare.cats_vs_dogs`` end to end on tiny generated Kaggle-layout folders.

The split needs only Pillow; the training steps need Keras (marked ``keras``) and run
with ``--weights none`` on a few small images: the point is that every step runs and
writes what it promises, not the accuracy.
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


# ----------------------------------------------------------------------- Keras steps
@pytest.fixture(scope="module")
def small_split(tmp_path_factory) -> Path:
    """2 / 1 / 1 images per class."""
    root = tmp_path_factory.mktemp("cats_vs_dogs")
    source = make_kaggle_folder(root / "kaggle", numbers=(0, 1, 2, 3))
    assert main(["split", str(source), str(root / "small"), "--train", "2", "--validation",
                 "1", "--test", "1"]) == 0
    return root / "small"


def train(step: str, data: Path, out: Path, *options: str) -> dict:
    status = main([step, "--data", str(data), "--out", str(out), "--epochs", "1",
                   "--batch-size", "2", "--weights", "none", "--verbose", "0", *options])
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (out / "curves.png").read_bytes().startswith(PNG_MAGIC)
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(metrics["history"])
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and np.isfinite(metrics["test_loss"])
    assert metrics["images"] == {"train": 4, "validation": 2, "test": 2}
    assert metrics["options"]["weights"] == "none"
    return metrics


@pytest.mark.keras
def test_scratch_and_augment_run_end_to_end(small_split: Path, tmp_path: Path) -> None:
    pytest.importorskip("keras")
    scratch = train("scratch", small_split, tmp_path / "scratch", "--image-size", "48")
    assert scratch["step"] == "scratch" and len(scratch["history"]["loss"]) == 1
    # 48 -> 46 -> 23 -> 21 -> 10 -> 8 -> 4 -> 2 -> 1: 128 values into Dense 512.
    assert scratch["parameters"]["total"] == (
        (3 * 9 * 32 + 32) + (32 * 9 * 64 + 64) + (64 * 9 * 128 + 128) + (128 * 9 * 128 + 128)
        + (128 * 512 + 512) + (512 + 1))
    augment = train("augment", small_split, tmp_path / "augment", "--image-size", "48")
    assert augment["parameters"] == scratch["parameters"]  # Dropout and augmentation: no weights
    assert "RandomShear" in augment["augmentation"] and "RandomShear" in augment["augmentation_note"]
    assert main(["scratch", "--data", str(small_split), "--out", str(tmp_path / "x"),
                 "--image-size", "40", "--weights", "none"]) == 2


@pytest.mark.keras
def test_extract_saves_vgg16_features_of_shape_n_4_4_512(small_split: Path,
                                                        tmp_path: Path) -> None:
    pytest.importorskip("keras")
    out = tmp_path / "extract"
    metrics = train("extract", small_split, out, "--image-size", "150")
    assert metrics["feature_shape"] == [4, 4, 512]
    assert metrics["conv_base_parameters"] == 14_714_688
    assert metrics["parameters"]["total"] == 8192 * 256 + 256 + 256 + 1
    with np.load(out / "features.npz") as saved:
        assert saved["train_features"].shape == (4, 4, 4, 512)
        assert saved["validation_features"].shape == saved["test_features"].shape == (2, 4, 4, 512)
        np.testing.assert_array_equal(saved["train_labels"], [0, 0, 1, 1])  # cats, then dogs
    assert metrics["features_reused"] is False
    assert train("extract", small_split, out, "--image-size", "150")["features_reused"] is True


@pytest.mark.keras
def test_extract_augment_then_finetune(small_split: Path, tmp_path: Path) -> None:
    pytest.importorskip("keras")
    head = train("extract-augment", small_split, tmp_path / "head", "--image-size", "32")
    assert head["parameters"]["trainable"] == 512 * 256 + 256 + 256 + 1  # base frozen
    assert (tmp_path / "head" / "model.weights.h5").is_file()
    tuned = train("finetune", small_split, tmp_path / "tuned", "--image-size", "32",
                  "--head-from", str(tmp_path / "head"))
    assert tuned["unfrozen"] == ["block5_conv1", "block5_conv2", "block5_conv3"]
    assert tuned["parameters"]["trainable"] == 3 * 2_359_808 + 512 * 256 + 256 + 256 + 1
    assert tuned["head_epochs"] == 0 and len(tuned["history"]["loss"]) == 1
    alone = train("finetune", small_split, tmp_path / "alone", "--image-size", "32",
                  "--head-epochs", "1")
    assert alone["head_epochs"] == 1 and len(alone["history"]["val_loss"]) == 2


@pytest.mark.keras
def test_imagenet_offline_names_the_alternatives(small_split: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys) -> None:
    pytest.importorskip("keras")
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- "
                        "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
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
