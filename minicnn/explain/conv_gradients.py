"""The gradients of one tiny convolution, computed by hand, by the kernels and numerically.

The same numbers as ``minicnn explain conv`` (:func:`minicnn.explain.conv.tiny_problem`),
plus a small integer ``dy = dL/dy``.  A convolution's every output is a sum of products::

    y[i, j] = b + sum_{a, b', c} x_pad[i*S + a, j*S + b', c] * kernel[a, b', c]

and the chain rule hands ``dy[i, j]`` back along each product to its *other* factor:

* the kernel:  ``dkernel[a, b', c] = sum_{i, j} x_pad[i*S + a, j*S + b', c] * dy[i, j]``,
  a correlation of the input with ``dy`` (dilated by the stride);
* the input:   ``dx_pad[i*S + a, j*S + b', c] += kernel[a, b', c] * dy[i, j]``: each ``dy``
  scatters a kernel-shaped stamp; read from the input cell's side it is the *full*
  convolution of the dilated ``dy`` with the *flipped* kernel; cropping ``dx_pad`` drops
  what landed on padding;
* the bias:    ``dbias = sum_{i, j} dy[i, j]``.

Every function returns arrays (one filter, F = 1, integers); ``explain conv --backward``
(:mod:`minicnn.explain.conv_backward`) prints them, and :func:`check_gradients` holds them,
minicnn's reference kernels and the active backend's against central differences.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

from minicnn.explain.conv import check_arguments, tiny_problem
from minicnn.explain.gradient_check import central_differences, require_close
from minicnn.kernels.geometry import Pads, axis_output_length, resolve_pads

# Central differences of a function linear in every argument are exact but for
# float64 round-off; anything near this size means a wrong gradient.
TOLERANCE = 1e-6


def tiny_upstream_gradient(out_size: int, seed: int) -> np.ndarray:
    """``dy`` (out_size, out_size): integers in {-2, -1, 1, 2}, none zero so every stamp shows.

    Drawn from its own stream (``default_rng([seed, 1])``), so ``x`` and the kernel stay
    exactly those ``explain conv`` shows for the same ``seed``.
    """
    rng = np.random.default_rng([seed, 1])
    return rng.choice(np.array([-2, -1, 1, 2]), size=(out_size, out_size))


def dilate(dy: np.ndarray, stride: int) -> np.ndarray:
    """``dy`` (OH, OW) with ``stride - 1`` zeros between neighbours:
    ((OH - 1) * S + 1, (OW - 1) * S + 1).  Stride 1 returns a copy."""
    rows, columns = dy.shape
    dilated = np.zeros(((rows - 1) * stride + 1, (columns - 1) * stride + 1), dtype=dy.dtype)
    dilated[::stride, ::stride] = dy
    return dilated


def cells_met_by(x_padded: np.ndarray, dy_shape: tuple[int, int], stride: int,
                 cell: tuple[int, int]) -> np.ndarray:
    """The input cells kernel cell ``(a, b')`` multiplied: ``x_pad[i*S + a, j*S + b', :]``
    for every output ``(i, j)``; shape (OH, OW, C)."""
    rows, columns = dy_shape
    a, b = cell
    return x_padded[a:a + (rows - 1) * stride + 1:stride, b:b + (columns - 1) * stride + 1:stride]


def kernel_gradient(x_padded: np.ndarray, dy: np.ndarray, stride: int,
                    kernel_size: int) -> np.ndarray:
    """``dkernel[a, b', c] = sum_{i, j} x_pad[i*S + a, j*S + b', c] * dy[i, j]``; (K, K, C).

    Args:
        x_padded: (H + top + bottom, W + left + right, C).
        dy: (OH, OW).
    """
    gradient = np.zeros((kernel_size, kernel_size, x_padded.shape[2]), dtype=np.int64)
    for a in range(kernel_size):
        for b in range(kernel_size):
            met = cells_met_by(x_padded, dy.shape, stride, (a, b))
            gradient[a, b] = np.tensordot(dy, met, axes=([0, 1], [0, 1]))
    return gradient


def input_gradient_by_stamps(kernel: np.ndarray, dy: np.ndarray, stride: int,
                             padded_hw: tuple[int, int]) -> np.ndarray:
    """Scatter ``dy[i, j] * kernel`` onto the patch output ``(i, j)`` read; (HP, WP, C).

    ``dx_pad[i*S : i*S + K, j*S : j*S + K, :] += dy[i, j] * kernel``; overlapping stamps add.
    """
    size = kernel.shape[0]
    gradient = np.zeros((*padded_hw, kernel.shape[2]), dtype=np.int64)
    for i, j in np.ndindex(dy.shape):
        gradient[i * stride:i * stride + size, j * stride:j * stride + size] += dy[i, j] * kernel
    return gradient


def framed_upstream_gradient(dy: np.ndarray, stride: int, kernel_size: int,
                             padded_hw: tuple[int, int]) -> np.ndarray:
    """The operand of the full convolution: dilated ``dy`` with ``K - 1`` zeros above and to
    the left, and below and to the right enough zeros for an (HP, WP) result:
    (HP + K - 1, WP + K - 1).

    Beyond the usual ``K - 1`` of a "full" convolution, the bottom/right frame holds
    ``HP - ((OH - 1) * S + K)`` more rows (likewise columns): padded cells past the last
    window, which no output read, so their gradient is 0.
    """
    dilated = dilate(dy, stride)
    framed = np.zeros((padded_hw[0] + kernel_size - 1, padded_hw[1] + kernel_size - 1),
                      dtype=dy.dtype)
    framed[kernel_size - 1:kernel_size - 1 + dilated.shape[0],
           kernel_size - 1:kernel_size - 1 + dilated.shape[1]] = dilated
    return framed


def input_gradient_by_full_convolution(kernel: np.ndarray, dy: np.ndarray, stride: int,
                                       padded_hw: tuple[int, int]) -> np.ndarray:
    """``dx_pad[p, q, c] = sum_{t, u} framed[p + t, q + u] * flipped[t, u, c]``; (HP, WP, C).

    ``flipped = kernel[::-1, ::-1]`` (rotated by 180 degrees), ``framed`` from
    :func:`framed_upstream_gradient`.  Equal to :func:`input_gradient_by_stamps`: cell
    ``p`` collects ``kernel[p - i*S] * dy[i]`` from each output ``i`` whose window covers
    it, and the kernel index runs backwards as ``i`` runs forwards.
    """
    size = kernel.shape[0]
    framed = framed_upstream_gradient(dy, stride, size, padded_hw)
    flipped = kernel[::-1, ::-1]
    gradient = np.zeros((*padded_hw, kernel.shape[2]), dtype=np.int64)
    for p, q in np.ndindex(padded_hw):
        window = framed[p:p + size, q:q + size]
        gradient[p, q] = np.tensordot(window, flipped, axes=([0, 1], [0, 1]))
    return gradient


def crop(dx_padded: np.ndarray, pads: Pads, size: int) -> np.ndarray:
    """``dx_pad[top : top + H, left : left + W]``: padded cells are not inputs."""
    (top, _), (left, _) = pads
    return dx_padded[top:top + size, left:left + size]


@dataclass(frozen=True)
class ConvBackward:
    """Every number ``explain conv --backward`` shows (integers; one filter, F = 1).

    Shapes: ``x`` (H, W, C), ``kernel`` (K, K, C), ``dy`` (OH, OW), ``x_padded`` and the
    two ``dx_padded_*`` (HP, WP, C), ``dkernel`` (K, K, C), ``dx`` (H, W, C).
    """

    x: np.ndarray
    kernel: np.ndarray
    dy: np.ndarray
    stride: int
    padding: str
    pads: Pads
    x_padded: np.ndarray
    dkernel: np.ndarray
    dbias: int
    dx_padded_stamps: np.ndarray
    dx_padded_full: np.ndarray
    dx: np.ndarray


def conv_backward_numbers(size: int = 5, kernel_size: int = 3, stride: int = 1,
                          padding: str = "valid", channels: int = 1, seed: int = 0) -> ConvBackward:
    """Compute every gradient of the tiny convolution by hand (integer arithmetic)."""
    check_arguments(size, kernel_size, stride, padding, channels)
    x, kernel = tiny_problem(size, kernel_size, channels, seed)
    pads = resolve_pads(size, size, (kernel_size, kernel_size), (stride, stride), padding)
    dy = tiny_upstream_gradient(axis_output_length(size, kernel_size, stride, padding), seed)
    x_padded = np.pad(x, (*pads, (0, 0)))
    padded_hw = x_padded.shape[:2]
    stamps = input_gradient_by_stamps(kernel, dy, stride, padded_hw)
    return ConvBackward(
        x=x, kernel=kernel, dy=dy, stride=stride, padding=padding, pads=pads,
        x_padded=x_padded, dkernel=kernel_gradient(x_padded, dy, stride, kernel_size),
        dbias=int(dy.sum()), dx_padded_stamps=stamps,
        dx_padded_full=input_gradient_by_full_convolution(kernel, dy, stride, padded_hw),
        dx=crop(stamps, pads, size))


Gradients = tuple[np.ndarray, np.ndarray, float]  # (dx (H, W, C), dkernel (K, K, C), dbias)


def kernel_gradients(module: ModuleType, numbers: ConvBackward) -> Gradients:
    """The gradients from one backend's ``conv2d_forward`` + ``conv2d_backward`` (float32)."""
    x = numbers.x[np.newaxis].astype(np.float32)
    kernel = numbers.kernel[..., np.newaxis].astype(np.float32)
    _, cache = module.conv2d_forward(x, kernel, np.zeros(1, np.float32),
                                     (numbers.stride, numbers.stride), numbers.pads)
    dy = numbers.dy[np.newaxis, :, :, np.newaxis].astype(np.float32)
    dx, dkernel, dbias = module.conv2d_backward(dy, cache, True)
    return dx[0], dkernel[..., 0], float(dbias[0])


