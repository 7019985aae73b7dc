"""Jupyter support: is this a notebook kernel, and showing matplotlib Figures inline.

Nothing here imports IPython or matplotlib unless it is already loaded or needed: the
engine runs the same way without Jupyter installed.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["in_notebook", "enable_inline_figures"]

# The MIME types IPython can render a matplotlib Figure as (IPython.core.pylabtools).
_FIGURE_FORMATS = ("image/png", "image/jpeg", "image/svg+xml", "application/pdf")


def in_notebook() -> bool:
    """True inside a Jupyter kernel (an IPython shell with a kernel; not a terminal IPython)."""
    ipython = sys.modules.get("IPython")  # only if the kernel has loaded it already
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def enable_inline_figures(figure: Any) -> None:
    """Make a ``matplotlib.figure.Figure`` display inline when it is a cell's result.

    minicnn draws on ``Figure`` objects directly, never through ``pyplot``; IPython
    learns to show Figures only when a pyplot backend is activated. Inside a notebook,
    this registers IPython's own PNG printer for Figures, unless some format is already
    registered (``%matplotlib inline``, ``%config InlineBackend.figure_formats``, ...),
    so the user's choice stands. Outside a notebook it does nothing.
    """
    if not in_notebook():
        return
    from IPython import get_ipython
    from IPython.core.pylabtools import select_figure_formats

    shell = get_ipython()
    formatters = shell.display_formatter.formatters
    figure_type = type(figure)
    for mime in _FIGURE_FORMATS:
        formatter = formatters.get(mime)
        if formatter is None:
            continue
        try:
            formatter.lookup_by_type(figure_type)
            return  # already shown some way
        except KeyError:
            continue
    select_figure_formats(shell, {"png"})
