"""The report: ``benchmarks/RESULTS.md``, rendered from ``RESULTS.json`` beside it.

Every run stores its sections (``"end_to_end"``, ``"kernels"``) in the JSON file,
keeping the sections it did not measure, then renders the whole Markdown again from
the JSON; both files are written atomically (:mod:`minicnn.files`).
``python -m benchmarks report`` re-renders the Markdown alone (after a change to this
renderer), measuring nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from minicnn.files import atomic_write, write_json

from benchmarks.chapter_report import chapter_section, scaling_section
from benchmarks.end_to_end import (FULL_EPOCH_IMAGES, TARGET_ACCURACY_GAP_POINTS,
                                   TARGET_EPOCH_RATIO, TARGET_PREDICT_TIME_RATIO)

__all__ = ["DEFAULT_OUT", "render_markdown", "write_results", "write_markdown",
           "headline_rows", "markdown_table", "main"]

DEFAULT_OUT = "benchmarks/RESULTS.md"

_PRETTY = {"minicnn-numba": "minicnn (numba)", "minicnn-numpy": "minicnn (numpy)",
           "minicnn-reference": "minicnn (reference)", "keras": "Keras", "torch": "PyTorch"}


def _pretty(name: str, versions: dict[str, Any]) -> str:
    if name == "keras" and versions.get("keras"):
        return f"Keras {versions['keras']} (TensorFlow {versions.get('tensorflow')})"
    if name == "torch" and versions.get("torch"):
        return f"PyTorch {versions['torch']}"
    return _PRETTY.get(name, name)


def _number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown_table(header: list[str], rows: list[list[str]],
                   align: list[str] | None = None) -> list[str]:
    """A Markdown table's lines; ``align``: "l" or "r" per column (default: first left)."""
    align = align or ["l"] + ["r"] * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _machine_lines(machine: dict[str, Any]) -> list[str]:
    versions = machine.get("versions", {})
    shown = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
    sgemm = machine["sgemm"]
    load = machine.get("load_average")
    lines = [
        f"- CPU: {machine['cpu']} — {machine['cores']} usable cores "
        f"({machine['logical_cpus']} logical CPUs), SIMD: {', '.join(machine['simd']) or '?'}, "
        f"memory {machine.get('memory_gib')} GiB",
        f"- BLAS (NumPy): {machine['blas']}",
        f"- SGEMM measured in this run: **{sgemm['gflops']:.0f} GFLOP/s** "
        f"(np.dot, float32 {sgemm['size']}x{sgemm['size']}, best of {sgemm['repeats']}; "
        f"median {2 * sgemm['size']**3 / sgemm['median_seconds'] / 1e9:.0f})",
        f"- Software: Python {machine['python']}, {shown}; numba threads "
        f"{machine.get('numba_threads')}; {machine['platform']}",
    ]
    if load:
        warning = ""
        if load[0] > 0.5 * machine["cores"]:
            warning = " — **the machine was busy: these numbers are not reliable**"
        lines.append(f"- Load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}{warning}")
    return lines


def _kernel_method(settings: dict[str, Any], sgemm: float, rows: list[dict[str, Any]]) -> str:
    """How the kernel rows were measured: by the profiler's steps, or (sections measured
    before it) layer by layer with the fused pairs timed again apart."""
    common = (f"on random inputs; median of {settings['repeats']} calls after "
              f"{settings['warmup']} warm-up calls. GFLOP/s counts multiply-adds x 2 "
              f"(`minicnn/flops.py`; pooling counts none: its GB/s column is the arrays read "
              f"and written over the time). \"% SGEMM\" is GFLOP/s over this run's "
              f"{sgemm:.0f} GFLOP/s. The first convolution computes no input gradient (as "
              f"in training); the last Dense's backward starts from the logits (softmax + "
              f"crossentropy fused, as in `fit`).")
    if not any(row["pass"].startswith("fused") for row in rows):
        return ("Each step of the model as `fit` runs it (`Sequential.plan_steps`: one per "
                "layer, or a convolution and the max pooling after it as one fused step, "
                "`conv2d + max_pooling2d`, where the backend has that kernel), "
                "`forward(training=True)` then `backward`, timed by `minicnn/profiler.py` "
                "(`minicnn bench layers` prints the same for one backend), " + common)
    return ("Measured layer by layer, before the profiler timed the model's steps: each "
            "layer's `forward(training=True)` and `backward` as `fit` called them (fused "
            "kernels and Python overhead included), " + common + " The \"fused\" rows time "
            "a convolution and the pooling after it run as one kernel, which is how `fit` "
            "runs them where the backend can (numba).")


