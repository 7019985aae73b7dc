"""The report's sections for the chapter's workloads past MNIST and for the scaling sweep.

Rendered into ``benchmarks/RESULTS.md`` by :func:`benchmarks.report.render_markdown`
from the ``"chapter"`` (:mod:`benchmarks.chapter`) and ``"scaling"``
(:mod:`benchmarks.scaling`) sections of ``RESULTS.json``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MNIST_TARGETS", "chapter_headline", "chapter_section", "scaling_section"]

MNIST_TARGETS = {"epoch": 0.55, "predict": 0.4}
"""The speed issue's MNIST targets (minicnn's time over Keras's), judged on the end-to-end
section."""

_NAMES = {"minicnn-numba": "minicnn (numba)", "keras": "Keras", "torch": "PyTorch"}
_TITLES = {"cats-dogs-epoch": "150×150 cats-vs-dogs convnet, training epoch (RMSprop 1e-4)",
           "vgg16-extract": "VGG16 base, feature extraction (predict)",
           "vgg16-finetune": "VGG16 fine-tuning, blocks 1–4 frozen (RMSprop 1e-5)"}


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    rule = ["---"] + ["---:"] * (len(header) - 1)
    return (["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
            + ["| " + " | ".join(row) + " |" for row in rows])


def _by_name(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in entry["results"]}


def _cell(result: dict[str, Any] | None) -> str:
    if not result or not result.get("time"):
        return result["status"] if result else "—"
    return f"{result['time']['median']:.2f} s ({result['images_per_second']:.1f} img/s)"


def chapter_headline(section: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One row per workload: each framework's median time, minicnn ÷ Keras, the floor."""
    frameworks = section["settings"]["frameworks"]
    header = (["workload (batch 20)"] + [_NAMES.get(f, f) for f in frameworks]
              + ["minicnn ÷ Keras (time): medians / fastest rounds", "target", "GEMM floor",
                 "minicnn ÷ Keras (peak RSS)"])
    rows = []
    for entry in section["workloads"]:
        results = _by_name(entry)
        verdict = entry.get("verdict")
        ratio = (f"**{verdict['time_ratio']:.2f}** / **{_best_ratio(verdict)}**" if verdict
                 else "—")
        target = (f"≤ {verdict['target']} ({'met' if verdict['met'] else 'NOT met'})"
                  if verdict else "—")
        memory = f"{verdict['peak_rss_ratio']:.2f}" if verdict else "—"
        rows.append([f"{_TITLES[entry['workload']]}, {entry['images']:,} images"]
                    + [_cell(results.get(f)) for f in frameworks]
                    + [ratio, target, f"{entry['gemm_floor_seconds']:.2f} s", memory])
    return header, rows


def _best_ratio(verdict: dict[str, Any]) -> str:
    """The fastest rounds' ratio (reports written before it was recorded have none)."""
    best = verdict.get("best_time_ratio")
    return f"{best:.2f}" if best is not None else "—"


