"""The house rules of docs/architecture.md, read from the source with ``ast``.

Every ``import`` is counted, including those inside functions: an import inside a
function still makes one module depend on another, and hiding a cycle in a function
only moves the failure from import time to run time.

* no cycles between the modules of ``minicnn`` (a package's ``__init__`` counts as a
  module; ``from minicnn.layers import Conv2D`` depends on ``minicnn.layers``, while
  ``from minicnn import losses`` depends on the module ``minicnn.losses``);
* imports point down: kernels know no layer, model or command line; layers know no
  model; the engine knows no command line (``minicnn.cli``), ``compare`` or
  ``benchmarks``;
* Keras and TensorFlow are imported only by ``minicnn.interop``, by
  ``minicnn.applications`` (the ImageNet download path), by ``compare``, by
  ``benchmarks`` and by the tests;
* no module of the engine grows past a few hundred lines (MNIST's download and cache
  apart), so that each stays one concept a reader can hold.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("minicnn", "compare", "benchmarks")
KERAS_PACKAGES = ("keras", "tensorflow", "tf_keras")
KERAS_ALLOWED = ("minicnn.interop", "minicnn.applications", "compare", "benchmarks")
MAX_LINES = 420
LONG_MODULES_ALLOWED = {"minicnn.datasets.mnist_download"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules() -> dict[str, Path]:
    """Every module of the three packages, by dotted name."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            modules[module_name(path)] = path
    return modules


def _resolve(imported: str, modules: dict[str, Path]) -> str | None:
    """The deepest known module that ``imported`` names (a name inside it drops off)."""
    while imported and imported not in modules:
        imported = imported.rpartition(".")[0]
    return imported or None


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Names of everything ``name`` imports: modules of ours, or top-level foreign packages."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # ``from package import module`` names the module; otherwise the package.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in PACKAGES:
                resolved = _resolve(target, modules)
                if resolved is not None and resolved != name:
                    found.add(resolved)
            else:
                found.add(target.split(".")[0])
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = source_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_the_graph_sees_imports_inside_functions(graph):
    # A sanity check of the reader itself: the CLI imports its command groups, and
    # model loading reaches Sequential (both true of the code as written).
    assert any(_within(target, "minicnn") for target in graph["minicnn.cli"])
    assert "numpy" in graph["minicnn.kernels.reference"]


def test_no_import_cycles(graph):
    assert _cycles(graph) == []


@pytest.mark.parametrize("lower, forbidden", [
    ("minicnn.kernels", ("minicnn.layers", "minicnn.models", "minicnn.cli")),
    ("minicnn.layers", ("minicnn.models", "minicnn.cli")),
])
def test_imports_point_down(graph, lower, forbidden):
    wrong = sorted(f"{name} -> {target}" for name, targets in graph.items()
                   if _within(name, lower) for target in targets
                   if any(_within(target, prefix) for prefix in forbidden))
    assert wrong == []


def test_the_engine_knows_no_command_line_comparison_or_benchmark(graph):
    wrong = sorted(f"{name} -> {target}" for name, targets in graph.items()
                   if _within(name, "minicnn") and not _within(name, "minicnn.cli")
                   and name != "minicnn.__main__"  # ``python -m minicnn`` is the command
                   for target in targets
                   if _within(target, "minicnn.cli") or target.split(".")[0] in
                   ("compare", "benchmarks"))
    assert wrong == []


def test_keras_only_where_it_belongs(graph):
    wrong = sorted(f"{name} -> {target}" for name, targets in graph.items()
                   for target in targets if target in KERAS_PACKAGES
                   and not any(_within(name, allowed) for allowed in KERAS_ALLOWED))
    assert wrong == []


def test_modules_stay_small():
    long = sorted(f"{name}: {len(path.read_text().splitlines())} lines"
                  for name, path in source_modules().items()
                  if _within(name, "minicnn") and name not in LONG_MODULES_ALLOWED
                  and len(path.read_text().splitlines()) > MAX_LINES)
    assert long == []


def test_code_cites_only_files_in_the_repository():
    """Comments and docstrings point to docs/architecture.md, which is in the repository."""
    citing = sorted(str(path.relative_to(ROOT)) for package in PACKAGES + ("tests",)
                    for path in (ROOT / package).rglob("*.py")
                    if "design.md" in path.read_text(encoding="utf-8")
                    and path.name != Path(__file__).name)
    assert citing == []
    assert (ROOT / "docs" / "architecture.md").is_file()
