"""No import cycles between the top-level packages and modules of `bot/`.

Reads every module's imports with the standard library's `ast` (nothing is
imported, so a cycle hidden behind a function-level import counts too) and
looks for strongly connected components in the graph of top-level parts
(`bot.gateway`, `bot.handoff`, `bot.loops`...).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

BOT = Path(__file__).resolve().parent.parent / "bot"


def top_level_parts() -> set[str]:
    """The packages and modules directly under `bot/`."""
    return {
        path.stem
        for path in BOT.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").exists())
    }


def imported_modules(tree: ast.AST) -> set[str]:
    """Absolute module names a module imports (`from bot import x` counts as
    `bot.x`)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "bot":
                names.update(f"bot.{alias.name}" for alias in node.names)
    return names


def dependency_graph() -> dict[str, dict[str, set[str]]]:
    """part -> imported part -> the files of `part` that import it."""
    parts = top_level_parts()
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in BOT.rglob("*.py"):
        source = path.relative_to(BOT).parts[0].removesuffix(".py")
        for name in imported_modules(ast.parse(path.read_text(), str(path))):
            pieces = name.split(".")
            if pieces[0] != "bot" or len(pieces) < 2:
                continue
            target = pieces[1]
            if target in parts and target != source:
                graph[source][target].add(str(path.relative_to(BOT.parent)))
    return graph


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """The strongly connected components of more than one part (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b": {"a.py"}}, "b": {"c": {"b.py"}}, "c": {"a": {"c.py"}}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b": {"a.py"}}, "b": {}}) == []


def test_no_import_cycle_between_the_top_level_parts_of_bot() -> None:
    graph = dependency_graph()
    assert graph["gateway"], "the import graph was read"
    report = []
    for component in cycles(graph):
        for source in component:
            for target in component:
                for path in sorted(graph[source].get(target, ())):
                    report.append(f"{path}: {source} -> {target}")
    assert not report, "import cycles:\n" + "\n".join(report)