def _loss(numbers: ConvBackward, x: np.ndarray, kernel: np.ndarray, bias: float) -> float:
    """``L = sum_{i, j} y[i, j] * dy[i, j]`` with ``y`` from the definition (float64), so
    that ``dL/dy = dy``: its slopes are the gradients the backward pass must return."""
    size = kernel.shape[0]
    x_padded = np.pad(x, (*numbers.pads, (0, 0)))
    total = bias * float(numbers.dy.sum())
    for i, j in np.ndindex(numbers.dy.shape):
        rows, columns = i * numbers.stride, j * numbers.stride
        total += numbers.dy[i, j] * float(np.sum(x_padded[rows:rows + size, columns:columns + size]
                                                 * kernel))
    return total


def numerical_gradients(numbers: ConvBackward) -> Gradients:
    """``(dx, dkernel, dbias)`` by central differences of :func:`_loss`, in float64."""
    x = numbers.x.astype(np.float64)
    kernel = numbers.kernel.astype(np.float64)
    dx = central_differences(lambda value: _loss(numbers, value, kernel, 0.0), x)
    dkernel = central_differences(lambda value: _loss(numbers, x, value, 0.0), kernel)
    dbias = central_differences(lambda value: _loss(numbers, x, kernel, float(value[0])),
                                np.zeros(1))
    return dx, dkernel, float(dbias[0])