def chapter_section(section: dict[str, Any], end_to_end: dict[str, Any] | None,
                    machine_lines) -> list[str]:
    settings = section["settings"]
    sgemm = section["machine"]["sgemm"]["gflops"]
    lines = ["## The chapter past MNIST: the 150×150 convnet and VGG16, batch "
             f"{settings['batch_size']}", "",
             f"Measured {section.get('date', '?')} with `{section.get('command', '?')}`.", ""]
    lines += machine_lines(section["machine"])
    header, rows = chapter_headline(section)
    lines += ["", "### Headline", ""] + _table(header, rows)
    lines += ["", "Each cell is the median time of one timed run (an epoch, or the prediction "
              "of all the images) over "
              f"{settings['rounds']} rounds alternated between frameworks after one warm-up "
              "run each, every framework in its own worker process, on the same random "
              "150×150×3 images (the time does not depend on the pixels) with its own random "
              "weights. The GEMM floor is the workload's FLOPs (`minicnn/flops.py`: forward, "
              "and for training the backward pass down to the first trainable layer) at this "
              f"run's SGEMM rate ({sgemm:.0f} GFLOP/s); Winograd convolutions do fewer "
              "multiplications than that count and can go below it. Peak RSS is each worker "
              "process's `VmHWM` (framework, data and model included). A target is met when "
              "both ratios are within it: the medians, and each framework's fastest round "
              "(Keras's rounds on this machine are sometimes twice its others)."]
    lines += ["", "### Details", ""]
    detail = []
    for entry in section["workloads"]:
        for result in entry["results"]:
            if not result.get("time"):
                detail.append([entry["workload"], _NAMES.get(result["name"], result["name"]),
                               result["status"], "", "", "", "", "", ""])
                continue
            time = result["time"]
            detail.append([
                entry["workload"], _NAMES.get(result["name"], result["name"]),
                f"{time['median']:.3f} [{time['min']:.3f}–{time['max']:.3f}]",
                f"{result['images_per_second']:.1f}", f"{result['gflops']:.0f}",
                f"{100 * result['gflops'] / sgemm:.0f} %", f"{result['first_seconds']:.2f}",
                f"{result.get('peak_rss_mib', 0):.0f}", result.get("threads", "")])
    lines += _table(["workload", "framework", "s, median [min–max]", "images/s",
                     "GFLOP/s (FLOP count ÷ time)", "of SGEMM", "warm-up s", "peak RSS MiB",
                     "threads"], detail)
    lines += ["", "### The issue's targets", ""]
    for entry in section["workloads"]:
        verdict = entry.get("verdict")
        if verdict:
            lines.append(f"- {_TITLES[entry['workload']]}: minicnn ÷ Keras "
                         f"{verdict['time_ratio']:.2f} in median times, "
                         f"{_best_ratio(verdict)} in the fastest rounds "
                         f"(target ≤ {verdict['target']} in both): "
                         f"{'met' if verdict['met'] else 'NOT met'}")
    extract = next((e for e in section["workloads"] if e["workload"] == "vgg16-extract"), None)
    if extract and extract.get("verdict"):
        ratio = extract["verdict"]["peak_rss_ratio"]
        lines.append(f"- VGG16 feature extraction peak memory, minicnn ÷ Keras: {ratio:.2f} "
                     f"(target ≤ 1): {'met' if ratio <= 1 else 'NOT met'}")
    verdict = (end_to_end or {}).get("verdict", {})
    if "epoch_time_ratio_vs_keras" in verdict:
        epoch = verdict["epoch_time_ratio_vs_keras"]
        predict = verdict["predict_time_ratio_vs_keras"]
        lines.append(f"- MNIST convnet (the end-to-end section below): training epoch "
                     f"{epoch:.2f} (target ≤ {MNIST_TARGETS['epoch']}): "
                     f"{'met' if epoch <= MNIST_TARGETS['epoch'] else 'NOT met'}; prediction "
                     f"{predict:.2f} (target ≤ {MNIST_TARGETS['predict']}): "
                     f"{'met' if predict <= MNIST_TARGETS['predict'] else 'NOT met'}")
    lines += ["", "### What the profile showed, and what stands between minicnn and the floor",
              ""] + [f"- {line}" for line in CLOSING_NOTE]
    for note in section.get("notes", []):
        lines += ["", f"Note: {note.splitlines()[0]}"]
    return lines


