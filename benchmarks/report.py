"""Re-render ``RESULTS.md`` from the ``RESULTS.json`` stored beside it (no measuring).

``python -m benchmarks.report [--out benchmarks/RESULTS.md]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from minicnn.bench import DEFAULT_OUT, render_markdown
from minicnn.io import atomic_write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    arguments = parser.parse_args(argv)
    out = Path(arguments.out)
    json_path = out.with_suffix(".json")
    if not json_path.exists():
        print(f"benchmarks.report: error: {json_path} not found (run minicnn bench first)",
              file=sys.stderr)
        return 2
    markdown = render_markdown(json.loads(json_path.read_text()))
    atomic_write(out, lambda handle: handle.write(markdown.encode()))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
