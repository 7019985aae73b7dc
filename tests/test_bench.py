"""The FLOP count (``minicnn/flops.py``), the per-step profiler (``minicnn/profiler.py``,
``minicnn bench layers``) and the cross-framework harness (``python -m benchmarks``) run
on tiny sizes and write well-formed tables.  No time is ever asserted: these tests
check the machinery only."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from benchmarks import end_to_end, kernels, machine, report, torch_session, workers
from benchmarks.__main__ import main as benchmarks_main
from minicnn import flops
from minicnn.applications.registry import build_model
from minicnn.backend import using_backend
from minicnn.naming import clear_session
from minicnn.profiler import format_profile, profile_model
from tests.helpers import assert_close, assert_weights_close, write_synthetic_mnist

REPOSITORY = Path(__file__).resolve().parents[1]

FAKE_MACHINE = {
    "cpu": "Test CPU", "cores": 2, "logical_cpus": 2, "simd": ["avx2"], "memory_gib": 8.0,
    "blas": "test BLAS", "platform": "test", "python": "3",
    "versions": {"numpy": np.__version__, "keras": "3.0", "tensorflow": "2.0", "torch": "2.0"},
    "numba_threads": 2, "load_average": [0.1, 0.1, 0.1],
    "sgemm": {"size": 64, "repeats": 1, "best_seconds": 1e-4, "median_seconds": 1e-4,
              "gflops": 100.0},
}


# The two compiled backends agree to float32 round-off (README.md, Speed: "numba and numpy
# differ only by float32 round-off (0.17 points)", the test-accuracy gap after 4 MNIST
# epochs; benchmarks/RESULTS.md: "gap 0.17 points").  The tiny run below (4 RMSprop steps
# on 256 synthetic MNIST-layout images, 2,000 test images, tests/helpers.py: no download)
# is checked against bars a tenfold worse figure fails:
BACKEND_ACCURACY_GAP_POINTS = 0.8   # under ten times the README's 0.17 (16 of 2,000 images);
                                    # measured here: 0.00 (no prediction differs)
BACKEND_WEIGHTS_ATOL = 1.5e-7       # measured: max |numba - numpy| 3.0e-8 (weights ~0.1); 5x
BACKEND_PREDICTIONS_ATOL = 5e-7     # measured: 2.4e-7 on the softmax outputs (8.9e-8 on
                                    # real MNIST); a tenfold worse figure fails
BACKEND_LOSS_ATOL = 2.5e-7          # measured: 1.2e-7 (0 on real MNIST); the bar is about
                                    # one float32 ulp at 2.25 (2.4e-7)
# Past about 8 steps RMSprop amplifies round-off (a weight whose gradient is near zero
# moves by +-learning rate depending on its sign), so the trajectories part at the 1e-3
# level; 4 steps stay in the round-off regime.
AGREEMENT_TRAIN_IMAGES, AGREEMENT_TEST_IMAGES = 256, 2000


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


def _fresh_model(name: str = "mnist-convnet"):
    clear_session()
    return build_model(name)


# --------------------------------------------------------------------------------------
# The one FLOP count
# --------------------------------------------------------------------------------------

def test_training_step_flops_count_each_gemm_twice_per_multiply_add():
    conv1 = 64 * 26 * 26 * 32 * 9            # no input gradient: forward + kernel grad
    conv2 = 64 * 11 * 11 * 64 * (9 * 32)     # forward, kernel grad, input grad
    conv3 = 64 * 3 * 3 * 64 * (9 * 64)
    dense1, dense2 = 64 * 576 * 64, 64 * 64 * 10
    expected = 2 * (2 * conv1 + 3 * (conv2 + conv3 + dense1 + dense2))
    model = _fresh_model()
    assert flops.training_step_flops(model, 64) == expected
    assert 1.0e9 < expected < 1.1e9  # "1.05 GFLOP" in the README
    assert flops.predict_flops(model, 64) == 2 * (conv1 + conv2 + conv3 + dense1 + dense2)


def test_layer_flops_forward_weight_and_input_gradients():
    model = _fresh_model()
    conv2 = model.layers[2]
    multiply_adds = 8 * 11 * 11 * 64 * 9 * 32
    assert flops.layer_flops(conv2, (8, 13, 13, 32), True) == (2 * multiply_adds,
                                                               4 * multiply_adds)
    assert flops.layer_flops(conv2, (8, 13, 13, 32), False) == (2 * multiply_adds,
                                                                2 * multiply_adds)
    assert flops.layer_flops(model.layers[1], (8, 26, 26, 32), True) == (0, 0)  # pooling
    assert flops.layer_flops(model.layers[6], (8, 576), True) == (2 * 8 * 576 * 64,
                                                                  4 * 8 * 576 * 64)


def test_no_backward_below_the_first_trainable_layer():
    """As Sequential.backward runs it: frozen layers below the first trainable one run no
    backward; that first trainable layer computes no input gradient."""
    model = _fresh_model()
    frozen = model.layers[:3]               # conv, pool, conv frozen
    for layer in frozen:
        layer.trainable = False
    assert flops.first_trainable_index(model.layers) == 4
    forward = flops.predict_flops(model, 64)
    conv3 = 64 * 3 * 3 * 64 * 9 * 64
    dense1, dense2 = 64 * 576 * 64, 64 * 64 * 10
    assert flops.training_step_flops(model, 64) == forward + 2 * (conv3 + 2 * (dense1 + dense2))
    for layer in model.layers:
        layer.trainable = False
    assert flops.training_step_flops(model, 64) == forward


def test_explain_uses_the_same_count():
    from minicnn.explain import training_step_flops

    for name in ("mnist-convnet", "mnist-dense", "no-max-pool"):
        model = _fresh_model(name)
        assert training_step_flops(model, 64) == flops.training_step_flops(model, 64)


# --------------------------------------------------------------------------------------
# The per-step profiler inside the engine
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_profiler_times_every_step_both_passes_and_the_whole_step(backend):
    if backend == "numba":
        pytest.importorskip("numba")
    with using_backend(backend):
        model = _fresh_model()
        steps = [step.name for step in model.plan_steps((2, 28, 28, 1), training=True)]
        profile = profile_model(model, batch_size=2, repeats=2, warmup=0)
    assert profile["backend"] == backend and profile["batch_size"] == 2
    rows = profile["rows"]
    assert [(row["step"], row["pass"]) for row in rows] == (
        [(step, p) for step in steps for p in ("forward", "backward")]
        + [("train_on_batch", "train_on_batch"), ("predict_on_batch", "predict_on_batch")])
    if backend == "numba":  # the fused pairs are one step each, as fit runs them
        assert steps[:2] == ["conv2d + max_pooling2d", "conv2d_1 + max_pooling2d_1"]
    else:
        assert steps[:2] == ["conv2d", "max_pooling2d"]
    for row in rows:
        assert row["repeats"] == 2 and 0 < row["min_ms"] <= row["median_ms"] <= row["max_ms"]
    first_forward, first_backward = rows[0], rows[1]
    assert first_backward["flops"] == first_forward["flops"] > 0  # no input gradient
    assert sum(row["flops"] for row in rows if row["pass"] in ("forward", "backward")) == (
        rows[-2]["flops"]) == flops.training_step_flops(model, 2)
    json.dumps(profile)  # plain data
    text = format_profile(profile)
    assert "train_on_batch" in text and "Sum of the steps" in text


def test_profiler_skips_backward_below_the_first_trainable_layer_and_filters_steps():
    with using_backend("numpy"):
        model = _fresh_model()
        for layer in model.layers[:2]:
            layer.trainable = False
        rows = profile_model(model, batch_size=2, repeats=1, warmup=0)["rows"]
        passes = {(row["step"], row["pass"]) for row in rows}
        assert ("conv2d", "forward") in passes and ("conv2d", "backward") not in passes
        assert ("max_pooling2d", "backward") not in passes
        conv2 = next(row for row in rows if row["step"] == "conv2d_1" and row["pass"] == "backward")
        assert conv2["flops"] == 2 * 2 * 11 * 11 * 64 * 9 * 32  # weights only, no dx
        only = profile_model(model, batch_size=1, repeats=1, warmup=0, only=["dense_1"])
    assert {row["step"] for row in only["rows"]} == {"dense_1"}


def test_profiler_rejects_bad_sizes():
    with pytest.raises(ValueError, match="batch_size"):
        profile_model(_fresh_model(), batch_size=0)


def test_cli_bench_layers_prints_and_writes_json(tmp_path, capsys):
    from minicnn.cli import main

    out = tmp_path / "profile.json"
    assert main(["bench", "layers", "--backend", "numpy", "--batch-size", "2", "--repeats",
                 "1", "--warmup", "0", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "conv2d_1" in printed and "python -m benchmarks all" in printed
    stored = json.loads(out.read_text())
    assert stored["model"] == "mnist-convnet" and stored["backend"] == "numpy"

    assert main(["bench", "layers", "--repeats", "0"]) == 2
    assert "--repeats must be positive" in capsys.readouterr().err
    assert main(["bench", "layers", "--backend", "numpy", "--batch-size", "1", "--repeats",
                 "1", "--steps", "nothing"]) == 2
    assert "no step is called 'nothing'" in capsys.readouterr().err


def test_cli_bench_points_the_cross_framework_commands_to_the_harness(capsys):
    from minicnn.cli import main

    assert main(["bench", "end-to-end", "--quick", "--rounds", "1"]) == 2
    assert "python -m benchmarks end-to-end --quick --rounds 1" in capsys.readouterr().out


def test_the_engine_does_not_import_the_harness():
    for path in (REPOSITORY / "minicnn").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+benchmarks\b", text, re.MULTILINE), path


# --------------------------------------------------------------------------------------
# The harness: machine, kernels, end to end, report
# --------------------------------------------------------------------------------------

def test_sgemm_measurement_reports_a_positive_rate():
    result = machine.measure_sgemm(size=64, repeats=2)
    assert result["size"] == 64 and result["repeats"] == 2
    assert result["gflops"] > 0 and math.isclose(
        result["gflops"], 2 * 64**3 / result["best_seconds"] / 1e9)


def test_machine_description_names_cores_cpu_and_blas(capsys):
    description = machine.describe_machine(sgemm_size=32, sgemm_repeats=1)
    assert description["cores"] >= 1 and description["cpu"] and description["blas"]
    assert description["versions"]["numpy"] == np.__version__
    json.dumps(description)  # stored as JSON
    assert benchmarks_main(["machine", "--sgemm-size", "16", "--repeats", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["sgemm"]["size"] == 16


def test_kernel_rows_add_rates_against_the_sgemm_yardstick():
    result = kernels.run_kernel_benchmarks(["numpy"], batch=2, repeats=2, warmup=0,
                                           machine=FAKE_MACHINE, log=lambda _: None)
    rows = result["rows"]
    assert [row["layer"] for row in rows[-2:]] == ["train step", "predict batch"]
    for row in rows:
        assert row["backend"] == "numpy" and row["batch"] == 2 and row["repeats"] == 2
        if row["layer"].startswith("max_pooling2d") or row["layer"] == "flatten":
            assert row["gflop"] == 0 and row["gflops"] is None
        else:
            assert row["gflops"] > 0
            assert math.isclose(row["fraction_of_sgemm"], row["gflops"] / 100.0)
    conv2 = next(r for r in rows if r["layer"] == "conv2d_1" and r["pass"] == "backward")
    assert conv2["shapes"] == "(2, 13, 13, 32)x(3, 3, 32, 64)"


def test_reference_backend_runs_once_on_its_own_small_batch():
    result = kernels.run_kernel_benchmarks(["reference"], batch=64, repeats=5,
                                           machine=FAKE_MACHINE,
                                           steps=["max_pooling2d_1", "dense_1"],
                                           log=lambda _: None)
    assert {(row["layer"], row["batch"], row["repeats"]) for row in result["rows"]} == {
        ("max_pooling2d_1", 1, 1), ("dense_1", 1, 1)}
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
                            "batch_size": 64, "seed": 0,
                            "frameworks": list(workers.FRAMEWORKS)}}
    # The derived fields run_end_to_end adds, computed the same way.
    for result in results[:3]:
        result["epoch"] = end_to_end.spread(result["epoch_seconds"])
        result["epoch_per_60k"] = {k: v * 60_000 / images for k, v in result["epoch"].items()}
        result["warmup_extra_seconds"] = result["first_epoch_seconds"] - result["epoch"]["median"]
        result["predict"] = end_to_end.spread(result["predict_seconds"])
        result["images_per_second"] = {"median": 10_000 / result["predict"]["median"],
                                       "min": 10_000 / result["predict"]["max"],
                                       "max": 10_000 / result["predict"]["min"]}
    section["verdict"] = end_to_end.verdict(results)
    section.update(date="2025-01-01T00:00:00+00:00", command="python -m benchmarks end-to-end",
                   gemm_floor=end_to_end.gemm_floor(64, 100.0))
    return section


def test_verdict_applies_the_issue_targets():
    verdict = _fake_end_to_end()["verdict"]
    assert math.isclose(verdict["epoch_time_ratio_vs_keras"], 3.15 / 9.45)
    assert verdict["epoch_target_met"] and verdict["predict_target_met"]
    assert math.isclose(verdict["accuracy_gap_points"], 0.1) and verdict["accuracy_target_met"]


def test_report_tables_are_well_formed_and_sections_are_kept(tmp_path):
    out = tmp_path / "RESULTS.md"
    measured = kernels.run_kernel_benchmarks(["numpy"], batch=2, repeats=1, warmup=0,
                                             machine=FAKE_MACHINE, log=lambda _: None)
    measured.update(date="2025-01-01T00:00:00+00:00", command="python -m benchmarks kernels")
    report.write_results(out, {"end_to_end": _fake_end_to_end(images=1024)})
    report.write_results(out, {"kernels": measured})  # the end-to-end section stays

    markdown = out.read_text()
    stored = json.loads(out.with_suffix(".json").read_text())
    assert set(stored) == {"end_to_end", "kernels"}
    assert markdown == report.render_markdown(stored)
    tables = _assert_well_formed(markdown)
    headline = tables[0]
    assert headline[0][0] == "framework" and "extrapolated from 1,024" in headline[0][1]
    assert [row[0] for row in headline[1:]] == [
        "minicnn (numba)", "minicnn (numpy)", "Keras 3.0 (TensorFlow 2.0)", "PyTorch 2.0"]
    assert headline[4][1].startswith("skipped")
    assert "`python -m benchmarks end-to-end`" in markdown
    assert "`python -m benchmarks kernels`" in markdown
    assert "Quick run" in markdown and "GEMM floor" in markdown
    assert "| conv2d_1 | backward | (2, 13, 13, 32)x(3, 3, 32, 64) |" in markdown
    assert "minicnn/profiler.py" in markdown
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_committed_report_is_the_rendering_of_its_json():
    """benchmarks/RESULTS.md is what ``python -m benchmarks report`` makes of RESULTS.json."""
    stored = json.loads((REPOSITORY / "benchmarks" / "RESULTS.json").read_text())
    markdown = report.render_markdown(stored)
    assert markdown == (REPOSITORY / "benchmarks" / "RESULTS.md").read_text()
    _assert_well_formed(markdown)


def test_end_to_end_runs_minicnn_workers_on_a_few_images(tmp_path):
    data_file = tmp_path / "mnist.npz"
    write_synthetic_mnist(data_file)
    result = end_to_end.run_end_to_end(["minicnn-numpy", "minicnn-numba", "minicnn-reference"],
                                       images=128, test_images=64, rounds=1,
                                       machine=FAKE_MACHINE, log=lambda _: None,
                                       data_file=str(data_file))
    by_name = {entry["name"]: entry for entry in result["results"]}
    assert by_name["minicnn-reference"]["status"].startswith("skipped")
    for name in ("minicnn-numpy", "minicnn-numba"):
        entry = by_name[name]
        assert entry["status"] == "ok", entry["status"]
        assert len(entry["epoch_seconds"]) == 1 and len(entry["predict_seconds"]) == 1
        assert entry["epochs_trained"] == 2 and 0 <= entry["test_accuracy"] <= 1
        assert entry["peak_rss_mib"] > 0 and entry["epoch_per_60k"]["median"] > 0
    # Same seed, same data, same epochs: the verdict's gap is the two entries' gap, and
    # the two backends agree (one differing prediction of 64 would be 1.6 points).
    gap = abs(by_name["minicnn-numba"]["test_accuracy"]
              - by_name["minicnn-numpy"]["test_accuracy"]) * 100
    assert result["verdict"]["accuracy_gap_points"] == pytest.approx(gap)
    assert gap <= BACKEND_ACCURACY_GAP_POINTS, f"numba and numpy accuracies {gap:.2f} points apart"
    markdown = report.render_markdown({"end_to_end": {
        **result, "date": "now", "command": "python -m benchmarks end-to-end",
        "gemm_floor": end_to_end.gemm_floor(64, 100.0)}})
    _assert_well_formed(markdown)


def test_numba_and_numpy_backends_agree_after_the_same_training(tmp_path):
    """README.md's "numba and numpy differ only by float32 round-off (0.17 points)", on a
    tiny run: the benchmark's seeded model, optimizer and batch size on each backend, on
    synthetic data;
    the epoch loss, the weights, the test predictions and the test accuracy compared."""
    pytest.importorskip("numba")
    from benchmarks.sessions import load_mnist, seeded_minicnn_model

    data_file = tmp_path / "mnist.npz"
    write_synthetic_mnist(data_file, AGREEMENT_TRAIN_IMAGES, AGREEMENT_TEST_IMAGES)
    x, y, _, x_test, _, test_labels = load_mnist(AGREEMENT_TRAIN_IMAGES, AGREEMENT_TEST_IMAGES,
                                                 str(data_file))
    runs = {}
    for backend in ("numpy", "numba"):
        with using_backend(backend):
            model = seeded_minicnn_model(0)
            model.compile(optimizer="rmsprop", loss="categorical_crossentropy",
                          metrics=["accuracy"])
            history = model.fit(x, y, batch_size=end_to_end.BATCH_SIZE, epochs=1, verbose=0,
                                shuffle=True)
            probabilities = model.predict(x_test, batch_size=end_to_end.BATCH_SIZE, verbose=0)
        accuracy = float(np.mean(np.argmax(probabilities, axis=1) == test_labels))
        runs[backend] = (history.history["loss"][0], model.get_weights(), probabilities,
                         accuracy)
    (loss_a, weights_a, predictions_a, accuracy_a) = runs["numpy"]
    (loss_b, weights_b, predictions_b, accuracy_b) = runs["numba"]
    gap = abs(accuracy_b - accuracy_a) * 100
    print(f"\nnumba vs numpy after {AGREEMENT_TRAIN_IMAGES // end_to_end.BATCH_SIZE} steps: "
          f"loss {abs(loss_b - loss_a):.2e}, weights "
          f"{max(float(np.abs(a - b).max()) for a, b in zip(weights_a, weights_b)):.2e}, "
          f"predictions {float(np.abs(predictions_b - predictions_a).max()):.2e}, "
          f"accuracy {accuracy_a:.4f} vs {accuracy_b:.4f} ({gap:.2f} points)")
    assert abs(loss_b - loss_a) <= BACKEND_LOSS_ATOL, (loss_a, loss_b)
    assert_weights_close(weights_b, weights_a, rtol=0, atol=BACKEND_WEIGHTS_ATOL,
                         what="numba vs numpy weights")
    assert_close(predictions_b, predictions_a, rtol=0, atol=BACKEND_PREDICTIONS_ATOL,
                 what="numba vs numpy test predictions")
    assert gap <= BACKEND_ACCURACY_GAP_POINTS, f"test accuracies {gap:.2f} points apart"


def test_frameworks_that_are_not_installed_are_skipped_with_a_note(monkeypatch):
    real_find_spec = workers.importlib.util.find_spec
    monkeypatch.setattr(workers.importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real_find_spec(name, *a))
    result = end_to_end.run_end_to_end(["torch"], images=64, test_images=32, rounds=1,
                                       machine=FAKE_MACHINE, log=lambda _: None)
    assert result["results"][0]["status"] == "skipped: PyTorch is not installed"
    assert result["notes"] and result["verdict"] == {}


def test_torch_twin_computes_the_same_function_as_minicnn():
    torch = pytest.importorskip("torch")
    from benchmarks.sessions import seeded_minicnn_model

    session = torch_session.TorchSession({"threads": 1, "seed": 3, "batch_size": 64})
    session.make_network()
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    ours = seeded_minicnn_model(3).predict(x, verbose=0)
    with torch.no_grad():
        theirs = torch.softmax(session.model(torch.from_numpy(x.reshape(4, 1, 28, 28))), 1)
    np.testing.assert_allclose(theirs.numpy(), ours, rtol=1e-4, atol=1e-6)


@pytest.mark.keras
@pytest.mark.slow
def test_end_to_end_runs_keras_and_torch_workers_on_a_few_images(tmp_path):
    pytest.importorskip("keras")
    data_file = tmp_path / "mnist.npz"
    write_synthetic_mnist(data_file)
    result = end_to_end.run_end_to_end(["keras", "torch"], images=128, test_images=64,
                                       rounds=1, machine=FAKE_MACHINE, log=lambda _: None,
                                       data_file=str(data_file))
    for entry in result["results"]:
        if entry["name"] == "torch" and entry["status"].startswith("skipped"):
            continue
        assert entry["status"] == "ok", entry["status"]
        assert entry["epochs_trained"] == 2 and entry["peak_rss_mib"] > 0


def test_harness_command_line_writes_the_report_and_rejects_bad_options(tmp_path, capsys):
    out = tmp_path / "bench" / "RESULTS.md"
    assert benchmarks_main(["kernels", "--quick", "--backends", "numpy", "--repeats", "1",
                            "--warmup", "0", "--batch-size", "4", "--sgemm-size", "32",
                            "--out", str(out)]) == 0
    stored = json.loads(out.with_suffix(".json").read_text())
    assert stored["kernels"]["command"].startswith(
        "python -m benchmarks kernels --backends numpy")
    _assert_well_formed(out.read_text())
    assert "wrote" in capsys.readouterr().out

    out.unlink()
    assert benchmarks_main(["report", "--out", str(out)]) == 0
    assert out.read_text() == report.render_markdown(stored)

    assert benchmarks_main(["end-to-end", "--rounds", "0", "--out", str(out)]) == 2
    assert "--rounds must be positive" in capsys.readouterr().err
    assert benchmarks_main(["report", "--out", str(tmp_path / "none.md")]) == 2
    assert benchmarks_main(["nonsense"]) == 2
    assert benchmarks_main([]) == 2


def test_small_products_tables_cover_every_channel_count(monkeypatch, capsys):
    """``python -m benchmarks small-products`` prints both tables, a rate in each cell."""
    pytest.importorskip("numba")
    from benchmarks import small_products

    monkeypatch.setattr(small_products, "ROWS", (6, 16))
    monkeypatch.setattr(small_products, "CHANNELS", (64,))
    assert benchmarks_main(["small-products", "--repeats", "1"]) == 0
    tables = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 64 |")]
    assert len(tables) == 2
    for line in tables:
        rates = [float(cell) for cell in line.strip("|").split("|")[1:]]
        assert len(rates) == 2 and all(rate > 0 for rate in rates)
