"""``minicnn explain conv --backward``: every gradient it prints is what the kernels compute.

The numbers come from functions that return arrays (minicnn.explain.conv_gradients);
these tests hold them against the reference kernels, the numpy and numba backends and
central differences, for strides 1 and 2 and both paddings, parse the printed grids
back, and break a kernel on purpose to see the walk-through refuse it.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from minicnn.backend import kernels, using_backend
from minicnn.explain import conv_gradients
from minicnn.explain.conv_backward import explain_conv_backward
from minicnn.explain.conv_gradients import (check_gradients, conv_backward_numbers, crop, dilate,
                                            kernel_gradients, numerical_gradients)
from minicnn.explain.gradient_check import GradientMismatchError
from minicnn.kernels import reference

CASES = [(size, kernel_size, stride, padding, channels)
         for size, kernel_size in ((5, 3), (6, 3), (4, 2))
         for stride in (1, 2) for padding in ("valid", "same") for channels in (1, 2)]


def parse_grid(lines: list[str], title: str) -> np.ndarray:
    """The integer grid printed under the column titled ``title`` (first occurrence)."""
    for index, line in enumerate(lines[:-1]):
        for match in re.finditer(re.escape(title) + r"(?=\s|$)", line):
            column = match.start()
            rows = []
            for row_line in lines[index + 1:]:
                row = re.match(r"\[([-\d ]+)\]", row_line[column:])
                if not row:
                    break
                rows.append([int(value) for value in row.group(1).split()])
            if rows:
                return np.array(rows)
    raise AssertionError(f"no grid titled {title!r}")


@pytest.mark.parametrize("size, kernel_size, stride, padding, channels", CASES)
def test_hand_gradients_equal_the_kernels(size, kernel_size, stride, padding, channels,
                                          numpy_backend) -> None:
    numbers = conv_backward_numbers(size, kernel_size, stride, padding, channels, seed=2)
    # The two derivations of the input gradient are the same array, cropped or not.
    np.testing.assert_array_equal(numbers.dx_padded_full, numbers.dx_padded_stamps)
    np.testing.assert_array_equal(numbers.dx, crop(numbers.dx_padded_full, numbers.pads, size))
    for module in (reference, kernels()):
        dx, dkernel, dbias = kernel_gradients(module, numbers)
        np.testing.assert_array_equal(dx, numbers.dx)
        np.testing.assert_array_equal(dkernel, numbers.dkernel)
        assert dbias == numbers.dbias == numbers.dy.sum()
    dx, dkernel, dbias = numerical_gradients(numbers)
    np.testing.assert_allclose(dx, numbers.dx, atol=1e-8)
    np.testing.assert_allclose(dkernel, numbers.dkernel, atol=1e-8)
    assert dbias == pytest.approx(numbers.dbias, abs=1e-8)


def test_the_kernel_gradient_is_a_correlation_with_the_dilated_dy() -> None:
    numbers = conv_backward_numbers(6, 3, 2, "same", 1, seed=4)
    dilated = dilate(numbers.dy, 2)
    assert dilated.shape == (5, 5) and np.count_nonzero(dilated[1::2]) == 0
    window = numbers.x_padded[..., 0]
    expected = np.array([[np.sum(window[a:a + 5, b:b + 5] * dilated) for b in range(3)]
                         for a in range(3)])
    np.testing.assert_array_equal(numbers.dkernel[..., 0], expected)


@pytest.mark.parametrize("size, kernel_size, stride, padding, channels",
                         [(5, 3, 1, "valid", 1), (5, 3, 2, "same", 1), (6, 3, 2, "valid", 2),
                          (4, 2, 1, "same", 2)])
def test_printed_numbers_are_the_computed_ones(size, kernel_size, stride, padding, channels,
                                               numpy_backend) -> None:
    numbers = conv_backward_numbers(size, kernel_size, stride, padding, channels, seed=0)
    text = explain_conv_backward(size, kernel_size, stride, padding, channels, seed=0)
    lines = text.splitlines()
    assert "sum of dy = " in text and text.split("sum of dy = ")[1].split("\n")[0].endswith(
        f"= {numbers.dbias}.")
    np.testing.assert_array_equal(parse_grid(lines, "dy"), numbers.dy)
    note = "" if channels == 1 else " (channel 0)"
    np.testing.assert_array_equal(parse_grid(lines, "dkernel" + note), numbers.dkernel[..., 0])
    cell_sum = re.search(r"met these cells.*?\n.*?sum [^\n]*= (-?\d+)\n", text, re.S)
    assert int(cell_sum.group(1)) == numbers.dkernel[0, 0, 0]
    padded = numbers.x_padded.shape != numbers.x.shape
    np.testing.assert_array_equal(parse_grid(lines, "= dx" + "_pad" * padded + note),
                                  numbers.dx_padded_full[..., 0])
    final = "dx" + note
    if padded:
        assert "Crop:" in text
        np.testing.assert_array_equal(parse_grid(lines[lines.index(next(
            line for line in lines if "Crop:" in line)):], final), numbers.dx[..., 0])
    if stride > 1:
        np.testing.assert_array_equal(parse_grid(lines, "dy dilated"), dilate(numbers.dy, stride))
    assert "equal to the stamps of step 3" in text
    assert text.count("DIFFERENT") == 0 and "dx same, dkernel same, dbias same" in text
    largest = re.search(r"Largest difference: (.*); all within", text).group(1)
    assert all(float(part.rsplit(" ", 1)[1]) < 1e-6 for part in largest.split("; "))


def test_default_backend_kernels_agree() -> None:
    # The active (default: numba) backend, not only numpy.
    with using_backend(None) as name:
        text = explain_conv_backward(5, 3, 2, "same", 2)
    assert f"{name} backend: dx same, dkernel same, dbias same" in text


def _broken(backward, what: str):
    """``backward`` with one gradient made wrong by one cell."""
    def wrong(dy, cache, need_input_grad=True):
        dx, dkernel, dbias = backward(dy, cache, need_input_grad)
        if what == "dkernel":
            dkernel = dkernel.copy()
            dkernel[0, 0, 0, 0] += 1
        else:
            dx = dx.copy()
            dx[0, -1, -1, 0] -= 1
        return dx, dkernel, dbias
    return wrong


@pytest.mark.parametrize("what", ["dkernel", "dx"])
def test_a_broken_reference_kernel_fails_loudly(monkeypatch, what, numpy_backend) -> None:
    monkeypatch.setattr(reference, "conv2d_backward", _broken(reference.conv2d_backward, what))
    with pytest.raises(GradientMismatchError, match=f"{what} from the reference kernels"):
        explain_conv_backward()


def test_a_broken_backend_kernel_fails_loudly(monkeypatch, numpy_backend) -> None:
    module = kernels()
    monkeypatch.setattr(module, "conv2d_backward", _broken(module.conv2d_backward, "dx"))
    with pytest.raises(GradientMismatchError, match="numpy backend.*central differences"):
        check_gradients(conv_backward_numbers(5, 3, 2, "same", 1, seed=0))


def test_a_broken_hand_computation_fails_loudly(monkeypatch, numpy_backend) -> None:
    real = conv_gradients.input_gradient_by_stamps
    monkeypatch.setattr(conv_gradients, "input_gradient_by_stamps",
                        lambda *arguments: real(*arguments) * 2)
    with pytest.raises(GradientMismatchError, match=r"by hand \(stamps\)"):
        explain_conv_backward()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="explain conv wants"):
        explain_conv_backward(size=4, kernel_size=5)
    with pytest.raises(ValueError, match="padding"):
        explain_conv_backward(padding="full")


def test_cli_explain_conv_backward(capsys, numpy_backend) -> None:
    from minicnn.cli import main

    assert main(["explain", "conv", "--backward", "--stride", "2", "--padding", "same"]) == 0
    out = capsys.readouterr().out
    assert "dy dilated" in out and "Crop:" in out and "all within 1e-06" in out
    assert main(["explain", "conv", "--backward", "--all"]) == 0
    assert "more stamps" not in capsys.readouterr().out
    assert main(["explain", "conv", "--keras"]) == 2
    assert "--keras is an option of 'explain step'" in capsys.readouterr().err
