"""The machine the timings depend on: cores, CPU model, SIMD flags, memory, BLAS, versions,
and the single-precision GEMM rate measured now.

``python -m benchmarks machine [--sgemm-size 2048] [--repeats 5]`` prints it as JSON.

The SGEMM rate (``np.dot`` of two float32 ``size x size`` matrices, best of several
calls) is the yardstick of the report: every kernel's GFLOP/s is also given as a
fraction of it.  Nothing here imports TensorFlow or PyTorch (their versions are read
from the installed distributions).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from typing import Any

import numpy as np

__all__ = ["usable_cores", "cpu_model", "cpu_flags", "memory_total_gib", "blas_description",
           "distribution_version", "measure_sgemm", "describe_machine", "main"]


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (or ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> list[str]:
    """The SIMD flags that matter for float32 GEMM (avx2, fma, avx512f), when listed."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [flag for flag in ("avx2", "fma", "avx512f") if flag in flags]
    except OSError:
        pass
    return []


def memory_total_gib() -> float | None:
    """Total memory from ``/proc/meminfo``, GiB (None where it is not readable)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def blas_description() -> str:
    """NumPy's BLAS: via threadpoolctl when installed (with its thread count), else
    ``numpy.show_config``'s build record."""
    try:
        import threadpoolctl

        infos = [info for info in threadpoolctl.threadpool_info()
                 if info.get("user_api") == "blas"]
        if infos:
            info = infos[0]
            return (f"{info.get('internal_api')} {info.get('version')} "
                    f"({info.get('num_threads')} threads, {info.get('architecture')}) "
                    f"via threadpoolctl")
    except Exception:  # noqa: BLE001 - optional and purely descriptive
        pass
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        text = f"{blas.get('name')} {blas.get('version')}"
        extra = blas.get("openblas configuration")
        return f"{text} ({extra})" if extra else text
    except Exception:  # noqa: BLE001 - older NumPy: no dict mode
        return "unknown (numpy.show_config)"


def distribution_version(distribution: str) -> str | None:
    """An installed distribution's version, without importing it (TensorFlow is slow to import)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def measure_sgemm(size: int = 2048, repeats: int = 5) -> dict[str, Any]:
    """This machine's float32 GEMM rate: ``np.dot`` of two ``size x size`` matrices.

    Returns:
        ``{"size", "repeats", "best_seconds", "gflops"}``; ``gflops = 2 size^3 / best``.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty((size, size), dtype=np.float32)
    np.dot(a, b, out=out)  # warm-up: threads started, pages touched
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        np.dot(a, b, out=out)
        times.append(time.perf_counter() - started)
    best = min(times)
    return {"size": size, "repeats": repeats, "best_seconds": best,
            "median_seconds": statistics.median(times), "gflops": 2 * size**3 / best / 1e9}


def describe_machine(sgemm_size: int = 2048, sgemm_repeats: int = 5) -> dict[str, Any]:
    """What the timings depend on, with the SGEMM rate measured now."""
    try:
        import numba

        numba_version, numba_threads = numba.__version__, numba.config.NUMBA_NUM_THREADS
    except ImportError:
        numba_version, numba_threads = None, None
    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "logical_cpus": os.cpu_count(),
        "simd": cpu_flags(),
        "memory_gib": memory_total_gib(),
        "blas": blas_description(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {"numpy": np.__version__, "numba": numba_version,
                     **{name: distribution_version(name)
                        for name in ("tensorflow", "keras", "torch", "minicnn")}},
        "numba_threads": numba_threads,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "sgemm": measure_sgemm(sgemm_size, sgemm_repeats),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks machine``: the description above, as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks machine",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--sgemm-size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args(argv)
    if arguments.sgemm_size < 1 or arguments.repeats < 1:
        parser.error("--sgemm-size and --repeats must be positive")
    print(json.dumps(describe_machine(arguments.sgemm_size, arguments.repeats), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
