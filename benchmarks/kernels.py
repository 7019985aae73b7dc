"""Per-layer forward/backward timings of the MNIST convnet on every backend.

``python -m benchmarks.kernels [options]`` is ``minicnn bench kernels [options]``
(``--help`` lists them); the code is :mod:`minicnn.bench`.
"""

from __future__ import annotations

import sys

from minicnn import bench


def main(argv: list[str] | None = None) -> int:
    return bench.main(["kernels", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
