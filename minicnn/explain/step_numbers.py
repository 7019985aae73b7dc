"""The numbers of one SGD training step of a tiny convnet, computed with minicnn's layers.

The network (the MNIST convnet of *Deep Learning with Python*, first edition, section
5.1, shrunk until every number fits on a line)::

    x (1, 6, 6, 1) -> Conv2D 2 filters 3x3 -> ReLU -> MaxPooling2D 2x2 -> Flatten
      -> Dense 3 -> softmax,  loss = categorical cross-entropy,  w <- w - lr * g

One image, one label.  The layers are minicnn's own (``minicnn.layers``), called one
by one through their public ``forward`` / ``backward``; the optimizer is
``minicnn.optimizers.SGD``.  :func:`numerical_gradients` measures the same gradients
by central differences through float64 copies of the layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FILTERS = 2
CLASSES = 3
INPUT_SHAPE = (6, 6, 1)
LEARNING_RATE = 0.1
PARAMETER_NAMES = ("conv2d/kernel", "conv2d/bias", "dense/kernel", "dense/bias")

# Every derivative must exist for central differences to measure it: no pre-activation
# this close to ReLU's kink at 0, no two pooled values this close to a tie.
MARGIN = 0.05


@dataclass(frozen=True)
class Problem:
    """``x`` (1, 6, 6, 1), ``y_true`` (1, 3) one-hot, ``weights`` in Keras's order:
    conv kernel (3, 3, 1, 2), conv bias (2,), dense kernel (8, 3), dense bias (3,)."""

    x: np.ndarray
    y_true: np.ndarray
    weights: list[np.ndarray]


def _has_kinks(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> bool:
    """Whether a pre-activation lies within MARGIN of 0, or a pooling window's two largest
    positive values within MARGIN of each other (float64 arithmetic)."""
    patches = np.lib.stride_tricks.sliding_window_view(x[0], (3, 3), axis=(0, 1))
    z = np.einsum("ijcab,abcf->ijf", patches, kernel) + bias        # (4, 4, F)
    if np.any(np.abs(z) < MARGIN):
        return True
    a = np.maximum(z, 0)
    windows = a.reshape(2, 2, 2, 2, -1).transpose(0, 2, 4, 1, 3).reshape(2, 2, -1, 4)
    top_two = np.sort(windows, axis=-1)[..., -2:]
    return bool(np.any((top_two[..., 1] > 0) & (top_two[..., 1] - top_two[..., 0] < MARGIN)))


def tiny_convnet_problem(seed: int = 0) -> Problem:
    """Small numbers: pixels 0 or 1, weights with two decimals in [-0.5, 0.5], biases 0.1.

    Drawn again (from the same generator) until the step has no kink within MARGIN, so
    the walk-through's central differences measure true derivatives.
    """
    rng = np.random.default_rng(seed)
    while True:
        x = rng.integers(0, 2, size=(1, *INPUT_SHAPE)).astype(np.float32)
        # "+ 0.0" turns a rounded -0.0 into 0.0, which prints without a sign.
        kernel = (np.round(rng.uniform(-0.5, 0.5, (3, 3, 1, FILTERS)), 2) + 0.0).astype(np.float32)
        conv_bias = np.full(FILTERS, 0.1, np.float32)
        dense_kernel = np.round(rng.uniform(-0.5, 0.5, (4 * FILTERS, CLASSES)), 2) + 0.0
        label = int(rng.integers(0, CLASSES))
        if not _has_kinks(x.astype(np.float64), kernel.astype(np.float64),
                          conv_bias.astype(np.float64)):
            break
    y_true = np.zeros((1, CLASSES), np.float32)
    y_true[0, label] = 1
    return Problem(x, y_true, [kernel, conv_bias, dense_kernel.astype(np.float32),
                               np.full(CLASSES, 0.1, np.float32)])


def tiny_convnet_layers(weights: list[np.ndarray], dtype: str = "float32") -> list:
    """Built minicnn layers holding ``weights``: Conv2D, ReLU, MaxPooling2D, Flatten,
    Dense, softmax (as ``Activation`` layers, so each step of the walk is one layer)."""
    from minicnn.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D

    layers = [Conv2D(FILTERS, (3, 3), name="conv2d", dtype=dtype),
              Activation("relu", name="relu", dtype=dtype),
              MaxPooling2D((2, 2), name="max_pooling2d", dtype=dtype),
              Flatten(name="flatten", dtype=dtype),
              Dense(CLASSES, name="dense", dtype=dtype),
              Activation("softmax", name="softmax", dtype=dtype)]
    shape: tuple = (None, *INPUT_SHAPE)
    for layer in layers:
        layer.build(shape)
        shape = layer.output_shape
    layers[0].set_weights([w.astype(dtype) for w in weights[:2]])
    layers[4].set_weights([w.astype(dtype) for w in weights[2:]])
    return layers


def forward(layers: list, x: np.ndarray) -> list[np.ndarray]:
    """Every layer's output in turn: [z, relu(z), pooled, flat, logits, probabilities]."""
    outputs = []
    for layer in layers:
        x = layer.forward(x, training=True)
        outputs.append(x)
    return outputs


