"""Small helpers over Python's syntax tree, shared by the index, the taint and the rules."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator


def walk_body(node: ast.AST) -> Iterator[ast.AST]:
    """Every node under ``node`` except the bodies of nested functions and classes."""
    stack = list(ast.iter_child_nodes(node))
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            # decorators and defaults run in the enclosing scope
            stack.extend(current.decorator_list)
            if not isinstance(current, ast.ClassDef):
                stack.extend(current.args.defaults)
                stack.extend(d for d in current.args.kw_defaults if d is not None)
            continue
        stack.extend(ast.iter_child_nodes(current))


def line_of(node: ast.AST) -> int:
    """The line a node starts on (0 for the few kinds without one, such as operators)."""
    return int(getattr(node, "lineno", 0))


def last_name(expr: ast.AST) -> str:
    """``a.b.c`` → ``c``; ``f`` → ``f``; a call → the name of what it calls."""
    if isinstance(expr, ast.Call):
        expr = expr.func
    if isinstance(expr, ast.Attribute):
        return expr.attr
    if isinstance(expr, ast.Name):
        return expr.id
    return ""


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    for item in call.keywords:
        if item.arg == name:
            return item.value
    return None


def is_true(expr: ast.AST | None) -> bool:
    return isinstance(expr, ast.Constant) and expr.value is True


def const_str(expr: ast.AST | None) -> str | None:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    return None


def annotation_names(expr: ast.AST | None) -> list[ast.AST]:
    """The type names inside an annotation: ``Annotated[X, ...]`` → X, ``X | None`` → X."""
    if expr is None:
        return []
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        try:
            expr = ast.parse(expr.value, mode="eval").body
        except SyntaxError:
            return []
    if isinstance(expr, ast.Subscript):
        outer = last_name(expr.value)
        inner = expr.slice
        items = inner.elts if isinstance(inner, ast.Tuple) else [inner]
        if outer == "Annotated":
            return annotation_names(items[0]) if items else []
        if outer in {"Optional", "Union", "Mapped", "list", "List", "Sequence", "Iterable"}:
            return [name for item in items for name in annotation_names(item)]
        return [expr.value]
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
        return annotation_names(expr.left) + annotation_names(expr.right)
    if isinstance(expr, ast.Name | ast.Attribute):
        return [expr]
    return []


def annotated_metadata(expr: ast.AST | None) -> list[ast.AST]:
    """The metadata of ``Annotated[X, m1, m2]``: [m1, m2]."""
    if isinstance(expr, ast.Subscript) and last_name(expr.value) == "Annotated":
        inner = expr.slice
        if isinstance(inner, ast.Tuple):
            return list(inner.elts[1:])
    return []


def target_names(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [n for element in target.elts for n in target_names(element)]
    if isinstance(target, ast.Starred):
        return target_names(target.value)
    return []


def param_defaults(
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda,
) -> dict[str, ast.expr]:
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    named = [a.arg for a in positional[len(positional) - len(args.defaults) :]]
    defaults = dict(zip(named, args.defaults, strict=True))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=False):
        if default is not None:
            defaults[arg.arg] = default
    return defaults


def depends_default(default: ast.AST | None) -> ast.AST | None:
    if isinstance(default, ast.Call) and last_name(default) in {"Depends", "Security"}:
        return default.args[0] if default.args else keyword(default, "dependency")
    return None


def annotated_depends(annotation: ast.AST | None) -> ast.AST | None:
    for item in annotated_metadata(annotation):
        target = depends_default(item)
        if target is not None:
            return target
    return None


def depends_target(default: ast.AST | None, annotation: ast.AST | None) -> ast.AST | None:
    return depends_default(default) or annotated_depends(annotation)


def looks_like_model(expr: ast.AST) -> bool:
    return isinstance(expr, ast.Name | ast.Attribute) and last_name(expr)[:1].isupper()


def words(text: str) -> frozenset[str]:
    """A set of names written as one string, to keep long vocabularies readable."""
    return frozenset(text.split())


def _guarded_target(test: ast.expr, negated: bool) -> list[str]:
    """The expressions a lazy-initialisation test checks for "not made yet".

    ``x is None`` / ``not x`` (negated=False) or ``x is not None`` / ``x`` (negated=True,
    the early-return form); ``and``/``or`` combinations contribute each side.
    """
    if isinstance(test, ast.BoolOp):
        return [name for value in test.values for name in _guarded_target(value, negated)]
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _guarded_target(test.operand, not negated)
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value is None
    ):
        wanted = ast.IsNot if negated else ast.Is
        if isinstance(test.ops[0], wanted):
            return [ast.unparse(test.left)]
        return []
    if negated and isinstance(test, ast.Name | ast.Attribute):
        return [ast.unparse(test)]
    return []


def _assigned(nodes: Iterable[ast.AST]) -> set[str]:
    found: set[str] = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Assign):
                targets = sub.targets
            elif isinstance(sub, ast.AnnAssign | ast.AugAssign):
                targets = [sub.target]
            else:
                continue
            for target in targets:
                for element in target.elts if isinstance(target, ast.Tuple) else [target]:
                    found.add(ast.unparse(element))
    return found


def once_only_calls(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[int]:
    """ids of the calls a function makes only while lazily creating something it keeps.

    ``if self._engine is None: self._engine = create_engine(...)`` runs its body once per
    process, not once per call; so does everything after an early
    ``if cache is not None: return cache`` when the function goes on to set ``cache``.
    """
    once: set[int] = set()
    kept = {  # names that outlive the call: module globals the function declares
        name
        for node in ast.walk(func)
        if isinstance(node, ast.Global | ast.Nonlocal)
        for name in node.names
    }

    def lasting(targets: list[str]) -> set[str]:
        """Only what outlives the call counts: ``self.x``, ``cls.x``, ``obj.x`` or a global;
        a local checked and set again (``user = cache.get(k)``) is a per-call cache miss."""
        return {t for t in targets if "." in t or t in kept}

    def visit(body: list[ast.stmt]) -> None:
        for position, statement in enumerate(body):
            if isinstance(statement, ast.If):
                checked = lasting(_guarded_target(statement.test, False))
                if checked and checked & _assigned(statement.body):
                    once.update(id(n) for s in statement.body for n in ast.walk(s))
                    continue
                early = lasting(_guarded_target(statement.test, True))
                returns = statement.body and isinstance(statement.body[-1], ast.Return)
                rest = body[position + 1 :]
                if early and returns and early & _assigned(rest):
                    once.update(id(n) for s in rest for n in ast.walk(s))
                    return
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(statement, field, None)
                if not isinstance(inner, list):
                    continue
                visit([s for s in inner if isinstance(s, ast.stmt)])
                for handler in inner:
                    if isinstance(handler, ast.ExceptHandler):
                        visit(handler.body)

    visit(func.body)
    return once
