"""The README's quick start and CI stay the same command."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert len(ci_lines) == 1, ci_lines
    assert ci_lines[0] in readme, "the README must show the exact command .ci/run runs"
