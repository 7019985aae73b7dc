"""Training epochs and predictions: minicnn beside Keras and PyTorch, alternated.

``python -m benchmarks.end_to_end [options]`` is ``minicnn bench end-to-end [options]``
(``--help`` lists them); the code is :mod:`minicnn.bench`.
"""

from __future__ import annotations

import sys

from minicnn import bench


def main(argv: list[str] | None = None) -> int:
    return bench.main(["end-to-end", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
