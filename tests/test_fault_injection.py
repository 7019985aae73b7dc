"""Training that survives being killed: SIGKILL a real ``minicnn train mnist`` process
again and again, resume it, and end with the weights of a run never interrupted.

Each run is a separate Python process (``python DRIVER train mnist ... --resume``) on a
tiny synthetic ``mnist.npz`` in a temporary cache, with the NumPy backend (no JIT
compilation) and one BLAS thread (repeatable sums).  The driver accepts the synthetic
file's SHA-256 in place of the real MNIST's and refuses the network, as the fixture in
``tests/test_train_cli.py`` does in-process.

Where the kills land is driven from the test, so that every kind of moment is reached on
every run, on a fast machine or a slow, busy one (nothing is left to luck):

* **inside a checkpoint write** (one kill in four): the driver wraps
  ``minicnn.callbacks.save_checkpoint`` and, on the N-th checkpoint of the process, the
  file object the write goes through; after a chosen number of bytes it writes a marker
  file and waits; the test sees the marker and sends SIGKILL.  The temporary file is
  then half written, and ``checkpoint.npz`` must still be the previous, complete one.
* **at a random moment of start-up** (imports, data, model; one in eight), or **of
  training** (the rest: restoring the checkpoint, applying batches, writing
  checkpoints).  So that no run can finish before its kill, the driver also waits at a
  *ceiling*: after the checkpoint of global batch ``c`` it writes the marker and waits
  (``c`` grows with each kill, spreading the kills over the first ``AIM`` of the batches);
  a kill that comes at the ceiling checks the checkpoint is exactly at ``c``.

What a kill may leave, and what is checked after every one:

* ``checkpoint.npz`` is absent (killed before the first one) or a complete model file
  that ``minicnn.load_model`` opens, whose position never goes backwards;
* ``model.npz``, when present, loads too; nothing else is in the folder but the
  temporary files of interrupted atomic writes (which the next run clears).

At the end the resumed run's ``model.npz`` equals the uninterrupted run's bit for bit,
and its training history (restored from the checkpoints) is identical too.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minicnn
from minicnn.io import ModelFileError
from tests.helpers import assert_weights_equal, write_synthetic_mnist

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL"),
]

REPOSITORY = Path(__file__).resolve().parents[1]
TRAIN_IMAGES = 320          # MINICNN_MNIST_SUBSET: 320 training and 320 test images
BATCH_SIZE = 16             # 20 steps per epoch
EPOCHS = 3                  # 60 optimizer steps in all
SEED = 3
KILLS = 24                  # the README's number (checked below)
IN_WRITE_EVERY = 4          # kills 1, 5, 9, ...: inside a checkpoint write
START_UP_EVERY = 8          # kills 3, 11, 19: during start-up
AIM = 0.75                  # the ceilings spread the kills over the first 75 % of the batches
KILL_SEED = 20240611        # the kill moments are random, but repeatable
HOLD_BYTES = 300_000        # an in-write kill comes after 1..HOLD_BYTES bytes of a checkpoint
                            # (one is about 750 kB: weights and RMSprop slots, float32)
TIME_BUDGET_S = 300         # the whole test: about 40 s on an idle 2-core machine

DRIVER = """\
import builtins, io, os, sys, time
from minicnn.datasets import mnist

mnist.KERAS_NPZ_SHA256 = sys.argv[1]     # accept the synthetic file

def refuse(*args, **kwargs):
    raise RuntimeError("network access in a test")

mnist._download_url = mnist._pip_download_wheel = refuse

# The kill hooks (see the module docstring of tests/test_fault_injection.py).
FAULT = os.environ.get("MINICNN_TEST_FAULT", "")   # "", "ceiling:C" or "in-write:N:BYTES"
MARK = os.environ["MINICNN_TEST_MARK"]
STEPS_PER_EPOCH = int(os.environ["MINICNN_TEST_STEPS_PER_EPOCH"])
kind, *values = FAULT.split(":") if FAULT else [""]
values = [int(value) for value in values]


def hold(what):
    # The marker is written with os-level calls (open() may be wrapped right now) and
    # renamed into place, so the test reads it whole; then wait for the kill.
    temporary = MARK + ".part"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(descriptor, what.encode())
    os.close(descriptor)
    os.rename(temporary, MARK)
    while True:
        time.sleep(60)


class HoldingFile:
    # A file object that writes its first `limit` bytes, then holds.
    def __init__(self, handle, limit, what):
        self._handle, self._left, self._what = handle, limit, what

    def write(self, data):
        data = bytes(data)
        if len(data) >= self._left:
            self._handle.write(data[:self._left])
            self._handle.flush()
            hold(self._what)
        self._left -= len(data)
        return self._handle.write(data)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        return self._handle.__exit__(*exception)


