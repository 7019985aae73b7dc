"""Image folders as Keras reads them: one subfolder per class, images loaded with Pillow.

    data/train/cats/cat.0.jpg, data/train/cats/cat.1.jpg, ...
    data/train/dogs/dog.0.jpg, ...

The rules are Keras 2's (``flow_from_directory``):

* classes are the subfolders of the directory, sorted by name (so ``cats`` is 0 and
  ``dogs`` is 1), unless a list of class names is given, whose order then fixes the
  indices; every subfolder counts, hidden ones included;
* inside a class folder, files are found recursively (``os.walk``, folders sorted by
  path, files sorted by name) and kept when their name ends in one of
  :data:`IMAGE_EXTENSIONS` (any case); other files (``notes.txt``, ``.DS_Store``) are
  skipped, as Keras skips them;
* ``filenames`` are relative to the directory (``"cats/cat.0.jpg"``).

Unlike Keras, a kept file that Pillow cannot identify as an image is reported when the
folder is listed, with an :class:`ImageFolderError` naming it, not halfway through an
epoch; a file whose pixels turn out unreadable (a truncated JPEG) fails at load time,
again naming the file.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

import numpy as np

IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff")
COLOR_MODES = ("grayscale", "rgb", "rgba")
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")


class ImageFolderError(ValueError):
    """A folder of images that cannot be used: missing, empty, or holding a bad file."""


def _pillow_errors() -> tuple[type[BaseException], ...]:
    """What Pillow raises on a damaged or hostile image file.

    OSError (UnidentifiedImageError, truncated data), ValueError and SyntaxError are
    Pillow's usual ones.  tests/test_fuzz_readers.py also met DecompressionBombError (a
    header declaring more than twice ``Image.MAX_IMAGE_PIXELS`` pixels: refused before
    any allocation) and, from plugins decoding damaged headers, TypeError, IndexError,
    KeyError, ZeroDivisionError, EOFError and struct.error.
    """
    import struct

    from PIL import Image

    return (OSError, ValueError, SyntaxError, Image.DecompressionBombError, TypeError,
            IndexError, KeyError, ZeroDivisionError, EOFError, struct.error)


def _open_image(source):
    """``PIL.Image.open`` for every format Pillow reads except EPS.

    Pillow recognises a file by its content, not its name, and renders EPS by running
    Ghostscript on the file's PostScript: a program written by whoever made the file.
    An image folder never needs that, so an EPS file (whatever its extension) is
    refused as "not an image" instead.
    """
    from PIL import Image

    Image.init()
    return Image.open(source, formats=[name for name in Image.OPEN if name != "EPS"])


@dataclass
class ImageFolder:
    """What listing a class folder tree finds.

    Attributes:
        directory: the folder that holds the class subfolders.
        class_names: class names in index order.
        class_indices: ``{class name: index}``, as Keras's ``class_indices``.
        filenames: image paths relative to ``directory``, class by class.
        classes: (samples,) int32 class index of each file, as Keras's ``classes``.
    """

    directory: str
    class_names: list[str]
    class_indices: dict[str, int]
    filenames: list[str] = field(default_factory=list)
    classes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))

    @property
    def filepaths(self) -> list[str]:
        """Full paths, ``os.path.join(directory, filename)``."""
        return [os.path.join(self.directory, name) for name in self.filenames]

    @property
    def samples(self) -> int:
        return len(self.filenames)


def find_classes(directory: str | os.PathLike) -> list[str]:
    """The subfolder names of ``directory``, sorted (Keras's class discovery)."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ImageFolderError(f"image folder {directory!r} does not exist or is not a folder")
    return [name for name in sorted(os.listdir(directory))
            if os.path.isdir(os.path.join(directory, name))]


def _walk_images(class_directory: str, follow_links: bool) -> list[tuple[str, str]]:
    """``(root, file name)`` of every image-named file under ``class_directory``, in Keras order."""
    found = []
    for root, _, files in sorted(os.walk(class_directory, followlinks=follow_links),
                                 key=lambda entry: entry[0]):
        for name in sorted(files):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                found.append((root, name))
    return found


def list_image_folder(directory: str | os.PathLike, classes: list[str] | None = None,
                      follow_links: bool = False, split: tuple[float, float] | None = None,
                      check_files: bool = True) -> ImageFolder:
    """List the images of a class-per-subfolder tree, with Keras's order and labels.

    Args:
        directory: the folder holding one subfolder per class.
        classes: optional class names (subfolders) in index order; default: all
            subfolders, sorted.
        follow_links: follow symbolic links to folders while walking.
        split: optional ``(start, stop)`` fractions: keep files
            ``[int(start * n), int(stop * n))`` of each class (Keras's ``subset``).
        check_files: open each file's header with Pillow and raise
            :class:`ImageFolderError` naming the first one that is not an image.
    Returns:
        An :class:`ImageFolder`.
    """
    directory = os.fspath(directory)
    class_names = list(classes) if classes else find_classes(directory)
    for name in class_names:
        if not os.path.isdir(os.path.join(directory, name)):
            raise ImageFolderError(
                f"class folder {name!r} not found in {directory!r} "
                f"(found subfolders: {find_classes(directory)})")
    class_indices = {name: index for index, name in enumerate(class_names)}
    filenames: list[str] = []
    labels: list[int] = []
    for name in class_names:
        class_directory = os.path.join(directory, name)
        files = _walk_images(class_directory, follow_links)
        if split is not None:
            files = files[int(split[0] * len(files)):int(split[1] * len(files))]
        for root, file_name in files:
            relative = os.path.relpath(os.path.join(root, file_name), class_directory)
            filenames.append(os.path.join(name, relative))
            labels.append(class_indices[name])
    folder = ImageFolder(directory, class_names, class_indices, filenames,
                         np.asarray(labels, dtype=np.int32))
    if check_files:
        for path in folder.filepaths:
            check_image_file(path)
    return folder


def check_image_file(path: str | os.PathLike) -> None:
    """Raise :class:`ImageFolderError` naming ``path`` unless Pillow recognises it as an image.

    Reads only the header (cheap); pixel data is checked when the image is loaded.
    """
    try:
        with _open_image(path) as image:
            image.size  # noqa: B018 (the header has been parsed)
    except _pillow_errors() as error:
        raise ImageFolderError(
            f"{os.fspath(path)!r} is not a readable image ({type(error).__name__}: {error}); "
            f"remove it or rename it to an extension other than {IMAGE_EXTENSIONS}") from error


def load_img(path: str | os.PathLike, color_mode: str = "rgb",
             target_size: tuple[int, int] | None = None, interpolation: str = "nearest",
             keep_aspect_ratio: bool = False):
    """Keras's ``load_img``: a Pillow image in ``color_mode``, resized to ``target_size``.

    Args:
        path: the image file.
        color_mode: ``"rgb"``, ``"rgba"`` or ``"grayscale"`` (8-bit "L", or kept as is
            when already 16/32-bit grayscale, as Keras does).
        target_size: ``(height, width)`` or None to keep the size.
        interpolation: Pillow resampling filter, one of :data:`INTERPOLATIONS`.
        keep_aspect_ratio: crop the centre to the target aspect ratio before resizing.
    Returns:
        A ``PIL.Image.Image`` with its pixels loaded.
    Raises:
        ImageFolderError: the file is missing, not an image, or its pixels are unreadable;
            the message names it.
    """
    from PIL import Image

    if color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {COLOR_MODES}, received {color_mode!r}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, "
                         f"received {interpolation!r}")
    path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            image = _open_image(io.BytesIO(handle.read()))
        if color_mode == "grayscale":
            if image.mode not in ("L", "I;16", "I"):
                image = image.convert("L")
        elif color_mode == "rgba":
            if image.mode != "RGBA":
                image = image.convert("RGBA")
        elif image.mode != "RGB":
            image = image.convert("RGB")
        if target_size is not None:
            width_height = (int(target_size[1]), int(target_size[0]))
            if image.size != width_height:
                resample = getattr(Image.Resampling, interpolation.upper())
                if keep_aspect_ratio:
                    width, height = image.size
                    target_width, target_height = width_height
                    crop_height = min(height, (width * target_height) // target_width)
                    crop_width = min(width, (height * target_width) // target_height)
                    top = (height - crop_height) // 2
                    left = (width - crop_width) // 2
                    image = image.resize(width_height, resample,
                                         box=[left, top, left + crop_width, top + crop_height])
                else:
                    image = image.resize(width_height, resample)
        image.load()
    except FileNotFoundError as error:
        raise ImageFolderError(f"image file {path!r} does not exist") from error
    except _pillow_errors() as error:
        # PIL.UnidentifiedImageError is an OSError; truncated data raises OSError too.
        raise ImageFolderError(
            f"cannot read image {path!r} ({type(error).__name__}: {error})") from error
    return image


def img_to_array(image, dtype: str | np.dtype = "float32") -> np.ndarray:
    """A Pillow image as an (H, W, C) array (C = 1 for grayscale), as Keras's ``img_to_array``."""
    array = np.asarray(image, dtype=dtype)
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.ndim != 3:
        raise ValueError(f"unsupported image array shape {array.shape}")
    return array


def load_image(path: str | os.PathLike, color_mode: str = "rgb",
               target_size: tuple[int, int] | None = None, interpolation: str = "nearest",
               keep_aspect_ratio: bool = False, dtype: str | np.dtype = "float32") -> np.ndarray:
    """One image file as an (H, W, C) array (values 0-255 in ``dtype``)."""
    image = load_img(path, color_mode, target_size, interpolation, keep_aspect_ratio)
    try:
        return img_to_array(image, dtype)
    finally:
        image.close()


def load_data(directory: str | os.PathLike, target_size: tuple[int, int] = (150, 150),
              color_mode: str = "rgb", classes: list[str] | None = None,
              interpolation: str = "nearest", dtype: str | np.dtype = "float32"):
    """Every image of a class folder tree in memory, in Keras's listing order.

    Returns:
        ``(x, labels, class_names)``: x (N, H, W, C) in ``dtype`` with values 0-255,
        labels (N,) int32 class indices, class_names in index order.
    """
    folder = list_image_folder(directory, classes)
    channels = {"rgb": 3, "rgba": 4, "grayscale": 1}[color_mode]
    x = np.zeros((folder.samples, *target_size, channels), dtype=dtype)
    for index, path in enumerate(folder.filepaths):
        x[index] = load_image(path, color_mode, target_size, interpolation, dtype=dtype)
    return x, folder.classes.copy(), list(folder.class_names)


__all__ = ["IMAGE_EXTENSIONS", "ImageFolder", "ImageFolderError", "find_classes",
           "list_image_folder", "check_image_file", "load_img", "img_to_array", "load_image",
           "load_data"]
