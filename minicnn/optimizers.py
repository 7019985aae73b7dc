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
``ValueError`` otherwise.
"""

from __future__ import annotations

import math

import numpy as np

from minicnn.backend import kernels
from minicnn.variables import Variable

# Keras base-optimizer arguments and the (default) values minicnn supports.
_KERAS_BASE_DEFAULTS = {
    "weight_decay": None,
    "clipnorm": None,
    "clipvalue": None,
    "global_clipnorm": None,
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}


def _check_number(owner: str, name: str, value, low: float | None = None,
                  high: float | None = None, high_inclusive: bool = True) -> float:
    """Validate a float hyperparameter, quoting the received value on error."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)):
        raise ValueError(f"{owner}: {name} must be a finite number, received {value!r}")
    value = float(value)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if (low is not None and value < low) or too_high:
        closing = "]" if high_inclusive else ")"
        raise ValueError(f"{owner}: {name} must be in [{low}, {high}{closing}, received {value!r}")
    return value


class Optimizer:
    """Base class: slots per variable, the iteration counter and the scratch buffers.

    Subclasses define ``slot_groups()`` (the slot names, grouped as Keras creates
    them, which fixes the order of ``get_state()["slots"]``) and ``_update``.
    """

    def __init__(self, learning_rate: float, name: str | None = None, **keras_options) -> None:
        owner = type(self).__name__
        unknown = sorted(set(keras_options) - set(_KERAS_BASE_DEFAULTS))
        if unknown:
            raise ValueError(f"{owner}: argument(s) not recognized: {unknown}")
        for option, value in keras_options.items():
            if value != _KERAS_BASE_DEFAULTS[option]:
                raise ValueError(
                    f"{owner}: {option}={value!r} is not supported by minicnn; only Keras's "
                    f"default {option}={_KERAS_BASE_DEFAULTS[option]!r} is")
        self.name = name or owner.lower()
        self.learning_rate = learning_rate
        self.iterations = 0
        self._slots: dict[Variable, dict[str, np.ndarray]] = {}
        self._variables: list[Variable] = []  # in the order first seen: the state order
        self._scratch: dict[np.dtype, np.ndarray] = {}

    # -- learning rate ------------------------------------------------------------------------

    @property
    def learning_rate(self) -> float:
        """The learning rate (a float; callbacks may assign a new one)."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate = _check_number(type(self).__name__, "learning_rate", value, low=0.0)

    # -- the update -----------------------------------------------------------------------

    def slot_groups(self) -> list[tuple[str, ...]]:
        """Slot names, in groups; within a group Keras interleaves them per variable."""
        return []

    def apply_gradients(self, variables: list[Variable]) -> None:
        """Update each variable in place from its ``grad``, then count one iteration.

        Slots of a variable seen for the first time are created as zeros.  An empty
        list changes nothing (Keras does not count the iteration either).
        """
        variables = list(variables)
        if not variables:
            return
        for variable in variables:
            slots = self._slots.get(variable)
            if slots is None:
                slots = self._create_slots(variable)
            gradient = variable.grad
            if gradient.shape != variable.value.shape:
                raise ValueError(
                    f"{self.name}: gradient of {variable.name!r} has shape {gradient.shape}, "
                    f"the variable {variable.value.shape}")
            # Keras casts the gradient to the variable's dtype.
            gradient = np.asarray(gradient, dtype=variable.value.dtype)
            first, second = self._scratch_views(variable.value)
            self._update(variable.value, gradient, slots, first, second)
        self.iterations += 1

    def _update(self, value: np.ndarray, gradient: np.ndarray, slots: dict[str, np.ndarray],
                scratch: np.ndarray, scratch_2: np.ndarray) -> None:
        raise NotImplementedError

    def _create_slots(self, variable: Variable) -> dict[str, np.ndarray]:
        slots = {name: np.zeros_like(variable.value)
                 for group in self.slot_groups() for name in group}
        self._slots[variable] = slots
        self._variables.append(variable)
        return slots

    def _scratch_views(self, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two scratch arrays shaped like ``value``, views into one reused buffer."""
        buffer = self._scratch.get(value.dtype)
        if buffer is None or buffer.size < 2 * value.size:
            buffer = np.empty(2 * value.size, dtype=value.dtype)
            self._scratch[value.dtype] = buffer
        return (buffer[:value.size].reshape(value.shape),
                buffer[value.size:2 * value.size].reshape(value.shape))

    # -- state ----------------------------------------------------------------------------

    def _slot_layout(self, variables: list[Variable]) -> list[tuple[str, Variable]]:
        """(slot name, variable) pairs in Keras's ``optimizer.variables[2:]`` order."""
        return [(name, variable)
                for group in self.slot_groups()
                for variable in variables
                for name in group]

    def get_state(self, variables: list[Variable] | None = None) -> dict:
        """The optimizer's state: ``{"iterations": int, "slots": [arrays]}`` (copies).

        Args:
            variables: the variables to list the slots of, in this order (a model
                passes its trainable weights); default: every variable the optimizer
                has seen, in the order it first saw them.  A variable not updated yet
                contributes zeros, the value its slots would start from.

        The slots follow Keras's order: each slot group in turn (Adam: momentum and
        velocity interleaved per variable, then velocity_hat; RMSprop: all
        velocities, then momentums, then average gradients), which is Keras's
        ``optimizer.variables[2:]`` (after iterations and learning_rate).
        """
        variables = self._variables if variables is None else list(variables)
        slots = []
        for name, variable in self._slot_layout(variables):
            variable_slots = self._slots.get(variable)
            slots.append(variable_slots[name].copy() if variable_slots is not None
                         else np.zeros_like(variable.value))
        return {"iterations": int(self.iterations), "slots": slots}

    def set_state(self, state: dict, variables: list[Variable]) -> None:
        """Restore ``get_state()``'s result onto ``variables`` (same order as when saved).

        Raises:
            ValueError: the number of slot arrays or a shape does not fit ``variables``.
        """
        variables = list(variables)
        layout = self._slot_layout(variables)
        arrays = list(state["slots"])
        if len(arrays) != len(layout):
            raise ValueError(
                f"{self.name}: state holds {len(arrays)} slot arrays, {len(variables)} "
                f"variables need {len(layout)} ({[g for g in self.slot_groups()]} each)")
        for (name, variable), array in zip(layout, arrays):
            if np.shape(array) != variable.value.shape:
                raise ValueError(
                    f"{self.name}: saved {name} slot has shape {np.shape(array)}, variable "
                    f"{variable.name!r} has shape {variable.value.shape}")
        self._slots = {}
        self._variables = []
        for variable in variables:
            self._create_slots(variable)
        for (name, variable), array in zip(layout, arrays):
            self._slots[variable][name][...] = array
        self.iterations = int(state["iterations"])

    # -- config ---------------------------------------------------------------------------

    def get_config(self) -> dict:
        """Constructor arguments (Keras's keys), enough for ``from_config`` to rebuild it."""
        return {"name": self.name, "learning_rate": self.learning_rate, **_KERAS_BASE_DEFAULTS}

    @classmethod
    def from_config(cls, config: dict) -> "Optimizer":
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.get_config()}>"


