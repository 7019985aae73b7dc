"""The machine the timings depend on: cores, CPU model, BLAS and measured SGEMM rate.

``python -m benchmarks.machine [--sgemm-size 2048] [--repeats 5]`` prints it as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys

from minicnn.bench import describe_machine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.machine",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--sgemm-size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args(argv)
    print(json.dumps(describe_machine(arguments.sgemm_size, arguments.repeats), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
