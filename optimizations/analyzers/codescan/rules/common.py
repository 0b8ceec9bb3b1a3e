"""What several checks ask of the index: is this query results, does that function query,
which loops iterate rows, what does a statement end up containing."""

from __future__ import annotations

import ast
from collections.abc import Iterator, ValuesView
from collections.abc import Set as AbstractSet
from typing import Any

from ..index import Func, Index, Relationship
from ..syntax import last_name, walk_body, words
from ..taint import Taint

SINGLE_ROW = words(
    "count exists fetchone fetchrow fetchval first get get_one one one_or_none scalar "
    "scalar_one scalar_one_or_none"
)
ROW_METHODS = {"execute", "scalars", "query", "stream", "stream_scalars", "exec", "fetch"}
QUERY_METHODS = words(
    "exec exec_driver_sql execute fetch fetchrow fetchval get get_one query refresh "
    "scalar scalars stream stream_scalars"
)
LOADER_OPTIONS = words(
    "contains_eager defaultload immediateload joinedload noload raiseload "
    "selectin_polymorphic selectinload subqueryload"
)


# (loop or comprehension node, what it iterates, its target names, the nodes of its body)
type Loop = tuple[ast.stmt | ast.expr, ast.expr, set[str], list[ast.AST]]


class Scan:
    """One scan's shared state: the index, the taint, the options, memoized summaries."""

    def __init__(
        self,
        index: Index,
        taint: Taint,
        *,
        options: dict[str, Any] | None = None,
        config_texts: dict[str, str] | None = None,
        migration_text: str = "",
    ):
        self.index = index
        self.taint = taint
        self.options = options or {}
        self.config_texts = config_texts or {}
        self.migration_text = migration_text
        self._executes: dict[str, bool] = {}
        self._returns_rows: dict[str, bool] = {}
        self._lazy = index.lazy_relationships()
        self._loops: dict[str, list[Loop]] = {}
        self._row_loops: dict[str, list[Loop]] = {}
        # rule id → (status, detail) for rules that decided not to look (version gates)
        self.notes: dict[str, tuple[str, str]] = {}
        # computed once per scan by the rules that need them (security, orm)
        self._output_fields: set[str] | None = None
        self._searchable: set[str] | None = None

    @property
    def lazy(self) -> dict[str, list[Relationship]]:
        return self._lazy

    def functions(self) -> ValuesView[Func]:
        return self.index.functions.values()

    # --- summaries of functions -------------------------------------------------------------

    def executes_query(self, func: Func, depth: int = 0) -> bool:
        if func.qual in self._executes:
            return self._executes[func.qual]
        self._executes[func.qual] = False  # cycle guard
        found = any(
            isinstance(n, ast.Call) and self.index.db_call(func, n, QUERY_METHODS)
            for n in func.nodes
        )
        if not found and depth < 3:
            found = any(self.executes_query(callee, depth + 1) for _c, callee in func.calls)
        self._executes[func.qual] = found
        return found

    def returns_rows(self, func: Func) -> bool:
        if func.qual in self._returns_rows:
            return self._returns_rows[func.qual]
        self._returns_rows[func.qual] = False
        found = any(
            isinstance(n, ast.Return) and n.value is not None and self.is_rows(func, n.value)
            for n in func.nodes
        )
        self._returns_rows[func.qual] = found
        return found

    def callee(self, func: Func, call: ast.Call) -> Func | None:
        for node, callee in func.calls:
            if node is call:
                return callee
        return None

    # --- expressions ------------------------------------------------------------------------

    def is_rows(
        self,
        func: Func,
        expr: ast.AST,
        row_vars: AbstractSet[str] = frozenset(),
        seen: set[str] | None = None,
    ) -> bool:
        """Whether ``expr`` evaluates to many rows of a query (not a single row)."""
        seen = set() if seen is None else seen
        while isinstance(expr, ast.Await):
            expr = expr.value
        if isinstance(expr, ast.Call):
            if isinstance(expr.func, ast.Attribute) and expr.func.attr in SINGLE_ROW:
                return False
            if last_name(expr) == "gather":
                return any(self.is_rows(func, a, row_vars, seen) for a in expr.args)
            if isinstance(expr.func, ast.Name) and expr.func.id in {
                "list",
                "tuple",
                "sorted",
                "reversed",
                "enumerate",
            }:  # the builtins, not a repository's own `.list()`
                return bool(expr.args) and self.is_rows(func, expr.args[0], row_vars, seen)
            node: ast.AST = expr
            while isinstance(node, ast.Call | ast.Attribute | ast.Await | ast.Subscript):
                if isinstance(node, ast.Call):
                    if self.index.db_call(func, node, ROW_METHODS):
                        return True
                    callee = self.callee(func, node)
                    if callee is not None:
                        return self.returns_rows(callee)
                    node = node.func
                elif isinstance(node, ast.Subscript):
                    return False
                else:
                    node = node.value
            if isinstance(node, ast.Name):  # reached through .func / .value: never ``expr``
                return self.is_rows(func, node, row_vars, seen)
            return False
        if isinstance(expr, ast.Name):
            if expr.id in seen:
                return False
            seen.add(expr.id)
            return any(self.is_rows(func, v, row_vars, seen) for v in func.assigns.get(expr.id, []))
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
            return expr.value.id in row_vars and expr.attr in self.all_relationships()
        return False

    def all_relationships(self) -> set[str]:
        return {name for info in self.index.classes.values() for name in info.relationships}

    def statement_names(
        self, func: Func, expr: ast.AST, depth: int = 0, seen: set[str] | None = None
    ) -> set[str]:
        """Names of every call in ``expr`` and in the assignments of the names it uses."""
        seen = set() if seen is None else seen
        names: set[str] = set()
        for node in ast.walk(expr):
            if isinstance(node, ast.Call):
                names.add(last_name(node))
            elif isinstance(node, ast.Name) and node.id not in seen and depth < 6:
                seen.add(node.id)
                for value in func.assigns.get(node.id, []):
                    names |= self.statement_names(func, value, depth + 1, seen)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value.upper()
                if " LIMIT " in f" {text} " or "LIMIT :" in text:
                    names.add("limit")
        return names

    def loader_mentions(self, funcs: list[Func]) -> set[str]:
        """Relationship names (and '*') named in eager-loading options inside ``funcs``."""
        mentioned: set[str] = set()
        for func in funcs:
            for node in func.nodes:
                if isinstance(node, ast.Call) and last_name(node) in LOADER_OPTIONS:
                    for inner in ast.walk(node):
                        if isinstance(inner, ast.Attribute):
                            mentioned.add(inner.attr)
                        elif isinstance(inner, ast.Constant) and isinstance(inner.value, str):
                            mentioned.add(inner.value)
        return mentioned

    def chain_functions(self, func: Func, depth: int = 3) -> list[Func]:
        """``func`` and the project functions it calls, ``depth`` levels down."""
        found, frontier = [func], [func]
        seen = {func.qual}
        for _ in range(depth):
            following = []
            for current in frontier:
                for _call, callee in current.calls:
                    if callee.qual not in seen:
                        seen.add(callee.qual)
                        found.append(callee)
                        following.append(callee)
            frontier = following
        return found

    def queried_models(self, funcs: list[Func]) -> set[str]:
        """Model names selected, queried or fetched by primary key in ``funcs``."""
        models: set[str] = set()
        for func in funcs:
            for node in func.nodes:
                if isinstance(node, ast.Call) and last_name(node) in {
                    "select",
                    "query",
                    "get",
                    "get_one",
                }:
                    for arg in node.args[:1]:
                        if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name):
                            arg = arg.value  # `query(FAQ.category, ...)`: columns of FAQ
                        name = last_name(arg)
                        if self.index.models_named(name):
                            models.add(name)
        return models

    def loops(self, func: Func) -> list[Loop]:
        """(loop node, iterable, target names, body nodes) of every loop and comprehension."""
        if func.qual not in self._loops:
            self._loops[func.qual] = list(self._find_loops(func))
        return self._loops[func.qual]

    def _find_loops(self, func: Func) -> Iterator[Loop]:
        for node in func.nodes:
            if isinstance(node, ast.For | ast.AsyncFor):
                body = [n for stmt in node.body for n in [stmt, *walk_body(stmt)]]
                yield node, node.iter, _names(node.target), body
            elif isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
                parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
                first = node.generators[0]
                parts += list(first.ifs) + [
                    part for g in node.generators[1:] for part in [g.iter, *g.ifs]
                ]
                body = [n for part in parts for n in [part, *walk_body(part)]]
                targets: set[str] = set().union(*(_names(g.target) for g in node.generators))
                yield node, first.iter, targets, body

    def row_loops(self, func: Func) -> list[Loop]:
        """The loops of ``func`` that iterate query results (nested ones included)."""
        if func.qual in self._row_loops:
            return self._row_loops[func.qual]
        loops = self.loops(func)
        row_vars: set[str] = set()
        found: list[Loop] = []
        # two passes so that `for item in order.items` inside `for order in orders` counts
        for _ in range(2):
            for loop in loops:
                if loop in found:
                    continue
                if self.is_rows(func, loop[1], row_vars):
                    found.append(loop)
                    row_vars |= loop[2]
        self._row_loops[func.qual] = found
        return found


def _names(target: ast.AST) -> set[str]:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, ast.Tuple | ast.List):
        names: set[str] = set()
        return names.union(*(_names(e) for e in target.elts))
    return set()


def awaited_or_called(func: Func, call: ast.Call) -> bool:
    return id(call) in func.awaited
