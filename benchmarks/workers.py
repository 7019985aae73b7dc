"""The worker protocol: each framework in a subprocess of its own, driven over JSON lines.

Why subprocesses: TensorFlow's and PyTorch's thread pools never share a process with
minicnn's, each peak memory (``VmHWM``) is the framework's own, and a crash or hang
in one framework is reported without losing the others' results.

The parent starts ``python -c "...worker_main(SPEC)"`` with ``SPEC`` the session's
settings as JSON (``framework``, ``backend``, ``images``, ``test_images``,
``batch_size``, ``seed``, ``threads``, and ``workload`` for the chapter's workloads of
:mod:`benchmarks.chapter`), then writes one request per line on its
stdin, ``{"command": NAME}``, and reads one JSON answer per line on its stdout.  An
answer with an ``"error"`` key (and ``"traceback"``) reports an exception in the
worker; ``finish`` ends the loop.  Everything the frameworks themselves print goes to
the worker's stderr, which the parent keeps for error messages.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from benchmarks.chapter_sessions import CHAPTER_SESSIONS
from benchmarks.sessions import KerasSession, MinicnnSession
from benchmarks.torch_session import TorchSession

__all__ = ["SESSIONS", "FRAMEWORKS", "framework_available", "worker_main", "Worker"]

SESSIONS = {"minicnn": MinicnnSession, "keras": KerasSession, "torch": TorchSession}
FRAMEWORKS = ("minicnn-numba", "minicnn-numpy", "keras", "torch")
"""The end-to-end entries: ``FRAMEWORK`` or ``minicnn-BACKEND``."""

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]


def framework_available(name: str) -> str | None:
    """None when the entry ``name`` can run here, else why not."""
    framework, _, backend = name.partition("-")
    if framework == "minicnn":
        from minicnn.backend import available_backends

        if backend == "reference":
            return "the reference backend is plain Python loops (an epoch would take days)"
        return None if backend in available_backends() else f"backend {backend!r} not available"
    if framework == "keras":
        missing = [m for m in ("keras", "tensorflow") if importlib.util.find_spec(m) is None]
        return f"not installed ({', '.join(missing)})" if missing else None
    if framework == "torch":
        return None if importlib.util.find_spec("torch") else "PyTorch is not installed"
    return f"unknown framework {name!r}"


def worker_main(spec_text: str) -> None:
    """A worker's loop: JSON requests on stdin, one JSON answer per line on the
    original stdout; everything the frameworks print goes to stderr."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    spec = json.loads(spec_text)
    # A spec naming a workload of the chapter past MNIST (benchmarks.chapter) gets that
    # workload's session; otherwise the MNIST convnet's.
    sessions = CHAPTER_SESSIONS if spec.get("workload") else SESSIONS
    session = sessions[spec["framework"]](spec)
    for line in sys.stdin:
        command = json.loads(line)["command"]
        try:
            answer = getattr(session, command)()
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            answer = {"error": f"{type(error).__name__}: {error}",
                      "traceback": traceback.format_exc()}
        protocol.write(json.dumps(answer) + "\n")
        if command == "finish":
            break


class Worker:
    """The parent's handle on one worker subprocess."""

    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        self.name = name
        self.stderr = tempfile.TemporaryFile(mode="w+")
        environment = dict(os.environ)
        # The worker imports benchmarks (and minicnn) from this checkout.
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(REPOSITORY_ROOT)]
            + [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p])
        environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        environment.setdefault("KERAS_BACKEND", "tensorflow")
        code = "import sys; from benchmarks.workers import worker_main; worker_main(sys.argv[1])"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, json.dumps(spec)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=environment)

    def request(self, command: str) -> dict[str, Any]:
        """Send ``command``, wait for its answer; RuntimeError if the worker failed."""
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(json.dumps({"command": command}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            raise RuntimeError(f"{self.name} worker exited (status {self.process.returncode}) "
                               f"during {command!r}:\n{self.stderr_tail()}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.name} worker failed in {command!r}: {answer['error']}\n"
                               f"{answer.get('traceback', '')}")
        return answer

    def stderr_tail(self, characters: int = 3000) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-characters:]

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stderr.close()