def loss_and_logit_gradient(y_true: np.ndarray, logits: np.ndarray) -> tuple[float, np.ndarray]:
    """Cross-entropy of ``softmax(logits)`` and its gradient ``(softmax(logits) - y_true) / N``,
    computed from the logits as Keras does for a softmax output (minicnn.losses)."""
    from minicnn.losses import CategoricalCrossentropy

    value, gradient = CategoricalCrossentropy().value_and_gradient_from_logits(
        y_true, logits, "softmax")
    return float(value), gradient


@dataclass(frozen=True)
class StepNumbers:
    """Everything ``explain step`` prints (float32 unless said otherwise).

    ``outputs``: [z (1, 4, 4, 2), a = relu(z), pooled (1, 2, 2, 2), flat (1, 8),
    logits (1, 3), p (1, 3)]; ``upstream``: the gradient arriving at each of those,
    d loss / d output, same shapes (``upstream[5]`` is None: the loss differentiates the
    logits directly); ``gradients`` and the weights by :data:`PARAMETER_NAMES`.
    """

    problem: Problem
    learning_rate: float
    outputs: list[np.ndarray]
    loss: float
    upstream: list[np.ndarray | None]
    gradients: dict[str, np.ndarray]
    by_hand: dict[str, np.ndarray]
    weights_after: dict[str, np.ndarray]
    outputs_after: list[np.ndarray]
    loss_after: float


def training_step(seed: int = 0, learning_rate: float = LEARNING_RATE) -> StepNumbers:
    """One SGD step through minicnn's layers and optimizer, every value kept."""
    from minicnn.optimizers import SGD

    problem = tiny_convnet_problem(seed)
    layers = tiny_convnet_layers(problem.weights)
    conv, relu, pool, flatten, dense, _ = layers
    outputs = forward(layers, problem.x)
    loss, dlogits = loss_and_logit_gradient(problem.y_true, outputs[4])
    # Backward, last layer first; the softmax's own backward is skipped because the
    # loss already gave d loss / d logits (Keras's TensorFlow backend does the same).
    dflat = dense.backward(dlogits)
    dpooled = flatten.backward(dflat)
    da = pool.backward(dpooled)
    dz = relu.backward(da)
    conv.backward(dz, need_input_grad=False)  # the first layer: no input gradient needed
    variables = [conv.kernel, conv.bias, dense.kernel, dense.bias]
    gradients = {name: variable.grad.copy() for name, variable in zip(PARAMETER_NAMES, variables)}
    dtype = np.float32
    by_hand = {name: variable.value - dtype(learning_rate) * variable.grad
               for name, variable in zip(PARAMETER_NAMES, variables)}
    SGD(learning_rate=learning_rate).apply_gradients(variables)
    outputs_after = forward(layers, problem.x)
    loss_after, _ = loss_and_logit_gradient(problem.y_true, outputs_after[4])
    weights_after = {name: variable.value.copy()
                     for name, variable in zip(PARAMETER_NAMES, variables)}
    return StepNumbers(problem, learning_rate, outputs, loss,
                       [dz, da, dpooled, dflat, dlogits, None], gradients, by_hand,
                       weights_after, outputs_after, loss_after)


def numerical_gradients(problem: Problem, epsilon: float = 1e-4) -> dict[str, np.ndarray]:
    """d loss / d each parameter by central differences through float64 layers."""
    from minicnn.explain.gradient_check import central_differences

    weights = [w.astype(np.float64) for w in problem.weights]
    x = problem.x.astype(np.float64)
    y_true = problem.y_true.astype(np.float64)

    def loss_with(index: int, value: np.ndarray) -> float:
        trial = list(weights)
        trial[index] = value
        layers = tiny_convnet_layers(trial, dtype="float64")
        return loss_and_logit_gradient(y_true, forward(layers, x)[4])[0]

    return {name: central_differences(lambda value, i=index: loss_with(i, value),
                                      weights[index], epsilon)
            for index, name in enumerate(PARAMETER_NAMES)}
