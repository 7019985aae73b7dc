"""Loss functions with Keras 3's formulas, and their gradients with respect to the predictions.

Every loss is reduced as Keras's default ``reduction="sum_over_batch_size"``: the
per-sample losses are summed and divided by their number, so ``loss(y_true, y_pred)``
is the mean over the batch, and ``loss.gradient(...)`` is the gradient of that mean
(hence the ``1/N`` in every gradient below).

Probabilities are clipped to ``[epsilon, 1 - epsilon]`` (``epsilon = 1e-7``, Keras's
``backend.epsilon()``) before the logarithm, as keras/src/backend/tensorflow/nn.py
does; the gradient through the clip is TensorFlow's: zero where a value was clipped,
passed through where it lies inside the interval or exactly on its ends.

Cached logits.  Keras 3's ``softmax`` and ``sigmoid`` activations attach their input
to their output (``output._keras_logits = x``), and the TensorFlow cross-entropies
then compute the loss *from those logits* (``_get_logits`` sets ``from_logits=True``),
whatever ``from_logits`` says.  So a model ending in ``Dense(10, activation="softmax")``
trained with ``categorical_crossentropy`` is trained on
``logsumexp(z) - z_label``, never on the clipped ``-log(clip(softmax(z)))``: for
extreme logits Keras reports e.g. 200.0 where the clipped formula gives 16.118.  The
cache does not remember *which* activation made it: ``binary_crossentropy`` after a
softmax applies the sigmoid formula to the pre-softmax values, and
``categorical_crossentropy`` after a sigmoid applies the softmax formula.  The model
reproduces this with :meth:`Loss.value_and_gradient_from_logits`; calling a loss on a
plain array of probabilities (as ``keras.losses.*`` on a NumPy array) takes the
clipped path.
"""

from __future__ import annotations

from minicnn.losses.base import EPSILON, LOGIT_CACHING_ACTIVATIONS, Loss
from minicnn.losses.crossentropy import (BinaryCrossentropy, CategoricalCrossentropy,
                                         SparseCategoricalCrossentropy)
from minicnn.losses.mean_squared_error import MeanSquaredError

_LOSSES: dict[str, type[Loss]] = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}
_CLASS_NAMES = {cls.__name__: cls for cls in set(_LOSSES.values())}


def get(identifier: str | dict | Loss) -> Loss:
    """Resolve a loss from its Keras name (or class name), a config dict (see
    :func:`from_config`), or return a Loss instance unchanged.

    Raises:
        ValueError: the name is not one of the known losses.
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        return from_config(identifier)
    if isinstance(identifier, str):
        if identifier in _CLASS_NAMES:
            return _CLASS_NAMES[identifier]()
        key = identifier.lower()
        if key in _LOSSES:
            # Keras names a loss given as a string by that string ("mse" stays "mse").
            return _LOSSES[key](name=key)
    raise ValueError(
        f"unknown loss {identifier!r}; expected one of {sorted(_LOSSES)}, "
        f"{sorted(_CLASS_NAMES)} or a Loss instance")


def serialize(loss: Loss) -> dict:
    """``{"class_name": "CategoricalCrossentropy", "config": loss.get_config()}``, as Keras."""
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def from_config(config: dict) -> Loss:
    """Rebuild a loss from :func:`serialize`'s dict or from a plain ``get_config()``.

    A plain config (Keras's keys, which name no class) is recognised by its keys
    (``ignore_class``: sparse; no ``from_logits``: mean squared error) and, for the
    two that share their keys (categorical and binary cross-entropy), by its name.

    Raises:
        ValueError: the class cannot be told from ``config``.
    """
    if "class_name" in config:
        cls = _CLASS_NAMES.get(config["class_name"]) or _LOSSES.get(str(config["class_name"]).lower())
        if cls is None:
            raise ValueError(f"unknown loss class {config['class_name']!r}; expected one of "
                             f"{sorted(_CLASS_NAMES)}")
        return cls.from_config(dict(config.get("config", {})))
    keys = set(config)
    candidates = {cls for cls in _CLASS_NAMES.values() if set(cls().get_config()) == keys}
    by_name = _LOSSES.get(str(config.get("name", "")).lower())
    if len(candidates) > 1 and by_name in candidates:
        candidates = {by_name}
    if len(candidates) != 1:
        raise ValueError(
            f"cannot tell which loss this config is for ({config!r}); "
            "pass losses.serialize(loss), which names the class")
    return candidates.pop().from_config(dict(config))


__all__ = ["EPSILON", "LOGIT_CACHING_ACTIVATIONS", "Loss", "BinaryCrossentropy",
           "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "MeanSquaredError",
           "get", "serialize", "from_config"]
