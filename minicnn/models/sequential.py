"""Sequential: a stack of layers with Keras's compile / fit / evaluate / predict.

One training step, the heart of the engine (:meth:`Sequential.training_step`)::

    steps  = plan_steps(layers, ...)                  one per layer, or a fused pair
    y_pred = step_S(... step_1(x))                    forward, keeping what backward needs
    loss   = loss_fn(y, y_pred)                       mean over the batch
    dy     = d loss / d y_pred                        (or d loss / d logits, see below)
    for step in reversed(steps): dy = step.backward(dy)     parameter grads stored
    optimizer.apply_gradients(trainable variables)    in-place update

As Keras 3 does, a softmax (sigmoid) output followed by a categorical (binary)
crossentropy is computed from the logits: exact and stable, with gradient
``(softmax(z) - y) / N``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from minicnn import losses as losses_module
from minicnn import metrics as metrics_module
from minicnn import optimizers as optimizers_module
from minicnn.backend import kernels
from minicnn.layers.base import Layer, Shape
from minicnn.layers.core import InputLayer
from minicnn.models.container import LayerContainer
from minicnn.models.data import (ArrayBatches, StreamBatches, batch_source, is_batch_stream,
                                 validation_source)
from minicnn.models.keras2 import GeneratorMethods
from minicnn.models.steps import Step, plan_steps
from minicnn.models.training import (Callback, History, NonFiniteLossError, check_features,
                                     check_pair, check_positive_int, evaluate_loop, fit_loop,
                                     keras_return, predict_loop, split_validation,
                                     verbosity_level)
from minicnn.naming import auto_name
from minicnn.saving import save_model
from minicnn.summary import print_summary


class Sequential(LayerContainer, GeneratorMethods):
    """A linear stack of layers, used exactly like ``keras.Sequential``.

    A layer may itself be a model (``model.add(conv_base)``): see
    :mod:`minicnn.models.container` for its weights and ``trainable``.

    Args:
        layers: optional list; may start with ``Input(shape)``.
        name: model name (default "sequential", "sequential_1", ...).
    """

    def __init__(self, layers: list | None = None, name: str | None = None) -> None:
        self.name = name if name is not None else auto_name(type(self).__name__)
        self.layers: list[Layer] = []
        self.input_spec: InputLayer | None = None
        self.built = False
        self.optimizer = None
        self.loss = None
        self.metrics: list = []
        self.compiled = False
        self.stop_training = False
        self.history: History | None = None
        # The steps of the last forward pass, which backward runs in reverse.
        self._steps: list[Step] = []
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------- structure
    def add(self, layer) -> None:
        """Append a layer, a model (used as one layer) or, first, an ``Input``; builds
        as soon as shapes are known."""
        if isinstance(layer, InputLayer):
            if self.layers or self.input_spec is not None:
                raise ValueError("Input(...) must come first in a Sequential model, "
                                 "and only once")
            self.input_spec = layer
            return
        if not isinstance(layer, (Layer, LayerContainer)):
            raise TypeError(
                f"Sequential.add expects a minicnn layer or model, received "
                f"{type(layer).__name__}: {layer!r}")
        if layer is self:
            raise ValueError(f"model {self.name!r} cannot be a layer of itself")
        if any(existing.name == layer.name for existing in self.layers):
            raise ValueError(
                f"All layers added to a Sequential model should have unique names. "
                f"Name {layer.name!r} is already the name of a layer in this model.")
        if not self.layers and self.input_spec is None and layer.declared_input_shape:
            self.input_spec = InputLayer(layer.declared_input_shape)
        self.layers.append(layer)
        if self.input_spec is not None:
            # Build as layers arrive so shape errors point at the layer just added.
            self.build((None,) + self.input_spec.shape)

    def build(self, input_shape: Shape) -> None:
        """Build every layer in order for ``input_shape`` (batch axis ``None``)."""
        shape = tuple(input_shape)
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
            elif tuple(layer.input_shape[1:]) != tuple(shape[1:]):
                raise ValueError(
                    f"Layer {layer.name!r} was built for input shape {layer.input_shape}, "
                    f"but receives {shape}")
            shape = layer.output_shape
        self.built = bool(self.layers)
        if self.input_spec is None:
            self.input_spec = InputLayer(tuple(input_shape[1:]))

    @property
    def input_shape(self) -> Shape | None:
        return None if self.input_spec is None else (None,) + self.input_spec.shape

    @property
    def output_shape(self) -> Shape | None:
        return self.layers[-1].output_shape if self.built else None

    @property
    def declared_input_shape(self) -> Shape | None:
        """The per-sample input shape, when this model is added to another as a layer."""
        return None if self.input_spec is None else self.input_spec.shape

    # ----------------------------------------------------------------- summary
    def summary(self, line_length: int | None = None, positions=None, print_fn=None) -> None:
        """Print Keras 3's summary table (names, output shapes, parameter counts, totals)."""
        print_summary(self, line_length=line_length, positions=positions, print_fn=print_fn)

    # --------------------------------------------------------------- compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None) -> None:
        """Choose the optimizer, the loss and the metrics (names or objects, as Keras)."""
        if loss is None:
            raise ValueError("compile() needs a loss, e.g. loss='categorical_crossentropy'")
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses_module.get(loss)
        if metrics is None:
            metrics = []
        if isinstance(metrics, (str, dict)) or not isinstance(metrics, (list, tuple)):
            metrics = [metrics]
        self.metrics = [metrics_module.get(metric, self.loss) for metric in metrics]
        self.compiled = True

    # ------------------------------------------------------------- computing
    def _require_built(self, what: str) -> None:
        if not self.built:
            raise ValueError(
                f"Model {self.name!r} has not been built: {what} needs its input shape. "
                f"Start the model with Input(shape), pass input_shape= to the first layer, "
                f"or call build((None, ...)).")

    def _require_compiled(self, what: str) -> None:
        if not self.compiled:
            raise RuntimeError(
                f"You must call compile() before {what}(): the model has no loss or "
                f"optimizer yet.")

    def prepare_input(self, x) -> np.ndarray:
        """``x`` checked (finite numbers, the model's input shape) and as an array;
        builds the model on first use."""
        x = check_features(x, "x")
        if not self.built:
            if not self.layers:
                raise ValueError(f"Model {self.name!r} has no layers")
            self.build((None,) + x.shape[1:])
        expected = self.input_shape
        if x.ndim != len(expected) or tuple(x.shape[1:]) != tuple(expected[1:]):
            raise ValueError(
                f"Input 0 of model {self.name!r} (first layer {self.layers[0].name!r}) is "
                f"incompatible: expected shape={expected}, found shape={tuple(x.shape)}")
        return x

    def plan_steps(self, input_shape: Shape, training: bool) -> list[Step]:
        """The steps a forward pass on a batch of ``input_shape`` runs (see
        :mod:`minicnn.models.steps`): one per layer, or one for a fused pair."""
        self._require_built("plan_steps")
        return plan_steps(self.leaf_layers(), kernels(), tuple(input_shape), training)

    def forward(self, x: np.ndarray, training: bool = False,
                frozen_prefix_keeps_no_state: bool = False) -> np.ndarray:
        """Run the model's steps on an already checked batch ``x``; ``backward`` then
        runs the same steps in reverse.

        ``frozen_prefix_keeps_no_state``: the steps below the first trainable one keep
        no state for backward, which a training step's backward never reaches
        (fine-tuning VGG16 with blocks 1-4 frozen then holds no activations or padded
        copies of those blocks); a backward asking for the input gradient would fail.
        """
        self._steps = steps = self.plan_steps(x.shape, training)
        stateless = 0
        if frozen_prefix_keeps_no_state:
            stateless = self.first_trainable_step(steps) or 0
        frozen_prefix = tuple(layer for step in steps[:stateless] for layer in step.layers)
        with _keeping_no_state(frozen_prefix):
            for step in steps[:stateless]:
                x = step.forward(x, training)
        for step in steps[stateless:]:
            x = step.forward(x, training)
        return x

    def first_trainable_step(self, steps: list[Step]) -> int | None:
        """Index of the first of ``steps`` with a trainable weight, or None if none has.

        The model's trainable weights decide, not the layers' own flags: a layer inside
        a frozen model (``conv_base.trainable = False``) is frozen too.
        """
        updated = {id(variable) for variable in self.trainable_weights}
        for index, step in enumerate(steps):
            if any(id(variable) in updated
                   for layer in step.layers for variable in layer.weights):
                return index
        return None

    def backward(self, dy: np.ndarray, from_logits: bool = False,
                 need_input_grad: bool = False) -> np.ndarray | None:
        """Backpropagate ``dy`` (d loss / d output) through the last forward's steps.

        Args:
            dy: gradient at the model output, or at the last layer's pre-activation
                when ``from_logits`` is True.
            need_input_grad: also return d loss / d x (visualizations use it); otherwise
                backward stops at the first step with trainable parameters, which
                needs no input gradient either.
        Returns:
            d loss / d x when ``need_input_grad``, else None.
        """
        steps = self._steps
        first = 0
        if not need_input_grad:
            first = self.first_trainable_step(steps)
            if first is None:
                return None
        last = len(steps) - 1
        for index in range(last, first - 1, -1):
            need_dx = need_input_grad or index > first
            if index == last and from_logits:
                dy = steps[index].backward(dy, need_dx, at_preactivation=True)
            else:
                dy = steps[index].backward(dy, need_dx)
        return dy

    def training_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """One optimizer step on a checked batch: forward, loss, backward, update.

        Returns ``(loss before the update, predictions)``.  Raises
        :class:`NonFiniteLossError` before any weight changes if the loss or a
        gradient is not finite.
        """
        y_pred = self.forward(x, training=True, frozen_prefix_keeps_no_state=True)
        loss_value, gradient, from_logits = self.loss.value_and_output_gradient(y, y_pred, self.leaf_layers()[-1])
        if not np.isfinite(loss_value):
            raise NonFiniteLossError(f"the loss is {loss_value}")
        self.backward(gradient, from_logits=from_logits)
        variables = self.trainable_weights
        for variable in variables:
            # Checked before any update, so a failing step leaves every weight finite.
            if not np.isfinite(variable.grad).all():
                raise NonFiniteLossError(f"the gradient of {variable.name} is not finite")
        self.optimizer.apply_gradients(variables)
        return loss_value, y_pred

    @contextmanager
    def inference_mode(self) -> Iterator[None]:
        """Layers keep no backward state while predicting (saves memory on big inputs).

        The last layer still keeps its pre-activation: the loss is computed from the
        logits in evaluation too, as Keras does.
        """
        with _keeping_no_state(tuple(self.leaf_layers()[:-1])):
            yield

    def __call__(self, x, training: bool = False) -> np.ndarray:
        x = self.prepare_input(x)
        return self.forward(x, training=training)

    # ------------------------------------------------------------ public API
    def predict(self, x, batch_size: int | None = None, verbose="auto",
                steps: int | None = None) -> np.ndarray:
        """Outputs for ``x`` (arrays, a sequence or a generator), in batches (default 32)."""
        if is_batch_stream(x):
            source = StreamBatches(x, steps, "steps")
        else:
            x = self.prepare_input(x)
            batch_size = check_positive_int(32 if batch_size is None else batch_size,
                                            "batch_size")
            source = ArrayBatches(x, None, batch_size)
        return predict_loop(self, source, verbosity_level(verbose))

    def predict_on_batch(self, x) -> np.ndarray:
        return self.predict(x, batch_size=len(np.asarray(x)), verbose=0)

    def check_targets(self, y: np.ndarray, y_pred_shape: Shape) -> None:
        """Labels must suit the loss (one-hot vs integer, class range) before any work."""
        # A zero-stride stand-in for the predictions: the loss checks shapes, not values.
        stand_in = np.broadcast_to(np.zeros((), dtype=np.float32), (len(y),) + y_pred_shape[1:])
        self.loss.check_labels(y, stand_in)

    def evaluate(self, x=None, y=None, batch_size: int | None = None, verbose="auto",
                 return_dict: bool = False, steps: int | None = None):
        """Mean loss (and metrics) over the data: a float, or [loss, *metrics] as Keras."""
        self._require_compiled("evaluate")
        source = batch_source(self, x, y, batch_size, steps, "steps")
        return keras_return(evaluate_loop(self, source, verbosity_level(verbose)), return_dict)

    def check_batch(self, x: np.ndarray, y: np.ndarray | None):
        """Checks for one batch from a generator: shapes, finiteness, labels."""
        if y is None:
            raise ValueError("the data generator must yield (x, y) batches for training "
                             "and evaluation")
        x = self.prepare_input(x)
        self.check_targets(y, self.output_shape)
        return x, y

    def batch_logs(self, y: np.ndarray, y_pred: np.ndarray, loss_value) -> dict[str, float]:
        """``{"loss": ..., metric name: ...}`` for one batch (the loss is computed when
        ``loss_value`` is None)."""
        if loss_value is None:
            loss_value, _, _ = self.loss.value_and_output_gradient(y, y_pred, self.leaf_layers()[-1])
        logs = {"loss": float(loss_value)}
        for metric in self.metrics:
            logs[metric.name] = float(metric(y, y_pred))
        return logs

    @property
    def metrics_names(self) -> list[str]:
        return ["loss"] + [metric.name for metric in self.metrics]

    def train_on_batch(self, x, y, return_dict: bool = False):
        """One optimizer step on one batch; returns the loss (and metrics) before the step."""
        self._require_compiled("train_on_batch")
        x, y = check_pair(x, y)
        x = self.prepare_input(x)
        self.check_targets(y, self.output_shape)
        loss_value, y_pred = self.training_step(x, y)
        return keras_return(self.batch_logs(y, y_pred, loss_value), return_dict)

    def test_on_batch(self, x, y, return_dict: bool = False):
        return self.evaluate(x, y, batch_size=len(np.asarray(x)), verbose=0,
                             return_dict=return_dict)

    def fit(self, x=None, y=None, batch_size: int | None = None, epochs: int = 1,
            verbose="auto", callbacks: list[Callback] | None = None,
            validation_split: float = 0.0, validation_data=None, shuffle: bool = True,
            initial_epoch: int = 0, steps_per_epoch: int | None = None,
            validation_steps: int | None = None) -> History:
        """Train for ``epochs`` passes over the data; returns a :class:`History`.

        As in Keras: ``x`` is arrays (with ``y``) or a generator/sequence of (x, y)
        batches (see :mod:`minicnn.models.data`); ``batch_size`` defaults to 32;
        ``validation_split`` holds out the *last* fraction of the arrays (before
        shuffling); ``validation_data`` -- a tuple or a generator -- overrides it;
        ``shuffle`` reshuffles array samples every epoch; ``verbose`` 1 shows a live
        progress bar, 2 one line per epoch, 0 nothing.

        Raises:
            NonFiniteLossError: the loss or a gradient became NaN or infinite; the
                model keeps the last finite weights (the failing update is not applied).
        """
        self._require_compiled("fit")
        epochs = check_positive_int(epochs, "epochs")
        if validation_split and not is_batch_stream(x) and validation_data is None:
            x, y = check_pair(x, y)
            (x, y), validation_data = split_validation(x, y, validation_split)
        elif validation_split and is_batch_stream(x):
            raise ValueError("validation_split needs array data; pass validation_data "
                             "with a generator")
        if steps_per_epoch is not None and not is_batch_stream(x):
            raise ValueError("steps_per_epoch is for generators; with arrays the epoch "
                             "is len(x) / batch_size batches")
        train = batch_source(self, x, y, batch_size, steps_per_epoch, "steps_per_epoch",
                                   shuffle=shuffle)
        validation = validation_source(self, validation_data, validation_steps, batch_size)
        return fit_loop(self, train, epochs=epochs, verbosity=verbosity_level(verbose),
                        callbacks=list(callbacks or []), validation=validation,
                        initial_epoch=initial_epoch)

    # ----------------------------------------------------------- save / load
    def save(self, path: str) -> None:
        """Write architecture and weights, atomically, to ``path``: minicnn's ``.npz``,
        or Keras's own ``.keras`` or legacy ``.h5`` file (see :mod:`minicnn.saving`)."""
        save_model(self, path)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "trainable": self.trainable,
                "input_shape": None if self.input_spec is None else list(self.input_spec.shape),
                "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                           for layer in self.layers]}

    def __repr__(self) -> str:
        return f"<Sequential name={self.name!r} layers={len(self.layers)}>"


@contextmanager
def _keeping_no_state(layers: tuple[Layer, ...]) -> Iterator[None]:
    """The ``layers`` keep no state for backward inside the block (as in ``predict``)."""
    saved = [layer.keep_for_backward for layer in layers]
    for layer in layers:
        layer.keep_for_backward = False
    try:
        yield
    finally:
        for layer, keep in zip(layers, saved):
            layer.keep_for_backward = keep
