"""Weight initializers with Keras 3's formulas (keras/src/initializers).

Every initializer is called as ``init(shape, dtype="float32", rng=None)``:

- with ``seed`` given to the constructor, the values are drawn from a fresh
  ``np.random.default_rng(seed)`` each call, so every call returns the same array
  (Keras 3: "a seeded initializer will produce the same random values across
  multiple calls");
- otherwise from ``rng`` when given, else from the engine's global generator
  (:func:`minicnn.random.generator`, reset by ``set_random_seed``).

The values are NumPy's draws, not TensorFlow's: the distributions and their
parameters match Keras, the individual numbers do not (weights move between the two
with ``get_weights``/``set_weights``).
"""

from __future__ import annotations

import math

import numpy as np

# Standard deviation of a standard normal truncated to [-2, 2] (Keras's constant in
# VarianceScaling): dividing the target stddev by it makes the *truncated* samples
# have the target stddev.
TRUNCATED_NORMAL_STDDEV_FACTOR = 0.87962566103423978


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Number of input and output units of a weight of ``shape``, as Keras computes them.

    - Dense kernel (in, out): ``fan_in = in``, ``fan_out = out``;
    - convolution kernel (KH, KW, C, F): ``fan_in = KH*KW*C``, ``fan_out = KH*KW*F``
      (the receptive field size times the input / output depth);
    - a vector (n,): ``fan_in = fan_out = n``; a scalar: 1 and 1.
    """
    shape = tuple(int(dimension) for dimension in shape)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field_size = 1
    for dimension in shape[:-2]:
        receptive_field_size *= dimension
    return shape[-2] * receptive_field_size, shape[-1] * receptive_field_size


class Initializer:
    """Base class: ``init(shape, dtype, rng) -> np.ndarray`` of that shape and dtype."""

    name: str = "initializer"

    def __call__(self, shape: tuple[int, ...], dtype: str | np.dtype = "float32",
                 rng: np.random.Generator | None = None) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        return f"<initializer {self.name} {self.get_config()}>"


class Zeros(Initializer):
    """All zeros (Keras's default bias initializer)."""

    name = "zeros"

    def __call__(self, shape: tuple[int, ...], dtype: str | np.dtype = "float32",
                 rng: np.random.Generator | None = None) -> np.ndarray:
        return np.zeros(tuple(shape), dtype=dtype)


class Ones(Initializer):
    """All ones."""

    name = "ones"

    def __call__(self, shape: tuple[int, ...], dtype: str | np.dtype = "float32",
                 rng: np.random.Generator | None = None) -> np.ndarray:
        return np.ones(tuple(shape), dtype=dtype)


class RandomInitializer(Initializer):
    """An initializer that draws random numbers; holds the optional seed."""

    def __init__(self, seed: int | None = None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(
                f"{self.name}: seed must be None or a non-negative integer, received {seed!r}")
        self.seed = None if seed is None else int(seed)

    def _generator(self, rng: np.random.Generator | None) -> np.random.Generator:
        if self.seed is not None:
            # A fresh generator per call: a seeded initializer repeats its values.
            return np.random.default_rng(self.seed)
        if rng is not None:
            return rng
        from minicnn import random as minicnn_random  # the engine's global generator
        return minicnn_random.generator()

    def get_config(self) -> dict:
        return {"seed": self.seed}


class GlorotUniform(RandomInitializer):
    """Glorot (Xavier) uniform: ``U(-limit, limit)`` with ``limit = sqrt(6 / (fan_in + fan_out))``.

    Keras writes it as VarianceScaling(scale=1, mode="fan_avg", distribution="uniform"):
    ``limit = sqrt(3 * scale / max(1, (fan_in + fan_out) / 2))``, the same number.
    The default kernel initializer of Dense and Conv2D.
    """

    name = "glorot_uniform"

    def __call__(self, shape: tuple[int, ...], dtype: str | np.dtype = "float32",
                 rng: np.random.Generator | None = None) -> np.ndarray:
        fan_in, fan_out = compute_fans(shape)
        limit = math.sqrt(3.0 / max(1.0, (fan_in + fan_out) / 2.0))
        values = self._generator(rng).uniform(-limit, limit, size=tuple(shape))
        return values.astype(dtype)


class HeNormal(RandomInitializer):
    """He normal: a normal truncated at two standard deviations, with std ``sqrt(2 / fan_in)``.

    Keras: VarianceScaling(scale=2, mode="fan_in", distribution="truncated_normal"),
    which draws from ``N(0, sigma^2)`` with ``sigma = sqrt(2 / max(1, fan_in)) / 0.87962566``
    and redraws every sample farther than ``2 sigma`` from 0.  The division by
    0.8796 (the std of a standard normal truncated to [-2, 2]) makes the truncated
    samples' std exactly ``sqrt(2 / fan_in)``; every value lies in ``[-2 sigma, 2 sigma]``.
    """

    name = "he_normal"

    def __call__(self, shape: tuple[int, ...], dtype: str | np.dtype = "float32",
                 rng: np.random.Generator | None = None) -> np.ndarray:
        fan_in, _ = compute_fans(shape)
        stddev = math.sqrt(2.0 / max(1.0, fan_in)) / TRUNCATED_NORMAL_STDDEV_FACTOR
        generator = self._generator(rng)
        values = generator.standard_normal(size=tuple(shape))
        flat = values.reshape(-1)
        # Redraw the samples outside [-2, 2] until none is left (about 4.6 % per round).
        outside = np.flatnonzero(np.abs(flat) > 2.0)
        while outside.size:
            flat[outside] = generator.standard_normal(size=outside.size)
            outside = outside[np.abs(flat[outside]) > 2.0]
        return (values * stddev).astype(dtype)


_INITIALIZERS: dict[str, type[Initializer]] = {
    "glorot_uniform": GlorotUniform,
    "he_normal": HeNormal,
    "zeros": Zeros,
    "ones": Ones,
}
# Keras also accepts the class names.
_CLASS_NAMES = {"GlorotUniform": "glorot_uniform", "HeNormal": "he_normal",
                "Zeros": "zeros", "Ones": "ones"}


def get(identifier: str | dict | Initializer | None) -> Initializer | None:
    """Resolve an initializer from a name, a ``serialize`` dict or an instance.

    ``None`` gives ``None``, as ``keras.initializers.get(None)`` does.

    Raises:
        ValueError: the name is not one of the known initializers.
    """
    if identifier is None or isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, dict):
        class_name = identifier.get("class_name")
        name = _CLASS_NAMES.get(class_name, class_name)
        if name not in _INITIALIZERS:
            raise ValueError(
                f"unknown initializer {identifier!r}; expected class_name one of "
                f"{sorted(_CLASS_NAMES)} or {sorted(_INITIALIZERS)}")
        return _INITIALIZERS[name](**identifier.get("config", {}))
    if isinstance(identifier, str):
        name = _CLASS_NAMES.get(identifier, identifier)
        if name in _INITIALIZERS:
            return _INITIALIZERS[name]()
    raise ValueError(
        f"unknown initializer {identifier!r}; expected one of {sorted(_INITIALIZERS)}, "
        "their class names, or an Initializer instance")


def serialize(initializer: Initializer | None) -> str | dict | None:
    """A JSON-friendly form that ``get`` turns back into an equal initializer.

    The plain name when there is nothing to configure, otherwise
    ``{"class_name": name, "config": {...}}``.
    """
    if initializer is None:
        return None
    config = initializer.get_config()
    if all(value is None for value in config.values()):
        return initializer.name
    return {"class_name": initializer.name, "config": config}
