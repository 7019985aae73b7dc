"""Checkpoints, resume and non-finite losses: training that survives interruptions."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn
from minicnn import layers
from minicnn.callbacks import BackupAndRestore, ModelCheckpoint
from minicnn.models import Callback, NonFiniteLossError
from minicnn.utils import to_categorical
from tests.helpers import assert_weights_equal


def make_model(seed: int = 0) -> minicnn.Sequential:
    minicnn.set_random_seed(seed)
    model = minicnn.Sequential([
        minicnn.Input((8, 8, 1)),
        layers.Conv2D(4, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dropout(0.3),                 # draws from the global generator
        layers.Dense(8, activation="relu"),
        layers.Dropout(0.2, seed=5),         # a generator of its own
        layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def data(count: int = 90):
    rng = np.random.default_rng(1)
    x = rng.random((count, 8, 8, 1), dtype=np.float32)
    return x, to_categorical(rng.integers(0, 3, count), 3)


class Interrupt(Callback):
    """Stands for a kill: raise after ``after`` batches in total."""

    def __init__(self, after: int) -> None:
        self.after, self.seen = after, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.after:
            raise KeyboardInterrupt


@pytest.mark.parametrize("save_freq, interrupt_after", [("epoch", 7), (2, 5), (1, 13), (3, 12)])
def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path, save_freq,
                                                              interrupt_after):
    x, y = data()
    reference = make_model()
    expected_history = reference.fit(x, y, epochs=3, batch_size=16, verbose=0).history

    interrupted = make_model()
    backup = BackupAndRestore(tmp_path, save_freq=save_freq)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(x, y, epochs=3, batch_size=16, verbose=0,
                        callbacks=[backup, Interrupt(interrupt_after)])
    assert (tmp_path / "checkpoint.npz").exists()

    # A new process would build and compile the model afresh, with another seed even.
    resumed = make_model(seed=99)
    history = resumed.fit(x, y, epochs=3, batch_size=16, verbose=0,
                          callbacks=[BackupAndRestore(tmp_path, save_freq=save_freq)])
    assert_weights_equal(resumed.get_weights(), reference.get_weights(),
                         what="resumed run vs uninterrupted run")
    assert history.history == expected_history
    assert not (tmp_path / "checkpoint.npz").exists()  # deleted after a finished run


def test_checkpoint_is_a_loadable_model_file(tmp_path):
    x, y = data()
    model = make_model()
    model.fit(x, y, epochs=1, batch_size=30, verbose=0,
              callbacks=[BackupAndRestore(tmp_path, delete_checkpoint=False)])
    loaded = minicnn.load_model(tmp_path / "checkpoint.npz")
    assert loaded.extra["training_state"]["epoch"] == 1
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_new_checkpoint_is_a_new_file_renamed_over_the_old_one(tmp_path):
    """Never rewritten in place: a reader that opened the old checkpoint reads it whole
    while a new one is written, and the name then points to another file (inode)."""
    import os

    from minicnn.callbacks import save_checkpoint

    x, y = data()
    model = make_model()
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(model, path)
    old = path.read_bytes()
    with open(path, "rb") as reader:
        inode = os.fstat(reader.fileno()).st_ino
        model.fit(x, y, epochs=1, batch_size=30, verbose=0)
        save_checkpoint(model, path)
        assert reader.read() == old, "the old checkpoint was changed in place"
    assert os.stat(path).st_ino != inode, "the checkpoint was rewritten in place, not replaced"
    assert path.read_bytes() != old
    np.testing.assert_array_equal(minicnn.load_model(path).predict(x, verbose=0),
                                  model.predict(x, verbose=0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]


def test_model_checkpoint_save_best_only(tmp_path):
    x, y = data()
    model = make_model()
    saved = []

    class Spy(Callback):
        def on_epoch_end(self, epoch, logs=None):
            saved.append((tmp_path / "best.npz").stat().st_mtime_ns
                         if (tmp_path / "best.npz").exists() else None)

    checkpoint = ModelCheckpoint(tmp_path / "best.npz", monitor="val_loss", save_best_only=True)
    history = model.fit(x, y, epochs=4, batch_size=16, validation_split=0.2, verbose=0,
                        callbacks=[checkpoint, Spy()])
    assert checkpoint.best == min(history.history["val_loss"])
    best = minicnn.load_model(tmp_path / "best.npz")
    assert best.evaluate(x[72:], y[72:], verbose=0)[0] == pytest.approx(checkpoint.best, rel=1e-5)
    every = ModelCheckpoint(tmp_path / "model-{epoch:02d}.npz")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[every])
    assert sorted(p.name for p in tmp_path.glob("model-*.npz")) == ["model-01.npz", "model-02.npz"]
    with pytest.raises(ValueError, match="not in the logs"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[ModelCheckpoint(tmp_path / "b.npz", save_best_only=True)])


def optimizer_state(model) -> tuple[int, list[np.ndarray]]:
    state = model.optimizer.get_state()
    return state["iterations"], [np.array(slot, copy=True) for slot in state["slots"]]


class WeightsAtEachBatch(Callback):
    """Keeps a copy of the weights and optimizer state as each batch begins."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []
        self.weights: list[np.ndarray] | None = None
        self.optimizer: tuple[int, list[np.ndarray]] | None = None
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.seen.append((self.epoch, batch))
        self.weights = [weight.copy() for weight in self.model.get_weights()]
        self.optimizer = optimizer_state(self.model)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_non_finite_loss_stops_at_once_and_keeps_the_weights_before_the_bad_step():
    """The weights (and the optimizer's state) after the error are, bit for bit, those
    from before the batch whose loss was not finite -- after finite steps had changed them."""
    x, y = data()
    model = make_model()
    initial = [weight.copy() for weight in model.get_weights()]
    model.optimizer.learning_rate = 1e30  # Adam moves every weight by ~1e30: diverges
    spy = WeightsAtEachBatch()
    with pytest.raises(NonFiniteLossError, match=r"at epoch \d+, batch \d+") as caught:
        model.fit(x, y, epochs=50, batch_size=16, verbose=0, callbacks=[spy])
    error = caught.value
    assert error.epoch is not None and error.batch is not None
    assert (error.epoch, error.batch) == spy.seen[-1], (
        "the error names another batch than the last one that began")
    assert len(spy.seen) >= 2, "the loss was not finite at the first step: nothing was kept"
    assert not all(np.array_equal(a, b) for a, b in zip(spy.weights, initial)), \
        "no finite step changed the weights before the failing one"
    assert_weights_equal(model.get_weights(), spy.weights,
                         what="weights after NonFiniteLossError vs before the failing batch")
    iterations, slots = optimizer_state(model)
    assert iterations == spy.optimizer[0]
    assert_weights_equal(slots, spy.optimizer[1], what="Adam's slots")


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
@pytest.mark.parametrize("x_value, reason", [
    (1e20, "the loss is inf"),                          # the prediction overflows float32
    (1.5e19, "the gradient of dense/kernel is not finite"),  # loss 2.25e38 < float32 max; 2x it is not
])
def test_train_on_batch_that_overflows_applies_nothing(x_value, reason):
    """A batch crafted to overflow, after two finite RMSprop steps: ``train_on_batch``
    raises and leaves weights and optimizer state bit for bit as they were."""
    model = minicnn.Sequential([minicnn.Input((2,)), layers.Dense(1, name="dense")])
    model.compile(optimizer="rmsprop", loss="mse")
    model.set_weights([np.array([[1.0], [0.0]], np.float32), np.zeros(1, np.float32)])
    for _ in range(2):
        model.train_on_batch(np.ones((1, 2), np.float32), np.zeros((1, 1), np.float32))
    before, (iterations, slots) = [w.copy() for w in model.get_weights()], optimizer_state(model)
    assert iterations == 2
    with pytest.raises(NonFiniteLossError, match=reason):
        model.train_on_batch(np.array([[x_value, 1.0]], np.float32), np.zeros((1, 1), np.float32))
    assert_weights_equal(model.get_weights(), before, what="weights after the overflowing batch")
    assert optimizer_state(model)[0] == iterations
    assert_weights_equal(optimizer_state(model)[1], slots, what="RMSprop's slots")
