"""Where minicnn keeps downloaded data, and where Keras keeps its own.

The datasets folder, first rule that applies:

1. ``$MINICNN_DATA_DIR`` (the folder itself);
2. ``$MINICNN_HOME/datasets``;
3. ``datasets`` in the platform's user cache folder for minicnn
   (``platformdirs.user_cache_dir("minicnn")``): ``$XDG_CACHE_HOME/minicnn/datasets``,
   default ``~/.cache/minicnn/datasets``, on Linux; ``~/Library/Caches/minicnn/datasets``
   on macOS; ``%LOCALAPPDATA%\\minicnn\\Cache\\datasets`` on Windows.

Keras keeps its downloads in ``$KERAS_HOME/datasets`` (default ``~/.keras/datasets``);
:mod:`minicnn.datasets.mnist` reuses Keras's ``mnist.npz`` there when its SHA-256 is
right.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_DIR_ENV", "HOME_ENV", "KERAS_HOME_ENV", "default_cache_dir", "keras_cache_file"]

DATA_DIR_ENV = "MINICNN_DATA_DIR"
HOME_ENV = "MINICNN_HOME"
KERAS_HOME_ENV = "KERAS_HOME"


def default_cache_dir() -> Path:
    """The datasets cache folder, by the first rule that applies.

    ``$MINICNN_DATA_DIR``; else ``$MINICNN_HOME/datasets``; else ``datasets`` in the
    platform's user cache folder for minicnn (``platformdirs.user_cache_dir``, which
    honours ``XDG_CACHE_HOME`` on Linux: ``~/.cache/minicnn/datasets`` by default).
    """
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser() / "datasets"
    return _platform_cache_dir() / "datasets"


def _platform_cache_dir() -> Path:
    """minicnn's folder in the platform's user cache (what ``platformdirs`` says)."""
    try:
        import platformdirs
    except ImportError:  # a checkout run without installing the dependencies
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base).expanduser() / "minicnn"
    return Path(platformdirs.user_cache_dir("minicnn", appauthor=False))


def keras_cache_file(filename: str = "mnist.npz") -> Path:
    """Where Keras keeps a downloaded dataset file: ``$KERAS_HOME/datasets/FILENAME``,
    default ``~/.keras/datasets/FILENAME`` (``mnist.npz``: ``keras.datasets.mnist``'s)."""
    keras_home = os.environ.get(KERAS_HOME_ENV)
    base = Path(keras_home).expanduser() if keras_home else Path.home() / ".keras"
    return base / "datasets" / filename
