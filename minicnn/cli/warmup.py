"""Compile the numba kernels before training, and say so when that takes a while.

Numba compiles each kernel the first time it is called and keeps the machine code in a
cache on disk (``__pycache__/*.nbi`` and ``*.nbc`` beside the kernels' sources, or
``$NUMBA_CACHE_DIR``). On a fresh machine the first training step therefore waits for
the compiler, which used to look like a first epoch that hangs. The command line runs
one throwaway training step first, announced when the cache is empty and timed; the
model that is then trained is built afterwards, with the random generator and the
automatic layer names as they were, so its run is exactly what it would have been.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

# A warm cache loads in a second or two; longer means numba compiled something.
COMPILE_NOTICE_SECONDS = 5.0


def numba_cache_is_empty() -> bool:
    """True when no compiled minicnn kernel is cached (in the tree or ``$NUMBA_CACHE_DIR``)."""
    import minicnn.kernels.numba as package

    roots = [Path(package.__file__).parent]
    if os.environ.get("NUMBA_CACHE_DIR"):
        roots.append(Path(os.environ["NUMBA_CACHE_DIR"]))
    return not any(next(root.rglob("*.nbi"), None) for root in roots if root.is_dir())


def warm_up_mnist(model_name: str, batch_size: int, optimizer: str, verbose: int = 1) -> float:
    """One training step and one prediction of a throwaway ``model_name`` MNIST classifier
    on the active backend (zeros, batches of ``batch_size``); returns the seconds taken.

    On the numba backend, prints a line before when the kernel cache is empty and a line
    after when it took longer than :data:`COMPILE_NOTICE_SECONDS` (unless ``verbose`` is 0).
    Leaves the engine's random generator and layer names as it found them.
    """
    from minicnn import naming
    from minicnn import random as minicnn_random
    from minicnn.applications.registry import build_mnist_classifier
    from minicnn.backend import get_backend_name

    if get_backend_name() != "numba":
        return 0.0
    cold = numba_cache_is_empty()
    if cold and verbose:
        print("minicnn: compiling the numba kernels for this machine (the first run only; "
              "later runs load them from the cache) ...", file=sys.stderr, flush=True)
    state = minicnn_random.get_state()
    started = time.perf_counter()
    # The model trained next gets the same automatic names (conv2d, dense, ...) and
    # draws the same weights as without this step.
    with naming.names_unchanged():
        model = build_mnist_classifier(model_name)
        model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
        x = np.zeros((batch_size,) + tuple(model.input_shape[1:]), dtype="float32")
        y = np.zeros((batch_size, int(model.output_shape[-1])), dtype="float32")
        y[:, 0] = 1
        model.train_on_batch(x, y)
        model.predict(x, batch_size=batch_size, verbose=0)
    seconds = time.perf_counter() - started
    minicnn_random.set_state(state)
    if verbose and (cold or seconds > COMPILE_NOTICE_SECONDS):
        print(f"minicnn: numba kernels compiled in {seconds:.0f} s (cached for the next runs)",
              file=sys.stderr, flush=True)
    return seconds