@dataclass(frozen=True)
class Checks:
    """``results``: label -> (dx, dkernel, dbias) from the hand computation and each kernel;
    ``differences``: label -> largest difference from the central differences."""

    results: dict[str, Gradients]
    differences: dict[str, float]


def check_gradients(numbers: ConvBackward, tolerance: float = TOLERANCE) -> Checks:
    """Compare the hand results, the reference kernels and the active backend's kernels
    with central differences in float64.

    Raises:
        GradientMismatchError: any of them is off by more than ``tolerance`` (relative to
            the gradient's size): a broken kernel fails loudly here.
    """
    from minicnn.backend import get_backend_name, kernels
    from minicnn.kernels import reference

    hand = (numbers.dx, numbers.dkernel, float(numbers.dbias))
    full = (crop(numbers.dx_padded_full, numbers.pads, numbers.x.shape[0]), numbers.dkernel,
            float(numbers.dbias))
    results = {"by hand (stamps)": hand, "by hand (full convolution)": full,
               "reference kernels": kernel_gradients(reference, numbers),
               f"{get_backend_name()} backend": kernel_gradients(kernels(), numbers)}
    numerical = numerical_gradients(numbers)
    differences = {}
    for label, gradients in results.items():
        differences[label] = max(
            require_close(f"{what} from the {label}", value, expected, tolerance)
            for what, value, expected in zip(("dx", "dkernel", "dbias"), gradients, numerical))
    return Checks(results, differences)
