"""The package has no import cycle.

Walks the source of every ``lnlkit`` module with ``ast`` (nothing is imported) and builds the graph of lnlkit-internal
imports, those at module level and those inside functions alike: an import inside a function only postpones a cycle
to the first call.  ``from lnlkit.x import y`` is an edge to ``lnlkit.x.y`` when that is a module, else to ``lnlkit.x``;
the parent packages that Python initialises on the way are not edges (every module would otherwise sit in a cycle
with the root package).
"""

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "lnlkit"  # read as source: importing it would pull in torch


def _modules(package_dir: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of the dotted ``name`` that is a module of the package."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(package_dir: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``, from the source of every module under ``package_dir``."""
    modules = _modules(package_dir)
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(_known(alias.name, modules) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolved against the importing module's package
                    package = name if is_package else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}" if base else package
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in modules else _known(base, modules))
        targets.discard(None)
        targets.discard(name)
        graph[name] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that returns to its start) through each strongly connected group of modules."""
    cycles, state = [], {}  # state: 1 on the current path, 2 finished

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, path)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return cycles


def test_the_walk_sees_module_and_function_level_imports(tmp_path):
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from toy.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..a import x\n")  # relative, inside a function
    (pkg / "c.py").write_text("import toy.sub.b\nimport numpy\n")
    graph = import_graph(pkg)
    assert graph == {
        "toy": set(),
        "toy.sub": set(),
        "toy.a": {"toy.sub.b"},
        "toy.sub.b": {"toy.a"},
        "toy.c": {"toy.sub.b"},
    }
    assert find_cycles(graph) == [["toy.a", "toy.sub.b", "toy.a"]]


def test_lnlkit_has_no_import_cycle():
    graph = import_graph()
    assert {"lnlkit", "lnlkit.cli", "lnlkit.reproduce", "lnlkit.runs", "lnlkit.methods.base"} <= set(graph)
    assert "lnlkit.runs" in graph["lnlkit.cli"] and "lnlkit.runs" in graph["lnlkit.reproduce"]
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("reader", ["lnlkit.plots", "lnlkit.widgets", "lnlkit.cli", "lnlkit.reproduce"])
def test_run_folders_are_read_through_lnlkit_runs(reader):
    graph = import_graph()
    assert "lnlkit.runs" in graph[reader]
    assert graph["lnlkit.runs"] == set()  # the reader stands alone: anything may import it
