"""What a model holds: its layers (some of which may be models), their weights, ``trainable``.

:class:`~minicnn.models.Sequential` inherits this.  A model can be a layer of another
model, as in Keras (``model.add(conv_base)`` with the VGG16 base of the book's section
5.3.1): it then counts as one layer in ``model.layers`` and in the summary, its weights
are among the outer model's, and ``conv_base.trainable = False`` freezes all of it.

Running is not nested: the outer model runs the *leaf* layers (:meth:`leaf_layers`,
every model opened up), so its list of steps is one flat plan in which a fused
convolution + pooling inside the base still fuses and backward stops at the first
trainable layer wherever it is (see :mod:`minicnn.models.steps`).

Keras 3's rules (``keras/src/layers/layer.py``), which the book's counts rely on:

* setting ``model.trainable`` sets it on every layer inside, recursively;
* a model that is not trainable has no trainable weights, whatever its layers say;
* ``weights`` / ``get_weights()`` list every layer's weights in layer order, nested
  models opened in place; ``trainable_weights`` the trainable ones in the same order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minicnn.layers.base import Layer
from minicnn.variables import Variable


class LayerContainer:
    """Layers, weights and the ``trainable`` flag of a model (a mixin of Sequential)."""

    layers: list[Any]
    name: str
    _trainable: bool = True

    # ---------------------------------------------------------------- layers
    def leaf_layers(self) -> list[Layer]:
        """Every layer that computes, in order: nested models replaced by their own leaves."""
        leaves: list[Layer] = []
        for layer in self.layers:
            if isinstance(layer, LayerContainer):
                leaves.extend(layer.leaf_layers())
            else:
                leaves.append(layer)
        return leaves

    def get_layer(self, name: str | None = None, index: int | None = None):
        """The layer called ``name`` (or at ``index``), as ``keras.Model.get_layer``."""
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(
                    f"Was asked to retrieve layer at index {index} but model only has "
                    f"{len(self.layers)} layers.")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"No such layer: {name}. Existing layers are: {[l.name for l in self.layers]}.")

    # -------------------------------------------------------------- trainable
    @property
    def trainable(self) -> bool:
        """Whether the optimizer may change this model's weights.

        Assigning it sets every layer inside to the same value (Keras 3), so the
        book's fine-tuning loop (section 5.3.2) then chooses layer by layer::

            conv_base.trainable = True
            set_trainable = False
            for layer in conv_base.layers:
                if layer.name == "block5_conv1":
                    set_trainable = True
                layer.trainable = set_trainable
        """
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for layer in self.layers:
            layer.trainable = self._trainable

    # --------------------------------------------------------------- weights
    @property
    def weights(self) -> list[Variable]:
        return [variable for layer in self.layers for variable in layer.weights]

    @property
    def trainable_weights(self) -> list[Variable]:
        """The weights the optimizer updates: none when the model is frozen."""
        if not self.trainable:
            return []
        return [variable for layer in self.layers for variable in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> list[Variable]:
        if not self.trainable:
            return self.weights
        return [variable for layer in self.layers for variable in layer.non_trainable_weights]

    def count_params(self) -> int:
        self._require_built("count_params")
        return sum(layer.count_params() for layer in self.layers)

    def get_weights(self) -> list[np.ndarray]:
        """All parameter arrays, layer by layer (kernel, bias), as Keras orders them."""
        return [value for layer in self.layers for value in layer.get_weights()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Inverse of :meth:`get_weights`; count and every shape are checked first."""
        self._require_built("set_weights")
        weights = list(weights)
        variables = self.weights
        expected = [variable.shape for variable in variables]
        if len(weights) != len(expected):
            raise ValueError(
                f"You called `set_weights(weights)` on model {self.name!r} with a weight "
                f"list of length {len(weights)}, but the model was expecting "
                f"{len(expected)} weights of shapes {expected}")
        for index, (value, shape) in enumerate(zip(weights, expected)):
            if np.shape(value) != shape:
                raise ValueError(
                    f"set_weights: weight {index} ({variables[index].name}) has shape "
                    f"{shape}, received an array of shape {np.shape(value)}")
        position = 0
        for layer in self.layers:
            count = len(layer.weights)
            layer.set_weights(weights[position:position + count])
            position += count

    def _require_built(self, what: str) -> None:
        raise NotImplementedError
