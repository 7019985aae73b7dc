"""The numba backend on VGG16-shaped layers equals the numpy backend (float32 round-off).

VGG16's base (*Deep Learning with Python*, section 5.3) runs 3x3 'same' convolutions
with 3, 64, 128, 256 and 512 channels; at those channel counts the numba backend takes
paths the MNIST convnet never does: im2col for the 3-channel first layer, blocked
F(2x2, 3x3) Winograd with large blocks, and the larger tiles F(3x3, 3x3) and F(4x4, 3x3)
(:mod:`minicnn.kernels.numba.winograd.wide`) from 64 x 64 channels on (from
128 x 256 on run apart from the pooling after them).  Small batches and maps keep the
tests quick; no timings here.
"""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.kernels import numpy_ops, reference
from minicnn.kernels.geometry import resolve_pads
from tests.helpers import FLOAT32_ROUNDOFF, FLOAT64_EXACT, assert_close

numba_backend = pytest.importorskip("minicnn.kernels.numba")
from minicnn.kernels.numba import conv, fusion, threads  # noqa: E402  (after the skip)
from minicnn.kernels.numba.im2col import Im2colConvCache  # noqa: E402
from minicnn.kernels.numba.winograd import WinogradConvCache  # noqa: E402
from minicnn.kernels.numba.winograd import wide  # noqa: E402
from minicnn.kernels.numba.winograd.wide import WideWinogradConvCache  # noqa: E402

# (N, H, W, C, F, the path the numba backend takes)
VGG_LAYERS = [
    (2, 10, 10, 3, 64, Im2colConvCache),          # block1_conv1
    (2, 13, 12, 3, 32, Im2colConvCache),          # the 150x150 convnet's first layer
    (2, 12, 11, 64, 64, WideWinogradConvCache),   # block1_conv2
    (2, 12, 11, 32, 64, WinogradConvCache),       # MNIST's second layer's channels
    (2, 9, 9, 64, 128, WideWinogradConvCache),    # block2_conv1
    (2, 9, 9, 128, 128, WideWinogradConvCache),   # block2_conv2
    (2, 7, 8, 128, 256, WideWinogradConvCache),   # block3_conv1 (F(4x4))
    (2, 7, 7, 256, 256, WideWinogradConvCache),   # block3_conv2 (F(3x3): 7 = 3 + 3 + 1)
    (1, 8, 8, 256, 512, WideWinogradConvCache),   # block4_conv1
    (2, 5, 4, 512, 512, WideWinogradConvCache),   # block5_conv2
]


# Winograd with larger tiles rounds more than the GEMM (see minicnn.kernels.numba.winograd.
# wide_transforms): its error is measured against the output's scale, not elementwise.
def _roundoff(expected: np.ndarray) -> dict[str, float]:
    """float32 round-off: ``rtol`` 1e-4, and ``atol`` 2e-5 of the largest value."""
    return dict(rtol=FLOAT32_ROUNDOFF["rtol"],
                atol=max(FLOAT32_ROUNDOFF["atol"], 2e-5 * float(np.abs(expected).max())))


@pytest.fixture(params=["one thread", "all threads"])
def build(request, monkeypatch) -> str:
    limit = 0 if request.param == "all threads" else 2**62
    monkeypatch.setattr(threads, "PARALLEL_MIN_ELEMENTS", limit)
    return request.param