CLOSING_NOTE = (
    "The per-step profile (`minicnn bench layers --model vgg16-base --batch-size 20`, and "
    "`--model cats-dogs-convnet`) guided the work: VGG16's layers with 256 and 512 "
    "channels ran F(2x2, 3x3) Winograd far below the SGEMM rate, because each block of "
    "32 tiles reloaded the whole transformed kernel (megabytes) for GEMMs of a few dozen "
    "rows; larger blocks, then larger tiles (F(3x3, 3x3) on the 18- and 9-pixel maps, "
    "F(4x4, 3x3) on the larger ones, transforms written out term by term) took those "
    "layers past the SGEMM rate in GEMM-equivalent FLOP/s.",
    "Past 28x28 many arrays are larger than glibc's largest mmap threshold (32 MiB): each "
    "was mapped fresh, and in VGG16's first block a padded copy that usually takes a "
    "fraction of the convolution after it sometimes took as long (a huge page the kernel "
    "had to find and zero). With no mmap'd blocks at all (`minicnn/kernels/allocator.py`) "
    "they come from the warm heap: faster, steadier, and a lower peak.",
    "Winograd reads its input tiles from x itself as if it were zero-padded "
    "(`minicnn/kernels/numba/winograd/patches.py`): before, each of VGG16's 'same' layers "
    "wrote a padded copy of its input first, 118 MB a batch in block 1.",
    "OpenBLAS multiplies a product of at most 100^3 multiply-adds without packing its "
    "operands (`python -m benchmarks small-products`): the larger tiles' blocks stay "
    "within that wherever a row of tiles fits (VGG16's 64- to 256-channel layers), and "
    "F(2x2)'s kernel gradient sums over blocks as long as it allows.",
    "Frozen layers compute no weight gradient, backward stops at block5_conv1, and the "
    "frozen blocks keep nothing for backward: fine-tuning costs a forward pass of the "
    "base plus block 5's backward.",
    "The 150x150 convnet's RGB first layer runs fused with its pooling as one direct loop "
    "(three channels' 4x4 patches in registers, a vector loop over the filters): no "
    "full-size output and no im2col patch matrix. VGG16's first layer, with no pooling "
    "after it, still goes through im2col with an inner dimension of 27.",
    "What stands between the 150x150 convnet and the floor: its three Winograd F(2x2) "
    "layers fused with pooling, whose backward (the kernel gradient and the input "
    "gradient, each as many GEMMs as the forward) costs about two and a half times their "
    "forward; inside the blocked loops the GEMMs run near the per-core SGEMM rate, and the "
    "rest is tile transforms, the zero-padded gradient and per-thread partial sums. "
    "Computing the input gradient on the forward's pooled tiles instead (the transposed "
    "transforms, overlap-added) was tried and did not pay. The Dense 6272 -> 512 layer's "
    "products with 20 rows run far below the SGEMM rate in SciPy's single-threaded BLAS "
    "(NumPy's threaded BLAS is faster alone, but its spinning threads slow the step).",
    "VGG16's pooled layers of blocks 1 and 2 (F(2x2) fused with the pooling, 64 and 128 "
    "channels) and block 5 (9-pixel maps, whose 512-channel GEMMs are short) run below "
    "blocks 3 and 4 in GEMM-equivalent FLOP/s; its RGB first layer runs through im2col "
    "far below the rest; every layer's backward takes two to three times its forward.",
)
"""The closing note of the chapter section: what guided the work and what is left (words
only; the numbers are the tables')."""


def scaling_section(section: dict[str, Any], machine_lines) -> list[str]:
    settings = section["settings"]
    sgemm = section["machine"]["sgemm"]["gflops"]
    lines = ["## How cost grows: one 3×3 convolution, forward and backward", "",
             f"Measured {section.get('date', '?')} with `{section.get('command', '?')}`.", ""]
    lines += machine_lines(section["machine"])
    lines += ["", f"![time per image against multiply-adds]({section['plot_link']})", "",
              "One 'same' 3×3 convolution with bias and ReLU, forward and backward (input "
              "gradient included), on random data; the median of "
              f"{settings['repeats']} calls after a warm-up, per image. Three sweeps "
              f"(image size, channels C = F, batch size), each from its base point "
              f"({settings['base']}). The GEMM "
              "floor is 3 GEMMs of the layer's multiply-adds (forward, kernel gradient, "
              f"input gradient) at this run's SGEMM rate ({sgemm:.0f} GFLOP/s). A ratio "
              "below 1 is minicnn faster.", ""]
    frameworks = settings["frameworks"]
    header = (["sweep", "N×H×W×C→F", "multiply-adds / image (M)"]
              + [f"{_NAMES.get(f, f)} ms/image" for f in frameworks]
              + ["GEMM floor ms/image", "minicnn ÷ Keras", "minicnn ÷ PyTorch"])
    rows = []
    for point in section["points"]:
        times = point["ms_per_image"]
        ours = times.get("minicnn-numba")

        def ratio(other: str) -> str:
            value = times.get(other)
            return f"{ours / value:.2f}" if ours and value else "—"

        N, H, W, C, F = point["shape"]
        rows.append([point["sweep"], f"{N}×{H}×{W}×{C}→{F}",
                     f"{point['macs_per_image'] / 1e6:,.0f}"]
                    + [f"{times[f]:.2f}" if times.get(f) else "—" for f in frameworks]
                    + [f"{point['floor_ms_per_image']:.2f}", ratio("keras"), ratio("torch")])
    lines += _table(header, rows)
    for note in section.get("notes", []):
        lines += ["", f"Note: {note.splitlines()[0]}"]
    return lines
