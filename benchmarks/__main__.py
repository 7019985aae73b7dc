"""``python -m benchmarks COMMAND [options]`` from the repository root.

    all          the machine, every step of the MNIST convnet on every backend, its
                 training epochs beside Keras and PyTorch, the chapter's workloads past
                 MNIST and the scaling sweep; writes benchmarks/RESULTS.md
                 (and RESULTS.json beside it)
    kernels      only the per-step section (:mod:`benchmarks.kernels`)
    end-to-end   only the epochs and predictions (:mod:`benchmarks.end_to_end`)
    chapter      the 150x150 cats-vs-dogs convnet's epoch, VGG16 feature extraction and
                 fine-tuning, beside Keras and PyTorch (:mod:`benchmarks.chapter`)
    scaling      one 3x3 convolution over image size, channels and batch, with a plot
                 (:mod:`benchmarks.scaling`, docs/images/scaling.png)
    machine      cores, CPU, BLAS and the SGEMM rate, printed as JSON
    small-products
                 SciPy's BLAS on the Winograd blocks' small matrices, by row count
                 (:mod:`benchmarks.small_products`), printed as tables
    report       re-render RESULTS.md from RESULTS.json, measuring nothing

``python -m benchmarks COMMAND --help`` lists each command's options.
"""

from __future__ import annotations

import sys

from benchmarks import machine, report, run_all, small_products

COMMANDS = ("all", "kernels", "end-to-end", "chapter", "scaling", "machine", "small-products",
            "report")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    command, options = argv[0], argv[1:]
    if command.startswith("-"):  # options only: everything, as ``minicnn bench`` was
        command, options = "all", argv
    if command == "machine":
        return machine.main(options)
    if command == "report":
        return report.main(options)
    if command == "small-products":
        return small_products.main(options)
    if command in run_all.MEASUREMENTS:
        return run_all.main(options, what=command)
    print(f"python -m benchmarks: error: unknown command {command!r} "
          f"(choose from {', '.join(COMMANDS)})", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
