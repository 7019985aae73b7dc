"""What only the Numba backend has: three convolution paths, fused operations, independent outputs.

General correctness (every backend against the reference loops, central differences,
TensorFlow) is in ``tests/test_kernels.py``, which parametrizes over this backend too.
Here:

* every convolution path (direct loop for single-channel 3x3 kernels, Winograd F(2x2)
  for 3x3 stride-1 kernels, im2col + GEMM), on one thread and on all
  threads (with GEMMs inside Numba's threads), equals the reference on the same cases,
  whatever the size thresholds would pick (``tests/test_kernels.py`` uses tiny arrays,
  so it sees one thread);
* the fused operations equal the unfused composition, forward and backward;
* max pooling matches the reference exactly, ties included, on one thread and on all;
* results never share storage: interleaved calls of two layers with the same shapes
  (forward A, forward B, backward B, backward A) give what separate calls give;
* the float64 path keeps float64 end to end, and the fused gradients match central
  differences.
"""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.kernels.geometry import resolve_pads
from tests.helpers import (FLOAT32_ROUNDOFF, FLOAT64_EXACT, FLOAT64_GRADIENT, assert_close,
                           numerical_gradient)

# Skip only when Numba itself is missing; an import error inside minicnn fails loudly.
pytest.importorskip("numba")
import minicnn.kernels.numba as numba_backend  # noqa: E402  (after the skip)
from minicnn.kernels import reference  # noqa: E402
from minicnn.kernels.numba import blas, conv, threads  # noqa: E402
from minicnn.kernels.numba.direct import DirectConvCache  # noqa: E402
from minicnn.kernels.numba.im2col import Im2colConvCache  # noqa: E402
from minicnn.kernels.numba.winograd import WinogradConvCache  # noqa: E402
from minicnn.kernels.numba.winograd.wide import WideWinogradConvCache  # noqa: E402

TOLERANCES = {np.float64: FLOAT64_EXACT, np.float32: FLOAT32_ROUNDOFF}

# (N, H, W, C, F, window, strides, padding, use_bias)
CONV_CASES = [
    (2, 6, 7, 1, 4, (3, 3), (1, 1), "valid", True),    # the MNIST first layer, small
    (2, 7, 6, 1, 3, (3, 3), (2, 1), "same", False),    # direct path with stride and pads
    (1, 5, 6, 1, 17, (3, 3), (2, 3), "same", True),    # F not a multiple of the vector
    (1, 2, 3, 1, 2, (3, 3), (1, 1), "same", True),     # kernel larger than the input
    (1, 6, 6, 3, 5, (3, 2), (1, 2), "same", True),
    (2, 5, 5, 4, 3, (1, 1), (1, 1), "valid", True),    # 1x1: the GEMM reads x itself
    (1, 6, 5, 3, 2, (1, 1), (2, 2), "same", False),    # 1x1 with stride: patches needed
    (1, 9, 8, 6, 4, (5, 3), (1, 1), "same", True),
    (2, 9, 7, 5, 6, (3, 3), (1, 1), "valid", True),    # Winograd: partial tiles at the edge
    (1, 8, 9, 4, 3, (3, 3), (1, 1), "same", False),    # Winograd with padding
    (1, 3, 2, 3, 2, (3, 3), (1, 1), "same", True),     # Winograd, one tile, mostly padding
    (2, 5, 6, 8, 3, (2, 2), (3, 2), "valid", True),     # stride > window
]


@pytest.fixture(params=["default", "gemm", "winograd"])
def conv_path(request, monkeypatch) -> str:
    """Which convolution path the cases take.

    "default": the module's own choices; "gemm": im2col + GEMM for everything;
    "winograd": every 3x3 stride-1 case through F(2x2, 3x3), whatever its channels.
    """
    path = request.param
    monkeypatch.setattr(conv, "USE_DIRECT_CONV", path == "default")
    if path == "gemm":
        monkeypatch.setattr(conv, "USE_WINOGRAD", False)
    elif path == "winograd":
        monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", 1)
        monkeypatch.setattr(conv, "WINOGRAD_MIN_OUTPUTS", 1)
    return path


