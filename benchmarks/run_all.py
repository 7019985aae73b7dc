"""Everything: machine, kernels and end to end, into benchmarks/RESULTS.md.

``python -m benchmarks.run_all [options]`` is ``minicnn bench all [options]``
(``--help`` lists them); the code is :mod:`minicnn.bench`.
"""

from __future__ import annotations

import sys

from minicnn import bench


def main(argv: list[str] | None = None) -> int:
    return bench.main(["all", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