import minicnn.callbacks as callbacks

original_save_checkpoint = callbacks.save_checkpoint
checkpoints_written = 0


def save_checkpoint(model, path):
    global checkpoints_written
    checkpoints_written += 1
    if kind == "in-write" and checkpoints_written == values[0]:
        what = f"in-write: checkpoint {values[0]} of this process, byte {values[1]}"
        saved = os.fdopen, builtins.open, io.open

        def holding(opener):
            def open_for_writing(file, mode="r", *args, **kwargs):
                handle = opener(file, mode, *args, **kwargs)
                writing = "b" in mode and any(flag in mode for flag in "wax+")
                return HoldingFile(handle, values[1], what) if writing else handle
            return open_for_writing

        os.fdopen, builtins.open, io.open = (holding(opener) for opener in saved)
        try:
            original_save_checkpoint(model, path)
        finally:
            os.fdopen, builtins.open, io.open = saved
        hold(f"missed: checkpoint {values[0]} was written whole, never passing byte {values[1]}")
    result = original_save_checkpoint(model, path)
    position = model.fit_position
    reached = position.epoch * STEPS_PER_EPOCH + position.step
    if kind == "ceiling" and reached >= values[0]:
        hold(f"ceiling: {reached}")
    return result


callbacks.save_checkpoint = save_checkpoint

from minicnn.cli import main

sys.exit(main(sys.argv[2:]))
"""
TRAINING_LINE = "minicnn: training"   # printed once the data and the model are ready
EPOCH_LINE = "Epoch "                  # printed when fit starts (or resumes) an epoch
KNOWN_FILES = {"checkpoint.npz", "model.npz", "metrics.json", "curves.png"}
CHECKPOINT_LEFTOVER = re.compile(r"^\.checkpoint\.npz\..+\.tmp$")


def readme_kills() -> int:
    """The number of kills README.md promises ("... with SIGKILL 24 times ...")."""
    text = " ".join((REPOSITORY / "README.md").read_text().split())
    found = re.search(r"SIGKILL (\d+) times", text)
    assert found, "README.md no longer says how many times the fault-injection test kills"
    return int(found.group(1))


class Trainer:
    """Starts ``minicnn train mnist`` processes on the synthetic data."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.driver = tmp_path / "driver.py"
        self.driver.write_text(DRIVER)
        self.mark = tmp_path / "held"
        cache = tmp_path / "cache"
        write_synthetic_mnist(cache / "mnist.npz", TRAIN_IMAGES, TRAIN_IMAGES)
        from minicnn.datasets import mnist

        self.sha256 = mnist.sha256_file(cache / "mnist.npz")
        self.env = {**os.environ, "MINICNN_DATA_DIR": str(cache),
                    "MINICNN_MNIST_SUBSET": str(TRAIN_IMAGES), "MINICNN_BACKEND": "numpy",
                    "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                    "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "MPLBACKEND": "Agg",
                    "MINICNN_TEST_MARK": str(self.mark),
                    "MINICNN_TEST_STEPS_PER_EPOCH": str(TRAIN_IMAGES // BATCH_SIZE),
                    "PYTHONPATH": os.pathsep.join(
                        [str(Path(minicnn.__file__).resolve().parents[1]),
                         os.environ.get("PYTHONPATH", "")])}
        self.runs = 0

    def start(self, out: Path, *options: str, fault: str = "") -> tuple[subprocess.Popen, Path]:
        self.runs += 1
        self.mark.unlink(missing_ok=True)
        log = self.tmp_path / f"run-{self.runs:03d}.log"
        command = [sys.executable, str(self.driver), self.sha256, "train", "mnist",
                   "--model", "convnet", "--epochs", str(EPOCHS), "--batch-size",
                   str(BATCH_SIZE), "--seed", str(SEED), "--backend", "numpy",
                   "--verbose", "2", "--out", str(out), *options]
        with open(log, "wb") as handle:
            process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                                       env={**self.env, "MINICNN_TEST_FAULT": fault})
        return process, log

    def held(self) -> str | None:
        """The marker the driver wrote when it stopped to wait for its kill, or None."""
        return self.mark.read_text() if self.mark.exists() else None

    def run(self, out: Path, *options: str, timeout: float = 120) -> None:
        process, log = self.start(out, *options)
        assert process.wait(timeout=timeout) == 0, log.read_text()


