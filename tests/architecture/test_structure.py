"""The shape docs/architecture.md promises: no import cycles, files under 400 lines, no registry branches in the
pipeline, channels and backends as lists. Imports are read from the source (ast), lazy ones included."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PKG = SRC / "nlu_ci"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PKG.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """nlu_ci modules that ``name`` imports (anywhere in the file), resolved to modules that exist."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != name and t.startswith("nlu_ci"):
                out.add(t)
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def package_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's __init__ re-exporting its own modules is not a cycle between places: drop edges from a
    package to its own children."""
    return {n: {m for m in deps if not (MODULES[n].name == "__init__.py" and m.startswith(n + "."))}
            for n, deps in graph.items()}


def test_there_are_no_import_cycles():
    graph = package_edges({n: imports_of(n) for n in MODULES})
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("low, high", [("nlu_ci.pipeline", "nlu_ci.cli"), ("nlu_ci.pipeline", "nlu_ci.commands"),
                                       ("nlu_ci.registry.base", "nlu_ci.pipeline"),
                                       ("nlu_ci.outputs.channels", "nlu_ci.pipeline"),
                                       ("nlu_ci.compare", "nlu_ci.cli"), ("nlu_ci.engine.batch", "nlu_ci.engine.predict")])
def test_no_upward_import(low, high):
    assert not any(m == high or m.startswith(high + ".") for m in imports_of(low)), f"{low} imports {high}"


def test_no_file_over_400_lines():
    long = {str(p.relative_to(SRC)): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_the_pipeline_has_no_registry_branch():
    text = (PKG / "pipeline.py").read_text()
    assert "platform_host" not in text and "platform" not in imports_of("nlu_ci.pipeline")
    assert not any("platform" in m for m in imports_of("nlu_ci.pipeline"))


def test_only_cli_prints():
    printers = sorted(name for name, path in MODULES.items()
                      if any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"
                             for n in ast.walk(ast.parse(path.read_text()))))
    assert printers == ["nlu_ci.cli"]


def room(module: str) -> str:
    """The place a module lives in: its top-level package under nlu_ci, or the module itself."""
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_cycles_between_places():
    """Folders and top-level modules import each other one way only (data/ -> dataset.py -> data/ is a loop a
    reader has to untangle even when no two files import each other)."""
    rooms: dict[str, set[str]] = {}
    for name in MODULES:
        rooms.setdefault(room(name), set()).update(room(m) for m in imports_of(name) if room(m) != room(name))
    rooms.pop("nlu_ci", None)
    for deps in rooms.values():
        deps.discard("nlu_ci")
    assert find_cycle(rooms) is None, f"cycle between places: {' -> '.join(find_cycle(rooms))}"
