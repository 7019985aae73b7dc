"""Small text helpers the walk-throughs share for numbers that are not integers.

(Integer grids and blocks side by side come from :mod:`minicnn.explain.conv`.)
"""

from __future__ import annotations

import numpy as np


def decimal_grid(array: np.ndarray, decimals: int) -> list[str]:
    """One line per row of a 2-D ``array``, each value with ``decimals`` decimals, aligned."""
    array = np.asarray(array, dtype=np.float64)
    cells = [[f"{value:.{decimals}f}" for value in row] for row in array]
    width = max((len(cell) for row in cells for cell in row), default=1)
    return ["[" + " ".join(cell.rjust(width) for cell in row) + "]" for row in cells]


def signed_terms(values, decimals: int | None = None) -> str:
    """``1 + (-2) + 3``: a sum written out, negative terms in parentheses.

    ``decimals=None`` prints integers; otherwise each value with that many decimals.
    """
    def text(value) -> str:
        body = str(int(value)) if decimals is None else f"{value:.{decimals}f}"
        return f"({body})" if value < 0 else body

    return " + ".join(text(value) for value in values)


def indent(lines: list[str], prefix: str = "   ") -> list[str]:
    """``lines`` shifted right under a numbered step."""
    return [prefix + line for line in lines]
