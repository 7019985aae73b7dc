"""Real pictures offline: MNIST digits written as an image folder in the Kaggle layout.

The book's sections 5.2-5.3 train on a small folder of cat and dog photos split into
``train/``, ``validation/`` and ``test/``, one subfolder per class (what
``python -m compare.cats_vs_dogs split`` makes from the Kaggle archive). Those photos
cannot be had on a machine without the Internet, but MNIST can (see
:mod:`minicnn.datasets.mnist`), so this module writes two (or more) digit classes as
PNG files in that very layout::

    DIR/train/digit3/mnist-train-00007.png ...   DIR/train/digit5/mnist-train-00000.png ...
    DIR/validation/digit3/...                    DIR/test/digit3/mnist-test-00018.png ...
    DIR/export.json                              (classes, counts, every MNIST index used)

* **Which images.** For each class, its images in MNIST's own order: the first ``train``
  of MNIST's training set go to ``train/``, the next ``validation`` to ``validation/``,
  and the first ``test`` of MNIST's *test* set to ``test/``. No image is in two subsets,
  and the same arguments always pick the same images.
* **Which pixels.** By default the 28x28 grayscale digit as it is (8-bit PNG, ``L``).
  With ``size`` the digit is resized with Pillow's bilinear filter to ``size`` x ``size``
  and stored as RGB (the three channels equal), so the chapter's 150x150 convnet and
  VGG16 (which need RGB input) read it as they would a photo: ``size=150``.
  ``flow_from_directory(target_size=...)`` also resizes and converts on the fly, but with
  nearest-neighbour sampling by default (blocky digits).
* **Class names.** ``digit3``, ``digit5``, ... or the names given (``cats dogs`` makes
  the Kaggle folder names). Keras numbers classes by their *sorted folder names*, so the
  label of a class is its name's rank, which is not always the digits' order.
* **Safely.** Every file is written atomically (:func:`minicnn.files.atomic_write`);
  re-running with the same arguments rewrites nothing that is already right; a folder
  holding images this export would not put there (an earlier export with other
  arguments) is refused, not mixed with.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from minicnn.files import atomic_write, write_json

__all__ = ["SUBSETS", "MANIFEST_FILE", "ExportError", "default_class_names", "plan_export",
           "digit_png", "export_mnist"]

SUBSETS = ("train", "validation", "test")
MANIFEST_FILE = "export.json"


class ExportError(ValueError):
    """The export cannot be made as asked (bad counts or names, too few digits, a
    destination holding other images)."""


def default_class_names(classes: Sequence[int]) -> list[str]:
    """``[3, 5] -> ["digit3", "digit5"]``."""
    return [f"digit{int(digit)}" for digit in classes]


def _check_arguments(classes: Sequence[int], names: Sequence[str],
                     counts: dict[str, int]) -> None:
    if len(classes) < 2:
        raise ExportError(f"--classes needs at least two digits, received {list(classes)}")
    for digit in classes:
        if isinstance(digit, bool) or not isinstance(digit, (int, np.integer)) \
                or not 0 <= digit <= 9:
            raise ExportError(f"--classes takes digits 0-9, received {digit!r}")
    if len(set(classes)) != len(classes):
        raise ExportError(f"--classes must be distinct digits, received {list(classes)}")
    if len(names) != len(classes):
        raise ExportError(f"--names needs one name per class ({len(classes)}), "
                          f"received {list(names)}")
    for name in names:
        if (not name or name in (".", "..") or "/" in name or os.sep in name
                or name.startswith(".")):
            raise ExportError(f"class name {name!r} is not a plain folder name")
    if len(set(names)) != len(names):
        raise ExportError(f"--names must be distinct, received {list(names)}")
    for subset, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ExportError(f"--{subset} must be a positive number of images per class, "
                              f"received {count!r}")


def plan_export(y_train: np.ndarray, y_test: np.ndarray, classes: Sequence[int],
                counts: dict[str, int]) -> dict[tuple[str, int], tuple[str, np.ndarray]]:
    """Which MNIST images go where.

    Args:
        y_train: (60000,) labels of MNIST's training set (any length).
        y_test: (10000,) labels of MNIST's test set.
        classes: the digits, e.g. ``[3, 5]``.
        counts: images per class, ``{"train": n, "validation": n, "test": n}``.
    Returns:
        ``{(subset, digit): (source, indices)}`` with ``source`` ``"train"`` or ``"test"``
        (the MNIST array) and ``indices`` an int array into it, in MNIST's order.
    Raises:
        ExportError: a digit has too few images for the counts.
    """
    plan: dict[tuple[str, int], tuple[str, np.ndarray]] = {}
    for digit in classes:
        in_train = np.flatnonzero(np.asarray(y_train) == digit)
        in_test = np.flatnonzero(np.asarray(y_test) == digit)
        needed = counts["train"] + counts["validation"]
        if len(in_train) < needed or len(in_test) < counts["test"]:
            raise ExportError(
                f"MNIST holds {len(in_train)} training and {len(in_test)} test images of "
                f"digit {digit}; the export needs {needed} training ({counts['train']} + "
                f"{counts['validation']} for train and validation) and {counts['test']} test "
                f"images; lower --train/--validation/--test")
        plan[("train", digit)] = ("train", in_train[:counts["train"]])
        plan[("validation", digit)] = ("train", in_train[counts["train"]:needed])
        plan[("test", digit)] = ("test", in_test[:counts["test"]])
    return plan


def digit_png(image: np.ndarray, size: int | None = None) -> bytes:
    """One digit as PNG bytes.

    Args:
        image: (28, 28) uint8 pixels.
        size: None for the 28x28 grayscale image as it is; an int for a ``size`` x
            ``size`` RGB image (bilinear resize, three equal channels).
    Returns:
        the encoded PNG (deterministic: the same pixels give the same bytes).
    """
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode="L")
    if size is not None:
        picture = picture.resize((size, size), Image.BILINEAR).convert("RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _file_name(source: str, index: int) -> str:
    return f"mnist-{source}-{int(index):05d}.png"


def _refuse_strangers(destination: Path, wanted: dict[Path, Any]) -> None:
    """A class folder may hold only the files this export writes there."""
    for folder in {path.parent for path in wanted}:
        if not folder.is_dir():
            continue
        strangers = sorted(name for name in os.listdir(folder)
                           if not name.startswith(".") and folder / name not in wanted)
        if strangers:
            raise ExportError(
                f"{str(folder)!r} already holds {len(strangers)} file(s) this export would not "
                f"put there (e.g. {strangers[0]!r}): an earlier export with other arguments? "
                f"Use an empty folder or remove that one")
    for subset in SUBSETS:
        folder = destination / subset
        if folder.is_dir():
            wanted_folders = {path.parent.name for path in wanted if path.parent.parent == folder}
            others = sorted(name for name in os.listdir(folder)
                            if (folder / name).is_dir() and name not in wanted_folders)
            if others:
                raise ExportError(
                    f"{str(folder)!r} holds the class folder {others[0]!r}, which this export "
                    f"does not write (Keras would read it as one more class); use an empty "
                    f"folder or remove it")


def export_mnist(destination: str | os.PathLike, classes: Sequence[int] = (3, 5),
                 names: Sequence[str] | None = None, train: int = 1000,
                 validation: int = 500, test: int = 500, size: int | None = None,
                 data: tuple | None = None, verbose: bool = True) -> dict[str, Any]:
    """Write MNIST digits as an image folder in the Kaggle layout (see the module docstring).

    Args:
        destination: the folder to fill (created if needed).
        classes: the digits to export, one class folder each.
        names: the class folder names (default ``digit3``, ``digit5``, ...).
        train, validation, test: images per class in each subset.
        size: None (28x28 grayscale PNG) or the side of the RGB images (e.g. 150).
        data: optional ``((x_train, y_train), (x_test, y_test))`` in the layout of
            ``minicnn.datasets.mnist.load_data()`` (default: that call).
        verbose: print a line per subset.
    Returns:
        the manifest also written to ``DIR/export.json``: classes, names, label of each
        name (Keras's sorted order), counts, size, files written and kept, and the
        MNIST indices of every subset.
    Raises:
        ExportError: bad arguments, too few digits, or a destination holding other images.
    """
    classes = [int(digit) if isinstance(digit, (int, np.integer)) and not isinstance(digit, bool)
               else digit for digit in classes]
    names = default_class_names(classes) if names is None else list(names)
    counts = {"train": train, "validation": validation, "test": test}
    _check_arguments(classes, names, counts)
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer))
                             or size < 1):
        raise ExportError(f"--size must be a positive number of pixels, received {size!r}")
    if data is None:
        from minicnn.datasets import mnist

        data = mnist.load_data()
    (x_train, y_train), (x_test, y_test) = data
    sources = {"train": np.asarray(x_train), "test": np.asarray(x_test)}
    plan = plan_export(y_train, y_test, classes, counts)
    destination = Path(destination)
    folder_of = dict(zip(classes, names))
    targets: dict[Path, tuple[str, int]] = {}
    for (subset, digit), (source, indices) in plan.items():
        for index in indices:
            path = destination / subset / folder_of[digit] / _file_name(source, index)
            targets[path] = (source, int(index))
    _refuse_strangers(destination, targets)
    written = kept = 0
    for path, (source, index) in targets.items():
        data_bytes = digit_png(sources[source][index], size)
        if path.is_file() and path.read_bytes() == data_bytes:
            kept += 1
            continue
        atomic_write(path, lambda handle, payload=data_bytes: handle.write(payload))
        written += 1
    labels = {name: rank for rank, name in enumerate(sorted(names))}
    manifest = {
        "source": "MNIST (minicnn.datasets.mnist.load_data)",
        "classes": {name: {"digit": digit, "label": labels[name]}
                    for digit, name in zip(classes, names)},
        "per_class": counts, "size": size,
        "image": ("28x28 grayscale PNG" if size is None
                  else f"{size}x{size} RGB PNG (bilinear resize of the 28x28 digit)"),
        "written": written, "already_there": kept,
        "mnist_indices": {f"{subset}/{folder_of[digit]}": {"mnist_set": source,
                                                           "indices": indices.tolist()}
                          for (subset, digit), (source, indices) in plan.items()},
    }
    write_json(destination / MANIFEST_FILE, manifest)
    if verbose:
        for subset in SUBSETS:
            parts = " + ".join(f"{counts[subset]} {name} (digit {digit})"
                               for digit, name in zip(classes, names))
            print(f"{subset}: {parts} in {destination / subset}")
        print(f"wrote {written} image(s), {kept} already there; wrote "
              f"{destination / MANIFEST_FILE}")
    return manifest
