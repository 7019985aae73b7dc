"""The one place where the kernel backend is chosen.

``minicnn.set_backend("numba" | "numpy" | "reference")`` or the environment variable
``MINICNN_BACKEND`` picks the module in :mod:`minicnn.kernels` that layers call,
through the contract's :class:`~minicnn.kernels.KernelBackend`.  The default is the
fastest one that imports: numba, then numpy.
"""

from __future__ import annotations

import importlib
import os
from contextlib import contextmanager
from typing import Iterator

from minicnn.kernels import BACKEND_MODULES, KernelBackend, allocator

_DEFAULT_ORDER = ("numba", "numpy")
_active: KernelBackend | None = None


def available_backends() -> list[str]:
    """Names of the backends whose module imports on this machine."""
    names = []
    for name in BACKEND_MODULES:
        try:
            importlib.import_module(BACKEND_MODULES[name])
        except ImportError:
            continue
        names.append(name)
    return names


def set_backend(name: str) -> None:
    """Select the kernel backend used by every layer from now on.

    Raises:
        ValueError: ``name`` is not one of "numba", "numpy", "reference", or its module
            cannot be imported here (numba missing).
    """
    global _active
    if name not in BACKEND_MODULES:
        raise ValueError(
            f"unknown backend {name!r}; expected one of {sorted(BACKEND_MODULES)}")
    try:
        module = importlib.import_module(BACKEND_MODULES[name])
    except ImportError as error:
        raise ValueError(f"backend {name!r} is not available here: {error}") from error
    # Every backend's arrays are allocated and freed once per step: keep the freed
    # blocks in the heap instead of returning them to the kernel (see allocator).
    allocator.keep_freed_memory()
    _active = KernelBackend(name, module)


def get_backend_name() -> str:
    """Name of the active backend (resolving the default on first use)."""
    return kernels().name


def kernels() -> KernelBackend:
    """The active backend; layers call ``kernels().conv2d_forward(...)``."""
    if _active is None:
        requested = os.environ.get("MINICNN_BACKEND")
        if requested:
            set_backend(requested)
        else:
            for name in _DEFAULT_ORDER:
                try:
                    set_backend(name)
                    break
                except ValueError:
                    continue
    assert _active is not None
    return _active


@contextmanager
def using_backend(name: str | None) -> Iterator[str]:
    """Use the backend ``name`` inside a ``with`` block, then restore the previous one.

    ``with using_backend("numpy") as active: ...``; ``None`` keeps the current backend
    (and still restores it afterwards).  ``set_backend`` is process-wide: restoring it
    keeps a library call, a command or a test from changing what runs next.
    """
    previous = get_backend_name()
    if name is not None:
        set_backend(name)
    try:
        yield get_backend_name()
    finally:
        set_backend(previous)
