"""``minicnn explain step``: one SGD training step of a tiny convnet, every number shown.

    minicnn explain step            # minicnn's layers, forward, loss, backward, update
    minicnn explain step --keras    # the same step in Keras (tf.GradientTape), compared

The forward values and shapes layer by layer, the loss, each layer's gradients (last
layer first), the update ``w <- w - lr * g`` and the loss after the step, which is
lower.  The gradients are checked against central differences in float64 (a wrong one
raises :class:`~minicnn.explain.gradient_check.GradientMismatchError`).  The numbers come
from :mod:`minicnn.explain.step_numbers`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minicnn.explain.conv import _side_by_side
from minicnn.explain.gradient_check import largest_difference, require_close
from minicnn.explain.step_numbers import PARAMETER_NAMES, StepNumbers, numerical_gradients, \
    training_step
from minicnn.explain.text import decimal_grid, indent

# float32 gradients against float64 central differences (step 1e-4): both errors are
# far below this, a wrong gradient far above.
TOLERANCE = 1e-4
# minicnn against Keras: both float32, the same formulas summed in different orders.
KERAS_TOLERANCE = 1e-5


def _maps(array: np.ndarray, title: str, decimals: int) -> list[str]:
    """A (1, H, W, F) array as F grids side by side, one per filter."""
    return _side_by_side([(f"{title}[..., {f}]", decimal_grid(array[0, ..., f], decimals))
                          for f in range(array.shape[-1])])


def _row(array: np.ndarray, decimals: int) -> str:
    return decimal_grid(np.reshape(array, (1, -1)), decimals)[0]


def _shape(array: np.ndarray) -> str:
    return str(tuple(array.shape))


def explain_step(seed: int = 0, keras: bool = False) -> str:
    """One SGD step of Conv2D 3x3 -> ReLU -> MaxPooling2D -> Flatten -> Dense -> softmax.

    Args:
        seed: random seed of the image, the label and the weights.
        keras: also run the step in Keras and print the differences (imports TensorFlow).

    Raises:
        GradientMismatchError: a gradient disagrees with central differences (or, with
            ``keras``, any number disagrees with Keras beyond float32 round-off).
    """
    from minicnn.backend import get_backend_name

    numbers = training_step(seed)
    numerical = numerical_gradients(numbers.problem)
    differences = {name: require_close(f"d loss / d {name}", numbers.gradients[name],
                                       numerical[name], TOLERANCE)
                   for name in PARAMETER_NAMES}
    lines = _forward_lines(numbers, get_backend_name()) + _backward_lines(numbers)
    lines += _update_lines(numbers, differences)
    if keras:
        from minicnn.interop.keras_step import keras_training_step

        problem = numbers.problem
        lines += _keras_lines(numbers, keras_training_step(problem.weights, problem.x,
                                                           problem.y_true, numbers.learning_rate))
    return "\n".join(lines)


def _forward_lines(numbers: StepNumbers, backend: str) -> list[str]:
    problem = numbers.problem
    z, a, pooled, flat, logits, p = numbers.outputs
    kernel, conv_bias, dense_kernel, dense_bias = problem.weights
    label = int(np.argmax(problem.y_true))
    lines = ["One SGD training step of a tiny convnet: the MNIST convnet of *Deep Learning with "
             "Python* (first edition, section 5.1) shrunk until every number fits on a line. "
             f"One 6x6 image of class {label} (of 3), learning rate {numbers.learning_rate}; "
             f"minicnn's own layers on the {backend} backend, float32.", "",
             "Forward", "",
             f"1. The input x {_shape(problem.x)} (pixels 0 or 1) and the convolution's weights, "
             "kernel (3, 3, 1, 2) and bias (2,):"]
    lines += indent(_side_by_side(
        [("x", decimal_grid(problem.x[0, ..., 0], 0))]
        + [(f"kernel[..., 0, {f}]", decimal_grid(kernel[..., 0, f], 2)) for f in range(2)]))
    lines.append(f"   bias {_row(conv_bias, 2)}")
    lines += ["", f"2. conv2d: z[i, j, f] = bias[f] + sum over (a, b) of x[i + a, j + b] * "
              f"kernel[a, b, 0, f]; (6 - 3) // 1 + 1 = 4, so z is {_shape(z)}:"]
    lines += indent(_maps(z, "z", 3))
    lines += ["", f"3. relu: a = max(z, 0), {_shape(a)}: the negative values become 0."]
    lines += indent(_maps(a, "a", 3))
    lines += ["", f"4. max_pooling2d 2x2: the largest value of each 2x2 window, {_shape(pooled)}:"]
    lines += indent(_maps(pooled, "pooled", 3))
    lines += ["", f"5. flatten: {_shape(flat)}, in channels-last order (pooled[0, 0, 0], "
              "pooled[0, 0, 1], pooled[0, 1, 0], ...):", "   " + _row(flat, 3)]
    lines += ["", f"6. dense: logits = flat @ W + b, W {_shape(dense_kernel)}, b "
              f"{_row(dense_bias, 2)}:"]
    lines += indent(_side_by_side([("W", decimal_grid(dense_kernel, 2)),
                                   ("logits", [_row(logits, 3)])]))
    lines += ["", "7. softmax: p_k = exp(logit_k) / sum over j of exp(logit_j):",
              f"   p {_row(p, 4)} (sums to 1)"]
    lines += ["", f"8. loss: categorical cross-entropy with the one-hot label t = "
              f"{_row(problem.y_true, 0)}: -log p[{label}] = -log {p[0, label]:.4f} = "
              f"{numbers.loss:.4f}"]
    return lines


def _backward_lines(numbers: StepNumbers) -> list[str]:
    dz, da, dpooled, dflat, dlogits, _ = numbers.upstream
    g = numbers.gradients
    lines = ["", "Backward: d loss / d each value, last layer first", "",
             "9. softmax and cross-entropy together: d loss / d logits = (p - t) / N, N = 1 "
             "image (Keras computes the loss from the logits too):",
             f"   {_row(dlogits, 4)}",
             "", "10. dense: dW = flat^T (p - t) (8, 3), db = p - t, and the gradient it passes "
             "down, d flat = (p - t) W^T (1, 8):"]
    lines += indent(_side_by_side([("dW", decimal_grid(g["dense/kernel"], 4))]))
    lines += [f"   db     {_row(g['dense/bias'], 4)}", f"   d flat {_row(dflat, 4)}"]
    lines += ["", "11. flatten: the same numbers reshaped back to (1, 2, 2, 2):"]
    lines += indent(_maps(dpooled, "d pooled", 4))
    lines += ["", "12. max_pooling2d: each value goes to its window's winner (the largest a); "
              "the other cells get 0:"]
    lines += indent(_maps(da, "d a", 4))
    lines += ["", "13. relu: d z = d a where z > 0, 0 where z < 0 (the slope of max(z, 0)):"]
    lines += indent(_maps(dz, "d z", 4))
    lines += ["", "14. conv2d: dkernel[a, b, 0, f] = sum over (i, j) of x[i + a, j + b] * "
              "dz[i, j, f], the correlation of x with d z (`minicnn explain conv --backward` "
              "works one through); dbias[f] = sum of d z[..., f]. No input gradient: x is the "
              "data, nothing below it learns."]
    lines += indent(_side_by_side([(f"dkernel[..., 0, {f}]",
                                    decimal_grid(g["conv2d/kernel"][..., 0, f], 4))
                                   for f in range(2)]))
    lines.append(f"   dbias {_row(g['conv2d/bias'], 4)}")
    return lines


def _update_lines(numbers: StepNumbers, differences: dict[str, float]) -> list[str]:
    rate = numbers.learning_rate
    kernel = numbers.problem.weights[0]
    same = all(np.array_equal(numbers.by_hand[name], numbers.weights_after[name])
               for name in PARAMETER_NAMES)
    lines = ["", "Update", "",
             f"15. SGD: w <- w - lr * g with lr = {rate}, for every parameter; the conv kernel's "
             "filter 0:"]
    lines += indent(_side_by_side([
        ("w", decimal_grid(kernel[..., 0, 0], 4)),
        (f"- {rate} * g", decimal_grid(numbers.gradients["conv2d/kernel"][..., 0, 0], 4)),
        ("= new w", decimal_grid(numbers.weights_after["conv2d/kernel"][..., 0, 0], 4))]))
    lines.append("   minicnn.optimizers.SGD's update equals w - lr * g by hand for all four "
                 f"parameters: {'same' if same else 'DIFFERENT'}.")
    p_after = numbers.outputs_after[5]
    label = int(np.argmax(numbers.problem.y_true))
    lines += ["", f"16. The loss after the step (forward again with the new weights): p "
              f"{_row(p_after, 4)}, -log {p_after[0, label]:.4f} = {numbers.loss_after:.4f}, "
              f"{'lower' if numbers.loss_after < numbers.loss else 'NOT lower'} than "
              f"{numbers.loss:.4f}."]
    lines += ["", "17. Central differences in float64 (step 1e-4, through float64 copies of the "
              "layers) against the gradients of steps 10 and 14, largest difference: "
              + "; ".join(f"{name} {difference:.1e}" for name, difference in differences.items())
              + f" (all within {TOLERANCE:g})."]
    return lines


def keras_differences(numbers: StepNumbers, result: dict[str, Any]) -> dict[str, float]:
    """Largest |minicnn - Keras| for each layer output, the losses, gradients, new weights."""
    names = ("conv2d", "relu", "max_pooling2d", "flatten", "dense", "softmax")
    differences = {f"{name} output": largest_difference(mine, theirs)
                   for name, mine, theirs in zip(names, numbers.outputs, result["outputs"])}
    differences["loss"] = abs(numbers.loss - result["loss"])
    for index, name in enumerate(PARAMETER_NAMES):
        differences[f"d loss / d {name}"] = largest_difference(numbers.gradients[name],
                                                               result["gradients"][index])
    for index, name in enumerate(PARAMETER_NAMES):
        differences[f"{name} after the step"] = largest_difference(numbers.weights_after[name],
                                                                   result["weights_after"][index])
    differences["loss after the step"] = abs(numbers.loss_after - result["loss_after"])
    return differences


def _keras_lines(numbers: StepNumbers, result: dict[str, Any]) -> list[str]:
    from minicnn.explain.gradient_check import GradientMismatchError

    differences = keras_differences(numbers, result)
    width = max(len(name) for name in differences)
    lines = ["", "18. The same step in Keras 3 (the same six layers and weights, the forward pass "
             "inside tf.GradientTape, keras.optimizers.SGD): largest |minicnn - Keras|:"]
    lines += [f"   {name.ljust(width)}  {difference:.1e}"
              for name, difference in differences.items()]
    worst = max(differences.values())
    if not worst <= KERAS_TOLERANCE:
        raise GradientMismatchError(
            f"minicnn and Keras differ by {worst:.3g} (> {KERAS_TOLERANCE:g}, float32 round-off) "
            f"in {max(differences, key=differences.get)}")
    lines.append(f"   all within float32 round-off ({KERAS_TOLERANCE:g}).")
    return lines
