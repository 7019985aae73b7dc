"""The base of every optimizer: slots per variable, Keras's shared arguments, the step count.

See :mod:`minicnn.optimizers` for the update rules and where they come from.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from minicnn.variables import Variable


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


class DefaultRate(float):
    """A subclass's default learning rate, told apart from one the caller passed.

    Only ``lr=`` needs the difference: ``RMSprop(lr=1e-4)`` is the book's spelling
    (Keras 2), while ``RMSprop(learning_rate=1e-3, lr=1e-4)`` gives the rate twice.
    """


def _learning_rate_from_lr(owner: str, learning_rate: float, keras_options: dict) -> float:
    """``lr``, the old name of ``learning_rate`` (Keras 2), with its deprecation warning.

    Raises:
        ValueError: both ``lr`` and ``learning_rate`` were given.
    """
    if "lr" not in keras_options:
        return learning_rate
    lr = keras_options.pop("lr")
    if not isinstance(learning_rate, DefaultRate):
        raise ValueError(f"{owner}: both learning_rate={float(learning_rate)!r} and lr={lr!r} "
                         "were given; lr is the old name of learning_rate: pass only "
                         "learning_rate")
    # stacklevel 4: the caller of RMSprop(...), past this function and two __init__s.
    warnings.warn("The `lr` argument is deprecated, use `learning_rate` instead.",
                  DeprecationWarning, stacklevel=4)
    return lr


class Optimizer:
    """Base class: slots per variable, the iteration counter and the scratch buffers.

    Subclasses define ``slot_groups()`` (the slot names, grouped as Keras creates
    them, which fixes the order of ``get_state()["slots"]``) and ``_update``.
    """

    def __init__(self, learning_rate: float, name: str | None = None, **keras_options) -> None:
        owner = type(self).__name__
        learning_rate = _learning_rate_from_lr(owner, learning_rate, keras_options)
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
