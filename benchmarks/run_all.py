"""The harness's command line: measure the machine, then kernels and/or end to end, and
write the report.

    python -m benchmarks all [--quick] [options]         # what RESULTS.md holds
    python -m benchmarks kernels [options]               # replaces only that section
    python -m benchmarks end-to-end [options]            # likewise
    python -m benchmarks chapter [options]               # the 150x150 convnet and VGG16
    python -m benchmarks scaling [options]               # one 3x3 convolution, swept
    python -m benchmarks.run_all [options]               # = python -m benchmarks all

``--help`` lists the options.  Every section records the exact command that reproduces
it, every setting spelled out.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
from typing import Any, Callable

from benchmarks.chapter import CHAPTER_FRAMEWORKS, DEFAULT_IMAGES, run_chapter
from benchmarks.chapter_sessions import WORKLOADS
from benchmarks.end_to_end import BATCH_SIZE, FULL_EPOCH_IMAGES, gemm_floor, run_end_to_end
from benchmarks.kernels import run_kernel_benchmarks
from benchmarks.machine import describe_machine
from benchmarks.report import DEFAULT_OUT, headline_rows, markdown_table, write_results
from benchmarks.workers import FRAMEWORKS

__all__ = ["MEASUREMENTS", "add_arguments", "run_command", "main"]

MEASUREMENTS = ("all", "kernels", "end-to-end", "chapter", "scaling")
SCALING_MAX_REPEATS = 5
"""The scaling sweep's calls per point at most (its largest points are whole seconds)."""
_QUICK_CHAPTER_IMAGES = {"cats-dogs-epoch": 40, "vgg16-extract": 20, "vgg16-finetune": 20}
_QUICK = {"repeats": 3, "warmup": 1, "images": 1024, "test_images": 1000, "rounds": 1,
          "sgemm_size": 1024}
_FULL = {"repeats": 20, "warmup": 2, "images": FULL_EPOCH_IMAGES, "test_images": 10_000,
         "rounds": 3, "sgemm_size": 2048}


def add_arguments(parser: argparse.ArgumentParser, what: bool = True) -> None:
    """The harness's options; ``what``: also the positional ``all|kernels|end-to-end``."""
    if what:
        parser.add_argument("what", nargs="?", choices=MEASUREMENTS, default="all",
                            help="what to measure (default all)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 3 repeats per kernel, no reference backend, "
                             "epochs of 1,024 images, 1 timed round")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"Markdown report (default {DEFAULT_OUT}; JSON beside it)")
    parser.add_argument("--backends", nargs="+", choices=["numba", "numpy", "reference"],
                        help="kernel backends (default: all available; --quick drops "
                             "reference)")
    parser.add_argument("--frameworks", nargs="+", choices=list(FRAMEWORKS),
                        help="end-to-end entries (default: all)")
    parser.add_argument("--images", type=int, help="training images per epoch "
                        "(default 60000; times are also given per 60k)")
    parser.add_argument("--test-images", type=int, help="images predicted and evaluated "
                        "(default 10000)")
    parser.add_argument("--rounds", type=int, help="timed epochs per framework after the "
                        "warm-up (default 3)")
    parser.add_argument("--repeats", type=int, help="timed calls per kernel (default 20)")
    parser.add_argument("--warmup", type=int, help="untimed calls per kernel (default 2)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--sgemm-size", type=int, help="SGEMM matrix size (default 2048)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS),
                        help="chapter: the workloads (default all)")
    parser.add_argument("--chapter-images", nargs="+", metavar="WORKLOAD=N",
                        help="chapter: images per timed run (default "
                             + ", ".join(f"{k}={v}" for k, v in DEFAULT_IMAGES.items()) + ")")
    parser.add_argument("--chapter-batch-size", type=int, default=20,
                        help="chapter: batch size (default 20, the chapter's)")


def _resolved(arguments: argparse.Namespace) -> dict[str, Any]:
    """The settings of this run: the options given, else the quick or full defaults."""
    defaults = _QUICK if arguments.quick else _FULL
    settings = {key: getattr(arguments, key) if getattr(arguments, key) is not None else value
                for key, value in defaults.items()}
    for key, value in settings.items():
        if value < (0 if key == "warmup" else 1):
            raise ValueError(f"--{key.replace('_', '-')} must be positive, received {value}")
    if arguments.batch_size < 1:
        raise ValueError(f"--batch-size must be positive, received {arguments.batch_size}")
    backends = arguments.backends
    if backends is None:
        from minicnn.backend import available_backends

        backends = [b for b in available_backends() if not (arguments.quick and b == "reference")]
    settings["backends"] = backends
    settings["frameworks"] = [f for f in arguments.frameworks or FRAMEWORKS
                              if f in FRAMEWORKS]
    settings["chapter_frameworks"] = [f for f in arguments.frameworks or CHAPTER_FRAMEWORKS
                                      if f in CHAPTER_FRAMEWORKS]
    settings["workloads"] = arguments.workloads or list(WORKLOADS)
    images = dict(_QUICK_CHAPTER_IMAGES if arguments.quick else DEFAULT_IMAGES)
    for item in arguments.chapter_images or []:
        workload, _, count = item.partition("=")
        if workload not in WORKLOADS or not count.isdigit() or int(count) < 1:
            raise ValueError(f"--chapter-images takes WORKLOAD=N with WORKLOAD one of "
                             f"{', '.join(WORKLOADS)}, received {item!r}")
        images[workload] = int(count)
    settings["chapter_images"] = {w: images[w] for w in settings["workloads"]}
    return settings


