"""Kernel backends: shapes, agreement with the reference loops, gradients, TensorFlow.

Tiers:

* shape: every backend's outputs have the sizes :mod:`minicnn.kernels.geometry` gives;
* correctness: every fast backend equals ``reference`` (forward and all gradients),
  in float64 to round-off of float64 and in float32 to round-off of float32;
* gradients: every backend's gradients equal central differences in float64;
* ties: max pooling sends each output's gradient to the first maximum of its window;
* TensorFlow (``-m keras``): tf.nn.conv2d / max_pool2d / avg_pool2d values and
  gradients, tie routing included.

Backends come from :data:`minicnn.kernels.BACKEND_MODULES`; one whose module does not
exist here (the numba package when numba is not installed) is skipped,
and is tested automatically once it imports.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from minicnn.kernels import BACKEND_MODULES
from minicnn.kernels.geometry import output_hw, resolve_pads
from tests.helpers import (FLOAT32_ROUNDOFF, FLOAT64_EXACT, FLOAT64_GRADIENT, assert_close,
                           numerical_gradient)

BACKEND_NAMES = list(BACKEND_MODULES)
FAST_BACKEND_NAMES = [name for name in BACKEND_NAMES if name != "reference"]


def load_backend(name: str) -> ModuleType:
    """Import a backend module; skip (not fail) when it does not exist here yet."""
    module_name = BACKEND_MODULES[name]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        # Only "this module (or numba itself) is absent" is a skip; any other missing
        # import inside an existing backend is a bug and must fail.
        if error.name in (module_name, "numba"):
            pytest.skip(f"backend {name!r} not available: {error}")
        raise


@pytest.fixture(params=BACKEND_NAMES, scope="module")
def backend(request) -> ModuleType:
    return load_backend(request.param)


@pytest.fixture(params=FAST_BACKEND_NAMES, scope="module")
def fast_backend(request) -> ModuleType:
    return load_backend(request.param)


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    return load_backend("reference")


# Hypothesis runs many examples per test; the module-scoped fixtures above are safe
# to share between them.
HYPOTHESIS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# --------------------------------------------------------------------------------------
# Drawing configurations
# --------------------------------------------------------------------------------------

@st.composite
def window_configs(draw) -> dict:
    """A random convolution/pooling configuration on a tiny input, always geometrically valid."""
    config = dict(
        N=draw(st.integers(1, 2)), H=draw(st.integers(1, 9)), W=draw(st.integers(1, 9)),
        C=draw(st.integers(1, 3)), F=draw(st.integers(1, 3)),
        window=(draw(st.integers(1, 4)), draw(st.integers(1, 4))),
        strides=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        padding=draw(st.sampled_from(["valid", "same"])),
        use_bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**32 - 1)),
    )
    if config["padding"] == "valid":
        # "valid" needs the window to fit at least once.
        assume(config["H"] >= config["window"][0] and config["W"] >= config["window"][1])
    return config


def make_arrays(config: dict, dtype) -> dict:
    """Random x, kernel, bias for ``config`` in ``dtype``."""
    rng = np.random.default_rng(config["seed"])
    KH, KW = config["window"]
    x = rng.standard_normal((config["N"], config["H"], config["W"], config["C"])).astype(dtype)
    kernel = rng.standard_normal((KH, KW, config["C"], config["F"])).astype(dtype)
    bias = rng.standard_normal(config["F"]).astype(dtype) if config["use_bias"] else None
    return dict(x=x, kernel=kernel, bias=bias, rng=rng)


def pads_of(config: dict) -> tuple:
    return resolve_pads(config["H"], config["W"], config["window"], config["strides"],
                        config["padding"])


# --------------------------------------------------------------------------------------
# Shape tier
# --------------------------------------------------------------------------------------

@settings(max_examples=50, **HYPOTHESIS)
@given(config=window_configs())
def test_output_shapes_follow_geometry(backend, config):
    arrays = make_arrays(config, np.float32)
    x = arrays["x"]
    N, C, F = config["N"], config["C"], config["F"]
    OH, OW = output_hw(config["H"], config["W"], config["window"], config["strides"],
                       config["padding"])
    # The formula written out independently of geometry.py (Keras's documentation).
    (KH, KW), (SH, SW) = config["window"], config["strides"]
    if config["padding"] == "same":
        assert (OH, OW) == (-(-config["H"] // SH), -(-config["W"] // SW))
    else:
        assert (OH, OW) == ((config["H"] - KH) // SH + 1, (config["W"] - KW) // SW + 1)
    pads = pads_of(config)

    y, cache = backend.conv2d_forward(x, arrays["kernel"], arrays["bias"], config["strides"], pads)
    assert y.shape == (N, OH, OW, F) and y.dtype == np.float32
    dx, dkernel, dbias = backend.conv2d_backward(np.ones_like(y), cache)
    assert dx.shape == x.shape and dkernel.shape == arrays["kernel"].shape
    assert (dbias is None) == (arrays["bias"] is None)
    if dbias is not None:
        assert dbias.shape == (F,)

    for pool in ("max", "avg"):
        forward = getattr(backend, f"{pool}_pool2d_forward")
        backward = getattr(backend, f"{pool}_pool2d_backward")
        y, cache = forward(x, config["window"], config["strides"], pads)
        assert y.shape == (N, OH, OW, C) and y.dtype == np.float32, pool
        dx = backward(np.ones_like(y), cache)
        assert dx.shape == x.shape and dx.dtype == np.float32, pool


# --------------------------------------------------------------------------------------
# Correctness tier: every fast backend equals the reference loops
# --------------------------------------------------------------------------------------

TOLERANCES = {np.float64: FLOAT64_EXACT, np.float32: FLOAT32_ROUNDOFF}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@settings(max_examples=50, **HYPOTHESIS)
@given(config=window_configs())
def test_conv2d_matches_reference(fast_backend, reference, dtype, config):
    arrays = make_arrays(config, dtype)
    pads = pads_of(config)
    tolerance = TOLERANCES[dtype]
    args = (arrays["x"], arrays["kernel"], arrays["bias"], config["strides"], pads)

    y, cache = fast_backend.conv2d_forward(*args)
    y_expected, cache_expected = reference.conv2d_forward(*args)
    assert y.dtype == dtype and y.flags.c_contiguous
    assert_close(y, y_expected, **tolerance, what="conv2d y")

    dy = arrays["rng"].standard_normal(y.shape).astype(dtype)
    grads = fast_backend.conv2d_backward(dy, cache)
    grads_expected = reference.conv2d_backward(dy, cache_expected)
    for name, actual, expected in zip(("dx", "dkernel", "dbias"), grads, grads_expected):
        if expected is None:
            assert actual is None, name
            continue
        assert actual.dtype == dtype, name
        assert_close(actual, expected, **tolerance, what=f"conv2d {name}")

    # Without the input gradient: no dx, the same parameter gradients.
    dx, dkernel, dbias = fast_backend.conv2d_backward(dy, cache, need_input_grad=False)
    assert dx is None
    assert_close(dkernel, grads_expected[1], **tolerance, what="conv2d dkernel (no dx)")


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@settings(max_examples=50, **HYPOTHESIS)
@given(config=window_configs())
def test_pooling_matches_reference(fast_backend, reference, pool, dtype, config):
    arrays = make_arrays(config, dtype)
    pads = pads_of(config)
    tolerance = TOLERANCES[dtype]
    name = f"{pool}_pool2d"
    args = (arrays["x"], config["window"], config["strides"], pads)

    y, cache = getattr(fast_backend, f"{name}_forward")(*args)
    y_expected, cache_expected = getattr(reference, f"{name}_forward")(*args)
    assert y.dtype == dtype and y.flags.c_contiguous
    assert_close(y, y_expected, **tolerance, what=f"{name} y")

    dy = arrays["rng"].standard_normal(y.shape).astype(dtype)
    dx = getattr(fast_backend, f"{name}_backward")(dy, cache)
    dx_expected = getattr(reference, f"{name}_backward")(dy, cache_expected)
    assert dx.dtype == dtype and dx.flags.c_contiguous
    assert_close(dx, dx_expected, **tolerance, what=f"{name} dx")


# --------------------------------------------------------------------------------------
# Gradients against central differences (float64)
# --------------------------------------------------------------------------------------

# (N, H, W, C, F, kernel, strides, padding, use_bias)
CONV_GRADIENT_CASES = [
    (2, 5, 6, 2, 3, (3, 3), (1, 1), "valid", True),
    (1, 6, 5, 2, 2, (2, 2), (1, 1), "same", True),      # even kernel: pad 0 before, 1 after
    (1, 6, 6, 2, 2, (4, 4), (1, 1), "same", True),      # even kernel: pad 1 before, 2 after
    (1, 5, 6, 2, 2, (2, 3), (1, 2), "same", False),
    (1, 7, 7, 2, 2, (3, 3), (2, 2), "valid", True),
    (1, 8, 8, 1, 2, (3, 3), (2, 2), "valid", True),     # last row/col never read
    (1, 8, 8, 1, 2, (3, 3), (3, 3), "same", True),      # stride leaves a remainder
    (2, 4, 4, 3, 2, (1, 1), (1, 1), "valid", True),     # 1x1: a plain GEMM
    (1, 3, 4, 2, 2, (5, 4), (2, 1), "same", True),      # kernel larger than the input
]


@pytest.mark.parametrize("case", CONV_GRADIENT_CASES, ids=str)
def test_conv2d_gradients_match_central_differences(backend, case):
    N, H, W, C, F, window, strides, padding, use_bias = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, H, W, C))
    kernel = rng.standard_normal((*window, C, F))
    bias = rng.standard_normal(F) if use_bias else None
    pads = resolve_pads(H, W, window, strides, padding)

    y, cache = backend.conv2d_forward(x, kernel, bias, strides, pads)
    weights = rng.standard_normal(y.shape)   # loss = sum(y * weights), so dy = weights

    def loss() -> float:
        return float(np.sum(backend.conv2d_forward(x, kernel, bias, strides, pads)[0] * weights))

    dx, dkernel, dbias = backend.conv2d_backward(weights, cache)
    assert_close(dx, numerical_gradient(loss, x), **FLOAT64_GRADIENT, what="dx")
    assert_close(dkernel, numerical_gradient(loss, kernel), **FLOAT64_GRADIENT, what="dkernel")
    if use_bias:
        assert_close(dbias, numerical_gradient(loss, bias), **FLOAT64_GRADIENT, what="dbias")
    else:
        assert dbias is None


# (N, H, W, C, pool, strides, padding)
POOL_GRADIENT_CASES = [
    (2, 4, 6, 2, (2, 2), (2, 2), "valid"),     # non-overlapping, exact fit
    (1, 5, 7, 2, (2, 2), (2, 2), "valid"),     # non-overlapping, remainder dropped
    (1, 5, 7, 2, (2, 2), (2, 2), "same"),      # partial windows at the bottom/right
    (1, 7, 7, 2, (3, 3), (2, 2), "valid"),     # overlapping windows
    (1, 6, 7, 2, (3, 3), (2, 2), "same"),      # overlapping and partial
    (1, 5, 5, 1, (2, 3), (1, 2), "same"),
    (1, 7, 4, 2, (2, 2), (3, 3), "valid"),     # stride > pool: cells no window reads
    (1, 8, 8, 1, (3, 3), (3, 3), "same"),
]


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("case", POOL_GRADIENT_CASES, ids=str)
def test_pooling_gradients_match_central_differences(backend, pool, case):
    N, H, W, C, window, strides, padding = case
    rng = np.random.default_rng(1)
    # Distinct values 0.01 apart: no ties or near-ties for the finite differences to straddle.
    x = rng.permutation(N * H * W * C).reshape(N, H, W, C) * 0.01
    pads = resolve_pads(H, W, window, strides, padding)
    forward = getattr(backend, f"{pool}_pool2d_forward")
    backward = getattr(backend, f"{pool}_pool2d_backward")

    y, cache = forward(x, window, strides, pads)
    weights = rng.standard_normal(y.shape)

    def loss() -> float:
        return float(np.sum(forward(x, window, strides, pads)[0] * weights))

    assert_close(backward(weights, cache), numerical_gradient(loss, x, epsilon=1e-4),
                 **FLOAT64_GRADIENT, what=f"{pool}_pool2d dx")


# --------------------------------------------------------------------------------------
# Max pooling ties
# --------------------------------------------------------------------------------------

def first_max_routing(x: np.ndarray, dy: np.ndarray, window, strides, pads) -> np.ndarray:
    """The tie rule written out: each dy goes to the first real maximum, row-major."""
    N, H, W, C = x.shape
    (top, _), (left, _) = pads
    dx = np.zeros_like(x)
    for n, i, j, c in np.ndindex(*dy.shape):
        cells = [(i * strides[0] - top + kh, j * strides[1] - left + kw)
                 for kh in range(window[0]) for kw in range(window[1])]
        cells = [(r, q) for r, q in cells if 0 <= r < H and 0 <= q < W]
        values = [x[n, r, q, c] for r, q in cells]
        r, q = cells[values.index(max(values))]   # list.index: the first occurrence
        dx[n, r, q, c] += dy[n, i, j, c]
    return dx


def test_max_pool_ties_constant_input_go_to_first_cell(backend):
    x = np.full((2, 4, 6, 3), 0.5, dtype=np.float32)
    y, cache = backend.max_pool2d_forward(x, (2, 2), (2, 2), ((0, 0), (0, 0)))
    dx = backend.max_pool2d_backward(np.ones_like(y), cache)
    expected = np.zeros_like(x)
    expected[:, ::2, ::2, :] = 1.0      # the top-left cell of every window, once
    assert_close(dx, expected, rtol=0, atol=0, what="dx with all cells tied")


@pytest.mark.parametrize("window, strides, padding", [
    ((2, 2), (2, 2), "valid"), ((3, 3), (2, 2), "same"), ((3, 3), (1, 1), "same"),
    ((2, 3), (1, 2), "valid"), ((3, 2), (2, 2), "same"),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_max_pool_ties_route_to_first_max_once(backend, window, strides, padding, dtype):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 3, size=(2, 7, 6, 2)).astype(dtype)    # many ties per window
    pads = resolve_pads(7, 6, window, strides, padding)
    y, cache = backend.max_pool2d_forward(x, window, strides, pads)
    dy = rng.integers(-4, 5, size=y.shape).astype(dtype)        # integers: sums are exact
    dx = backend.max_pool2d_backward(dy, cache)

    assert_close(dx, first_max_routing(x, dy, window, strides, pads), rtol=0, atol=0,
                 what="dx with ties")
    # Each output's gradient arrives exactly once: nothing duplicated, nothing lost.
    assert float(dx.sum()) == float(dy.sum())
    counts = backend.max_pool2d_backward(np.ones_like(y), cache)
    assert float(counts.sum()) == y.size


# --------------------------------------------------------------------------------------
# Against TensorFlow
# --------------------------------------------------------------------------------------

def tf_gradients(tf, function, inputs: list, weights: np.ndarray):
    """``function(*inputs)`` in TensorFlow and the gradients of ``sum(y * weights)``."""
    tensors = [tf.constant(value) for value in inputs]
    with tf.GradientTape() as tape:
        for tensor in tensors:
            tape.watch(tensor)
        y = function(*tensors)
        loss = tf.reduce_sum(y * tf.constant(weights))
    return y.numpy(), [gradient.numpy() for gradient in tape.gradient(loss, tensors)]


# (kernel, strides, padding) with odd and even kernels and strides that leave remainders.
TF_CONV_CASES = [
    ((3, 3), (1, 1), "SAME"), ((3, 3), (1, 1), "VALID"), ((3, 3), (2, 2), "SAME"),
    ((3, 3), (2, 2), "VALID"), ((2, 2), (1, 1), "SAME"), ((4, 4), (1, 1), "SAME"),
    ((2, 3), (2, 1), "SAME"), ((4, 4), (3, 3), "SAME"), ((5, 2), (3, 2), "VALID"),
    ((1, 1), (1, 1), "VALID"), ((1, 1), (2, 2), "SAME"),
]


@pytest.mark.keras
@pytest.mark.parametrize("window, strides, padding", TF_CONV_CASES, ids=str)
def test_conv2d_matches_tensorflow(backend, window, strides, padding):
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(3)
    N, H, W, C, F = 2, 9, 8, 3, 4
    x = rng.standard_normal((N, H, W, C)).astype(np.float32)
    kernel = rng.standard_normal((*window, C, F)).astype(np.float32)
    bias = rng.standard_normal(F).astype(np.float32)
    pads = resolve_pads(H, W, window, strides, padding.lower())

    y, cache = backend.conv2d_forward(x, kernel, bias, strides, pads)
    weights = rng.standard_normal(y.shape).astype(np.float32)
    y_tf, (dx_tf, dkernel_tf, dbias_tf) = tf_gradients(
        tf, lambda x, k, b: tf.nn.bias_add(tf.nn.conv2d(x, k, strides, padding), b),
        [x, kernel, bias], weights)
    dx, dkernel, dbias = backend.conv2d_backward(weights, cache)

    assert_close(y, y_tf, **FLOAT32_ROUNDOFF, what="conv2d y vs TF")
    assert_close(dx, dx_tf, **FLOAT32_ROUNDOFF, what="conv2d dx vs TF")
    assert_close(dkernel, dkernel_tf, **FLOAT32_ROUNDOFF, what="conv2d dkernel vs TF")
    assert_close(dbias, dbias_tf, **FLOAT32_ROUNDOFF, what="conv2d dbias vs TF")


TF_POOL_CASES = [
    ((2, 2), (2, 2), "VALID"), ((2, 2), (2, 2), "SAME"), ((3, 3), (2, 2), "VALID"),
    ((3, 3), (2, 2), "SAME"), ((3, 3), (1, 1), "SAME"), ((2, 3), (3, 1), "SAME"),
    ((2, 2), (3, 3), "VALID"), ((4, 4), (3, 3), "SAME"),
]


@pytest.mark.keras
@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("window, strides, padding", TF_POOL_CASES, ids=str)
def test_pooling_matches_tensorflow(backend, pool, window, strides, padding):
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(4)
    N, H, W, C = 2, 9, 7, 3
    x = rng.standard_normal((N, H, W, C)).astype(np.float32)
    pads = resolve_pads(H, W, window, strides, padding.lower())
    tf_pool = tf.nn.max_pool2d if pool == "max" else tf.nn.avg_pool2d

    y, cache = getattr(backend, f"{pool}_pool2d_forward")(x, window, strides, pads)
    weights = rng.standard_normal(y.shape).astype(np.float32)
    y_tf, (dx_tf,) = tf_gradients(tf, lambda x: tf_pool(x, window, strides, padding),
                                  [x], weights)
    dx = getattr(backend, f"{pool}_pool2d_backward")(weights, cache)

    assert_close(y, y_tf, **FLOAT32_ROUNDOFF, what=f"{pool}_pool2d y vs TF")
    assert_close(dx, dx_tf, **FLOAT32_ROUNDOFF, what=f"{pool}_pool2d dx vs TF")


@pytest.mark.keras
@pytest.mark.parametrize("window, strides, padding", TF_POOL_CASES, ids=str)
def test_max_pool_tie_routing_matches_tensorflow(backend, window, strides, padding):
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(5)
    N, H, W, C = 2, 9, 7, 3
    x = rng.integers(0, 3, size=(N, H, W, C)).astype(np.float32)    # ties everywhere
    pads = resolve_pads(H, W, window, strides, padding.lower())

    y, cache = backend.max_pool2d_forward(x, window, strides, pads)
    weights = rng.integers(-4, 5, size=y.shape).astype(np.float32)  # exact sums
    _, (dx_tf,) = tf_gradients(tf, lambda x: tf.nn.max_pool2d(x, window, strides, padding),
                               [x], weights)
    dx = backend.max_pool2d_backward(weights, cache)
    assert_close(dx, dx_tf, rtol=0, atol=0, what="max_pool2d tie routing vs TF")
