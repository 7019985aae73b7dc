"""Execute the notebooks top to bottom, as CI does and as their saved outputs were made.

    python notebooks/run.py                 # every notebook, full settings, outputs saved in place
    python notebooks/run.py --small         # small settings (MINICNN_NOTEBOOK_SMALL=1), nothing saved
    python notebooks/run.py 5.1-introduction-to-convnets.ipynb

Needs the ``notebooks`` extra (``pip install -e ".[notebooks]"``; 5.3 also needs ``keras``).
Each notebook runs in a fresh Jupyter kernel with this folder as its working directory
(files it writes go to ``notebooks/runs/``, which git ignores). A cell that raises stops
the run with the cell's traceback and exit status 1. Saved outputs leave out
TensorFlow's C++ start-up lines on stderr, which its log level cannot silence.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# TensorFlow's C++ start-up lines, written to stderr before its logging is configured
# (TF_CPP_MIN_LOG_LEVEL cannot silence them); dropped from saved outputs as noise.
TENSORFLOW_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
                              r" are written to STDERR|I0000 .*(oneDNN custom operations|"
                              r"Could not find cuda drivers).*|\s*)$")


def drop_tensorflow_noise(notebook) -> None:
    """Remove stderr outputs made only of TensorFlow's start-up lines."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [output for output in cell.outputs
                            if not (output.output_type == "stream" and output.name == "stderr"
                                    and all(TENSORFLOW_NOISE.match(line)
                                            for line in output.text.splitlines()))]


def execute(path: Path, small: bool, timeout: int = 1800):
    """Run ``path`` in a fresh kernel; return the executed notebook (nbformat node)."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    previous = os.environ.get("MINICNN_NOTEBOOK_SMALL")
    os.environ["MINICNN_NOTEBOOK_SMALL"] = "1" if small else "0"  # the kernel inherits it
    try:
        NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(HERE)}}).execute()
    finally:
        if previous is None:
            os.environ.pop("MINICNN_NOTEBOOK_SMALL", None)
        else:
            os.environ["MINICNN_NOTEBOOK_SMALL"] = previous
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("notebooks", nargs="*", help="notebook files (default: every *.ipynb here)")
    parser.add_argument("--small", action="store_true",
                        help="small settings; outputs are not saved")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    arguments = parser.parse_args(argv)
    import nbformat
    from nbclient.exceptions import CellExecutionError

    paths = [Path(name) if Path(name).exists() else HERE / name for name in arguments.notebooks]
    for path in paths or sorted(HERE.glob("*.ipynb")):
        started = time.perf_counter()
        try:
            notebook = execute(path, arguments.small, arguments.timeout)
        except CellExecutionError as error:
            print(f"{path.name}: a cell raised\n{error}", file=sys.stderr)
            return 1
        if not arguments.small:
            drop_tensorflow_noise(notebook)
            nbformat.write(notebook, path)
        print(f"{path.name}: ran in {time.perf_counter() - started:.0f} s"
              + ("" if arguments.small else ", outputs saved"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