@pytest.fixture(params=["one thread", "all threads"])
def build(request, monkeypatch) -> str:
    """Run every loop on one thread or on all of Numba's threads, whatever the array size."""
    limit = 0 if request.param == "all threads" else 2**62
    monkeypatch.setattr(threads, "PARALLEL_MIN_ELEMENTS", limit)
    return request.param


def _conv_arrays(case, dtype, seed=0):
    N, H, W, C, F, window, strides, padding, use_bias = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, H, W, C)).astype(dtype)
    kernel = rng.standard_normal((*window, C, F)).astype(dtype)
    bias = rng.standard_normal(F).astype(dtype) if use_bias else None
    pads = resolve_pads(H, W, window, strides, padding)
    return x, kernel, bias, strides, pads, rng


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_both_conv_paths_match_reference(conv_path, build, case, dtype):
    x, kernel, bias, strides, pads, rng = _conv_arrays(case, dtype)
    y, cache = numba_backend.conv2d_forward(x, kernel, bias, strides, pads)
    y_expected, cache_expected = reference.conv2d_forward(x, kernel, bias, strides, pads)
    assert y.dtype == dtype and y.flags.c_contiguous
    assert_close(y, y_expected, **TOLERANCES[dtype],
                 what=f"{conv_path} y")

    dy = rng.standard_normal(y.shape).astype(dtype)
    expected = reference.conv2d_backward(dy, cache_expected)
    for need_input_grad in (True, False):
        grads = numba_backend.conv2d_backward(dy, cache, need_input_grad=need_input_grad)
        for name, actual, wanted in zip(("dx", "dkernel", "dbias"), grads, expected):
            if name == "dx" and not need_input_grad or wanted is None:
                assert actual is None, name
                continue
            assert actual.dtype == dtype and actual.flags.c_contiguous, name
            assert_close(actual, wanted, **TOLERANCES[dtype],
                         what=f"{conv_path} {name}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_fused_conv_bias_relu_equals_composition(conv_path, build, case, dtype):
    x, kernel, bias, strides, pads, rng = _conv_arrays(case, dtype, seed=1)
    tolerance = TOLERANCES[dtype]   # same path both ways: only the fusion differs
    y, cache = numba_backend.conv2d_bias_relu_forward(x, kernel, bias, strides, pads)
    z, plain_cache = numba_backend.conv2d_forward(x, kernel, bias, strides, pads)
    assert_close(y, np.maximum(z, 0), **tolerance, what="relu(conv)")

    dy = rng.standard_normal(y.shape).astype(dtype)
    # The ReLU's gradient is dy where the output is positive, 0 elsewhere (0 at 0, as Keras).
    expected = numba_backend.conv2d_backward(dy * (z > 0), plain_cache)
    fused = numba_backend.conv2d_backward(dy, cache)
    for name, actual, wanted in zip(("dx", "dkernel", "dbias"), fused, expected):
        if wanted is None:
            assert actual is None, name
            continue
        assert_close(actual, wanted, **tolerance, what=f"fused {name}")
    dx, dkernel, _ = numba_backend.conv2d_backward(dy, cache, need_input_grad=False)
    assert dx is None
    assert_close(dkernel, expected[1], **tolerance, what="fused dkernel without dx")


# (H, W, C, pool, strides, padding)
POOL_CASES = [
    (6, 6, 3, (2, 2), (2, 2), "valid"),
    (7, 5, 2, (2, 2), (2, 2), "same"),
    (7, 7, 2, (3, 3), (2, 2), "same"),     # overlapping windows: one task per image
    (7, 4, 2, (2, 2), (3, 3), "valid"),    # stride > pool: rows no window reads
    (13, 13, 1, (12, 12), (1, 1), "same"),  # 144 cells: winners stored as int32
]


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_max_pool_builds_match_reference_exactly(build, case):
    H, W, C, window, strides, padding = case
    rng = np.random.default_rng(2)
    x = rng.integers(-3, 3, size=(2, H, W, C)).astype(np.float64)   # ties and negatives
    pads = resolve_pads(H, W, window, strides, padding)
    y, cache = numba_backend.max_pool2d_forward(x, window, strides, pads)
    y_expected, cache_expected = reference.max_pool2d_forward(x, window, strides, pads)
    assert_close(y, y_expected, rtol=0, atol=0, what="max_pool")
    dy = rng.integers(-4, 5, size=y.shape).astype(np.float64)
    assert_close(numba_backend.max_pool2d_backward(dy, cache),
                 reference.max_pool2d_backward(dy, cache_expected), rtol=0, atol=0,
                 what="max_pool dx")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_avg_pool_builds_match_reference(build, case, dtype):
    H, W, C, window, strides, padding = case
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, H, W, C)).astype(dtype)
    pads = resolve_pads(H, W, window, strides, padding)
    y, cache = numba_backend.avg_pool2d_forward(x, window, strides, pads)
    y_expected, cache_expected = reference.avg_pool2d_forward(x, window, strides, pads)
    assert_close(y, y_expected, **TOLERANCES[dtype], what="avg_pool")
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert_close(numba_backend.avg_pool2d_backward(dy, cache),
                 reference.avg_pool2d_backward(dy, cache_expected), **TOLERANCES[dtype],
                 what="avg_pool dx")


