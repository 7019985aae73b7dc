"""The command line explains itself: ``--version``, ``python -m minicnn``, a help text for
every option with its default, ``summary PATH``, and the word "seed" only for random seeds."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

import minicnn
from minicnn.cli import main, make_parser

ROOT = Path(__file__).resolve().parents[1]


def all_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("minicnn",)):
    """``(command path, parser)`` for the parser and every subcommand below it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from all_parsers(child, path + (name,))


def test_version(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"minicnn {minicnn.__version__}"


def test_python_dash_m_minicnn_help() -> None:
    result = subprocess.run([sys.executable, "-m", "minicnn", "--help"], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Deep Learning with Python" in result.stdout
    for command in ("summary", "train", "experiment", "bench", "data", "viz", "explain"):
        assert command in result.stdout


def test_every_option_has_help_and_shows_its_default() -> None:
    missing, no_default = [], []
    for path, parser in all_parsers(make_parser()):
        if parser.prefix_chars == "+":  # 'bench all|kernels|end-to-end': a pointer, no options
            continue
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction,
                                   argparse._SubParsersAction)):
                continue
            name = " ".join(path) + " " + (action.option_strings[-1] if action.option_strings
                                           else action.dest)
            if not (action.help or "").strip():
                missing.append(name)
                continue
            text = formatter._get_help_string(action) % {"default": action.default}
            flag = isinstance(action, (argparse._StoreTrueAction, argparse._StoreConstAction))
            if action.option_strings and not flag and not action.required \
                    and "default" not in text:
                no_default.append(f"{name}: {text}")
    assert missing == []
    assert no_default == []


def test_help_shows_defaults(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 5)" in text and "(default: rmsprop)" in text
    assert "(default: runs/mnist)" in text and "64 for the convnets" in text


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["experiment", "--help"],
                                  ["explain", "--help"], ["bench", "layers", "--help"],
                                  ["viz", "--help"], ["data", "--help"], ["summary", "--help"]])
def test_seed_means_only_a_random_seed(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    text = " ".join(capsys.readouterr().out.split()).lower()
    for match in re.finditer(r"\bseed\b", text):
        context = text[max(0, match.start() - 40):match.end() + 40]
        assert re.search(r"random seed|--seeds?\b|seed \d|per seed|each seed|seed of|"
                         r"one run per seed|\[--seeds?", context), context


def test_summary_of_a_saved_model_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from minicnn.applications.registry import build_model

    path = tmp_path / "model.npz"
    build_model("mnist-convnet").save(str(path))
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert "93,322" in out and "conv2d" in out


def test_summary_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["summary", "no-such-model"]) == 2
    assert "not a model name" in capsys.readouterr().err
    assert main(["summary", str(tmp_path / "missing.npz")]) == 2
    assert "minicnn: error:" in capsys.readouterr().err
    assert main(["summary", str(tmp_path / "missing.npz"), "--keras"]) == 2
    assert "named model" in capsys.readouterr().err


def test_warm_up_announces_a_cold_numba_cache_and_leaves_no_trace(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("numba")
    from minicnn import naming
    from minicnn import random as minicnn_random
    from minicnn.backend import using_backend
    from minicnn.cli import warmup

    monkeypatch.setattr(warmup, "numba_cache_is_empty", lambda: True)
    minicnn_random.set_random_seed(3)
    before_state, before_names = minicnn_random.get_state(), dict(naming._uids)
    with using_backend("numba"):
        seconds = warmup.warm_up_mnist("convnet", 8, "rmsprop")
    err = capsys.readouterr().err
    assert "compiling the numba kernels" in err and f"compiled in {seconds:.0f} s" in err
    assert minicnn_random.get_state() == before_state and dict(naming._uids) == before_names

    with using_backend("numpy"):
        assert warmup.warm_up_mnist("convnet", 8, "rmsprop") == 0.0
    assert capsys.readouterr().err == ""


def test_numba_cache_is_found() -> None:
    pytest.importorskip("numba")
    from minicnn.backend import using_backend
    from minicnn.cli import warmup

    with using_backend("numba"):
        warmup.warm_up_mnist("dense", 4, "rmsprop", verbose=0)  # compiles or loads, caches
    assert warmup.numba_cache_is_empty() is False
