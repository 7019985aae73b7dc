"""Central differences in float64, and the check that fails loudly when a gradient is wrong.

The walk-throughs (``explain conv --backward``, ``explain step``) compute gradients by hand
and take them from minicnn's kernels; both must agree with the slope measured on the
function itself::

    dL/da_i ~= (L(a + eps e_i) - L(a - eps e_i)) / (2 eps)

For a function linear in ``a`` (a convolution's ``L = sum(y * dy)``) this is exact up to
float64 round-off; for a smooth one the error is of order ``eps^2``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


class GradientMismatchError(RuntimeError):
    """A gradient (from a kernel or from the walk-through itself) disagrees with central
    differences by more than the tolerance: something computing it is broken."""


def central_differences(function: Callable[[np.ndarray], float], point: np.ndarray,
                        epsilon: float = 1e-3) -> np.ndarray:
    """d function / d point by central differences, in float64.

    Args:
        function: scalar function of an array shaped like ``point``; it receives a
            perturbed float64 copy, never ``point`` itself.
        point: where to measure the slope (any shape, any real dtype).
        epsilon: the step; the walk-throughs' functions are linear or nearly so, so a
            large step loses nothing and keeps round-off small.

    Returns:
        float64 array shaped like ``point``.
    """
    base = np.asarray(point, dtype=np.float64)
    gradient = np.zeros_like(base)
    for index in np.ndindex(base.shape):
        plus = base.copy()
        plus[index] += epsilon
        minus = base.copy()
        minus[index] -= epsilon
        gradient[index] = (function(plus) - function(minus)) / (2 * epsilon)
    return gradient


def largest_difference(actual: np.ndarray, expected: np.ndarray) -> float:
    """``max |actual - expected|`` in float64 (0.0 for empty arrays)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise GradientMismatchError(
            f"shape {actual.shape} differs from the central differences' {expected.shape}")
    return float(np.max(np.abs(actual - expected))) if actual.size else 0.0


def require_close(what: str, actual: np.ndarray, numerical: np.ndarray,
                  tolerance: float) -> float:
    """Return the largest difference of ``actual`` from ``numerical``; raise if too large.

    Raises:
        GradientMismatchError: ``max |actual - numerical| > tolerance * max(1, max |numerical|)``,
            with a message naming ``what`` and both numbers.
    """
    difference = largest_difference(actual, numerical)
    scale = max(1.0, float(np.max(np.abs(numerical))) if np.size(numerical) else 1.0)
    if not difference <= tolerance * scale:  # also catches NaN
        raise GradientMismatchError(
            f"{what} disagrees with central differences in float64: largest difference "
            f"{difference:.3g} > tolerance {tolerance * scale:.3g}. The kernel (or the "
            f"walk-through) that computed it is broken.")
    return difference
