"""``split``: the Kaggle "Dogs vs. Cats" folder into the book's small data set
(section 5.2.2).

The Kaggle archive holds one folder of ``cat.0.jpg`` ... ``cat.12499.jpg`` and
``dog.0.jpg`` ... ``dog.12499.jpg``. The book keeps, per class, images 0-999 for
training, 1000-1499 for validation and 1500-1999 for testing; here the images of each
class are ordered by their number and cut into consecutive slices of the sizes asked
for (the same files as the book's when the numbers are contiguous)::

    DST/train/cats/cat.0.jpg ...        DST/train/dogs/dog.0.jpg ...
    DST/validation/cats/cat.1000.jpg    DST/test/cats/cat.1500.jpg ...

Files are copied, never moved. Every chosen file is decoded before anything is
written, so a bad file stops the split with its name and leaves DST untouched. Each
copy goes to a temporary name first and is renamed into place, so an interrupted run
leaves no half image. Re-running with the same arguments checks and keeps what is
there; a destination holding other images (an earlier split with other sizes) is an
error rather than a silent mix. Needs only Pillow, not TensorFlow.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
from pathlib import Path

from minicnn.files import write_json

SUBSETS = ("train", "validation", "test")
# Kaggle file prefix -> class folder (Keras sorts class folders: cats = 0, dogs = 1).
CLASSES = {"cat": "cats", "dog": "dogs"}
KAGGLE_NAME = re.compile(r"^(cat|dog)\.(\d+)\.(jpe?g|png)$", re.IGNORECASE)
SPLIT_FILE = "split.json"


class SplitError(ValueError):
    """The source cannot give the split asked for (too few images, a bad file, ...)."""


def list_kaggle_images(source: Path) -> dict[str, list[Path]]:
    """``{"cat": [...], "dog": [...]}``: the source's Kaggle-named files, by number."""
    if not source.is_dir():
        raise SplitError(f"source folder {str(source)!r} does not exist or is not a folder")
    found: dict[str, list[tuple[int, Path]]] = {prefix: [] for prefix in CLASSES}
    for entry in os.scandir(source):
        match = KAGGLE_NAME.match(entry.name)
        if match and entry.is_file():
            found[match.group(1).lower()].append((int(match.group(2)), Path(entry.path)))
    return {prefix: [path for _, path in sorted(files)] for prefix, files in found.items()}


def check_readable(path: Path) -> None:
    """Decode the whole image (a header check misses truncated JPEGs)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, ValueError, SyntaxError) as error:  # UnidentifiedImageError is an OSError
        raise SplitError(f"{str(path)!r} is not a readable image ({type(error).__name__}: "
                         f"{error}); remove or replace it, then run split again") from error


def plan_split(source: Path, counts: dict[str, int]) -> dict[tuple[str, str], list[Path]]:
    """``{(subset, class folder): [source files]}`` for ``counts`` images per class."""
    for subset, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise SplitError(f"--{subset} must be a positive number of images per class, "
                             f"received {count!r}")
    images = list_kaggle_images(source)
    needed = sum(counts.values())
    for prefix, files in images.items():
        if len(files) < needed:
            raise SplitError(
                f"{str(source)!r} holds {len(files)} {prefix} images ({prefix}.N.jpg), but the "
                f"split needs {needed} per class ({' + '.join(str(counts[s]) for s in SUBSETS)}"
                f" for {', '.join(SUBSETS)}); lower --train/--validation/--test or point at "
                f"the full Kaggle 'train' folder")
    plan = {}
    for prefix, files in images.items():
        start = 0
        for subset in SUBSETS:
            plan[(subset, CLASSES[prefix])] = files[start:start + counts[subset]]
            start += counts[subset]
    return plan


def _copy_atomically(source: Path, target: Path) -> None:
    temporary = target.with_name(f".{target.name}.partial")
    shutil.copy2(source, temporary)
    os.replace(temporary, target)


def split(source: str | os.PathLike, destination: str | os.PathLike, train: int = 1000,
          validation: int = 500, test: int = 500, verbose: bool = True) -> dict:
    """Copy ``train``/``validation``/``test`` images per class from ``source`` to
    ``destination``; returns (and writes to ``DST/split.json``) the counts and names.

    Raises:
        SplitError: too few images, an unreadable chosen file, a destination inside the
            source's files or holding images this split would not put there.
    """
    source, destination = Path(source).resolve(), Path(destination).resolve()
    if source == destination:
        raise SplitError("the destination must differ from the source (files are copied)")
    counts = {"train": train, "validation": validation, "test": test}
    plan = plan_split(source, counts)
    for files in plan.values():
        for path in files:
            check_readable(path)
    # Refuse to mix with another split: every image already there must be one we would copy.
    for (subset, folder), files in plan.items():
        target_folder = destination / subset / folder
        if target_folder.is_dir():
            wanted = {path.name for path in files}
            strangers = sorted(name for name in os.listdir(target_folder)
                               if not name.startswith(".") and name not in wanted)
            if strangers:
                raise SplitError(
                    f"{str(target_folder)!r} already holds {len(strangers)} file(s) this split "
                    f"would not put there (e.g. {strangers[0]!r}): an earlier split with other "
                    f"sizes? Use an empty destination or remove that folder")
    copied = kept = 0
    for (subset, folder), files in plan.items():
        target_folder = destination / subset / folder
        target_folder.mkdir(parents=True, exist_ok=True)
        for path in files:
            target = target_folder / path.name
            if target.is_file() and filecmp.cmp(path, target, shallow=False):
                kept += 1
                continue
            _copy_atomically(path, target)
            copied += 1
    report = {"source": str(source), "destination": str(destination), "per_class": counts,
              "copied": copied, "already_there": kept,
              "files": {f"{subset}/{folder}": [path.name for path in files]
                        for (subset, folder), files in plan.items()}}
    write_json(destination / SPLIT_FILE, report)
    if verbose:
        for subset in SUBSETS:
            print(f"{subset}: {counts[subset]} cats + {counts[subset]} dogs in "
                  f"{destination / subset}")
        print(f"copied {copied} file(s), {kept} already there; wrote {destination / SPLIT_FILE}")
    return report
