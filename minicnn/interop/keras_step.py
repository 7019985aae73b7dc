"""The tiny convnet's SGD step of ``minicnn explain step``, computed by Keras.

Keras 3 (TensorFlow backend) runs the same six layers on the same weights and image:
the forward pass layer by layer inside a ``tf.GradientTape``, the categorical
cross-entropy, the tape's gradients, one ``keras.optimizers.SGD`` step, and the loss
after it.  ``explain step --keras`` prints how far minicnn's numbers are from these.

Keras and TensorFlow are imported inside the function only.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def keras_training_step(weights: list[np.ndarray], x: np.ndarray, y_true: np.ndarray,
                        learning_rate: float) -> dict[str, Any]:
    """One SGD step of Conv2D 3x3 -> ReLU -> MaxPooling2D 2x2 -> Flatten -> Dense -> softmax.

    Args:
        weights: Keras's order: conv kernel (3, 3, C, F), conv bias (F,), dense kernel
            (D, K), dense bias (K,).
        x: (N, H, W, C) float32 images; ``y_true``: (N, K) one-hot labels.
        learning_rate: SGD's step size (no momentum).

    Returns:
        ``{"outputs": [six layer outputs], "loss": float, "gradients": [four arrays,
        Keras's order], "weights_after": [four arrays], "loss_after": float}``.
    """
    from minicnn.interop.keras import _import_keras

    keras = _import_keras()
    import tensorflow as tf

    filters = weights[0].shape[-1]
    classes = weights[2].shape[-1]
    layers = keras.layers
    model = keras.Sequential([
        keras.Input(x.shape[1:]),
        layers.Conv2D(filters, (3, 3)),
        layers.Activation("relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(classes),
        layers.Activation("softmax"),
    ])
    model.set_weights([np.asarray(w, np.float32) for w in weights])
    loss_function = keras.losses.CategoricalCrossentropy()
    inputs = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        outputs = []
        value = inputs
        for layer in model.layers:
            value = layer(value)
            outputs.append(value)
        loss = loss_function(tf.constant(y_true, tf.float32), value)
    gradients = tape.gradient(loss, model.trainable_weights)
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
    optimizer.apply_gradients(zip(gradients, model.trainable_weights))
    loss_after = loss_function(tf.constant(y_true, tf.float32), model(inputs))
    return {"outputs": [np.asarray(output) for output in outputs],
            "loss": float(loss),
            "gradients": [np.asarray(gradient) for gradient in gradients],
            "weights_after": [np.asarray(w) for w in model.get_weights()],
            "loss_after": float(loss_after)}
