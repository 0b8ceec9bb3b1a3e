#!/usr/bin/env python
"""The project's import graph: imports inside functions, and the cycles (issue 19).

Reads every ``.py`` file of the project's packages (optimizations, departments,
portal, examples, bench; migrations and the code-scan corpus left out) with
``ast`` — nothing is imported or run — and prints:

- the imports of project modules written inside a function or a class body
  (a project import belongs at the top of its module: an import hidden in a
  function is how a cycle gets dodged instead of broken);
- the import cycles among project modules, the hidden imports counted (the
  strongly connected components of the graph, each with one cycle through it);
- the imports inside ``AppConfig.ready()`` methods, apart: that is where Django
  has an app register its hooks and checks once every model is loaded (an
  ``apps`` module is imported before the models are), so an import there is
  registration, not a dodge — its edge still counts for cycles;
- imports under ``if TYPE_CHECKING:`` are left out (they never run);
- the imports of other libraries inside functions, for information: a few are
  kept on purpose so that a light command does not load a heavy library
  (plotly, schemathesis, pip-audit…); they cannot form a cycle with our code.

The tests are held to the same rule (their imports of project modules at the
top), and counted apart.

Exit status 1 when there is a hidden project import (in the project or the
tests) or a cycle, else 0; ``tests/test_house_rules.py`` asserts the same.

    .venv/bin/python bench/imports.py [--verbose]
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("optimizations", "departments", "portal", "examples", "bench")
SKIPPED_PARTS = {"migrations", "__pycache__"}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (the deepest one that exists)
    line: int
    nested: bool  # inside a function or a class body
    registration: bool = False  # inside an AppConfig.ready() (see the docstring)


@dataclass
class Graph:
    modules: dict[str, Path] = field(default_factory=dict)
    imports: list[Import] = field(default_factory=list)
    outside_nested: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def hidden(self) -> list[Import]:
        return [i for i in self.imports if i.nested and not i.registration]

    @property
    def registrations(self) -> list[Import]:
        return [i for i in self.imports if i.registration]

    def edges(self) -> dict[str, set[str]]:
        edges: dict[str, set[str]] = {m: set() for m in self.modules}
        for i in self.imports:
            if i.target != i.module:
                edges[i.module].add(i.target)
        return edges


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_files(root: Path = ROOT, packages=PACKAGES):
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if SKIPPED_PARTS.isdisjoint(path.relative_to(root).parts):
                yield path


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The deepest project module that ``name`` names (``a.b.func`` → ``a.b``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


class _Visitor(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool):
        self.module = module
        self.is_package = is_package
        self.depth = 0
        self.in_ready = 0
        self.found: list[tuple[str, int, bool]] = []  # (dotted name, line, nested)
        self.ready_lines: set[int] = set()

    def _nested(self, node):
        ready = self.module.rpartition(".")[2] == "apps" and getattr(node, "name", "") == "ready"
        self.depth += 1
        self.in_ready += ready
        self.generic_visit(node)
        self.in_ready -= ready
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = _nested

    def visit_If(self, node: ast.If) -> None:
        # ``if TYPE_CHECKING:`` imports are for the type checker only: never run, no edge.
        test = node.test
        if getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", None) == (
            "TYPE_CHECKING"
        ):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        if self.in_ready:
            self.ready_lines.add(node.lineno)
        for alias in node.names:
            self.found.append((alias.name, node.lineno, self.depth > 0))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if self.in_ready:
            self.ready_lines.add(node.lineno)
        base = _absolute(self.module, self.is_package, node)
        for alias in node.names:
            # ``from a import b`` imports the module a.b when there is one, else a.
            self.found.append(
                (f"{base}.{alias.name}" if base else alias.name, node.lineno, self.depth > 0)
            )

    def visit_Call(self, node: ast.Call) -> None:
        # importlib.import_module("literal") / __import__("literal") hide an import
        # as well as a nested import statement does.
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if (
            name in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            self.found.append((node.args[0].value, node.lineno, True))
        self.generic_visit(node)


def build(root: Path = ROOT, packages=PACKAGES) -> Graph:
    graph = Graph()
    for path in project_files(root, packages):
        graph.modules[module_name(path, root)] = path
    seen: set[Import] = set()
    outside: set[tuple[str, str, int]] = set()
    for module, path in list(graph.modules.items()):
        visitor = _Visitor(module, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        for name, line, nested in visitor.found:
            target = _resolve(name, graph.modules)
            if target is not None:
                found = Import(module, target, line, nested, line in visitor.ready_lines)
                if found not in seen:  # ``from a import b, c`` is one import of a
                    seen.add(found)
                    graph.imports.append(found)
            elif nested and (module, name.partition(".")[0], line) not in outside:
                outside.add((module, name.partition(".")[0], line))
                graph.outside_nested.append((module, name, line))
    return graph


def hidden_in_tests(graph: Graph, root: Path = ROOT) -> list[tuple[Path, int, str]]:
    """Imports of project modules inside the tests' functions: (file, line, module).

    A test imports what it uses at the top like any module; only a test that needs
    a fresh import of a module would import inside a function (none does)."""
    found = []
    for path in sorted((root / "tests").rglob("*.py")):
        if "codescan_corpus" in path.parts:  # a corpus of scanned code, not our tests
            continue
        visitor = _Visitor("tests", False)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        lines = set()
        for name, line, nested in visitor.found:
            target = _resolve(name, graph.modules)
            if nested and target and line not in lines:
                lines.add(line)
                found.append((path, line, target))
    return found


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module (or a
    module importing itself), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in edges[node]:
                        components.append(sorted(component))
    return sorted(components)


def one_cycle(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the component's first module (breadth first)."""
    members = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(edges[node] & members):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if child not in came_from:
                came_from[child] = node
                queue.append(child)
    return [start]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verbose", action="store_true", help="list every hidden import")
    args = parser.parse_args(argv)
    graph = build()
    edges = graph.edges()
    hidden = graph.hidden
    cycles = strongly_connected(edges)
    print(f"{len(graph.modules)} project modules, {len(graph.imports)} project imports")
    print(f"Imports of project modules inside functions: {len(hidden)}")
    for i in hidden if args.verbose else hidden[:20]:
        path = graph.modules[i.module].relative_to(ROOT)
        print(f"  {path}:{i.line}  {i.target}")
    if len(hidden) > 20 and not args.verbose:
        print(f"  … and {len(hidden) - 20} more (--verbose)")
    in_tests = hidden_in_tests(graph)
    print(f"Imports of project modules inside the tests' functions: {len(in_tests)}")
    for path, line, target in in_tests:
        print(f"  {path.relative_to(ROOT)}:{line}  {target}")
    print(f"Registrations in AppConfig.ready(): {len(graph.registrations)}")
    for i in graph.registrations:
        print(f"  {graph.modules[i.module].relative_to(ROOT)}:{i.line}  {i.target}")
    print(f"Import cycles among project modules: {len(cycles)}")
    for component in cycles:
        print(f"  {len(component)} modules: {', '.join(component)}")
        print(f"    e.g. {' → '.join(one_cycle(component, edges))}")
    print(
        f"Other libraries imported inside functions (kept for start-up cost): "
        f"{len(graph.outside_nested)}"
    )
    if args.verbose:
        for module, name, line in graph.outside_nested:
            print(f"  {graph.modules[module].relative_to(ROOT)}:{line}  ({name})")
    return 1 if hidden or in_tests or cycles else 0


if __name__ == "__main__":
    sys.exit(main())
