"""The compiled state in Keras's files: ``compile_config`` / ``training_config`` and the
optimizer's variables, written from a minicnn model and read back into one.

Keras 3 keeps the optimizer's variables in the order of ``optimizer.variables``: the
iteration count (int64), the learning rate (float32), then the slots over the model's
trainable variables (:meth:`minicnn.optimizers.Optimizer.get_state` lists them in that
order).  A file whose optimizer does not fit the model (another optimizer, or other
trainable weights) loads without the optimizer state, with a warning, as in Keras.
"""

from __future__ import annotations

import warnings

import numpy as np

from minicnn import losses, metrics, optimizers
from minicnn.naming import to_snake_case


def _keras_entry(module: str, class_name: str, config: dict, legacy: bool) -> dict:
    if legacy:
        return {"class_name": class_name, "config": config}
    return {"module": module, "class_name": class_name, "config": config,
            "registered_name": None}


def keras_loss(loss, legacy: bool = False):
    """Keras's name for the loss (``"binary_crossentropy"``) when it has its default
    arguments, otherwise its serialized class."""
    if loss.get_config() == type(loss)().get_config():
        return to_snake_case(type(loss).__name__)
    return _keras_entry("keras.losses", type(loss).__name__, loss.get_config(), legacy)


def compile_config(model, legacy: bool = False) -> dict | None:
    """Keras's ``compile_config`` (``.keras``) or ``training_config`` (legacy ``.h5``)."""
    if model.optimizer is None:
        return None
    optimizer = _keras_entry("keras.optimizers", type(model.optimizer).__name__,
                             model.optimizer.get_config(), legacy)
    config = {"loss": keras_loss(model.loss, legacy), "loss_weights": None,
              "metrics": [metric.identifier for metric in model.metrics],
              "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1,
              "jit_compile": False}
    if legacy:
        config["optimizer_config"] = optimizer
    else:
        config = {"optimizer": optimizer, **config}
    return config


def optimizer_variables(model) -> list[np.ndarray]:
    """``[iterations, learning_rate, *slots]`` as Keras's ``optimizer.variables``."""
    state = model.optimizer.get_state(model.trainable_weights)
    return [np.array(state["iterations"], dtype=np.int64),
            np.array(model.optimizer.learning_rate, dtype=np.float32), *state["slots"]]


def _metric_name(value) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        name = (value.get("config") or {}).get("name")
        for candidate in (name, value.get("class_name")):
            try:
                metrics.get(candidate)
                return candidate
            except (ValueError, TypeError):
                continue
    return None


def compile_from_config(model, config: dict, source: str) -> None:
    """Compile ``model`` as a Keras ``compile_config`` / ``training_config`` says.

    Raises:
        ValueError: an optimizer or loss minicnn does not have (metrics it does not have
            are left out, with a warning).
    """
    optimizer = config.get("optimizer") or config.get("optimizer_config")
    if isinstance(optimizer, dict):
        optimizer = {"class_name": optimizer["class_name"], "config": optimizer.get("config", {})}
    loss = config.get("loss")
    if isinstance(loss, dict):
        loss = {"class_name": loss["class_name"], "config": loss.get("config", {})}
    names = []
    for metric in config.get("metrics") or []:
        name = _metric_name(metric)
        if name is None:
            warnings.warn(f"{source}: metric {metric!r} has no minicnn counterpart; left out",
                          stacklevel=3)
        else:
            names.append(name)
    model.compile(optimizer=optimizers.get(optimizer or "rmsprop"), loss=losses.get(loss),
                  metrics=names)


def restore_optimizer(model, values: list[np.ndarray], source: str) -> None:
    """Put Keras's optimizer variables back; skip them (warning) when they do not fit."""
    slots = values[2:]
    if not slots and (len(values) < 2 or int(values[0]) == 0):
        return  # saved before the optimizer's first step: nothing to restore
    try:
        model.optimizer.set_state({"iterations": int(values[0]), "slots": slots},
                                  model.trainable_weights)
    except ValueError as error:
        warnings.warn(f"{source}: the optimizer state was not restored ({error})", stacklevel=3)