def _command_line(arguments: argparse.Namespace, settings: dict[str, Any], what: str) -> str:
    """The exact command that reproduces this section, every setting spelled out."""
    parts = ["python", "-m", "benchmarks", what]
    if what == "chapter":
        parts += ["--frameworks", *settings["chapter_frameworks"], "--workloads",
                  *settings["workloads"], "--chapter-images",
                  *[f"{k}={v}" for k, v in settings["chapter_images"].items()],
                  "--rounds", str(settings["rounds"]), "--chapter-batch-size",
                  str(arguments.chapter_batch_size), "--sgemm-size",
                  str(settings["sgemm_size"]), "--seed", str(arguments.seed),
                  "--out", arguments.out]
        return shlex.join(parts)
    if what == "scaling":
        parts += ["--frameworks", *settings["chapter_frameworks"], "--repeats",
                  str(min(settings["repeats"], SCALING_MAX_REPEATS))]
        parts += ["--quick"] if arguments.quick else []
        return shlex.join(parts + ["--sgemm-size", str(settings["sgemm_size"]), "--out",
                                   arguments.out])
    if what == "kernels":
        parts += ["--backends", *settings["backends"], "--repeats", str(settings["repeats"]),
                  "--warmup", str(settings["warmup"])]
    else:
        parts += ["--frameworks", *settings["frameworks"], "--images", str(settings["images"]),
                  "--test-images", str(settings["test_images"]),
                  "--rounds", str(settings["rounds"])]
    parts += ["--batch-size", str(arguments.batch_size), "--sgemm-size",
              str(settings["sgemm_size"]), "--seed", str(arguments.seed),
              "--out", arguments.out]
    return shlex.join(parts)


def run_command(arguments: argparse.Namespace, log: Callable[[str], None] = print) -> int:
    """Run what ``arguments`` ask for, write the report, print the headline."""
    settings = _resolved(arguments)
    log(f"machine: measuring SGEMM ({settings['sgemm_size']}^2 float32)")
    machine = describe_machine(settings["sgemm_size"])
    log(f"machine: {machine['cpu']}, {machine['cores']} cores, SGEMM "
        f"{machine['sgemm']['gflops']:.0f} GFLOP/s, load {machine['load_average']}")
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    sections: dict[str, Any] = {}
    if arguments.what in ("kernels", "all"):
        kernels = run_kernel_benchmarks(settings["backends"], batch=arguments.batch_size,
                                        repeats=settings["repeats"], warmup=settings["warmup"],
                                        seed=arguments.seed, machine=machine, log=log)
        kernels.update(date=date, command=_command_line(arguments, settings, "kernels"))
        sections["kernels"] = kernels
    if arguments.what in ("end-to-end", "all"):
        end_to_end = run_end_to_end(settings["frameworks"], images=settings["images"],
                                    test_images=settings["test_images"],
                                    rounds=settings["rounds"], batch_size=arguments.batch_size,
                                    seed=arguments.seed, machine=machine, log=log)
        end_to_end.update(date=date, command=_command_line(arguments, settings, "end-to-end"),
                          gemm_floor=gemm_floor(arguments.batch_size,
                                                machine["sgemm"]["gflops"]))
        sections["end_to_end"] = end_to_end
    if arguments.what in ("chapter", "all"):
        chapter = run_chapter(settings["workloads"], settings["chapter_frameworks"],
                              images=settings["chapter_images"], rounds=settings["rounds"],
                              batch_size=arguments.chapter_batch_size, seed=arguments.seed,
                              machine=machine, log=log)
        chapter.update(date=date, command=_command_line(arguments, settings, "chapter"))
        sections["chapter"] = chapter
    if arguments.what in ("scaling", "all"):
        from benchmarks.scaling import plot_scaling, run_scaling

        scaling = run_scaling(machine, settings["chapter_frameworks"],
                              repeats=min(settings["repeats"], SCALING_MAX_REPEATS),
                              quick=arguments.quick, log=log)
        scaling.update(date=date, command=_command_line(arguments, settings, "scaling"))
        sections["scaling"] = scaling
        log(f"scaling: wrote {plot_scaling(scaling)}")
    path = write_results(arguments.out, sections)
    if "chapter" in sections:
        from benchmarks.chapter_report import chapter_headline

        header, rows = chapter_headline(sections["chapter"])
        log("\n".join([""] + markdown_table(header, rows)))
    if "end_to_end" in sections:
        header, rows = headline_rows(sections["end_to_end"])
        log("\n".join([""] + markdown_table(header, rows)))
    if "kernels" in sections:
        log("")
        for row in sections["kernels"]["rows"]:
            fraction = row["fraction_of_sgemm"]
            log(f"  {row['backend']:>9} {row['layer']:>24} {row['pass']:>8} "
                f"{row['median_ms']:9.3f} ms  "
                + (f"{row['gflops']:6.1f} GFLOP/s {100 * fraction:5.1f} % SGEMM"
                   if row["gflops"] else ""))
    log(f"\nwrote {path} and {path.with_suffix('.json')}")
    return 0


def main(argv: list[str] | None = None, what: str | None = None) -> int:
    """``python -m benchmarks [all|kernels|end-to-end] [options]``; ``what`` fixes the
    measurement (``python -m benchmarks.run_all`` is ``all``)."""
    prog = "python -m benchmarks" + (f" {what}" if what else "")
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    add_arguments(parser, what=what is None)
    arguments = parser.parse_args(argv)
    if what is not None:
        arguments.what = what
    try:
        return run_command(arguments)
    except ValueError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(what="all"))