def _layer(N, H, W, C, F, dtype=np.float32, seed=0):
    """Input, He-scaled kernel (outputs of order one, as in a trained network), bias, pads."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, H, W, C)).astype(dtype)
    kernel = (rng.standard_normal((3, 3, C, F)) * np.sqrt(2 / (9 * C))).astype(dtype)
    bias = (0.1 * rng.standard_normal(F)).astype(dtype)
    return x, kernel, bias, resolve_pads(H, W, (3, 3), (1, 1), "same"), rng


@pytest.mark.parametrize("layer", VGG_LAYERS, ids=lambda case: "x".join(map(str, case[:5])))
def test_vgg_layer_matches_numpy_backend(build, layer):
    *shape, path = layer
    x, kernel, bias, pads, rng = _layer(*shape)
    y, cache = numba_backend.conv2d_bias_relu_forward(x, kernel, bias, (1, 1), pads)
    assert type(cache) is path
    z, expected_cache = numpy_ops.conv2d_forward(x, kernel, bias, (1, 1), pads)
    assert_close(y, np.maximum(z, 0), **_roundoff(z), what="relu(conv)")
    dy = rng.standard_normal(y.shape).astype(np.float32)
    expected = numpy_ops.conv2d_backward(dy * (z > 0), expected_cache, True)
    for name, actual, wanted in zip(("dx", "dkernel", "dbias"),
                                    numba_backend.conv2d_backward(dy, cache, True), expected):
        assert actual.dtype == np.float32 and actual.flags.c_contiguous
        assert_close(actual, wanted, **_roundoff(wanted), what=name)
    dx, dkernel, dbias = numba_backend.conv2d_backward(dy, cache, False)
    assert dx is None
    assert_close(dkernel, expected[1], **_roundoff(expected[1]), what="dkernel without dx")
    assert_close(dbias, expected[2], **_roundoff(expected[2]), what="dbias without dx")


# (N, H, W, C, F, pads): edges cut through tiles, one tile, uneven pads up to 2.
WIDE_CASES = [(2, 7, 8, 5, 6, ((1, 1), (1, 1))), (1, 9, 9, 4, 3, ((0, 0), (0, 0))),
              (2, 10, 6, 3, 4, ((2, 0), (1, 2))), (1, 3, 4, 2, 3, ((1, 1), (1, 1))),
              (1, 13, 5, 3, 2, ((0, 2), (2, 0)))]


@pytest.mark.parametrize("m", wide.TILE_SIZES)
@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
@pytest.mark.parametrize("case", WIDE_CASES, ids=str)
def test_wide_winograd_matches_reference_in_float64(build, case, relu, m):
    """F(3x3) and F(4x4) on any channels and edges equal the reference loops in float64."""
    N, H, W, C, F, pads = case
    rng = np.random.default_rng(4)
    x, kernel, bias = (rng.standard_normal((N, H, W, C)), rng.standard_normal((3, 3, C, F)),
                       rng.standard_normal(F))
    y, cache = wide.forward(x, kernel, bias, True, pads, relu, m)
    z, expected_cache = reference.conv2d_forward(x, kernel, bias, (1, 1), pads)
    assert_close(y, np.maximum(z, 0) if relu else z, **FLOAT64_EXACT, what="y")
    dy = rng.standard_normal(y.shape)
    expected = reference.conv2d_backward(dy * (z > 0) if relu else dy, expected_cache)
    for name, actual, wanted in zip(("dx", "dkernel", "dbias"),
                                    wide.backward(dy, cache, True), expected):
        assert actual.dtype == np.float64
        assert_close(actual, wanted, **FLOAT64_EXACT, what=name)


def test_wide_winograd_matrices_satisfy_the_identity():
    """``A^T [(G g) (.) (B^T d)]`` is the 1-D correlation of ``d`` by ``g``, exactly."""
    rng = np.random.default_rng(5)
    for m in wide.TILE_SIZES:
        AT, G, BT = wide.matrices(m)
        d, g = rng.standard_normal(m + 2), rng.standard_normal(3)
        wanted = np.array([d[i:i + 3] @ g for i in range(m)])
        assert_close(AT @ ((G @ g) * (BT @ d)), wanted, rtol=1e-12, atol=1e-12, what=f"F({m})")


@pytest.mark.parametrize("m", wide.TILE_SIZES)
def test_written_out_transforms_equal_the_generic_loops(m):
    """``wide3``'s and ``wide4``'s term-by-term transforms compute what the matrix loops do."""
    from minicnn.kernels.numba.winograd import wide3, wide4, wide_transforms as generic

    written = {3: wide3, 4: wide4}[m]
    rng = np.random.default_rng(6)
    AT, _, BT = wide.matrices(m)
    n = m + 2
    N, tiles_h, tiles_w, C = 2, 2, 3, 5
    # Read as if padded by one row and two columns: tiles cross every edge.
    x = rng.standard_normal((N, tiles_h * m, tiles_w * m - 1, C))
    gp = rng.standard_normal((N, tiles_h * m + 2, tiles_w * m + 2, C))
    count = N * tiles_h * tiles_w
    V1, V2 = np.zeros((n * n, count, C)), np.zeros((n * n, count, C))
    E = np.empty((n * n, C))
    M = rng.standard_normal((n * n, count, C))
    y1, y2 = np.zeros((N, 2 * m - 1, 3 * m - 1, C)), np.zeros((N, 2 * m - 1, 3 * m - 1, C))
    dM1, dM2 = np.zeros((n * n, count, C)), np.zeros((n * n, count, C))
    bias = rng.standard_normal(C)
    for task in range(N * tiles_h):
        generic.input_transform_row(x, 1, 2, BT, m, tiles_h, tiles_w, task, 0, V1, E)
        written.input_transform_row(x, 1, 2, tiles_h, tiles_w, task, 0, V2, E)
        generic.output_transform_row(M, AT, tiles_h, tiles_w, bias, True, task, 0, y1, E)
        written.output_transform_row(M, tiles_h, tiles_w, bias, True, task, 0, y2, E)
        generic.gradient_transform_row(gp, AT, 1, 2, tiles_h, tiles_w, task, 0, dM1, E)
        written.gradient_transform_row(gp, 1, 2, tiles_h, tiles_w, task, 0, dM2, E)
    for name, actual, wanted in (("V", V2, V1), ("y", y2, y1), ("dM", dM2, dM1)):
        assert_close(actual, wanted, **FLOAT64_EXACT, what=name)


def test_tile_size_and_fusion_choices():
    """The tile with the fewest multiplications; wide layers are not fused with pooling."""
    assert wide.tile_size(150, 150) == 4 and wide.tile_size(37, 37) == 4
    assert wide.tile_size(18, 18) == 3 and wide.tile_size(9, 9) == 3
    pool = dict(pool_size=(2, 2), pool_strides=(2, 2), pool_pads=((0, 0), (0, 0)))
    same = ((1, 1), (1, 1))

    def fused(C, F):
        return fusion.conv2d_relu_max_pool2d_supported((2, 18, 18, C), (3, 3, C, F), (1, 1),
                                                       same, **pool)

    assert not conv.use_wide_winograd(32, 64) and not conv.use_wide_winograd(32, 512)
    assert conv.use_wide_winograd(64, 64) and not conv.use_wide_winograd(64, 64, pooled=True)
    assert conv.use_wide_winograd(64, 128) and conv.use_wide_winograd(512, 512)
    # Followed by a pooling, mid-sized layers stay fused (F(2x2) tiles are its windows).
    assert fused(64, 128) and fused(128, 128) and not fused(128, 256) and not fused(512, 512)


# VGG16's 3x3 layers at 150x150 that take F(3x3) or F(4x4): (output side, C, F, tile
# side m).
VGG16_WIDE_LAYERS = [(75, 64, 128, 4),
                        (37, 128, 256, 4), (37, 256, 256, 4), (18, 256, 512, 3),
                        (18, 512, 512, 3), (9, 512, 512, 3)]


@pytest.mark.parametrize("layer", VGG16_WIDE_LAYERS, ids=str)
def test_blocks_stay_within_blas_small_matrix_kernels_where_a_row_of_tiles_fits(layer):
    """Each block's ``(tiles, C) @ (C, F)`` GEMMs stay within the small-matrix kernels'
    limit wherever one row of tiles (and at least eight tiles) does; layers with 512
    filters, where it cannot, take blocks big enough to repay BLAS's packing."""
    from minicnn.kernels.numba import blas

    side, C, F, m = layer
    tiles_w = wide.tiles(side, m)
    rows = wide._block_rows(tiles_w, C, F, m + 2, 4)
    macs = rows * tiles_w * C * F
    if blas.small_product_rows(C, F) >= max(tiles_w, wide.MIN_SMALL_BLOCK_TILES):
        assert macs <= blas.SMALL_PRODUCT_MACS < macs + tiles_w * C * F
    else:
        assert F == 512 and (rows + 1) * tiles_w > wide.MIN_BLOCK_TILES


