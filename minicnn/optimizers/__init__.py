"""Optimizers with exactly Keras 3's update rules (keras/src/optimizers/sgd.py, rmsprop.py, adam.py).

An optimizer updates ``Variable.value`` in place from ``Variable.grad``.  Its state
(the "slots": momentum, velocity, ...) lives in the optimizer, in a dict keyed by the
Variable object itself, created as zeros the first time a variable is seen (Keras
builds all its slots with ``initializer="zeros"``, RMSprop's velocity included).

Arithmetic follows Keras: hyperparameters are cast to the variable's dtype
(float32), and each update uses the same operations in the same order, so results
agree with Keras to float32 round-off.  The updates run in place with NumPy ufuncs
(``out=``) into one reused scratch buffer, since this is the training hot path.

Keras 3 defaults that minicnn keeps: ``weight_decay=None``, ``clipnorm``,
``clipvalue`` and ``global_clipnorm`` None, ``use_ema=False``,
``loss_scale_factor=None``, ``gradient_accumulation_steps=None``.  Those arguments are
accepted at those values (so a Keras ``get_config()`` round-trips) and refused with
``ValueError`` otherwise.  ``lr=``, Keras 2's name for ``learning_rate`` (the book's
``optimizers.RMSprop(lr=1e-4)``), is accepted with a ``DeprecationWarning``.
"""

from __future__ import annotations

from minicnn.optimizers.adam import Adam
from minicnn.optimizers.base import Optimizer
from minicnn.optimizers.rmsprop import RMSprop
from minicnn.optimizers.sgd import SGD

_OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam}
_CLASSES: dict[str, type[Optimizer]] = {"SGD": SGD, "RMSprop": RMSprop, "Adam": Adam}
# A flat get_config() names no class; these keys belong to exactly one optimizer each.
_DISTINCTIVE_KEYS = {"nesterov": SGD, "rho": RMSprop, "centered": RMSprop,
                     "beta_1": Adam, "beta_2": Adam, "amsgrad": Adam}


def get(identifier: str | dict | Optimizer) -> Optimizer:
    """Resolve ``"sgd"``, ``"rmsprop"`` or ``"adam"`` (any case) with default arguments,
    a config dict (see :func:`from_config`), or return an Optimizer instance unchanged.

    Raises:
        ValueError: an unknown name.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return from_config(identifier)
    if isinstance(identifier, str) and identifier.lower() in _OPTIMIZERS:
        return _OPTIMIZERS[identifier.lower()]()
    raise ValueError(
        f"unknown optimizer {identifier!r}; expected one of {sorted(_OPTIMIZERS)} "
        "(any case) or an Optimizer instance")


def serialize(optimizer: Optimizer) -> dict:
    """``{"class_name": "Adam", "config": optimizer.get_config()}``, as Keras's serialize."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def from_config(config: dict) -> Optimizer:
    """Rebuild an optimizer from :func:`serialize`'s dict or from a plain ``get_config()``.

    A plain config is recognised by the hyperparameters only one optimizer has
    (``nesterov``: SGD, ``rho``/``centered``: RMSprop, ``beta_1``/``amsgrad``: Adam).

    Raises:
        ValueError: the class cannot be told from ``config``.
    """
    if "class_name" in config:
        cls = _CLASSES.get(config["class_name"]) or _OPTIMIZERS.get(str(config["class_name"]).lower())
        if cls is None:
            raise ValueError(f"unknown optimizer class {config['class_name']!r}; expected one "
                             f"of {sorted(_CLASSES)}")
        return cls.from_config(dict(config.get("config", {})))
    classes = {_DISTINCTIVE_KEYS[key] for key in config if key in _DISTINCTIVE_KEYS}
    if len(classes) != 1:
        raise ValueError(
            f"cannot tell which optimizer this config is for (keys {sorted(config)}); "
            "pass optimizers.serialize(optimizer), which names the class")
    return classes.pop().from_config(dict(config))


__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "get", "serialize", "from_config"]
