"""``minicnn explain step``: one SGD step of a tiny convnet, checked against central
differences, minicnn's optimizer and (marked ``keras``) Keras with tf.GradientTape."""

from __future__ import annotations

import re

import numpy as np
import pytest

from minicnn.backend import kernels
from minicnn.explain.gradient_check import GradientMismatchError
from minicnn.explain.step import explain_step, keras_differences
from minicnn.explain.step_numbers import (PARAMETER_NAMES, numerical_gradients, training_step,
                                          tiny_convnet_problem)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_step_lowers_the_loss_and_its_gradients_are_right(seed) -> None:
    numbers = training_step(seed)
    assert numbers.loss_after < numbers.loss
    numerical = numerical_gradients(numbers.problem)
    for name in PARAMETER_NAMES:
        np.testing.assert_allclose(numbers.gradients[name], numerical[name], atol=1e-5,
                                   err_msg=name)
        np.testing.assert_array_equal(numbers.by_hand[name], numbers.weights_after[name])
    z, a, pooled, flat, logits, p = numbers.outputs
    assert z.shape == (1, 4, 4, 2) and pooled.shape == (1, 2, 2, 2) and flat.shape == (1, 8)
    np.testing.assert_array_equal(a, np.maximum(z, 0))
    np.testing.assert_allclose(p.sum(), 1, rtol=1e-6)
    label = int(np.argmax(numbers.problem.y_true))
    assert numbers.loss == pytest.approx(-np.log(p[0, label]), rel=1e-5)


def test_the_problem_has_no_kinks() -> None:
    problem = tiny_convnet_problem(0)
    assert set(np.unique(problem.x)) <= {0.0, 1.0}
    assert [w.shape for w in problem.weights] == [(3, 3, 1, 2), (2,), (8, 3), (3,)]


def _row_after(text: str, label: str) -> np.ndarray:
    match = re.search(re.escape(label) + r"\s*\[([-\d. ]+)\]", text)
    return np.array([float(value) for value in match.group(1).split()])


def test_printed_numbers_are_the_computed_ones() -> None:
    numbers = training_step(0)
    text = explain_step(0)
    assert f"= {numbers.loss:.4f}" in text
    assert f"= {numbers.loss_after:.4f}, lower than {numbers.loss:.4f}" in text
    np.testing.assert_allclose(_row_after(text, "p"), numbers.outputs[5][0], atol=5e-5)
    np.testing.assert_allclose(_row_after(text, "db"), numbers.gradients["dense/bias"], atol=5e-5)
    np.testing.assert_allclose(_row_after(text, "dbias"), numbers.gradients["conv2d/bias"],
                               atol=5e-5)
    np.testing.assert_allclose(_row_after(text, "d flat"), numbers.upstream[3][0], atol=5e-5)
    assert "minicnn.optimizers.SGD's update equals w - lr * g by hand for all four " \
           "parameters: same." in text


def test_a_broken_convolution_gradient_fails_loudly(monkeypatch) -> None:
    module = kernels()
    real = module.conv2d_backward

    def wrong(dy, cache, need_input_grad=True):
        dx, dkernel, dbias = real(dy, cache, need_input_grad)
        return dx, dkernel * 1.01, dbias

    monkeypatch.setattr(module, "conv2d_backward", wrong)
    with pytest.raises(GradientMismatchError, match="conv2d/kernel"):
        explain_step(0)


@pytest.mark.keras
def test_the_step_agrees_with_keras() -> None:
    from minicnn.interop.keras_step import keras_training_step

    numbers = training_step(0)
    problem = numbers.problem
    result = keras_training_step(problem.weights, problem.x, problem.y_true,
                                 numbers.learning_rate)
    differences = keras_differences(numbers, result)
    assert max(differences.values()) <= 1e-5, differences
    assert result["loss_after"] < result["loss"]
    text = explain_step(0, keras=True)
    assert "all within float32 round-off" in text


def test_cli_explain_step(capsys) -> None:
    from minicnn.cli import main

    assert main(["explain", "step", "--seed", "1"]) == 0
    assert "lower than" in capsys.readouterr().out
    assert main(["explain", "step", "--backward"]) == 2
    assert "--backward is an option of 'explain conv'" in capsys.readouterr().err