@pytest.mark.parametrize("rows_per_block", [1, 3, 10_000])
@pytest.mark.parametrize("m", [2, *wide.TILE_SIZES])
def test_any_block_size_gives_the_same_convolution_and_gradients(monkeypatch, m,
                                                                 rows_per_block):
    """Blocks of one row of tiles, of three (the last one short) or of everything give
    the reference loops' results in float64, forward and backward, on both threads."""
    from minicnn.kernels.numba import winograd
    from minicnn.kernels.numba.winograd import conv as winograd_conv

    monkeypatch.setattr(threads, "PARALLEL_MIN_ELEMENTS", 0)
    monkeypatch.setattr(wide, "_block_rows", lambda *args: rows_per_block)
    monkeypatch.setattr(winograd_conv, "block_rows", lambda *args: rows_per_block)
    monkeypatch.setattr(winograd_conv, "gradient_block_rows", lambda *args: rows_per_block)
    rng = np.random.default_rng(7)
    pads = ((1, 1), (1, 1))
    x, kernel, bias = (rng.standard_normal((3, 13, 10, 4)), rng.standard_normal((3, 3, 4, 5)),
                       rng.standard_normal(5))
    if m == 2:
        y, cache = winograd.forward(x, kernel, bias, True, pads, True)
        backward = winograd.backward
    else:
        y, cache = wide.forward(x, kernel, bias, True, pads, True, m)
        backward = wide.backward
    z, expected_cache = reference.conv2d_forward(x, kernel, bias, (1, 1), pads)
    assert_close(y, np.maximum(z, 0), **FLOAT64_EXACT, what="y")
    dy = rng.standard_normal(y.shape)
    expected = reference.conv2d_backward(dy * (z > 0), expected_cache)
    for name, actual, wanted in zip(("dx", "dkernel", "dbias"), backward(dy, cache, True),
                                    expected):
        assert_close(actual, wanted, **FLOAT64_EXACT, what=name)


@pytest.mark.parametrize("layer", [(36, 32, 64), (17, 64, 128), (7, 128, 128), (5, 32, 64)],
                         ids=str)
def test_f2_kernel_gradient_blocks_are_long_sums(layer):
    """F(2x2)'s kernel gradient (the 150x150 convnet's and MNIST's pooled layers: tiles a
    row, C, F) takes blocks at least as long as the forward's, and as many tiles as the
    forward product would fit in BLAS's small-matrix kernels."""
    from minicnn.kernels.numba import blas
    from minicnn.kernels.numba.winograd import blocked

    tiles_w, C, F = layer
    forward_rows = blocked.block_rows(tiles_w, C, F, 4)
    rows = blocked.gradient_block_rows(tiles_w, C, F, 4)
    assert rows >= forward_rows
    assert rows == forward_rows or rows * tiles_w * C * F <= blas.SMALL_PRODUCT_MACS
    assert (rows + 1) * tiles_w * C * F > blas.SMALL_PRODUCT_MACS