@pytest.mark.parametrize("fused", [False, True], ids=["plain", "fused"])
@pytest.mark.parametrize("shape", [(3, 8, 8, 1), (3, 8, 8, 6)], ids=["direct", "gemm"])
def test_interleaved_layers_with_equal_shapes_do_not_share_storage(build, shape, fused):
    """Forward A, forward B, backward B, backward A equals each layer computed alone."""
    rng = np.random.default_rng(3)
    N, H, W, C = shape
    conv_forward = (numba_backend.conv2d_bias_relu_forward if fused
                    else numba_backend.conv2d_forward)
    pads = ((1, 1), (1, 1))
    layers = []
    for _ in range(2):
        x = rng.standard_normal(shape).astype(np.float32)
        kernel = rng.standard_normal((3, 3, C, 4)).astype(np.float32)
        bias = rng.standard_normal(4).astype(np.float32)
        dy = rng.standard_normal((N, H, W, 4)).astype(np.float32)
        pooled_dy = rng.standard_normal((N, H // 2, W // 2, 4)).astype(np.float32)
        layers.append((x, kernel, bias, dy, pooled_dy))

    def alone(x, kernel, bias, dy, pooled_dy):
        y, cache = conv_forward(x, kernel, bias, (1, 1), pads)
        p, pool_cache = numba_backend.max_pool2d_forward(y, (2, 2), (2, 2), ((0, 0), (0, 0)))
        grads = numba_backend.conv2d_backward(dy, cache)
        return [a.copy() for a in (y, p, numba_backend.max_pool2d_backward(pooled_dy, pool_cache),
                                   *grads)]

    expected = [alone(*layer) for layer in layers]

    (xa, ka, ba, dya, pdya), (xb, kb, bb, dyb, pdyb) = layers
    ya, cache_a = conv_forward(xa, ka, ba, (1, 1), pads)
    pa, pool_a = numba_backend.max_pool2d_forward(ya, (2, 2), (2, 2), ((0, 0), (0, 0)))
    yb, cache_b = conv_forward(xb, kb, bb, (1, 1), pads)
    pb, pool_b = numba_backend.max_pool2d_forward(yb, (2, 2), (2, 2), ((0, 0), (0, 0)))
    dpb = numba_backend.max_pool2d_backward(pdyb, pool_b)
    grads_b = numba_backend.conv2d_backward(dyb, cache_b)
    dpa = numba_backend.max_pool2d_backward(pdya, pool_a)
    grads_a = numba_backend.conv2d_backward(dya, cache_a)
    # Everything returned earlier is still intact after the other layer's calls.
    for actual, wanted in ((ya, expected[0][0]), (pa, expected[0][1]), (dpa, expected[0][2]),
                           (yb, expected[1][0]), (pb, expected[1][1]), (dpb, expected[1][2])):
        assert_close(actual, wanted, rtol=0, atol=0, what="kept output")
    for grads, wanted in ((grads_a, expected[0][3:]), (grads_b, expected[1][3:])):
        for actual, value in zip(grads, wanted):
            assert_close(actual, value, rtol=0, atol=0, what="gradient")
    assert not np.shares_memory(ya, yb) and not np.shares_memory(grads_a[0], grads_b[0])


def test_non_contiguous_and_integer_inputs():
    """Strided views are copied to contiguous arrays; non-float inputs compute in float32."""
    rng = np.random.default_rng(4)
    base = rng.standard_normal((2, 9, 8, 6))
    x = base[:, ::2, :, ::2]                      # a view with gaps
    kernel = rng.standard_normal((3, 3, 3, 2))
    y, _ = numba_backend.conv2d_forward(x, kernel, None, (1, 1), ((1, 1), (1, 1)))
    y_expected, _ = reference.conv2d_forward(np.ascontiguousarray(x), kernel, None, (1, 1),
                                             ((1, 1), (1, 1)))
    assert_close(y, y_expected, **FLOAT64_EXACT, what="strided x")
    integers = np.arange(16, dtype=np.uint8).reshape(1, 4, 4, 1)
    pooled, _ = numba_backend.max_pool2d_forward(integers, (2, 2), (2, 2), ((0, 0), (0, 0)))
    assert pooled.dtype == np.float32
    assert pooled.ravel().tolist() == [5.0, 7.0, 13.0, 15.0]


@pytest.mark.parametrize("case", [CONV_CASES[0], CONV_CASES[2]], ids=["direct", "gemm"])
def test_fused_conv_gradients_match_central_differences(case):
    x, kernel, bias, strides, pads, rng = _conv_arrays(case, np.float64, seed=5)
    y, cache = numba_backend.conv2d_bias_relu_forward(x, kernel, bias, strides, pads)
    assert y.dtype == np.float64
    weights = rng.standard_normal(y.shape)

    def loss() -> float:
        output, _ = numba_backend.conv2d_bias_relu_forward(x, kernel, bias, strides, pads)
        return float(np.sum(output * weights))

    dx, dkernel, dbias = numba_backend.conv2d_backward(weights, cache)
    assert dx.dtype == dkernel.dtype == np.float64
    # Random data sits far from the ReLU's kink at 0 relative to epsilon = 1e-6.
    assert_close(dx, numerical_gradient(loss, x), **FLOAT64_GRADIENT, what="dx")
    assert_close(dkernel, numerical_gradient(loss, kernel), **FLOAT64_GRADIENT, what="dkernel")
    if bias is not None:
        assert_close(dbias, numerical_gradient(loss, bias), **FLOAT64_GRADIENT, what="dbias")


@pytest.mark.parametrize("rows", [3, 5000], ids=["serial", "split among threads"])
@pytest.mark.parametrize("inside_numba", [True, False], ids=["numba threads", "np.matmul"])
def test_numba_gemms_both_ways(monkeypatch, inside_numba, rows):
    """The GEMMs: inside Numba's threads (SciPy's BLAS), or NumPy's when not possible."""
    if not inside_numba:
        monkeypatch.setattr(blas, "ENABLED", False)
        monkeypatch.setattr(blas, "_TRIED", True)
    elif not blas.enable():
        pytest.skip("SciPy's BLAS cannot be made single-threaded here")
    rng = np.random.default_rng(7)
    A = rng.standard_normal((rows, 40)).astype(np.float32)
    B = rng.standard_normal((40, 30)).astype(np.float32)
    C = rng.standard_normal((rows, 30)).astype(np.float32)
    tolerance = dict(rtol=1e-5, atol=1e-4)
    assert_close(blas.matmul_2d(A, B), A @ B, **tolerance, what="A @ B")
    assert_close(blas.matmul_2d(C, B.T), C @ B.T, **tolerance, what="C @ B^T")
    assert_close(blas.matmul_tn(A, C), A.T @ C, **tolerance, what="A^T @ C")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("shape", [(20, 6272, 512), (7, 3001, 333), (32, 1030, 129), (1, 15001, 300)],
                         ids=str)
def test_thin_products_match_float64(build, shape, dtype):
    """A Dense layer's forward on a small batch (few rows of a) takes the streaming loop
    of skinny.py: every row count, a K that is not a multiple of its four-row step, and N
    not a multiple of its column block."""
    from minicnn.kernels.numba import skinny

    if not blas.enable():
        pytest.skip("SciPy's BLAS cannot be made single-threaded here")
    M, K, N = shape
    assert M <= skinny.THIN_MAX and M * K * N > blas.SERIAL_MATMUL_MAX_MACS
    rng = np.random.default_rng(8)
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    product = blas.matmul_2d(a, b)
    assert product.dtype == dtype and product.shape == (M, N)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    # K products of unit normals added in order: partial sums of size ~sqrt(K), each
    # addition off by up to half an ulp of its sum; 4 K eps bounds that with room.
    assert_close(product, expected, rtol=0, atol=4 * K * np.finfo(dtype).eps, what="a @ b")


@pytest.mark.parametrize("x_shape, kernel_shape, strides, wanted", [
    ((2, 28, 28, 1), (3, 3, 1, 32), (1, 1), DirectConvCache),      # MNIST's first layer
    ((2, 13, 13, 32), (3, 3, 32, 64), (1, 1), WinogradConvCache),  # its second
    ((2, 5, 5, 64), (3, 3, 64, 64), (1, 1), Im2colConvCache),      # its third: 3x3 outputs
    ((2, 9, 9, 16), (3, 3, 16, 16), (2, 2), Im2colConvCache),      # stride 2
    ((2, 9, 9, 1), (5, 5, 1, 4), (1, 1), Im2colConvCache),         # 5x5 kernel
], ids=["direct", "winograd", "few outputs", "stride 2", "5x5"])
def test_each_path_returns_its_named_cache(x_shape, kernel_shape, strides, wanted):
    """The shape picks the path, and the cache says which one ran, field by field."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal(x_shape).astype(np.float32)
    kernel = rng.standard_normal(kernel_shape).astype(np.float32)
    y, cache = numba_backend.conv2d_bias_relu_forward(x, kernel, None, strides,
                                                      ((0, 0), (0, 0)))
    assert type(cache) is wanted
    assert cache.y is y and cache.relu and not cache.has_bias
    dx, dkernel, dbias = numba_backend.conv2d_backward(np.ones_like(y), cache)
    assert dx.shape == x_shape and dkernel.shape == kernel_shape and dbias is None


@pytest.mark.parametrize("pads", [((3, 0), (2, 1)), ((2, 2), (0, 3)), ((2, 2), (2, 2))],
                         ids=str)
def test_conv_with_wide_pads_matches_reference(pads):
    """Pads beyond 2 leave Winograd (its input gradient pads by ``2 - pad``) for im2col."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 7, 16))
    kernel = rng.standard_normal((3, 3, 16, 16))
    bias = rng.standard_normal(16)
    y, cache = numba_backend.conv2d_forward(x, kernel, bias, (1, 1), pads)
    y_expected, cache_expected = reference.conv2d_forward(x, kernel, bias, (1, 1), pads)
    wanted = WinogradConvCache if max(*pads[0], *pads[1]) <= 2 else Im2colConvCache
    assert isinstance(cache, wanted)
    assert_close(y, y_expected, **FLOAT64_EXACT, what="y")
    dy = rng.standard_normal(y.shape)
    for name, actual, wanted in zip(("dx", "dkernel", "dbias"),
                                    numba_backend.conv2d_backward(dy, cache),
                                    reference.conv2d_backward(dy, cache_expected)):
        assert_close(actual, wanted, **FLOAT64_EXACT, what=name)


# (N, H, W, C, F, pads): the MNIST convnet's first two layers (direct, Winograd), RGB
# first layers (direct, three channels), odd sizes (a dropped last row/column), pads.
CONV_POOL_CASES = [(2, 28, 28, 1, 32, ((0, 0), (0, 0))), (2, 9, 8, 1, 5, ((1, 1), (1, 1))),
                   (1, 7, 10, 1, 17, ((0, 1), (1, 0))), (2, 12, 11, 3, 32, ((0, 0), (0, 0))),
                   (1, 9, 10, 3, 17, ((1, 1), (0, 1))), (2, 13, 13, 32, 64, ((0, 0), (0, 0))),
                   (2, 10, 12, 16, 16, ((0, 0), (0, 0))),  # Winograd tiles x exactly: no copy
                   (2, 9, 10, 16, 17, ((1, 1), (1, 1))), (1, 12, 9, 16, 16, ((0, 1), (1, 0)))]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", CONV_POOL_CASES, ids=str)
def test_fused_conv_relu_max_pool_equals_composition(build, case, dtype):
    """One kernel for Conv2D(relu) + MaxPooling2D(2): same output, same gradients."""
    N, H, W, C, F, pads = case
    rng = np.random.default_rng(11)
    x = rng.standard_normal((N, H, W, C)).astype(dtype)
    kernel = rng.standard_normal((3, 3, C, F)).astype(dtype)
    bias = rng.standard_normal(F).astype(dtype)
    assert numba_backend.conv2d_relu_max_pool2d_supported(x.shape, kernel.shape, (1, 1), pads,
                                                          (2, 2), (2, 2), ((0, 0), (0, 0)))
    y, cache = numba_backend.conv2d_relu_max_pool2d_forward(x, kernel, bias, pads)
    z, conv_cache = reference.conv2d_forward(x, kernel, bias, (1, 1), pads)
    pooled, pool_cache = reference.max_pool2d_forward(np.maximum(z, 0), (2, 2), (2, 2),
                                                      ((0, 0), (0, 0)))
    assert y.dtype == dtype
    assert_close(y, pooled, **TOLERANCES[dtype], what="pooled output")

    dy = rng.standard_normal(y.shape).astype(dtype)
    dz = reference.max_pool2d_backward(dy, pool_cache) * (z > 0)
    expected = reference.conv2d_backward(dz, conv_cache)
    fused = numba_backend.conv2d_relu_max_pool2d_backward(dy, cache)
    for name, actual, wanted in zip(("dx", "dkernel", "dbias"), fused, expected):
        assert actual.dtype == dtype, name
        assert_close(actual, wanted, **TOLERANCES[dtype], what=name)


def test_winograd_keeps_x_itself_and_never_a_padded_copy():
    """Valid or 'same' padding, F(2x2) or larger tiles: the tiles are read from x."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 10, 12, 16)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 16, 16)).astype(np.float32)
    for pads in (((0, 0), (0, 0)), ((1, 1), (1, 1))):
        _, cache = numba_backend.conv2d_relu_max_pool2d_forward(x, kernel, None, pads)
        assert cache.x is x
    wide_kernel = rng.standard_normal((3, 3, 64, 64)).astype(np.float32)
    x = rng.standard_normal((1, 9, 9, 64)).astype(np.float32)
    _, cache = numba_backend.conv2d_forward(x, wide_kernel, None, (1, 1), ((1, 1), (1, 1)))
    assert isinstance(cache, WideWinogradConvCache) and cache.x is x


def test_fused_conv_relu_max_pool_declines_other_shapes():
    def supported(x_shape, kernel_shape, strides=(1, 1), pool=(2, 2), pool_strides=(2, 2),
                  pool_pads=((0, 0), (0, 0))):
        return numba_backend.conv2d_relu_max_pool2d_supported(
            x_shape, kernel_shape, strides, ((0, 0), (0, 0)), pool, pool_strides, pool_pads)

    assert supported((2, 8, 8, 1), (3, 3, 1, 4))                 # direct
    assert supported((2, 8, 8, 3), (3, 3, 3, 4))                 # direct, RGB
    assert supported((2, 8, 8, 16), (3, 3, 16, 16))              # Winograd
    assert not supported((2, 8, 8, 2), (3, 3, 2, 4))             # im2col + GEMM
    assert not supported((2, 8, 8, 1), (5, 5, 1, 4))
    assert not supported((2, 8, 8, 1), (3, 3, 1, 4), strides=(2, 2))
    assert not supported((2, 8, 8, 1), (3, 3, 1, 4), pool=(3, 3), pool_strides=(3, 3))
    assert not supported((2, 8, 8, 1), (3, 3, 1, 4), pool_strides=(1, 1))
    assert not supported((2, 8, 8, 1), (3, 3, 1, 4), pool_pads=((0, 1), (0, 1)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_compiled_rmsprop_update_is_numpys_bit_for_bit(dtype):
    """The numba backend's one-pass RMSprop update against the NumPy operations."""
    from minicnn import optimizers
    from minicnn.backend import using_backend
    from minicnn.variables import Variable

    rng = np.random.default_rng(2)
    start = rng.standard_normal((7, 5)).astype(dtype)
    gradients = [rng.standard_normal((7, 5)).astype(dtype) * 10.0 ** k for k in (-6, 0, 3)]

    def run(compiled: bool) -> np.ndarray:
        # The reference backend has no rmsprop_update: the optimizer's NumPy operations.
        with using_backend("numba" if compiled else "reference"):
            variable = Variable(start.copy(), "w")
            optimizer = optimizers.RMSprop(learning_rate=0.01)
            for gradient in gradients:
                variable.grad = gradient
                optimizer.apply_gradients([variable])
        return variable.value

    np.testing.assert_array_equal(run(True), run(False))


def test_winograd_row_transforms_equal_their_matrices():
    """The term-by-term transforms of F(2x2, 3x3) are B^T d B, A^T M A and A g A^T."""
    from minicnn.kernels.numba.winograd import transforms as f2

    rng = np.random.default_rng(5)
    BT, AT = f2.BT, f2.AT
    d = rng.standard_normal((1, 4, 4, 3))                     # one 4x4 input tile, 3 channels
    V = np.empty((16, 1, 3))
    f2.input_transform_row(d, 0, 0, 1, 1, 0, 0, V)
    expected = np.einsum("ij,jkc,lk->ilc", BT, d[0], BT).reshape(16, 3)
    assert_close(V[:, 0], expected, **FLOAT64_EXACT, what="B^T d B")

    M = rng.standard_normal((16, 1, 3))
    y = np.empty((1, 2, 2, 3))
    f2.output_transform_row(M, 1, 1, np.zeros(3), False, 0, 0, y)
    expected = np.einsum("ij,jkc,lk->ilc", AT, M[:, 0].reshape(4, 4, 3), AT)
    assert_close(y[0], expected, **FLOAT64_EXACT, what="A^T M A")

    g = rng.standard_normal((1, 2, 2, 3))
    dM = np.empty((16, 1, 3))
    f2.gradient_transform_row(g, 0, 0, 1, 1, 0, 0, dM)
    expected = np.einsum("ji,jkc,kl->ilc", AT, g[0], AT).reshape(16, 3)
    assert_close(dM[:, 0], expected, **FLOAT64_EXACT, what="A g A^T")

    # And the kernel transform G w G^T, which the loops never see.
    w = rng.standard_normal((3, 3, 2, 3))
    expected = np.einsum("ij,jkcf,lk->ilcf", f2.G, w, f2.G).reshape(16, 2, 3)
    assert_close(f2.kernel_transform(w), expected, **FLOAT64_EXACT, what="G w G^T")
