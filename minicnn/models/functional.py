"""Functional: the kind of model Keras builds ``keras.applications.VGG16`` as, for a chain.

Keras builds its applications with the functional API (``keras.Model(inputs,
outputs)``); VGG16 is a plain chain of layers, each fed by the one before, which is
exactly what a :class:`~minicnn.models.Sequential` runs.  So minicnn's functional model
*is* a Sequential, and differs only in what it is called: a model holding it prints
``vgg16 (Functional)`` in its summary as Keras's does, and a ``.keras`` / ``.h5`` file
describes it as Keras's own functional config (an input layer, then each layer fed by
the previous one), so Keras loads it as the same kind of model it would have built.

One difference remains: Keras lists the ``InputLayer`` in a functional model's
``layers``; minicnn does not (it has no input layer object in ``layers`` at all).
"""

from __future__ import annotations

from minicnn.models.sequential import Sequential


class Functional(Sequential):
    """A chain of layers that Keras would build as a functional model (see module doc)."""

    def __repr__(self) -> str:
        return f"<Functional name={self.name!r} layers={len(self.layers)}>"
