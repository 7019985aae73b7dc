"""The benchmark harness (``minicnn bench``, ``benchmarks/``) runs on tiny sizes and writes
well-formed tables.  No time is ever asserted: these tests check the machinery only."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from minicnn import bench
from minicnn.applications.mnist_models import mnist_convnet

FAKE_MACHINE = {
    "cpu": "Test CPU", "cores": 2, "logical_cpus": 2, "simd": ["avx2"], "memory_gib": 8.0,
    "blas": "test BLAS", "platform": "test", "python": "3",
    "versions": {"numpy": np.__version__, "keras": "3.0", "tensorflow": "2.0", "torch": "2.0"},
    "numba_threads": 2, "load_average": [0.1, 0.1, 0.1],
    "sgemm": {"size": 64, "repeats": 1, "best_seconds": 1e-4, "median_seconds": 1e-4,
              "gflops": 100.0},
}


def _tables(markdown: str) -> list[list[list[str]]]:
    """Every Markdown table as a list of rows of cells (header first, rule dropped)."""
    tables, current = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            current.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif current:
            tables.append(current)
            current = []
    for table in tables:
        rule = table.pop(1)
        assert all(re.fullmatch(r"-{3}:?", cell) for cell in rule), rule
    return tables


def _assert_well_formed(markdown: str) -> list[list[list[str]]]:
    tables = _tables(markdown)
    assert tables
    for table in tables:
        widths = {len(row) for row in table}
        assert len(widths) == 1, f"ragged table: {table}"
    return tables


def test_training_step_flops_count_each_gemm_twice_per_multiply_add():
    conv1 = 64 * 26 * 26 * 32 * 9            # no input gradient: forward + kernel grad
    conv2 = 64 * 11 * 11 * 64 * (9 * 32)     # forward, kernel grad, input grad
    conv3 = 64 * 3 * 3 * 64 * (9 * 64)
    dense1, dense2 = 64 * 576 * 64, 64 * 64 * 10
    expected = 2 * (2 * conv1 + 3 * (conv2 + conv3 + dense1 + dense2))
    assert bench.training_step_flops(mnist_convnet(), 64) == expected
    assert 1.0e9 < expected < 1.1e9  # the design note's "about 1.05 GFLOP"


def test_sgemm_measurement_reports_a_positive_rate():
    result = bench.measure_sgemm(size=64, repeats=2)
    assert result["size"] == 64 and result["repeats"] == 2
    assert result["gflops"] > 0 and math.isclose(
        result["gflops"], 2 * 64**3 / result["best_seconds"] / 1e9)


def test_machine_description_names_cores_cpu_and_blas():
    machine = bench.describe_machine(sgemm_size=32, sgemm_repeats=1)
    assert machine["cores"] >= 1 and machine["cpu"] and machine["blas"]
    assert machine["versions"]["numpy"] == np.__version__
    json.dumps(machine)  # stored as JSON


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_kernel_rows_cover_every_layer_both_passes_and_the_whole_step(backend):
    if backend == "numba":
        pytest.importorskip("numba")
    result = bench.run_kernel_benchmarks([backend], batch=2, repeats=2, warmup=0,
                                         machine=FAKE_MACHINE, log=lambda _: None)
    rows = result["rows"]
    layers = ["conv1", "pool1", "conv2", "pool2", "conv3", "dense1", "dense2"]
    # The numba backend also times the conv + pool pairs fit runs as one kernel.
    fused = ["conv1+pool1", "conv2+pool2"] if backend == "numba" else []
    assert [(row["layer"], row["pass"]) for row in rows] == (
        [(layer, p) for layer in layers for p in ("forward", "backward")]
        + [(pair, f"fused {p}") for pair in fused for p in ("forward", "backward")]
        + [("train step", "step"), ("predict batch", "forward")])
    for row in rows:
        assert row["backend"] == backend and row["batch"] == 2 and row["repeats"] == 2
        assert 0 < row["min_ms"] <= row["median_ms"] <= row["max_ms"]
        if row["layer"] in ("pool1", "pool2"):
            assert row["gflop"] == 0 and row["gflops"] is None
        else:
            assert row["gflops"] > 0
            assert math.isclose(row["fraction_of_sgemm"], row["gflops"] / 100.0)
    conv1_backward = next(r for r in rows if r["layer"] == "conv1" and r["pass"] == "backward")
    conv1_forward = next(r for r in rows if r["layer"] == "conv1" and r["pass"] == "forward")
    assert conv1_backward["gflop"] == conv1_forward["gflop"]  # no input gradient


def test_reference_backend_runs_once_on_its_own_small_batch():
    result = bench.run_kernel_benchmarks(["reference"], batch=64, repeats=5,
                                         machine=FAKE_MACHINE, layers=["pool2", "dense2"],
                                         log=lambda _: None)
    assert {(row["layer"], row["batch"], row["repeats"]) for row in result["rows"]} == {
        ("pool2", 1, 1), ("dense2", 1, 1)}
    assert any("reference" in note for note in result["notes"])


def _fake_end_to_end(images: int = 60_000) -> dict:
    def entry(name, epoch, predict, accuracy):
        return {"name": name, "status": "ok", "epoch_seconds": [epoch, epoch * 1.1],
                "predict_seconds": [predict, predict * 1.2], "setup_seconds": 1.0,
                "first_epoch_seconds": epoch * 2, "first_predict_seconds": predict * 2,
                "threads": "2", "test_accuracy": accuracy, "epochs_trained": 3,
                "peak_rss_mib": 300.0}

    results = [entry("minicnn-numba", 3.0, 0.4, 0.991), entry("minicnn-numpy", 30.0, 2.0, 0.990),
               entry("keras", 9.0, 0.7, 0.990),
               {"name": "torch", "status": "skipped: PyTorch is not installed",
                "epoch_seconds": [], "predict_seconds": []}]
    section = {"machine": FAKE_MACHINE, "results": results, "notes": [],
               "settings": {"images": images, "test_images": 10_000, "rounds": 2,
                            "batch_size": 64, "seed": 0, "frameworks": list(bench.FRAMEWORKS)}}
    # The derived fields run_end_to_end adds, computed the same way.
    for result in results[:3]:
        result["epoch"] = bench._spread(result["epoch_seconds"])
        result["epoch_per_60k"] = {k: v * 60_000 / images for k, v in result["epoch"].items()}
        result["warmup_extra_seconds"] = result["first_epoch_seconds"] - result["epoch"]["median"]
        result["predict"] = bench._spread(result["predict_seconds"])
        result["images_per_second"] = {"median": 10_000 / result["predict"]["median"],
                                       "min": 10_000 / result["predict"]["max"],
                                       "max": 10_000 / result["predict"]["min"]}
    section["verdict"] = bench._verdict(results)
    section.update(date="2025-01-01T00:00:00+00:00", command="minicnn bench end-to-end",
                   gemm_floor=bench._gemm_floor(64, 100.0))
    return section


def test_verdict_applies_the_issue_targets():
    verdict = _fake_end_to_end()["verdict"]
    assert math.isclose(verdict["epoch_time_ratio_vs_keras"], 3.15 / 9.45)
    assert verdict["epoch_target_met"] and verdict["predict_target_met"]
    assert math.isclose(verdict["accuracy_gap_points"], 0.1) and verdict["accuracy_target_met"]


def test_report_tables_are_well_formed_and_sections_are_kept(tmp_path):
    out = tmp_path / "RESULTS.md"
    kernels = bench.run_kernel_benchmarks(["numpy"], batch=2, repeats=1, warmup=0,
                                          machine=FAKE_MACHINE, log=lambda _: None)
    kernels.update(date="2025-01-01T00:00:00+00:00", command="minicnn bench kernels")
    bench.write_results(out, {"end_to_end": _fake_end_to_end(images=1024)})
    bench.write_results(out, {"kernels": kernels})  # the end-to-end section stays

    markdown = out.read_text()
    stored = json.loads(out.with_suffix(".json").read_text())
    assert set(stored) == {"end_to_end", "kernels"}
    assert markdown == bench.render_markdown(stored)
    tables = _assert_well_formed(markdown)
    headline = tables[0]
    assert headline[0][0] == "framework" and "extrapolated from 1,024" in headline[0][1]
    assert [row[0] for row in headline[1:]] == [
        "minicnn (numba)", "minicnn (numpy)", "Keras 3.0 (TensorFlow 2.0)", "PyTorch 2.0"]
    assert headline[4][1].startswith("skipped")
    assert "`minicnn bench end-to-end`" in markdown and "`minicnn bench kernels`" in markdown
    assert "Quick run" in markdown and "GEMM floor" in markdown
    assert "| conv2 | backward | (2,13,13,32)x(3,3,32,64) |" in markdown
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_end_to_end_runs_minicnn_workers_on_a_few_images():
    result = bench.run_end_to_end(["minicnn-numpy", "minicnn-numba", "minicnn-reference"],
                                  images=128, test_images=64, rounds=1, machine=FAKE_MACHINE,
                                  log=lambda _: None)
    by_name = {entry["name"]: entry for entry in result["results"]}
    assert by_name["minicnn-reference"]["status"].startswith("skipped")
    for name in ("minicnn-numpy", "minicnn-numba"):
        entry = by_name[name]
        assert entry["status"] == "ok", entry["status"]
        assert len(entry["epoch_seconds"]) == 1 and len(entry["predict_seconds"]) == 1
        assert entry["epochs_trained"] == 2 and 0 <= entry["test_accuracy"] <= 1
        assert entry["peak_rss_mib"] > 0 and entry["epoch_per_60k"]["median"] > 0
    # Same seed, same data, same epochs: the two backends agree closely.
    assert "accuracy_gap_points" in result["verdict"]
    markdown = bench.render_markdown({"end_to_end": {
        **result, "date": "now", "command": "minicnn bench end-to-end",
        "gemm_floor": bench._gemm_floor(64, 100.0)}})
    _assert_well_formed(markdown)


def test_frameworks_that_are_not_installed_are_skipped_with_a_note(monkeypatch):
    real_find_spec = bench.importlib.util.find_spec
    monkeypatch.setattr(bench.importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real_find_spec(name, *a))
    result = bench.run_end_to_end(["torch"], images=64, test_images=32, rounds=1,
                                  machine=FAKE_MACHINE, log=lambda _: None)
    assert result["results"][0]["status"] == "skipped: PyTorch is not installed"
    assert result["notes"] and result["verdict"] == {}


def test_torch_twin_computes_the_same_function_as_minicnn():
    torch = pytest.importorskip("torch")
    session = bench._TorchSession({"threads": 1, "seed": 3, "batch_size": 64})
    session.make_network()
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    ours = bench._seeded_minicnn_model(3).predict(x, verbose=0)
    with torch.no_grad():
        theirs = torch.softmax(session.model(torch.from_numpy(x.reshape(4, 1, 28, 28))), 1)
    np.testing.assert_allclose(theirs.numpy(), ours, rtol=1e-4, atol=1e-6)


@pytest.mark.keras
@pytest.mark.slow
def test_end_to_end_runs_keras_and_torch_workers_on_a_few_images():
    pytest.importorskip("keras")
    result = bench.run_end_to_end(["keras", "torch"], images=128, test_images=64, rounds=1,
                                  machine=FAKE_MACHINE, log=lambda _: None)
    for entry in result["results"]:
        if entry["name"] == "torch" and entry["status"].startswith("skipped"):
            continue
        assert entry["status"] == "ok", entry["status"]
        assert entry["epochs_trained"] == 2 and entry["peak_rss_mib"] > 0


def test_cli_bench_writes_the_report_and_rejects_bad_options(tmp_path, capsys):
    from minicnn.cli import main

    out = tmp_path / "bench" / "RESULTS.md"
    status = main(["bench", "kernels", "--quick", "--backends", "numpy", "--repeats", "1",
                   "--warmup", "0", "--batch-size", "4", "--sgemm-size", "64", "--out", str(out)])
    assert status == 0
    stored = json.loads(out.with_suffix(".json").read_text())
    assert stored["kernels"]["command"].startswith("minicnn bench kernels --backends numpy")
    _assert_well_formed(out.read_text())
    assert "wrote" in capsys.readouterr().out

    assert main(["bench", "end-to-end", "--rounds", "0", "--out", str(out)]) == 2
    assert "--rounds must be positive" in capsys.readouterr().err


def test_benchmark_scripts_forward_to_minicnn_bench(tmp_path):
    from benchmarks import kernels, report

    out = tmp_path / "RESULTS.md"
    assert kernels.main(["--backends", "numpy", "--repeats", "1", "--warmup", "0",
                         "--batch-size", "4", "--sgemm-size", "32", "--out", str(out)]) == 0
    out.unlink()
    assert report.main(["--out", str(out)]) == 0
    _assert_well_formed(out.read_text())