def _kernel_section(section: dict[str, Any]) -> list[str]:
    rows = section["rows"]
    machine = section["machine"]
    sgemm = machine["sgemm"]["gflops"]
    settings = section["settings"]
    lines = ["## Kernels: each layer of the MNIST convnet", "",
             f"Measured {section['date']} with `{section['command']}`.", ""]
    lines += _machine_lines(machine)
    lines += ["", _kernel_method(settings, sgemm, rows), ""]
    backends = list(dict.fromkeys(row["backend"] for row in rows))
    keys = list(dict.fromkeys((row["layer"], row["pass"]) for row in rows))
    by_key = {(row["backend"], row["layer"], row["pass"]): row for row in rows}
    # Side by side: median milliseconds per backend.
    header = ["layer", "pass", "shapes", "GFLOP"]
    for backend in backends:
        batch = next(row["batch"] for row in rows if row["backend"] == backend)
        header.append(f"{backend} ms" + (f" (batch {batch})" if batch != settings["batch"] else ""))
    table_rows = []
    for layer, pass_name in keys:
        first = next(by_key[(b, layer, pass_name)] for b in backends
                     if (b, layer, pass_name) in by_key)
        gflop = first["gflop"] * settings["batch"] / first["batch"]
        cells = [layer, pass_name, first["shapes"], _number(gflop or None, 4)]
        for backend in backends:
            row = by_key.get((backend, layer, pass_name))
            cells.append(_number(row["median_ms"], 3) if row else "—")
        table_rows.append(cells)
    lines += markdown_table(header, table_rows, ["l", "l", "l"] + ["r"] * (len(header) - 3))
    for backend in backends:
        backend_rows = [row for row in rows if row["backend"] == backend]
        lines += ["", f"### {backend} (batch {backend_rows[0]['batch']})", ""]
        lines += markdown_table(
            ["layer", "pass", "median ms", "min ms", "max ms", "GFLOP/s", "% SGEMM", "GB/s"],
            [[row["layer"], row["pass"], _number(row["median_ms"], 3), _number(row["min_ms"], 3),
              _number(row["max_ms"], 3), _number(row["gflops"], 1),
              _number(None if row["fraction_of_sgemm"] is None
                      else 100 * row["fraction_of_sgemm"], 1),
              _number(row["gb_per_s"], 1)] for row in backend_rows],
            ["l", "l"] + ["r"] * 6)
        # Layers fit runs as one fused kernel count once, by their fused rows.
        fused = {label for row in backend_rows if row["pass"].startswith("fused")
                 for label in row["layer"].split("+")}
        layer_sum = sum(row["median_ms"] for row in backend_rows
                        if (row["pass"] in ("forward", "backward")
                            and row["layer"] not in fused | {"predict batch"})
                        or row["pass"].startswith("fused"))
        step = next((row for row in backend_rows if row["layer"] == "train step"), None)
        if step:
            counted = (" (the fused pairs in place of their two layers, as fit runs them)"
                       if fused else "")
            lines += ["", f"Whole training step {step['median_ms']:.2f} ms; the sum of the "
                          f"layers' forward and backward medians above{counted} "
                          f"{layer_sum:.2f} ms; the difference "
                          f"({step['median_ms'] - layer_sum:+.2f} ms) is the loss, the RMSprop "
                          f"update, the accuracy metric and Python between layers, plus "
                          f"whatever the layers lose to cold caches inside a step."]
    for note in section.get("notes", []):
        lines += ["", f"Note: {note}"]
    return lines


