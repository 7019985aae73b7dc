"""``minicnn explain pool``: the windows, the winners (first maximum on ties, as
TensorFlow's CPU kernel) and the routed gradients are what the pooling kernels compute."""

from __future__ import annotations

import re

import numpy as np
import pytest

from minicnn.backend import kernels, using_backend
from minicnn.explain.pool import (explain_pool, kernel_results, pool_backward, pool_numbers,
                                  tied_cells, winners)
from minicnn.kernels import reference

CASES = [(kind, size, pool_size, stride) for kind in ("max", "average")
         for size, pool_size, stride in ((4, 2, None), (5, 2, 1), (5, 3, 1), (6, 3, 2),
                                         (7, 2, 3), (3, 3, None))]


@pytest.mark.parametrize("kind, size, pool_size, stride", CASES)
def test_numbers_equal_the_kernels(kind, size, pool_size, stride, numpy_backend) -> None:
    numbers = pool_numbers(kind, size, pool_size, stride, seed=1)
    for module in (reference, kernels()):
        y, dx = kernel_results(module, numbers)
        np.testing.assert_allclose(y, numbers.y, rtol=1e-6)
        np.testing.assert_allclose(dx, numbers.dx, rtol=1e-6)
        if kind == "max":  # integers: exactly equal, ties included
            np.testing.assert_array_equal(y, numbers.y)
            np.testing.assert_array_equal(dx, numbers.dx)
    # Nothing is lost or made: the gradient's total is dy's total, however it is routed.
    assert numbers.dx.sum() == pytest.approx(numbers.dy.sum())


def test_ties_go_to_the_first_maximum_in_row_major_order() -> None:
    x = np.array([[1, 7, 7, 2],
                  [7, 0, 3, 7],
                  [4, 4, 5, 5],
                  [4, 4, 5, 5]])
    cells = winners(x, 2, 2, 2)
    assert [tuple(cell) for cell in cells.reshape(-1, 2)] == [(0, 1), (0, 2), (2, 0), (2, 2)]
    assert tied_cells(x, (0, 0), 2, 2) == [(0, 1), (1, 0)]
    dy = np.array([[1, 2], [3, 4]])
    dx = pool_backward("max", x, dy, 2, 2)
    expected = np.zeros((4, 4))
    expected[0, 1], expected[0, 2], expected[2, 0], expected[2, 2] = 1, 2, 3, 4
    np.testing.assert_array_equal(dx, expected)
    # The kernels follow the same rule (the contract in minicnn/kernels/__init__.py).
    _, cache = reference.max_pool2d_forward(x[None, :, :, None].astype(np.float32), (2, 2),
                                            (2, 2), ((0, 0), (0, 0)))
    kernel_dx = reference.max_pool2d_backward(dy[None, :, :, None].astype(np.float32), cache)
    np.testing.assert_array_equal(kernel_dx[0, ..., 0], expected)


def _grid_after(lines: list[str], title: str) -> np.ndarray:
    """The grid printed under ``title`` (integers or decimals)."""
    for index, line in enumerate(lines[:-1]):
        for match in re.finditer(re.escape(title) + r"(?=\s|$)", line):
            rows = []
            for row_line in lines[index + 1:]:
                row = re.match(r"\[([-\d. ]+)\]", row_line[match.start():])
                if not row:
                    break
                rows.append([float(value) for value in row.group(1).split()])
            if rows:
                return np.array(rows)
    raise AssertionError(f"no grid titled {title!r}")


@pytest.mark.parametrize("kind, size, pool_size, stride", CASES)
def test_printed_numbers_are_the_computed_ones(kind, size, pool_size, stride,
                                               numpy_backend) -> None:
    numbers = pool_numbers(kind, size, pool_size, stride, seed=0)
    text = explain_pool(kind, size, pool_size, stride, seed=0)
    lines = text.splitlines()
    decimals = 0 if kind == "max" else (2 if pool_size == 2 else 3)
    tolerance = 0.5 * 10 ** -decimals
    np.testing.assert_array_equal(_grid_after(lines, "x"), numbers.x)
    np.testing.assert_allclose(_grid_after(lines, "y"), numbers.y, atol=tolerance)
    np.testing.assert_array_equal(_grid_after(lines, "dy"), numbers.dy)
    np.testing.assert_allclose(_grid_after(lines, "dx"), numbers.dx, atol=tolerance)
    if kind == "max":
        for (i, j), (row, column) in zip(np.ndindex(numbers.y.shape),
                                         numbers.winners.reshape(-1, 2)):
            assert f"dy[{i}, {j}] = {numbers.dy[i, j]} -> dx[{row}, {column}]" in text
            assert f"max {numbers.y[i, j]} at x[{row}, {column}]" in text
    assert "DIFFERENT" not in text
    assert "reference loops: y same" in text


def test_a_tie_is_named(numpy_backend) -> None:
    text = explain_pool("max", 4, 2, None, seed=0)
    assert "(a tie with x[3, 2]: the first in row-major order wins)" in text


def test_default_backend_agrees() -> None:
    with using_backend(None) as name:
        for kind in ("max", "average"):
            text = explain_pool(kind, 5, 3, 1)
            assert re.search(f"{name} backend: y same[^;]*, dx same", text)


def test_a_broken_kernel_shows(monkeypatch, numpy_backend) -> None:
    real = reference.max_pool2d_backward
    monkeypatch.setattr(reference, "max_pool2d_backward", lambda dy, cache: real(dy, cache) * 0)
    assert "reference loops: y same, dx DIFFERENT" in explain_pool()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        explain_pool("min")
    with pytest.raises(ValueError, match="explain pool wants"):
        explain_pool(size=3, pool_size=4)


def test_cli_explain_pool(capsys, numpy_backend) -> None:
    from minicnn.cli import main

    assert main(["explain", "pool"]) == 0
    assert "Max pooling of a 4x4 input with 2x2 windows, stride 2" in capsys.readouterr().out
    assert main(["explain", "pool", "--kind", "average", "--size", "5", "--pool-size", "3",
                 "--stride", "1", "--seed", "2"]) == 0
    assert "Average pooling of a 5x5 input with 3x3 windows, stride 1" in capsys.readouterr().out
    assert main(["explain", "conv", "--pool-size", "3"]) == 2
    assert "--pool-size is an option of 'explain pool'" in capsys.readouterr().err
