"""``minicnn data mnist --export DIR``: MNIST digits as an image folder in the Kaggle
layout (minicnn/datasets/export.py), on small synthetic MNIST arrays, offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from minicnn import cli
from minicnn.datasets import export
from minicnn.datasets.image_folder import list_image_folder, load_data

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiny_mnist(per_digit: int = 12, seed: int = 0):
    """((x_train, y_train), (x_test, y_test)): ``per_digit`` images of each digit in each
    set, digits interleaved, every image distinct (its own index is drawn into it)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for offset in (0, 100):
        labels = np.tile(np.arange(10, dtype=np.uint8), per_digit)
        images = rng.integers(0, 200, (len(labels), 28, 28), dtype=np.uint8)
        images[:, 0, :3] = np.stack([np.arange(len(labels)) % 256, np.arange(len(labels)) // 256,
                                     np.full(len(labels), offset)], axis=1)
        arrays.append((images, labels))
    return tuple(arrays)


def files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*.png"))


def test_layout_counts_names_and_no_overlap(tmp_path: Path) -> None:
    data = tiny_mnist()
    manifest = export.export_mnist(tmp_path / "out", classes=(5, 3), names=("dogs", "cats"),
                                   train=4, validation=3, test=2, data=data, verbose=False)
    out = tmp_path / "out"
    for subset, count in (("train", 4), ("validation", 3), ("test", 2)):
        folder = list_image_folder(out / subset)
        assert folder.class_names == ["cats", "dogs"]  # Keras's sorted order
        assert folder.samples == 2 * count
    # The label is the name's rank: cats (digit 3) 0, dogs (digit 5) 1.
    assert manifest["classes"] == {"dogs": {"digit": 5, "label": 1},
                                   "cats": {"digit": 3, "label": 0}}
    (y_train, y_test) = data[0][1], data[1][1]
    indices = manifest["mnist_indices"]
    train3, validation3 = indices["train/cats"]["indices"], indices["validation/cats"]["indices"]
    assert not set(train3) & set(validation3)
    assert all(y_train[i] == 3 for i in train3 + validation3)
    assert indices["test/dogs"]["mnist_set"] == "test"
    assert all(y_test[i] == 5 for i in indices["test/dogs"]["indices"])
    # In MNIST's order: the first 4 threes for training, the next 3 for validation.
    threes = np.flatnonzero(y_train == 3)
    assert train3 == threes[:4].tolist() and validation3 == threes[4:7].tolist()
    # The pixels are MNIST's own.
    x, labels, names = load_data(out / "train", target_size=(28, 28), color_mode="grayscale")
    assert names == ["cats", "dogs"]
    np.testing.assert_array_equal(x[0, :, :, 0], data[0][0][threes[0]])
    assert json.loads((out / "export.json").read_text())["per_class"] == {
        "train": 4, "validation": 3, "test": 2}


def test_deterministic_rerun_keeps_files_and_size_makes_rgb(tmp_path: Path) -> None:
    data = tiny_mnist()
    first = export.export_mnist(tmp_path / "a", data=data, train=2, validation=1, test=1,
                                size=40, verbose=False)
    second = export.export_mnist(tmp_path / "b", data=data, train=2, validation=1, test=1,
                                 size=40, verbose=False)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    for name in files(tmp_path / "a"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert first["written"] == second["written"] == 8
    assert files(tmp_path / "a")[0].startswith("test/digit3/mnist-test-")
    again = export.export_mnist(tmp_path / "a", data=data, train=2, validation=1, test=1,
                                size=40, verbose=False)
    assert again["written"] == 0 and again["already_there"] == 8
    from PIL import Image

    with Image.open(tmp_path / "a" / files(tmp_path / "a")[0]) as image:
        assert image.mode == "RGB" and image.size == (40, 40)
    assert not list((tmp_path / "a").rglob("*.tmp"))


def test_an_interrupted_export_leaves_no_partial_image(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import minicnn.files

    calls = {"count": 0}
    real = minicnn.files.atomic_write

    def dies_on_the_third_file(path, write):
        calls["count"] += 1
        if calls["count"] == 3:
            def half(handle):
                handle.write(PNG_MAGIC)
                raise KeyboardInterrupt
            return real(path, half)
        return real(path, write)

    monkeypatch.setattr(export, "atomic_write", dies_on_the_third_file)
    with pytest.raises(KeyboardInterrupt):
        export.export_mnist(tmp_path / "out", data=tiny_mnist(), train=2, validation=1,
                            test=1, verbose=False)
    written = list((tmp_path / "out").rglob("*"))
    pngs = [path for path in written if path.suffix == ".png"]
    assert len(pngs) == 2 and all(path.read_bytes().startswith(PNG_MAGIC) for path in pngs)
    assert not [path for path in written if path.name.endswith(".tmp")]
    assert not (tmp_path / "out" / "export.json").exists()  # the manifest comes last
    monkeypatch.setattr(export, "atomic_write", real)
    done = export.export_mnist(tmp_path / "out", data=tiny_mnist(), train=2, validation=1,
                               test=1, verbose=False)
    assert done["already_there"] == 2 and done["written"] == 6


def test_refusals(tmp_path: Path) -> None:
    data = tiny_mnist(per_digit=3)
    with pytest.raises(export.ExportError, match="needs 4 training"):
        export.export_mnist(tmp_path / "x", data=data, train=2, validation=2, test=1)
    for arguments, message in (({"classes": (3,)}, "at least two"),
                               ({"classes": (3, 3)}, "distinct"),
                               ({"classes": (3, 12)}, "digits 0-9"),
                               ({"names": ("a",)}, "one name per class"),
                               ({"names": ("a", "a")}, "distinct"),
                               ({"names": ("a", "../b")}, "plain folder name"),
                               ({"train": 0}, "--train must be a positive"),
                               ({"size": 0}, "--size")):
        with pytest.raises(export.ExportError, match=message):
            export.export_mnist(tmp_path / "x", data=data, **{"train": 1, "validation": 1,
                                                             "test": 1, **arguments})
    assert not (tmp_path / "x").exists()
    export.export_mnist(tmp_path / "y", data=data, train=2, validation=1, test=1, verbose=False)
    with pytest.raises(export.ExportError, match="would not put there"):
        export.export_mnist(tmp_path / "y", data=data, train=1, validation=1, test=1)
    with pytest.raises(export.ExportError, match="one more class"):
        export.export_mnist(tmp_path / "y", data=data, classes=(3, 7), train=2,
                            validation=1, test=1)


def test_cli_prints_the_path_then_exports(synthetic_mnist, tmp_path: Path,  # noqa: F811
                                          capsys) -> None:
    assert cli.main(["data", "mnist"]) == 0
    path = capsys.readouterr().out.strip()
    assert path.endswith("mnist.npz")
    out = tmp_path / "digits"
    assert cli.main(["data", "mnist", "--export", str(out), "--classes", "0", "1",
                     "--names", "cats", "dogs", "--train", "3", "--validation", "2",
                     "--test", "2", "--size", "32"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == path and "wrote 14 image(s)" in printed[-1]
    assert list_image_folder(out / "validation").class_names == ["cats", "dogs"]
    assert cli.main(["data", "mnist", "--train", "3"]) == 2
    assert "--train is an option of 'data mnist --export DIR'" in capsys.readouterr().err
