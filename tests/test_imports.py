"""The package's import graph: no cycles and no ``import *`` anywhere in src/rsft.

Every ``import`` / ``from ... import`` of an rsft module (at module level or inside a function)
is an edge; a package's ``__init__`` importing its own submodules is an edge like any other,
while a submodule's implicit import of its parent package is not.
"""
import ast
from pathlib import Path

import rsft

PACKAGE = Path(rsft.__file__).parent


def _module_name(path):
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph, stars = {}, []
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        base = name.split(".") if is_pkg else name.split(".")[:-1]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if any(a.name == "*" for a in node.names):
                    stars.append(name)
                stem = base[:len(base) - node.level + 1] if node.level else []
                mod = ".".join(stem + ([node.module] if node.module else []))
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            else:
                continue
            # an ancestor package is imported implicitly anyway: not an edge
            edges.update(t for t in targets if t in modules and t != name
                         and not name.startswith(t + "."))
        graph[name] = edges
    return graph, stars


def _find_cycle(graph):
    state, stack = {}, []

    def visit(u):
        state[u] = "open"
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == "open":
                return stack[stack.index(v):] + [v]
            if v not in state:
                found = visit(v)
                if found:
                    return found
        state[u] = "done"
        stack.pop()
        return None

    for u in sorted(graph):
        if u not in state:
            found = visit(u)
            if found:
                return found
    return None


def test_the_walker_sees_the_package():
    graph, _ = _graph()
    assert {"rsft", "rsft.sampling", "rsft._reference", "rsft._reference.sampler"} <= set(graph)
    assert "rsft._reference.sampler" in graph["rsft._envelope"]
    assert "rsft._program" in graph["rsft._reference.sampler"]


def test_no_import_cycles():
    graph, _ = _graph()
    assert _find_cycle(graph) is None, " -> ".join(_find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_star_imports():
    _, stars = _graph()
    assert stars == []