def wait_for_line(process: subprocess.Popen, log: Path, text: str, timeout: float) -> bool:
    """Poll ``log`` until it holds ``text`` (True) or the process ends (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.002)
    raise AssertionError(f"no {text!r} within {timeout} s:\n{log.read_text()}")


def wait_until(process: subprocess.Popen, trainer: Trainer, log: Path, seconds: float,
               timeout: float = 90) -> None:
    """Return after ``seconds``, or as soon as the driver holds (the marker); fail if the
    process ends on its own (the hooks must keep every run alive until its kill)."""
    moment = time.monotonic() + seconds
    deadline = time.monotonic() + timeout
    while time.monotonic() < moment and trainer.held() is None:
        if process.poll() is not None:
            raise AssertionError(
                f"the run ended (status {process.returncode}) before its kill: the driver's "
                f"hook on minicnn.callbacks.save_checkpoint was not reached\n{log.read_text()}")
        assert time.monotonic() < deadline, f"no hold within {timeout} s:\n{log.read_text()}"
        time.sleep(0.001)


def global_step(path: Path, steps_per_epoch: int) -> int:
    """Load a checkpoint with ``minicnn.load_model``; return how many batches it has applied."""
    checkpoint = minicnn.load_model(path)
    state = checkpoint.extra["training_state"]
    assert len(checkpoint.get_weights()) == 10
    assert all(np.isfinite(weight).all() for weight in checkpoint.get_weights())
    return state["epoch"] * steps_per_epoch + state["step"]


def leftovers_in(out: Path) -> set[str]:
    """The temporary files of interrupted atomic writes in ``out``."""
    names = {path.name for path in out.iterdir()} if out.exists() else set()
    return {name for name in names - KNOWN_FILES if name.startswith(".") and name.endswith(".tmp")}


def check_survivors(out: Path, steps_per_epoch: int, previous_step: int) -> int:
    """What a kill left must be loadable; returns the checkpoint's position (or -1)."""
    names = {path.name for path in out.iterdir()} if out.exists() else set()
    assert names - KNOWN_FILES - leftovers_in(out) == set(), f"unexpected files {names}"
    if (out / "model.npz").exists():
        minicnn.load_model(out / "model.npz")
    if not (out / "checkpoint.npz").exists():
        assert previous_step == -1, "a checkpoint disappeared"
        return -1
    step = global_step(out / "checkpoint.npz", steps_per_epoch)
    assert step >= previous_step, f"the checkpoint went back from {previous_step} to {step}"
    return step


def kill_plan(total_steps: int) -> list[str]:
    """The kind of each kill: "in-write", "start-up" or "training"."""
    kinds = []
    for index in range(KILLS):
        if index % IN_WRITE_EVERY == 1:
            kinds.append("in-write")
        elif index % START_UP_EVERY == 3:
            kinds.append("start-up")
        else:
            kinds.append("training")
    return kinds


def test_the_test_kills_as_often_as_the_readme_says():
    assert KILLS >= readme_kills()
    kinds = kill_plan(60)
    assert kinds.count("in-write") >= KILLS // 4
    assert kinds.count("start-up") >= 1 and kinds.count("training") >= KILLS // 2


