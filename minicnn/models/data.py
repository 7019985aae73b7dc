"""Where batches come from: arrays, or Keras-style generators and sequences.

``fit``, ``evaluate`` and ``predict`` accept, as Keras does:

* arrays ``x`` (and ``y``), cut into batches of ``batch_size`` (shuffled each epoch in
  ``fit`` when ``shuffle``);
* a *sequence*: an object with ``__len__`` (batches per epoch) and ``__getitem__(i)``
  returning ``(x_batch, y_batch)`` -- ``keras.utils.Sequence``, or the iterators of
  ``minicnn.preprocessing.ImageDataGenerator.flow(...)``; its ``on_epoch_end()`` is
  called after each epoch (that is where such iterators reshuffle);
* a plain iterator or generator yielding ``(x_batch, y_batch)`` (``steps_per_epoch``
  is then required, as in Keras).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minicnn import random as minicnn_random
from minicnn.models.training import (batch_slices, check_features, check_pair,
                                     check_positive_int)


def is_batch_stream(x: Any) -> bool:
    """True for generators, iterators and sequences (not for arrays or lists)."""
    if isinstance(x, (np.ndarray, list, tuple)) or np.isscalar(x):
        return False
    return hasattr(x, "__next__") or (hasattr(x, "__getitem__") and hasattr(x, "__len__"))


class ArrayBatches:
    """Batches of in-memory arrays; ``order`` is the epoch's shuffled sample order."""

    resumable = True

    def __init__(self, x: np.ndarray, y: np.ndarray | None, batch_size: int,
                 shuffle: bool = False) -> None:
        self.x, self.y, self.shuffle = x, y, shuffle
        self.slices = list(batch_slices(len(x), batch_size))
        self.steps = len(self.slices)
        self.order: np.ndarray | None = None

    def start_epoch(self, order: np.ndarray | None = None) -> None:
        """Draw this epoch's order (or reuse ``order`` when resuming mid-epoch)."""
        if order is not None:
            self.order = order
        else:
            self.order = minicnn_random.generator().permutation(len(self.x)) if self.shuffle else None

    def batch(self, step: int):
        index = self.slices[step] if self.order is None else self.order[self.slices[step]]
        return self.x[index], (None if self.y is None else self.y[index])

    def end_epoch(self) -> None:
        pass


class StreamBatches:
    """Batches drawn from a sequence (by index) or an iterator (by ``next``)."""

    resumable = False
    order = None

    def __init__(self, source: Any, steps: int | None, argument: str = "steps_per_epoch") -> None:
        self.source = source
        self.indexable = hasattr(source, "__getitem__") and hasattr(source, "__len__")
        if steps is None:
            if not self.indexable:
                raise ValueError(
                    f"{argument} is required when the data is a generator or iterator "
                    f"(it has no length); e.g. {argument}=len(x_train) // batch_size")
            steps = len(source)
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0:
            raise ValueError(f"{argument} must be a positive integer, received {steps!r}")
        self.steps = int(steps)
        self._cursor = 0

    def start_epoch(self, order=None) -> None:
        pass

    def batch(self, step: int):
        if self.indexable:
            item = self.source[self._cursor % len(self.source)]
            self._cursor += 1
        else:
            try:
                item = next(self.source)
            except StopIteration:
                raise ValueError(
                    f"the data generator ran out after {step} batches; it must yield at "
                    f"least steps_per_epoch x epochs batches") from None
        if isinstance(item, tuple) and len(item) in (2, 3):
            x_batch, y_batch = item[0], item[1]  # a third item (sample weights) is ignored
            x_batch, y_batch = check_pair(x_batch, y_batch)
            return x_batch, y_batch
        return check_features(item, "x batch"), None

    def end_epoch(self) -> None:
        # Sequences reshuffle here (Keras calls on_epoch_end after each epoch).
        if self.indexable and self._cursor >= len(self.source):
            self._cursor = 0
            if hasattr(self.source, "on_epoch_end"):
                self.source.on_epoch_end()


def batch_source(model, x, y, batch_size: int | None, steps: int | None,
                 steps_argument: str, shuffle: bool = False) -> "ArrayBatches | StreamBatches":
    """Arrays validated once up front (``model.prepare_input``, the loss's label
    checks), or a generator wrapped to be checked batch by batch."""
    if is_batch_stream(x):
        if y is not None:
            raise ValueError("y must be None when x is a generator or sequence "
                             "(it yields (x, y) batches itself)")
        return StreamBatches(x, steps, steps_argument)
    x, y = check_pair(x, y)
    x = model.prepare_input(x)
    model.check_targets(y, model.output_shape)
    batch_size = check_positive_int(32 if batch_size is None else batch_size, "batch_size")
    return ArrayBatches(x, y, batch_size, shuffle)


def validation_source(model, validation_data, validation_steps: int | None,
                      batch_size: int | None) -> "ArrayBatches | StreamBatches | None":
    """``fit``'s ``validation_data``: a tuple ``(x_val, y_val)`` or a generator."""
    if validation_data is None:
        return None
    if is_batch_stream(validation_data):
        return StreamBatches(validation_data, validation_steps, "validation_steps")
    if isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
        return batch_source(model, *validation_data, batch_size, None, "steps")
    raise ValueError("validation_data must be a tuple (x_val, y_val) or a "
                     "generator of (x, y) batches")
