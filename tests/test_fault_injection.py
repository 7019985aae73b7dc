"""Training that survives being killed: SIGKILL a real ``minicnn train mnist`` process at
random moments, resume it, and end with the weights of a run never interrupted.

Each run is a separate Python process (``python DRIVER train mnist ... --resume``) on a
tiny synthetic ``mnist.npz`` in a temporary cache, with the NumPy backend (no JIT
compilation) and one BLAS thread (repeatable sums).  The driver accepts the synthetic
file's SHA-256 in place of the real MNIST's and refuses the network, as the fixture in
``tests/test_train_cli.py`` does in-process.

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
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minicnn
from tests.helpers import assert_weights_equal

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL"),
]

TRAIN_IMAGES = 320          # MINICNN_MNIST_SUBSET: 320 training and 320 test images
BATCH_SIZE = 16             # 20 steps per epoch
EPOCHS = 3                  # 60 optimizer steps in all
SEED = 3
MIN_KILLS = 20
KILLS = 24
AIM = 0.75                  # the kills spread over the first 75 % of the 60 batches
KILL_SEED = 20240611        # the kill moments are random, but repeatable
TIME_BUDGET_S = 150         # the whole test: 10-15 s on an idle 2-core machine, 40 s busy

DRIVER = """\
import sys
from minicnn.datasets import mnist

mnist.KERAS_NPZ_SHA256 = sys.argv[1]     # accept the synthetic file

def refuse(*args, **kwargs):
    raise RuntimeError("network access in a test")

mnist._download_url = mnist._pip_download_wheel = refuse
from minicnn import cli

sys.exit(cli.main(sys.argv[2:]))
"""
TRAINING_LINE = "minicnn: training"   # printed once the data and the model are ready
EPOCH_LINE = "Epoch "                  # printed when fit starts (or resumes) an epoch
KNOWN_FILES = {"checkpoint.npz", "model.npz", "metrics.json", "curves.png"}


def write_synthetic_mnist(path: Path) -> str:
    """A Keras-layout uint8 ``mnist.npz``, each class a bright square; returns its SHA-256."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split in ("train", "test"):
        labels = rng.integers(0, 10, TRAIN_IMAGES).astype(np.uint8)
        images = rng.integers(0, 60, (TRAIN_IMAGES, 28, 28), dtype=np.uint8)
        for index, label in enumerate(labels):
            row, col = divmod(int(label), 5)
            images[index, 4 + 10 * row:12 + 10 * row, 2 + 5 * col:6 + 5 * col] = 255
        arrays[f"x_{split}"], arrays[f"y_{split}"] = images, labels
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    from minicnn.datasets import mnist

    return mnist.sha256_file(path)


