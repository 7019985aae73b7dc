"""A Keras-style live progress bar for fit, evaluate and predict.

Looks like Keras 3's ``Progbar``::

    Epoch 1/5
    938/938 ━━━━━━━━━━━━━━━━━━━━ 4s 4ms/step - accuracy: 0.9512 - loss: 0.1573 - val_accuracy: ...

The bar redraws in place at most every ``interval`` seconds: on a terminal with a
carriage return; in a Jupyter notebook (an IPython kernel) as one output that is updated
in place (``IPython.display.display(..., display_id=True)`` then ``update``), so the
notebook keeps only the last state of each bar, as Keras's bar shows there.  Anywhere
else (a file, a pipe, a log) only the final line is printed, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from minicnn.notebook import in_notebook


def format_metrics(values: dict[str, float]) -> str:
    """``" - accuracy: 0.9512 - loss: 0.1573"`` in Keras's 4-decimal style."""
    return "".join(f" - {name}: {value:.4f}" for name, value in values.items())


def format_duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


def format_per_step(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


class ProgressBar:
    """Progress over ``total`` steps; call ``update(step, values)`` then ``finish(values)``."""

    width = 20

    def __init__(self, total: int, stream: TextIO | None = None, interval: float = 0.05) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stdout
        self.interval = interval
        # A notebook gets an updating display; a stream named by the caller keeps its text.
        self.notebook = stream is None and in_notebook()
        self.live = self.notebook or bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._last_length = 0
        self._display: Any = None  # the IPython DisplayHandle, once shown

    def _line(self, step: int, values: dict[str, float], done: bool) -> str:
        elapsed = time.perf_counter() - self.start
        filled = self.width if self.total == 0 else int(self.width * step / self.total)
        # Unfilled steps are drawn dim on a terminal (and in Jupyter, which reads ANSI), as Keras does.
        rest = self.width - filled
        bar = "━" * filled + (f"\x1b[2m{'━' * rest}\x1b[0m" if rest else "")
        if done:
            timing = f"{format_duration(elapsed)} {format_per_step(elapsed / max(step, 1))}"
        else:
            remaining = elapsed / max(step, 1) * (self.total - step)
            timing = f"{format_duration(remaining)}"
        return f"{step}/{self.total} {bar} {timing}{format_metrics(values)}"

    def update(self, step: int, values: dict[str, float]) -> None:
        """Redraw the bar for ``step`` steps done (throttled; terminals and notebooks only)."""
        if not self.live:
            return
        now = time.perf_counter()
        if now - self._last_draw < self.interval:
            return
        self._last_draw = now
        line = self._line(step, values, done=False)
        if self.notebook:
            self._show(line)
        else:
            self._write("\r" + line)

    def finish(self, values: dict[str, float]) -> None:
        """Print the final line for the whole run, then a newline."""
        line = self._line(self.total, values, done=True)
        if self.notebook:
            self._show(line)
            return
        self._write(("\r" if self.live else "") + line + "\n")

    def _show(self, line: str) -> None:
        """Show ``line`` as this bar's one notebook output, replacing what it showed before."""
        from IPython.display import display  # in_notebook() said IPython is loaded

        # Text printed before the bar (``Epoch 1/5``) must come out above it.
        self.stream.flush()
        data = {"text/plain": line}
        if self._display is None:
            self._display = display(data, raw=True, display_id=True)
        else:
            self._display.update(data, raw=True)

    def _write(self, text: str) -> None:
        # Pad with spaces so a shorter line fully covers the previous one.
        visible = len(text.rstrip("\n"))
        padding = max(self._last_length - visible, 0) if text.startswith("\r") else 0
        self.stream.write(text.rstrip("\n") + " " * padding + ("\n" if text.endswith("\n") else ""))
        self.stream.flush()
        self._last_length = visible