def headline_rows(section: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The end-to-end headline table (header, rows): one row per framework."""
    versions = section["machine"].get("versions", {})
    images = section["settings"]["images"]
    extrapolated = images != FULL_EPOCH_IMAGES
    results = section["results"]
    keras = next((r for r in results if r["name"] == "keras" and r["status"] == "ok"
                  and r.get("epoch")), None)
    epoch_header = ("s/epoch, 60k images (extrapolated from "
                    f"{images:,}), median [min–max]" if extrapolated
                    else "s/epoch (60,000 images), median [min–max]")
    header = ["framework", epoch_header, "time ÷ Keras", "predict images/s, median [min–max]",
              "images/s ÷ Keras", "test accuracy", "peak RSS MiB"]
    rows = []
    for result in results:
        name = _pretty(result["name"], versions)
        if result["status"] != "ok" or not result.get("epoch"):
            rows.append([name, result["status"], "", "", "", "", ""])
            continue
        epoch = result["epoch_per_60k"]
        speed = result["images_per_second"]
        epoch_ratio = predict_ratio = "—"
        if keras:
            epoch_ratio = f"{result['epoch']['median'] / keras['epoch']['median']:.2f}"
            predict_ratio = f"{speed['median'] / keras['images_per_second']['median']:.2f}"
        rows.append([
            name, f"{epoch['median']:.2f} [{epoch['min']:.2f}–{epoch['max']:.2f}]", epoch_ratio,
            f"{speed['median']:,.0f} [{speed['min']:,.0f}–{speed['max']:,.0f}]", predict_ratio,
            f"{100 * result['test_accuracy']:.2f} %" if "test_accuracy" in result else "—",
            f"{result['peak_rss_mib']:.0f}" if "peak_rss_mib" in result else "—"])
    return header, rows


def _end_to_end_section(section: dict[str, Any]) -> list[str]:
    settings = section["settings"]
    machine = section["machine"]
    versions = machine.get("versions", {})
    images = settings["images"]
    lines = ["## End to end: MNIST convnet, batch "
             f"{settings['batch_size']}, RMSprop", "",
             f"Measured {section['date']} with `{section['command']}`.", ""]
    lines += _machine_lines(machine)
    header, rows = headline_rows(section)
    lines += ["", "### Headline", ""]
    lines += markdown_table(header, rows)
    lines += ["",
              f"Each framework ran in its own subprocess with the same {images:,} training "
              f"and {settings['test_images']:,} test images and the same starting weights; "
              f"after one warm-up epoch and prediction each, {settings['rounds']} timed "
              f"rounds alternated between them (one epoch each, then one prediction each). "
              f"An epoch is `fit(epochs=1, batch_size={settings['batch_size']}, shuffle=True, "
              f"verbose=0)` (PyTorch: the equivalent loop with loss and accuracy per batch); "
              f"prediction is `predict(batch_size={settings['batch_size']})` of the test "
              f"images. For epochs the ratio to Keras is of times (below 1 is faster), for "
              f"prediction of throughputs (above 1 is faster). Test accuracy is after "
              f"the same number of epochs for every framework. Peak RSS includes the "
              f"framework, the data (float32) and the model."]
    if images != FULL_EPOCH_IMAGES:
        lines += ["", f"**Quick run:** epochs of {images:,} images; the per-60k column "
                      f"multiplies by {FULL_EPOCH_IMAGES / images:.2f}, which ignores "
                      f"per-epoch fixed costs."]
    lines += ["", "### Details", ""]
    detail_rows = []
    for result in section["results"]:
        if result["status"] != "ok" or not result.get("epoch"):
            continue
        epoch, predict = result["epoch"], result["predict"]
        detail_rows.append([
            _pretty(result["name"], versions),
            f"{epoch['median']:.3f} [{epoch['min']:.3f}–{epoch['max']:.3f}]",
            f"{result['first_epoch_seconds']:.3f}", f"{result['warmup_extra_seconds']:+.3f}",
            f"{predict['median']:.3f} [{predict['min']:.3f}–{predict['max']:.3f}]",
            f"{result['first_predict_seconds']:.3f}", f"{result['setup_seconds']:.2f}",
            str(result.get("epochs_trained", "—")), result.get("threads", "")])
    lines += markdown_table(["framework", f"epoch s ({images:,} images)", "first epoch s",
                     "first − median", "predict s", "first predict s", "start-up s",
                     "epochs trained", "threads"], detail_rows,
                    ["l"] + ["r"] * 7 + ["l"])
    lines += ["", "\"first epoch\" includes compilation (Numba, loaded from its on-disk "
                  "cache when warm), graph tracing (TensorFlow) and first allocations; "
                  "\"start-up\" is import, data loading and model building."]
    verdict = section.get("verdict", {})
    if verdict:
        lines += ["", "### The issue's targets", ""]
        if "epoch_time_ratio_vs_keras" in verdict:
            lines.append(f"- minicnn (numba) epoch time / Keras: "
                         f"{verdict['epoch_time_ratio_vs_keras']:.2f} (target ≤ "
                         f"{TARGET_EPOCH_RATIO}): "
                         f"{'met' if verdict['epoch_target_met'] else 'NOT met'}")
            lines.append(f"- minicnn (numba) prediction time / Keras: "
                         f"{verdict['predict_time_ratio_vs_keras']:.2f} (target ≤ "
                         f"{TARGET_PREDICT_TIME_RATIO}): "
                         f"{'met' if verdict['predict_target_met'] else 'NOT met'}")
            if "epoch_time_ratio_vs_keras_fastest" in verdict:
                lines.append(f"- the same medians of minicnn against Keras's fastest round "
                             f"(the stricter reading): epoch "
                             f"{verdict['epoch_time_ratio_vs_keras_fastest']:.2f}, prediction "
                             f"{verdict['predict_time_ratio_vs_keras_fastest']:.2f}")
        if "accuracy_gap_points" in verdict:
            accuracies = {r["name"]: r["test_accuracy"] for r in section["results"]
                          if "test_accuracy" in r}
            lines.append(f"- test accuracy numba {100 * accuracies['minicnn-numba']:.2f} % vs "
                         f"numpy {100 * accuracies['minicnn-numpy']:.2f} % (same seed): gap "
                         f"{verdict['accuracy_gap_points']:.2f} points (target ≤ "
                         f"{TARGET_ACCURACY_GAP_POINTS}): "
                         f"{'met' if verdict['accuracy_target_met'] else 'NOT met'}")
        if images != FULL_EPOCH_IMAGES:
            lines.append("- (a quick run: the targets are judged on full 60,000-image epochs)")
    floor = section.get("gemm_floor")
    if floor:
        lines += ["", f"GEMM floor: one training step is {floor['step_gflop']:.3f} GFLOP "
                      f"(batch {settings['batch_size']}), {floor['epoch_tflop']:.3f} TFLOP per "
                      f"60,000-image epoch; at this run's SGEMM rate that is "
                      f"**{floor['epoch_seconds']:.2f} s per epoch**."]
    for note in section.get("notes", []):
        lines += ["", f"Note: {note.splitlines()[0]}"]
    return lines


def render_markdown(results: dict[str, Any]) -> str:
    """``RESULTS.md`` from the stored sections (``"end_to_end"``, ``"kernels"``)."""
    lines = ["# minicnn benchmarks", "",
             "Written by `python -m benchmarks` (code: `benchmarks/`; the per-step timings "
             "by `minicnn/profiler.py`). Each section records the exact command, the date "
             "and the machine it was measured on; `python -m benchmarks all` regenerates "
             "both, `python -m benchmarks report` re-renders this file from `RESULTS.json`. "
             "A command recorded as `minicnn bench ...` ran before the harness moved out "
             "of the engine into `benchmarks/`; `python -m benchmarks ...` takes the same "
             "options.", ""]
    if results.get("chapter"):
        lines += chapter_section(results["chapter"], results.get("end_to_end"),
                                 _machine_lines) + [""]
    if results.get("end_to_end"):
        lines += _end_to_end_section(results["end_to_end"]) + [""]
    if results.get("scaling"):
        lines += scaling_section(results["scaling"], _machine_lines) + [""]
    if results.get("kernels"):
        lines += _kernel_section(results["kernels"]) + [""]
    if not any(results.get(key) for key in ("end_to_end", "kernels", "chapter", "scaling")):
        lines += ["(no measurements yet)", ""]
    return "\n".join(lines)


def write_results(out: str | os.PathLike, sections: dict[str, Any]) -> Path:
    """Store ``sections`` in ``OUT.json`` (keeping the other sections already there) and
    render ``OUT`` (Markdown); both written atomically."""
    out = Path(out)
    json_path = out.with_suffix(".json")
    stored: dict[str, Any] = {}
    if json_path.exists():
        try:
            stored = json.loads(json_path.read_text())
        except (OSError, ValueError):
            stored = {}
    stored.update(sections)
    write_json(json_path, stored)
    write_markdown(out, stored)
    return out


def write_markdown(out: str | os.PathLike, results: dict[str, Any]) -> Path:
    """Render ``results`` into the Markdown file ``out``, atomically."""
    markdown = render_markdown(results)
    return atomic_write(out, lambda handle: handle.write(markdown.encode()))


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks report [--out benchmarks/RESULTS.md]``: re-render the
    Markdown from the ``RESULTS.json`` beside it, measuring nothing."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks report",
                                     description=main.__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"Markdown report (default {DEFAULT_OUT}; read from its .json)")
    arguments = parser.parse_args(argv)
    out = Path(arguments.out)
    json_path = out.with_suffix(".json")
    if not json_path.exists():
        print(f"python -m benchmarks report: error: {json_path} not found (run "
              f"python -m benchmarks all first)", file=sys.stderr)
        return 2
    write_markdown(out, json.loads(json_path.read_text()))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