class Trainer:
    """Starts ``minicnn train mnist`` processes on the synthetic data."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.driver = tmp_path / "driver.py"
        self.driver.write_text(DRIVER)
        cache = tmp_path / "cache"
        self.sha256 = write_synthetic_mnist(cache / "mnist.npz")
        self.env = {**os.environ, "MINICNN_DATA_DIR": str(cache),
                    "MINICNN_MNIST_SUBSET": str(TRAIN_IMAGES), "MINICNN_BACKEND": "numpy",
                    "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                    "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "MPLBACKEND": "Agg",
                    "PYTHONPATH": os.pathsep.join(
                        [str(Path(minicnn.__file__).resolve().parents[1]),
                         os.environ.get("PYTHONPATH", "")])}
        self.runs = 0

    def start(self, out: Path, *options: str) -> tuple[subprocess.Popen, Path]:
        self.runs += 1
        log = self.tmp_path / f"run-{self.runs:03d}.log"
        command = [sys.executable, str(self.driver), self.sha256, "train", "mnist",
                   "--model", "convnet", "--epochs", str(EPOCHS), "--batch-size",
                   str(BATCH_SIZE), "--seed", str(SEED), "--backend", "numpy",
                   "--verbose", "2", "--out", str(out), *options]
        with open(log, "wb") as handle:
            process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                                       env=self.env)
        return process, log

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


def global_step(path: Path, steps_per_epoch: int) -> int:
    """Load a checkpoint with ``minicnn.load_model``; return how many batches it has applied."""
    checkpoint = minicnn.load_model(path)
    state = checkpoint.extra["training_state"]
    assert len(checkpoint.get_weights()) == 10
    assert all(np.isfinite(weight).all() for weight in checkpoint.get_weights())
    return state["epoch"] * steps_per_epoch + state["step"]


def check_survivors(out: Path, steps_per_epoch: int, previous_step: int,
                    seen_leftovers: set[str]) -> int:
    """What a kill left must be loadable; returns the checkpoint's position (or -1).

    ``seen_leftovers`` collects the temporary files of writes the kills interrupted.
    """
    names = {path.name for path in out.iterdir()} if out.exists() else set()
    leftovers = {name for name in names - KNOWN_FILES
                 if name.startswith(".") and name.endswith(".tmp")}
    assert names - KNOWN_FILES - leftovers == set(), f"unexpected files {names}"
    seen_leftovers.update(leftovers)
    if (out / "model.npz").exists():
        minicnn.load_model(out / "model.npz")
    if not (out / "checkpoint.npz").exists():
        assert previous_step == -1, "a checkpoint disappeared"
        return -1
    step = global_step(out / "checkpoint.npz", steps_per_epoch)
    assert step >= previous_step, f"the checkpoint went back from {previous_step} to {step}"
    return step


def test_training_killed_at_random_moments_resumes_to_the_same_weights(tmp_path: Path) -> None:
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

    # Kill, check, resume -- KILLS times.  Four kills in five land at a uniformly random
    # moment of the first `window` seconds after fit starts (or resumes) an epoch,
    # while the checkpoint is restored, batches are applied and checkpoints written
    # (every batch here, each one fsync'ed: a large share of the time).  The window
    # adapts so that each kill lets the run advance its share of the batches left
    # before AIM, which spreads the kills over the run on a fast machine or a slow,
    # busy one.  One kill in five lands anywhere in the process's start-up (imports,
    # data, model).
    window = 4.0 * step_s
    rng = random.Random(KILL_SEED)
    out = tmp_path / "killed"
    kills, position, completed_early = 0, -1, False
    unfinished_kills = 0  # kills that hit a run with batches still to apply
    kill_moments: list[tuple[str, float, int]] = []
    interrupted_writes: set[str] = set()
    while kills < KILLS:
        assert time.monotonic() - started < TIME_BUDGET_S, "fault injection took too long"
        launched = time.monotonic()
        process, log = trainer.start(out, "--checkpoint-every", "1", "--resume")
        if rng.random() < 0.2:
            moment = ("start-up", rng.uniform(0.0, startup_s))
            time.sleep(moment[1])
        else:
            moment = ("training", rng.uniform(0.0, window))
            if wait_for_line(process, log, EPOCH_LINE, timeout=60):
                time.sleep(moment[1])
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        code = process.wait(timeout=60)
        if code == 0:  # finished before the kill came: nothing left to interrupt
            completed_early = kills < MIN_KILLS
            break
        assert code == -signal.SIGKILL, log.read_text()
        kills += 1
        before = position
        unfinished_kills += before < total_steps
        position = check_survivors(out, steps_per_epoch, position, interrupted_writes)
        if moment[0] == "training":
            share = (AIM * total_steps - max(before, 0)) / (KILLS - kills + 1)
            window *= 1.25 if position - before < max(share, 1.0) else 0.8
        kill_moments.append((moment[0], round(time.monotonic() - launched, 3), position))

    assert not completed_early, (
        f"training finished after only {kills} kills; the kill window is too wide "
        f"for this machine (step {step_s * 1e3:.1f} ms)")
    assert kills >= MIN_KILLS
    assert unfinished_kills >= MIN_KILLS, "too few kills hit an unfinished run"
    assert any(kind == "start-up" for kind, _, _ in kill_moments)
    assert sum(kind == "training" for kind, _, _ in kill_moments) >= MIN_KILLS // 2
    print(f"\n{kills} kills (kind, seconds after launch, batches in the checkpoint): "
          f"{kill_moments}; {len(interrupted_writes)} interrupted atomic writes; "
          f"start-up {startup_s:.2f} s, step {step_s * 1e3:.1f} ms")

    # Resume to the end, then compare with the uninterrupted run bit for bit.
    trainer.run(out, "--checkpoint-every", "1", "--resume")
    resumed = minicnn.load_model(out / "model.npz")
    expected = minicnn.load_model(reference / "model.npz")
    assert_weights_equal(resumed.get_weights(), expected.get_weights(),
                         what="killed and resumed run vs uninterrupted run")
    np.testing.assert_array_equal(resumed.optimizer.get_state()["slots"][0],
                                  expected.optimizer.get_state()["slots"][0])
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
