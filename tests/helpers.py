"""The one comparison helper every test uses (and its weight-list forms), and
central-difference gradients.

Tolerances are explicit at every call site: float64 gradient checks use tight ones,
float32 comparisons with Keras use ones sized to float32 round-off.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

# Default tolerances, named so tests say which regime they are in.
FLOAT64_GRADIENT = dict(rtol=1e-5, atol=1e-7)
FLOAT64_EXACT = dict(rtol=1e-10, atol=1e-12)
FLOAT32_ROUNDOFF = dict(rtol=1e-4, atol=1e-5)


def assert_close(actual, expected, *, rtol: float, atol: float, what: str = "value") -> None:
    """Assert ``|actual - expected| <= atol + rtol * |expected|`` elementwise, with shapes equal.

    On failure the message names ``what``, the worst element, and both values there.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape} differs from expected {expected.shape}")
    if actual.size == 0:
        return
    difference = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    allowed = atol + rtol * np.abs(expected.astype(np.float64))
    if not np.all(difference <= allowed) or not np.all(np.isfinite(actual) == np.isfinite(expected)):
        worst = np.unravel_index(np.argmax(difference - allowed), difference.shape)
        raise AssertionError(
            f"{what}: {int(np.sum(difference > allowed))} of {difference.size} elements differ; "
            f"worst at {worst}: actual {actual[worst]!r}, expected {expected[worst]!r} "
            f"(max abs diff {difference.max():.3e}, rtol={rtol}, atol={atol})")


def _weight_lists(actual, expected, what: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    actual = [np.asarray(weight) for weight in actual]
    expected = [np.asarray(weight) for weight in expected]
    assert len(actual) == len(expected), (
        f"{what}: {len(actual)} weights, expected {len(expected)} "
        f"(shapes {[w.shape for w in actual]} vs {[w.shape for w in expected]})")
    assert len(expected) > 0, f"{what}: nothing to compare (empty weight lists)"
    return actual, expected


def assert_weights_close(actual, expected, *, rtol: float, atol: float,
                         what: str = "weights", names=None) -> None:
    """Two weight lists (``get_weights()`` order) agree: same length, and each pair of
    arrays has the same shape and is within ``atol + rtol * |expected|`` elementwise.

    ``names`` (optional) labels each weight in a failure message.
    """
    actual, expected = _weight_lists(actual, expected, what)
    for index, (ours, theirs) in enumerate(zip(actual, expected)):
        label = names[index] if names is not None else f"weight {index}"
        assert_close(ours, theirs, rtol=rtol, atol=atol, what=f"{what}: {label}")


def assert_weights_equal(actual, expected, *, what: str = "weights", names=None) -> None:
    """Two weight lists are identical bit for bit: same length, dtypes, shapes, values."""
    actual, expected = _weight_lists(actual, expected, what)
    for index, (ours, theirs) in enumerate(zip(actual, expected)):
        label = names[index] if names is not None else f"weight {index}"
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, (
            f"{what}: {label} is {ours.dtype} {ours.shape}, expected {theirs.dtype} {theirs.shape}")
        if not np.array_equal(ours, theirs, equal_nan=False) or ours.tobytes() != theirs.tobytes():
            differ = int(np.sum(ours != theirs))
            raise AssertionError(f"{what}: {label} differs in {differ} of {ours.size} elements "
                                 f"(max abs diff {np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64))):.3e})")


def numerical_gradient(function: Callable[[], float], array: np.ndarray,
                       epsilon: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``function()`` with respect to ``array``.

    ``array`` is perturbed in place (and restored), so ``function`` must read it:
    d f / d a_i ~= (f(a + eps e_i) - f(a - eps e_i)) / (2 eps).  Use float64.
    """
    assert array.dtype == np.float64, "central differences need float64"
    gradient = np.zeros_like(array)
    flat_array = array.reshape(-1)
    flat_gradient = gradient.reshape(-1)
    for i in range(flat_array.size):
        saved = flat_array[i]
        flat_array[i] = saved + epsilon
        plus = function()
        flat_array[i] = saved - epsilon
        minus = function()
        flat_array[i] = saved
        flat_gradient[i] = (plus - minus) / (2 * epsilon)
    return gradient


@contextmanager
def backend_set_to(name: str) -> Iterator[None]:
    """Run the block with kernel backend ``name``, then restore the one before."""
    import minicnn

    previous = minicnn.get_backend_name()
    minicnn.set_backend(name)
    try:
        yield
    finally:
        minicnn.set_backend(previous)


SYNTHETIC_MNIST_TRAIN, SYNTHETIC_MNIST_TEST = 256, 128


def make_synthetic_mnist(train: int = SYNTHETIC_MNIST_TRAIN, test: int = SYNTHETIC_MNIST_TEST,
                         seed: int = 0) -> dict[str, np.ndarray]:
    """Keras-layout uint8 MNIST arrays (``x_train`` (train, 28, 28), ``y_train``, ``x_test``,
    ``y_test``): noise, with a bright 8x4 square whose place is the class, so there is a
    signal to learn."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in (("train", train), ("test", test)):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        images = rng.integers(0, 60, (count, 28, 28), dtype=np.uint8)
        for index, label in enumerate(labels):
            row, col = divmod(int(label), 5)
            images[index, 4 + 10 * row:12 + 10 * row, 2 + 5 * col:6 + 5 * col] = 255
        arrays[f"x_{split}"], arrays[f"y_{split}"] = images, labels
    return arrays


def write_synthetic_mnist(path, train: int = SYNTHETIC_MNIST_TRAIN,
                          test: int = SYNTHETIC_MNIST_TEST) -> dict[str, np.ndarray]:
    """:func:`make_synthetic_mnist` saved as a compressed ``.npz`` at ``path``; returns the arrays."""
    from pathlib import Path

    arrays = make_synthetic_mnist(train, test)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return arrays
