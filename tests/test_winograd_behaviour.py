"""Winograd F(2x2, 3x3) held from outside the module that implements it.

* The transform matrices are written out here as Lavin & Gray publish them ("Fast
  Algorithms for Convolutional Neural Networks", 2015: Cook-Toom at the points
  0, 1, -1 and infinity), compared with the module's, and the identity they must
  satisfy, ``A^T [(G w G^T) * (B^T d B)] A`` = the 2x2 valid correlation of a 4x4 tile
  ``d`` with a 3x3 kernel ``w``, is checked with the matrices written here.
* The numba backend's convolutions on shapes that take the Winograd path (asserted
  through the dispatch rule), alone and fused with ReLU and max pooling in a model,
  equal the reference backend's plain loops: outputs, input gradients and weight
  gradients, in float32 (bars from measured round-off).
"""

from __future__ import annotations

import numpy as np
import pytest

import minicnn
from minicnn import layers
from tests.helpers import assert_close, backend_set_to

LAVIN_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float)
LAVIN_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], float)
LAVIN_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], float)
# float32 outputs of 3x3x16 sums: measured at most 3.4e-7 of the largest value apart;
# bar 3e-6 (8.8x; a wrong transform is off by O(1) of it).
RELATIVE = 3e-6


def correlate_valid(d: np.ndarray, w: np.ndarray) -> np.ndarray:
    out = d.shape[0] - w.shape[0] + 1
    return np.array([[np.sum(d[i:i + 3, j:j + 3] * w) for j in range(out)] for i in range(out)])


def test_lavins_matrices_satisfy_the_winograd_identity_and_are_the_modules():
    from minicnn.kernels.numba.winograd import transforms

    rng = np.random.default_rng(0)
    for _ in range(20):
        d, w = rng.standard_normal((4, 4)), rng.standard_normal((3, 3))
        product = (LAVIN_G @ w @ LAVIN_G.T) * (LAVIN_BT @ d @ LAVIN_BT.T)
        np.testing.assert_allclose(LAVIN_AT @ product @ LAVIN_AT.T, correlate_valid(d, w),
                                   rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(transforms.BT, LAVIN_BT)
    np.testing.assert_array_equal(transforms.G, LAVIN_G)
    np.testing.assert_array_equal(transforms.AT, LAVIN_AT)


def relative_close(actual, expected, what):
    scale = float(np.abs(expected).max())
    assert scale > 0, f"{what}: all zero"
    assert_close(actual, expected, rtol=0.0, atol=RELATIVE * scale, what=what)


def run(model_factory, x, dy, backend):
    with backend_set_to(backend):
        model = model_factory()
        y = model.forward(x, training=True)
        dx = model.backward(dy, need_input_grad=True)
        return y, dx, [variable.grad.copy() for variable in model.trainable_weights]


@pytest.mark.parametrize("padding, pool", [("valid", False), ("same", False),
                                           ("valid", True), ("same", True)])
def test_numba_winograd_convolutions_equal_the_reference_loops(padding, pool):
    if "numba" not in minicnn.available_backends():
        pytest.skip("numba is not installed")
    from minicnn.kernels.numba.conv import use_winograd

    size, channels, filters = 12, 16, 16
    out = size - 2 if padding == "valid" else size
    pads = ((0, 0), (0, 0)) if padding == "valid" else ((1, 1), (1, 1))
    assert use_winograd(3, 3, (1, 1), pads, channels, filters, out, out), \
        "this shape no longer takes the Winograd path: choose one that does"
    rng = np.random.default_rng(1)
    weights = [(rng.standard_normal((3, 3, channels, filters)) / 12).astype(np.float32),
               (rng.standard_normal(filters) / 10).astype(np.float32)]

    def factory():
        stack = [minicnn.Input((size, size, channels)),
                 layers.Conv2D(filters, (3, 3), padding=padding, activation="relu")]
        if pool:
            stack.append(layers.MaxPooling2D((2, 2)))
        model = minicnn.Sequential(stack)
        model.set_weights(weights)
        return model

    x = rng.standard_normal((2, size, size, channels)).astype(np.float32)
    shape = (2, out // 2, out // 2, filters) if pool else (2, out, out, filters)
    dy = rng.standard_normal(shape).astype(np.float32)
    y, dx, grads = run(factory, x, dy, "numba")
    y_ref, dx_ref, grads_ref = run(factory, x, dy, "reference")
    relative_close(y, y_ref, "output")
    relative_close(dx, dx_ref, "d loss / d x")
    for ours, theirs, name in zip(grads, grads_ref, ("kernel", "bias")):
        relative_close(ours, theirs, f"d loss / d {name}")
    assert len(grads) == len(grads_ref) == 2
