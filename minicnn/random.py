"""The engine's one source of randomness (initializers, dropout, shuffling).

``set_random_seed(seed)`` makes a whole run repeatable, as ``keras.utils.set_random_seed``
does.  The generator state can be saved and restored (checkpoints resume bit for bit).
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Reset the global generator to a fixed seed."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, received {seed!r}")
    _generator = np.random.default_rng(int(seed))


def generator() -> np.random.Generator:
    """The global generator every random draw in the engine goes through."""
    return _generator


def get_state() -> dict:
    """The generator's state, a JSON-friendly dict."""
    return _generator.bit_generator.state


def set_state(state: dict) -> None:
    """Restore a state returned by :func:`get_state`."""
    _generator.bit_generator.state = state
