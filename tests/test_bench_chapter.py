"""The benchmark harness's chapter workloads and scaling sweep, without timing anything:
FLOP counts and floors, the frozen fine-tuning model, options, and the report sections
rendered from stored results."""

from __future__ import annotations

import pytest

from benchmarks import chapter, run_all, scaling
from benchmarks.chapter_report import chapter_section, scaling_section
from benchmarks.chapter_sessions import WORKLOADS, chapter_model
from benchmarks.report import render_markdown

MACHINE = {"cpu": "test CPU", "cores": 2, "logical_cpus": 2, "simd": [], "memory_gib": 1.0,
           "blas": "test BLAS", "sgemm": {"gflops": 100.0, "size": 64, "repeats": 5,
                                          "median_seconds": 0.01},
           "versions": {}, "numba_threads": 2, "platform": "test", "python": "3",
           "load_average": [0, 0, 0]}


def test_fine_tuning_model_freezes_blocks_1_to_4():
    model = chapter_model("vgg16-finetune")
    trainable = [layer.name for layer in model.layers if layer.trainable_weights]
    assert trainable[:3] == ["block5_conv1", "block5_conv2", "block5_conv3"]
    assert len(trainable) == 5            # and the two Dense layers of the head
    assert model.output_shape == (None, 1)


def test_workload_flops_follow_minicnn_flops():
    from minicnn.flops import predict_flops, training_step_flops

    extract = chapter.workload_flops("vgg16-extract", 20, 200)
    assert extract == 10 * predict_flops(chapter_model("vgg16-extract"), 20)
    # One VGG16-base forward at 150x150 is about 13.9 GFLOP an image.
    assert 13.0e9 < extract / 200 < 14.5e9
    finetune = chapter.workload_flops("vgg16-finetune", 20, 40)
    model = chapter_model("vgg16-finetune")
    assert finetune == 2 * training_step_flops(model, 20)
    # Frozen blocks add no backward pass: fine-tuning costs little more than extraction.
    assert finetune / 40 < 1.3 * extract / 200


def test_scaling_points_cover_the_sweeps():
    points = scaling.sweep_points()
    sizes = [p["shape"][1] for p in points if p["sweep"] == "size"]
    channels = [p["shape"][3] for p in points if p["sweep"] == "channels"]
    batches = [p["shape"][0] for p in points if p["sweep"] == "batch"]
    assert sizes == [28, 56, 112, 224] and channels == [32, 64, 128, 256, 512]
    assert batches == [1, 8, 32, 128]
    for point in points:
        N, H, W, C, F = point["shape"]
        assert point["macs_per_image"] == H * W * C * F * 9


def test_chapter_images_option_is_checked():
    parser = run_all.argparse.ArgumentParser()
    run_all.add_arguments(parser)
    arguments = parser.parse_args(["chapter", "--chapter-images", "vgg16-extract=40"])
    settings = run_all._resolved(arguments)
    assert settings["chapter_images"]["vgg16-extract"] == 40
    assert settings["chapter_images"]["cats-dogs-epoch"] == chapter.DEFAULT_IMAGES["cats-dogs-epoch"]
    assert "--chapter-images" in run_all._command_line(arguments, settings, "chapter")
    bad = parser.parse_args(["chapter", "--chapter-images", "vgg16=4"])
    with pytest.raises(ValueError, match="WORKLOAD=N"):
        run_all._resolved(bad)


def _result(name, seconds, rss):
    return {"name": name, "status": "ok", "seconds": [seconds], "first_seconds": seconds,
            "time": {"median": seconds, "min": seconds, "max": seconds},
            "images_per_second": 200 / seconds, "gflops": 1.0, "peak_rss_mib": rss,
            "threads": "2"}


def test_sections_render_from_stored_results():
    workloads = []
    for workload in WORKLOADS:
        workloads.append({"workload": workload, "images": 200, "flops": 1e12,
                          "gemm_floor_seconds": 10.0,
                          "results": [_result("minicnn-numba", 5.0, 500),
                                      _result("keras", 10.0, 1500),
                                      {"name": "torch", "status": "skipped: absent",
                                       "seconds": []}],
                          "verdict": {"time_ratio": 0.5, "target": 0.6, "met": True,
                                      "peak_rss_ratio": 0.33}})
    section = {"machine": MACHINE, "workloads": workloads, "notes": [], "date": "today",
               "command": "python -m benchmarks chapter",
               "settings": {"frameworks": ["minicnn-numba", "keras", "torch"], "rounds": 3,
                            "batch_size": 20}}
    text = "\n".join(chapter_section(section, None, lambda machine: ["(machine)"]))
    assert "**0.50**" in text and "skipped: absent" in text and "met" in text
    points = scaling.sweep_points(quick=True)
    for point in points:
        point["ms_per_image"] = {"minicnn-numba": 1.0, "keras": 2.0}
        point["floor_ms_per_image"] = 0.5
    scaled = {"machine": MACHINE, "points": points, "notes": [], "plot_link": "x.png",
              "settings": {"frameworks": ["minicnn-numba", "keras"], "repeats": 3,
                           "quick": True, "base": "b"}}
    text = "\n".join(scaling_section(scaled, lambda machine: []))
    assert "![time per image" in text and "0.50" in text
    assert "## The chapter past MNIST" in render_markdown({"chapter": section, "scaling": scaled})


def test_a_target_is_met_only_in_median_and_fastest_rounds_both():
    """Keras's slow rounds must not flatter minicnn: 0.37 in medians but 0.75 between the
    fastest rounds (as measured once on this machine) is not met."""
    def timed(seconds):
        return {"time": {"median": sorted(seconds)[1], "min": min(seconds)},
                "peak_rss_mib": 100.0}

    flattered = chapter.verdict(timed([15.3, 15.7, 16.1]), timed([20.3, 42.8, 42.9]), 0.6)
    assert round(flattered["time_ratio"], 2) == 0.37
    assert round(flattered["best_time_ratio"], 2) == 0.75 and not flattered["met"]
    steady = chapter.verdict(timed([11.3, 11.3, 12.2]), timed([20.5, 20.5, 20.6]), 0.6)
    assert steady["met"] and steady["best_time_ratio"] <= 0.6
