"""The chapter's workloads past MNIST, minicnn beside Keras and PyTorch, with the GEMM floor.

For each workload of :data:`~benchmarks.chapter_sessions.WORKLOADS` (the 150x150
cats-vs-dogs convnet's training epoch, VGG16 feature extraction, VGG16 fine-tuning with
blocks 1-4 frozen), one worker subprocess per framework (:mod:`benchmarks.workers`)
builds the network and the same random images; the parent runs a warm-up for each,
then ``rounds`` timed rounds alternated between frameworks, so that a slow period of
a shared machine falls on all of them.  Each worker runs one workload, so its peak
memory (``VmHWM``) is that workload's (plus the framework's own).

The GEMM floor of a workload is its FLOPs (:mod:`minicnn.flops`: every layer's forward
pass, and for training the backward pass down to the first trainable layer) at the
machine's SGEMM rate: what the work would cost as plain GEMMs at BLAS's best speed
(Winograd, which does fewer multiplications, can go below it).
"""

from __future__ import annotations

from typing import Any, Callable

from benchmarks.chapter_sessions import WORKLOADS, chapter_model
from benchmarks.end_to_end import spread
from benchmarks.machine import describe_machine, usable_cores
from benchmarks.workers import Worker, framework_available

__all__ = ["CHAPTER_FRAMEWORKS", "DEFAULT_IMAGES", "TARGETS", "workload_flops",
           "run_chapter"]

CHAPTER_FRAMEWORKS = ("minicnn-numba", "keras", "torch")
DEFAULT_IMAGES = {"cats-dogs-epoch": 2000, "vgg16-extract": 200, "vgg16-finetune": 200}
"""Images per timed run: the chapter's 2,000 training images for the small convnet; for
VGG16 fewer than the chapter's (the rate is per batch of 20, steady after the first)."""
TARGETS = {"cats-dogs-epoch": 0.6, "vgg16-extract": 0.6, "vgg16-finetune": 0.6}
"""The speed issue's targets: minicnn's time over Keras's, at most."""


def workload_flops(workload: str, batch_size: int, images: int) -> int:
    """FLOPs of one timed run of ``workload`` on ``images`` images (whole batches)."""
    from minicnn.flops import predict_flops, training_step_flops

    model = chapter_model(workload)
    batches = -(-images // batch_size)
    per_batch = (training_step_flops(model, batch_size) if WORKLOADS[workload]["train"]
                 else predict_flops(model, batch_size))
    return per_batch * batches


def run_chapter(workloads: list[str] | None = None, frameworks: list[str] | None = None,
                images: dict[str, int] | None = None, rounds: int = 3, batch_size: int = 20,
                seed: int = 0, machine: dict[str, Any] | None = None,
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Time each workload in each framework; returns the ``"chapter"`` report section."""
    machine = machine or describe_machine()
    workloads = list(workloads or WORKLOADS)
    frameworks = list(frameworks or CHAPTER_FRAMEWORKS)
    images = {**DEFAULT_IMAGES, **(images or {})}
    sgemm = machine["sgemm"]["gflops"]
    section: dict[str, Any] = {"machine": machine, "workloads": [], "notes": [],
                               "settings": {"workloads": workloads, "frameworks": frameworks,
                                            "images": {w: images[w] for w in workloads},
                                            "rounds": rounds, "batch_size": batch_size,
                                            "seed": seed}}
    for workload in workloads:
        flops = workload_flops(workload, batch_size, images[workload])
        entry = {"workload": workload, "images": images[workload], "flops": flops,
                 "gemm_floor_seconds": flops / (sgemm * 1e9), "results": []}
        section["workloads"].append(entry)
        workers: list[tuple[Worker, dict[str, Any]]] = []

        def fail(worker: Worker, result: dict[str, Any], error: Exception) -> None:
            result["status"] = f"failed: {str(error).splitlines()[0]}"
            section["notes"].append(f"{workload} {worker.name}: {error}")
            log(f"{workload}: {worker.name} failed: {error}")
            worker.close()
            workers.remove((worker, result))

        try:
            for name in frameworks:
                result: dict[str, Any] = {"name": name, "status": "ok", "seconds": []}
                entry["results"].append(result)
                reason = framework_available(name)
                if reason:
                    result["status"] = f"skipped: {reason}"
                    continue
                framework, _, backend = name.partition("-")
                spec = {"framework": framework, "backend": backend or None,
                        "workload": workload, "images": images[workload],
                        "batch_size": batch_size, "seed": seed, "threads": usable_cores()}
                worker = Worker(name, spec)
                workers.append((worker, result))
                try:
                    result.update(worker.request("setup"))
                    result["first_seconds"] = worker.request("run")["seconds"]
                    log(f"{workload}: {name} warm-up {result['first_seconds']:.2f} s")
                except RuntimeError as error:
                    fail(worker, result, error)
            for round_index in range(rounds):
                for worker, result in list(workers):
                    try:
                        seconds = worker.request("run")["seconds"]
                    except RuntimeError as error:
                        fail(worker, result, error)
                        continue
                    result["seconds"].append(seconds)
                    log(f"{workload}: round {round_index + 1}/{rounds} {worker.name} "
                        f"{seconds:.2f} s")
            for worker, result in list(workers):
                try:
                    result.update(worker.request("finish"))
                except RuntimeError as error:
                    fail(worker, result, error)
        finally:
            for worker, _ in workers:
                worker.close()
        for result in entry["results"]:
            if result["status"] == "ok" and result["seconds"]:
                result["time"] = spread(result["seconds"])
                result["images_per_second"] = images[workload] / result["time"]["median"]
                result["gflops"] = flops / result["time"]["median"] / 1e9
        by_name = {r["name"]: r for r in entry["results"] if r.get("time")}
        keras = by_name.get("keras")
        for result in by_name.values():
            if keras:
                result["time_ratio_vs_keras"] = (result["time"]["median"]
                                                 / keras["time"]["median"])
        ours = by_name.get("minicnn-numba")
        if ours and keras:
            entry["verdict"] = verdict(ours, keras, TARGETS[workload])
    return section


def verdict(ours: dict[str, Any], keras: dict[str, Any], target: float) -> dict[str, Any]:
    """minicnn against Keras on one workload: the ratio of median times, the ratio of the
    fastest rounds, and whether both are within ``target``.

    Why both: Keras's rounds on a small shared machine are sometimes twice as slow as
    its others (its 150x150 epoch took 20.3 s in one round and 42.9 s in the next two), so
    a median of three can flatter minicnn; the fastest round of each framework is the
    best estimate of what its computation costs.
    """
    median = ours["time"]["median"] / keras["time"]["median"]
    best = ours["time"]["min"] / keras["time"]["min"]
    return {"time_ratio": median, "best_time_ratio": best, "target": target,
            "met": median <= target and best <= target,
            "peak_rss_ratio": ours.get("peak_rss_mib", 0) / keras.get("peak_rss_mib", 1)}