def test_training_killed_again_and_again_resumes_to_the_same_weights(tmp_path: Path) -> None:
    started = time.monotonic()
    trainer = Trainer(tmp_path)
    steps_per_epoch = TRAIN_IMAGES // BATCH_SIZE
    total_steps = EPOCHS * steps_per_epoch

    # The uninterrupted run; only end-of-epoch checkpoints (checkpointing must not
    # change the result).  It also measures how long a process takes to start and a step.
    reference = tmp_path / "reference"
    launched = time.monotonic()
    process, log = trainer.start(reference)
    assert wait_for_line(process, log, TRAINING_LINE, timeout=60)
    startup_s = time.monotonic() - launched
    assert process.wait(timeout=120) == 0, log.read_text()
    reference_metrics = json.loads((reference / "metrics.json").read_text())
    step_s = sum(reference_metrics["epoch_seconds"]) / total_steps
    assert global_step(reference / "checkpoint.npz", steps_per_epoch) == total_steps

    rng = random.Random(KILL_SEED)
    out = tmp_path / "killed"
    position = -1
    record: list[tuple[str, str, int]] = []   # (kind, what the driver held at, position)
    in_write_kills = 0
    for index, kind in enumerate(kill_plan(total_steps)):
        assert time.monotonic() - started < TIME_BUDGET_S, "fault injection took too long"
        before = position
        ceiling = max(math.ceil((index + 1) * AIM * total_steps / KILLS), before + 1)
        leftovers_before = leftovers_in(out)
        if kind == "in-write":
            write_number, byte = rng.randint(1, 3), rng.randint(1, HOLD_BYTES)
            process, log = trainer.start(out, "--checkpoint-every", "1", "--resume",
                                         fault=f"in-write:{write_number}:{byte}")
            wait_until(process, trainer, log, seconds=math.inf)
        else:
            process, log = trainer.start(out, "--checkpoint-every", "1", "--resume",
                                         fault=f"ceiling:{ceiling}")
            if kind == "start-up":
                wait_until(process, trainer, log, rng.uniform(0.0, startup_s))
            else:
                if wait_for_line(process, log, EPOCH_LINE, timeout=60):
                    wait_until(process, trainer, log,
                               rng.uniform(0.0, 1.5 * (ceiling - max(before, 0)) * step_s))
        process.send_signal(signal.SIGKILL)
        code = process.wait(timeout=60)
        assert code == -signal.SIGKILL, f"kill {index} ({kind}): status {code}\n{log.read_text()}"
        held = trainer.held() or ""
        position = check_survivors(out, steps_per_epoch, position)
        new_leftovers = leftovers_in(out) - leftovers_before
        if kind == "in-write":
            # Killed half-way through writing a checkpoint: its temporary file is there
            # and is not a model file; checkpoint.npz is the previous one, complete.
            assert held.startswith("in-write"), f"kill {index}: the driver held at {held!r}"
            partial = [name for name in new_leftovers if CHECKPOINT_LEFTOVER.match(name)]
            assert len(partial) == 1, f"kill {index}: leftovers {new_leftovers}"
            assert 0 < (out / partial[0]).stat().st_size
            with pytest.raises(ModelFileError):
                minicnn.load_model(out / partial[0])
            assert before <= position <= max(before, 0) + write_number - 1
            in_write_kills += 1
        elif held.startswith("ceiling"):
            assert position == ceiling, f"kill {index}: held at {held!r}, checkpoint {position}"
        record.append((kind, held, position))

    assert len(record) == KILLS >= readme_kills()
    assert in_write_kills >= KILLS // IN_WRITE_EVERY
    assert sum(kind == "start-up" for kind, _, _ in record) >= 1
    assert position < total_steps, "the kills came after the run had finished"
    print(f"\n{len(record)} kills (kind, where the driver held, batches in the checkpoint): "
          f"{record}; start-up {startup_s:.2f} s, step {step_s * 1e3:.1f} ms")

    # Resume to the end, then compare with the uninterrupted run bit for bit.
    trainer.run(out, "--checkpoint-every", "1", "--resume")
    resumed = minicnn.load_model(out / "model.npz")
    expected = minicnn.load_model(reference / "model.npz")
    assert_weights_equal(resumed.get_weights(), expected.get_weights(),
                         what="killed and resumed run vs uninterrupted run")
    assert_weights_equal(resumed.optimizer.get_state()["slots"],
                         expected.optimizer.get_state()["slots"], what="RMSprop slots")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["history"] == reference_metrics["history"]
    assert metrics["test_loss"] == reference_metrics["test_loss"]
    assert metrics["resumed"] is True and reference_metrics["resumed"] is False
    assert global_step(out / "checkpoint.npz", steps_per_epoch) == total_steps
    # The last run cleared the temporary files that kills had left.
    assert {path.name for path in out.iterdir()} == KNOWN_FILES
    assert time.monotonic() - started < TIME_BUDGET_S


def test_a_fresh_run_removes_an_old_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    """Without --resume an old checkpoint is discarded; with it, a finished run only
    re-evaluates and rewrites its outputs."""
    trainer = Trainer(tmp_path)
    out = tmp_path / "run"
    trainer.run(out, "--epochs", "1")
    first = minicnn.load_model(out / "model.npz").get_weights()
    assert minicnn.load_model(out / "checkpoint.npz").extra["training_state"]["epoch"] == 1
    # --epochs 1 again with --resume: the checkpoint is already at the end.
    trainer.run(out, "--epochs", "1", "--resume")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed"] is True and metrics["epoch_seconds"] == []
    assert metrics["seconds_per_epoch"] is None and len(metrics["history"]["loss"]) == 1
    assert_weights_equal(minicnn.load_model(out / "model.npz").get_weights(), first,
                         what="model.npz after a resume of a finished run")
    # A fresh run (no --resume) starts over: its first-epoch weights equal the first run's.
    (out / ".checkpoint.npz.leftover.tmp").write_bytes(b"half a checkpoint")
    trainer.run(out, "--epochs", "1")
    assert json.loads((out / "metrics.json").read_text())["resumed"] is False
    assert_weights_equal(minicnn.load_model(out / "model.npz").get_weights(), first,
                         what="a fresh run's model.npz")
    assert {path.name for path in out.iterdir()} == KNOWN_FILES