class SGD(Optimizer):
    """Gradient descent, optionally with (Nesterov) momentum.

    Update for a parameter ``w`` with gradient ``g`` (keras/src/optimizers/sgd.py)::

        momentum == 0:   w <- w - learning_rate * g
        momentum  > 0:   v <- momentum * v - learning_rate * g      (v starts at 0)
                         w <- w + v
        nesterov:        v <- momentum * v - learning_rate * g
                         w <- w + momentum * v - learning_rate * g
    """

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, name: str | None = None, **keras_options) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **keras_options)
        self.momentum = _check_number("SGD", "momentum", momentum, 0.0, 1.0)
        self.nesterov = bool(nesterov)

    def slot_groups(self) -> list[tuple[str, ...]]:
        return [("momentum",)] if self.momentum != 0 else []

    def _update(self, value, gradient, slots, scratch, scratch_2):
        dtype = value.dtype.type
        # scratch = learning_rate * g
        np.multiply(gradient, dtype(self.learning_rate), out=scratch)
        if self.momentum == 0:
            np.subtract(value, scratch, out=value)
            return
        velocity = slots["momentum"]
        np.multiply(velocity, dtype(self.momentum), out=velocity)
        np.subtract(velocity, scratch, out=velocity)
        if self.nesterov:
            np.multiply(velocity, dtype(self.momentum), out=scratch_2)
            np.subtract(scratch_2, scratch, out=scratch_2)
            np.add(value, scratch_2, out=value)
        else:
            np.add(value, velocity, out=value)

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running root mean square of recent gradients.

    Update (keras/src/optimizers/rmsprop.py), all slots starting at 0::

        v <- rho * v + (1 - rho) * g^2
        centered:  a <- rho * a + (1 - rho) * g
                   denominator = v - a^2 + epsilon
        otherwise: denominator = v + epsilon
        increment = learning_rate * g / sqrt(denominator)     # epsilon inside the sqrt
        momentum > 0:  m <- momentum * m + increment;  w <- w - m
        otherwise:     w <- w - increment
    """

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, name: str | None = None,
                 **keras_options) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **keras_options)
        self.rho = _check_number("RMSprop", "rho", rho, 0.0, 1.0)
        self.momentum = _check_number("RMSprop", "momentum", momentum, 0.0)
        self.epsilon = _check_number("RMSprop", "epsilon", epsilon, 0.0)
        self.centered = bool(centered)

    def slot_groups(self) -> list[tuple[str, ...]]:
        groups = [("velocity",)]
        if self.momentum > 0:
            groups.append(("momentum",))
        if self.centered:
            groups.append(("average_gradient",))
        return groups

    def _update(self, value, gradient, slots, scratch, scratch_2):
        dtype = value.dtype.type
        rho, one_minus_rho = dtype(self.rho), dtype(1 - self.rho)
        velocity = slots["velocity"]
        compiled = kernels().rmsprop_update
        if (compiled is not None and not self.centered and self.momentum == 0
                and value.flags.c_contiguous and gradient.flags.c_contiguous):
            # The same operations in one compiled pass (bit for bit the lines below).
            compiled(value.reshape(-1), gradient.reshape(-1), velocity.reshape(-1),
                     dtype(self.learning_rate), rho, one_minus_rho, dtype(self.epsilon))
            return
        # v <- rho v + (1 - rho) g^2
        np.multiply(velocity, rho, out=velocity)
        np.multiply(gradient, gradient, out=scratch)
        np.multiply(scratch, one_minus_rho, out=scratch)
        np.add(velocity, scratch, out=velocity)
        if self.centered:
            average = slots["average_gradient"]
            np.multiply(average, rho, out=average)
            np.multiply(gradient, one_minus_rho, out=scratch)
            np.add(average, scratch, out=average)
            # denominator = (v - a^2) + epsilon
            np.multiply(average, average, out=scratch)
            np.subtract(velocity, scratch, out=scratch)
            np.add(scratch, dtype(self.epsilon), out=scratch)
        else:
            np.add(velocity, dtype(self.epsilon), out=scratch)
        np.sqrt(scratch, out=scratch)
        # increment = (learning_rate * g) / sqrt(denominator)
        np.multiply(gradient, dtype(self.learning_rate), out=scratch_2)
        np.divide(scratch_2, scratch, out=scratch_2)
        if self.momentum > 0:
            momentum = slots["momentum"]
            np.multiply(momentum, dtype(self.momentum), out=momentum)
            np.add(momentum, scratch_2, out=momentum)
            np.subtract(value, momentum, out=value)
        else:
            np.subtract(value, scratch_2, out=value)

    def get_config(self) -> dict:
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adam(Optimizer):
    """Adam, with Keras's bias correction folded into the step size.

    Update (keras/src/optimizers/adam.py), ``t = iterations + 1`` (the step being
    taken, counted from 1), ``m`` and ``v`` starting at 0::

        alpha = learning_rate * sqrt(1 - beta_2^t) / (1 - beta_1^t)
        m <- m + (g - m) * (1 - beta_1)
        v <- v + (g^2 - v) * (1 - beta_2)
        amsgrad:  v_hat <- max(v_hat, v), and v_hat replaces v below
        w <- w - m * alpha / (sqrt(v) + epsilon)                # epsilon outside the sqrt

    Because the correction multiplies the step rather than dividing ``m`` and ``v``,
    ``epsilon`` is added to the uncorrected ``sqrt(v)`` ("epsilon hat" of Kingma & Ba).
    """

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, name: str | None = None,
                 **keras_options) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **keras_options)
        self.beta_1 = _check_number("Adam", "beta_1", beta_1, 0.0, 1.0, high_inclusive=False)
        self.beta_2 = _check_number("Adam", "beta_2", beta_2, 0.0, 1.0, high_inclusive=False)
        self.epsilon = _check_number("Adam", "epsilon", epsilon, 0.0)
        self.amsgrad = bool(amsgrad)

    def slot_groups(self) -> list[tuple[str, ...]]:
        groups = [("momentum", "velocity")]
        if self.amsgrad:
            groups.append(("velocity_hat",))
        return groups

    def _update(self, value, gradient, slots, scratch, scratch_2):
        dtype = value.dtype.type
        # The scalars in the variable's dtype, in Keras's order of operations.
        step = dtype(self.iterations + 1)
        beta_1_power = np.power(dtype(self.beta_1), step)
        beta_2_power = np.power(dtype(self.beta_2), step)
        alpha = dtype(self.learning_rate) * np.sqrt(dtype(1) - beta_2_power) \
            / (dtype(1) - beta_1_power)
        momentum, velocity = slots["momentum"], slots["velocity"]
        # m <- m + (g - m)(1 - beta_1)
        np.subtract(gradient, momentum, out=scratch)
        np.multiply(scratch, dtype(1 - self.beta_1), out=scratch)
        np.add(momentum, scratch, out=momentum)
        # v <- v + (g^2 - v)(1 - beta_2)
        np.multiply(gradient, gradient, out=scratch)
        np.subtract(scratch, velocity, out=scratch)
        np.multiply(scratch, dtype(1 - self.beta_2), out=scratch)
        np.add(velocity, scratch, out=velocity)
        if self.amsgrad:
            velocity_hat = slots["velocity_hat"]
            np.maximum(velocity_hat, velocity, out=velocity_hat)
            velocity = velocity_hat
        # w <- w - (m alpha) / (sqrt(v) + epsilon)
        np.sqrt(velocity, out=scratch)
        np.add(scratch, dtype(self.epsilon), out=scratch)
        np.multiply(momentum, alpha, out=scratch_2)
        np.divide(scratch_2, scratch, out=scratch_2)
        np.subtract(value, scratch_2, out=value)

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


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
