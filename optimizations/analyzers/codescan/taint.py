"""Taint: which values in a request's code path came from the request.

Sources are the parameters FastAPI fills from the request (path, query,
header, cookie, body) of routes and dependencies, and ``request.query_params``
/ ``headers`` / ``json()`` on a ``Request``. Labels say what a value can be:

- ``req``: anything derived from the request (an int page number too);
- ``str``: a free string an attacker chooses (not an int, a UUID, an Enum, a
  ``Literal`` or a pattern-checked string);
- ``anykey``: a mapping whose keys the client chooses (a raw dict body,
  ``request.json()``, a schema with ``extra="allow"`` or with privileged fields).

Taint follows assignments, f-strings, concatenation and method calls inside a
function, and into the project's functions through their parameters (route →
service → repository). It stops at allow-list lookups (``ALLOWED[key]``,
``MAPPING.get(key)``), at ``int()``/``UUID()`` conversions, inside ``if key in
ALLOWED:`` and after ``if key not in ALLOWED: raise``, and the same way at
validation: a regular-expression match (``if not re.fullmatch(P, key): raise``), a
validator (``if is_valid_x(key):``, ``validate_field(key)`` that raises), or a
conversion to an Enum (``SortField(key)``). The keys of a dict literal with constant
keys are ours even when its values come from the request (``{"org_id": org_id}``).
Calls into the project's own functions return untainted values: precision over recall.
"""

from __future__ import annotations

import ast
import re
from typing import TypedDict

from .index import Func, Index
from .syntax import annotation_names, last_name, param_defaults, words

SAFE_TYPES = words(
    "Decimal Literal NonNegativeFloat NonNegativeInt PositiveFloat PositiveInt "
    "StrictBool StrictInt UUID UUID4 bool condecimal confloat conint date datetime "
    "float int time timedelta"
)
CONVERTERS = {
    "int",
    "float",
    "bool",
    "len",
    "abs",
    "round",
    "UUID",
    "Decimal",
    "hash",
    "isinstance",
}
REQUEST_ATTRS = {"query_params", "path_params", "headers", "cookies", "url", "json", "form", "body"}
PRIVILEGED_FIELDS = words(
    "account_id admin balance created_by credits hashed_password is_active is_admin "
    "is_staff is_superuser is_verified owner_id password_hash permissions role roles "
    "scopes tenant_id user_id"
)
REQUEST = "request"  # the label of a Request object itself; never propagated
BODY = "body"  # a schema object the client filled in (not one the server built)
CONST_KEYS = "constkeys"  # a dict literal whose keys are constants: its keys are not tainted
# what a validated value keeps: it still came from the request, but is no free string;
# a Request object passed to a validator (`check_rate(request)`) stays a Request
VALIDATED = frozenset({"req", REQUEST})
VALIDATOR = re.compile(
    r"^_*(is_|has_)?(valid|validate|verify|check|ensure|assert|allowed|is_allowed|safe|sanitize)",
    re.IGNORECASE,
)
REGEX_CHECKS = {"match", "fullmatch", "search"}
MAX_CONTEXTS = 4
MAX_DEPTH = 6


class ArgLabels(TypedDict):
    """The labels of a call's arguments, as a callee's parameters receive them."""

    positional: list[set[str]]
    keywords: dict[str, set[str]]  # "**" for what ``**kwargs`` spreads


class Taint:
    """Labels of every expression a request can influence, and the route path to it."""

    def __init__(self, index: Index):
        self.index = index
        self.labels_of: dict[int, set[str]] = {}
        self.chain_of: dict[int, list[str]] = {}
        self.privileged: dict[int, list[str]] = {}  # node → privileged fields it may carry
        self._contexts: dict[str, set[frozenset[tuple[str, frozenset[str]]]]] = {}
        self._enums = {
            info.name
            for info in index.classes.values()
            if any(b.rsplit(".", 1)[-1] in {"Enum", "StrEnum", "IntEnum"} for b in info.bases)
        }
        entries = [(r.func, [f"{r.label} → {r.func.qual}"]) for r in index.routes]
        entries += [
            (index.functions[q], [f"dependency {q}"])
            for q in sorted(index.dependencies)
            if q in index.functions
        ]
        for func, chain in entries:
            env = self._sources(func)
            if env:
                self._analyze(func, env, chain, 0)

    def labels(self, node: ast.AST | None) -> set[str]:
        return self.labels_of.get(id(node), set()) if node is not None else set()

    def chain(self, node: ast.AST) -> list[str]:
        return self.chain_of.get(id(node), [])

    # --- sources ----------------------------------------------------------------------------

    def _sources(self, func: Func) -> dict[str, set[str]]:
        env: dict[str, set[str]] = {}
        defaults = param_defaults(func.node)
        for param in func.params:
            names = {last_name(n) for n in annotation_names(param.annotation)}
            if names & {"Request", "HTTPConnection", "WebSocket"}:
                env[param.arg] = {REQUEST}
        for param in self.index.request_params(func):
            env[param.arg] = self._param_labels(func, param, defaults.get(param.arg))
        return {k: v for k, v in env.items() if v}

    def _param_labels(self, func: Func, param: ast.arg, default: ast.AST | None) -> set[str]:
        annotation = param.annotation
        markers = [default] if isinstance(default, ast.Call) else []
        if isinstance(annotation, ast.Subscript) and last_name(annotation.value) == "Annotated":
            inner = annotation.slice
            if isinstance(inner, ast.Tuple):
                markers += [m for m in inner.elts[1:] if isinstance(m, ast.Call)]
        for marker in markers:
            if any(k.arg in {"pattern", "regex"} for k in marker.keywords):
                return {"req"}
        type_nodes = annotation_names(annotation)
        names = {last_name(n) for n in type_nodes}
        if isinstance(annotation, ast.Subscript) and last_name(annotation.value) == "Literal":
            return {"req"}
        if names and all(n in SAFE_TYPES or n in self._enums or n == "None" for n in names):
            return {"req"}
        labels = {"req", "str"}
        for node in type_nodes:
            info = self.index.class_for(func.file.module, node)
            if info is not None and info.is_schema:
                labels.add(BODY)
                privileged = sorted(set(info.fields) & PRIVILEGED_FIELDS)
                if info.extra_allowed or privileged:
                    labels.add("anykey")
                return labels
        untyped = not names or names & {"dict", "Dict", "Any", "Mapping", "JSON", "Json"}
        if untyped and (names or any(last_name(m) == "Body" for m in markers)):
            labels.add("anykey")
        return labels

    # --- propagation ------------------------------------------------------------------------

    def _analyze(self, func: Func, env: dict[str, set[str]], chain: list[str], depth: int) -> None:
        key = frozenset((name, frozenset(labels)) for name, labels in env.items())
        seen = self._contexts.setdefault(func.qual, set())
        if key in seen or len(seen) >= MAX_CONTEXTS or depth > MAX_DEPTH:
            return
        seen.add(key)
        walker = _Walker(self, func, chain, depth)
        walker.block(func.node.body, dict(env))

    def record(self, node: ast.AST, labels: set[str], chain: list[str]) -> None:
        labels = labels - {REQUEST}
        if labels:
            known = self.labels_of.setdefault(id(node), set())
            if not labels <= known:  # the path that brought a new kind of value shows it
                self.chain_of[id(node)] = chain
            known.update(labels)

    def enter(
        self,
        caller: Func,
        call: ast.Call,
        callee: Func,
        arg_labels: ArgLabels,
        chain: list[str],
        depth: int,
    ) -> None:
        params = [p.arg for p in callee.params]
        if callee.cls is not None and params and params[0] in {"self", "cls"}:
            params = params[1:]
        env: dict[str, set[str]] = {}
        for position, labels in enumerate(arg_labels["positional"]):
            if position < len(params) and labels:
                env[params[position]] = labels
        for name, labels in arg_labels["keywords"].items():
            if name in params and labels:
                env[name] = labels
        if env:
            self._analyze(callee, env, [*chain, callee.qual], depth + 1)


def _terminates(body: list[ast.stmt]) -> bool:
    return bool(body) and isinstance(body[-1], ast.Raise | ast.Return | ast.Continue | ast.Break)


def _membership_guard(test: ast.AST) -> tuple[str, bool] | None:
    """``name in X`` → (name, True); ``name not in X`` → (name, False)."""
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.left, ast.Name)
        and isinstance(test.ops[0], ast.In | ast.NotIn)
    ):
        return test.left.id, isinstance(test.ops[0], ast.In)
    return None


def _validation_guard(test: ast.AST) -> tuple[str, bool] | None:
    """A test that validates a name: (name, True when the test passing means valid).

    ``key in ALLOWED``, ``re.fullmatch(P, key)`` / ``PATTERN.match(key)``, ``is_valid(key)``;
    ``not`` flips it.
    """
    positive = True
    while isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        positive, test = not positive, test.operand
    guard = _membership_guard(test)
    if guard is not None:
        return guard[0], guard[1] == positive
    if not isinstance(test, ast.Call):
        return None
    name, args = last_name(test), test.args
    checked = None
    if name in REGEX_CHECKS and isinstance(test.func, ast.Attribute):
        # re.match(PATTERN, key) or PATTERN.match(key)
        if last_name(test.func.value) == "re" and len(args) >= 2:
            checked = args[1]
        elif len(args) == 1:
            checked = args[0]
    elif VALIDATOR.match(name) and args:
        checked = args[0]
    if isinstance(checked, ast.Name):
        return checked.id, positive
    return None


def _validator_statement(stmt: ast.stmt) -> str | None:
    """``validate_field(key, ...)`` as a statement: a validator that raises when invalid."""
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Await | ast.Call):
        call = stmt.value.value if isinstance(stmt.value, ast.Await) else stmt.value
        if (
            isinstance(call, ast.Call)
            and call.args
            and isinstance(call.args[0], ast.Name)
            and re.match(r"^_*(validate|verify|check|ensure|assert)", last_name(call), re.I)
        ):
            return call.args[0].id
    return None


class _Walker:
    """Walks one function body in order with an environment of labelled names."""

    def __init__(self, taint: Taint, func: Func, chain: list[str], depth: int):
        self.taint, self.func, self.chain, self.depth = taint, func, chain, depth
        self.index = taint.index
        self.callees = {id(call): callee for call, callee in func.calls}
        self.constants = self._constant_mappings()

    def _constant_mappings(self) -> set[str]:
        names: set[str] = set()
        for name, value in self.index.module_defs.get(self.func.file.module, {}).items():
            if isinstance(value, ast.Dict | ast.Set | ast.List | ast.Tuple) or (
                isinstance(value, ast.Call) and last_name(value) in {"frozenset", "set", "dict"}
            ):
                names.add(name)
        for name, values in self.func.assigns.items():
            if values and all(isinstance(v, ast.Dict | ast.Set) for v in values):
                names.add(name)
        return names

    def block(self, body: list[ast.stmt], env: dict[str, set[str]]) -> dict[str, set[str]]:
        for stmt in body:
            env = self.stmt(stmt, env)
        return env

    def stmt(self, stmt: ast.stmt, env: dict[str, set[str]]) -> dict[str, set[str]]:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return env
        if isinstance(stmt, ast.Assign):
            labels = self.expr(stmt.value, env)
            for target in stmt.targets:
                self.assign(target, labels, env)
        elif isinstance(stmt, ast.AnnAssign):
            labels = self.expr(stmt.value, env) if stmt.value is not None else set()
            self.assign(stmt.target, labels, env)
        elif isinstance(stmt, ast.AugAssign):
            labels = self.expr(stmt.value, env)
            if isinstance(stmt.target, ast.Name):
                env[stmt.target.id] = env.get(stmt.target.id, set()) | labels
        elif isinstance(stmt, ast.For | ast.AsyncFor):
            labels = self.expr(stmt.iter, env)
            self.assign_items(stmt.iter, stmt.target, labels, env)
            env = self._merge(env, self.block(stmt.body, dict(env)))
            env = self.block(stmt.orelse, env)
        elif isinstance(stmt, ast.While):
            self.expr(stmt.test, env)
            env = self._merge(env, self.block(stmt.body, dict(env)))
            env = self.block(stmt.orelse, env)
        elif isinstance(stmt, ast.If):
            self.expr(stmt.test, env)
            guard = _validation_guard(stmt.test)
            body_env, else_env = dict(env), dict(env)
            if guard and guard[1]:
                body_env[guard[0]] = body_env.get(guard[0], set()) & VALIDATED
            elif guard:
                else_env[guard[0]] = else_env.get(guard[0], set()) & VALIDATED
            after_body = self.block(stmt.body, body_env)
            after_else = self.block(stmt.orelse, else_env)
            if guard and not guard[1] and _terminates(stmt.body):
                return after_else
            if _terminates(stmt.body):
                return after_else
            if stmt.orelse and _terminates(stmt.orelse):
                return after_body
            env = self._merge(after_body, after_else)
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            for item in stmt.items:
                labels = self.expr(item.context_expr, env)
                if item.optional_vars is not None:
                    self.assign(item.optional_vars, labels, env)
            env = self.block(stmt.body, env)
        elif isinstance(stmt, ast.Try | ast.TryStar):
            env = self.block(stmt.body, env)
            for handler in stmt.handlers:
                env = self._merge(env, self.block(handler.body, dict(env)))
            env = self.block(stmt.orelse, env)
            env = self.block(stmt.finalbody, env)
        elif isinstance(stmt, ast.Assert):
            self.expr(stmt.test, env)
            guard = _validation_guard(stmt.test)
            if guard and guard[1]:
                env[guard[0]] = env.get(guard[0], set()) & VALIDATED
        elif isinstance(stmt, ast.Match):
            self.expr(stmt.subject, env)
            merged = env
            for case in stmt.cases:
                merged = self._merge(merged, self.block(case.body, dict(env)))
            env = merged
        else:
            for child in ast.iter_child_nodes(stmt):
                if isinstance(child, ast.expr):
                    self.expr(child, env)
            validated = _validator_statement(stmt)
            if validated is not None and validated in env:
                env[validated] = env[validated] & VALIDATED
        return env

    def assign_items(
        self, iterated: ast.expr, target: ast.expr, labels: set[str], env: dict[str, set[str]]
    ) -> None:
        """``for key, value in mapping.items()``: keys of a constant-keyed dict are ours."""
        if (
            CONST_KEYS in labels
            and isinstance(iterated, ast.Call)
            and last_name(iterated) == "items"
            and isinstance(target, ast.Tuple)
            and len(target.elts) == 2
        ):
            self.assign(target.elts[0], set(), env)
            self.assign(target.elts[1], labels - {CONST_KEYS}, env)
            return
        if (
            CONST_KEYS in labels
            and isinstance(iterated, ast.Name | ast.Call)
            and (isinstance(iterated, ast.Name) or last_name(iterated) == "keys")
        ):
            self.assign(target, set(), env)
            return
        self.assign(target, labels - {CONST_KEYS}, env)

    @staticmethod
    def _merge(first: dict[str, set[str]], second: dict[str, set[str]]) -> dict[str, set[str]]:
        merged = dict(first)
        for name, labels in second.items():
            merged[name] = merged.get(name, set()) | labels
        return merged

    def assign(self, target: ast.AST, labels: set[str], env: dict[str, set[str]]) -> None:
        if isinstance(target, ast.Name):
            env[target.id] = set(labels)
        elif isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self.assign(element, labels, env)
        elif isinstance(target, ast.Starred):
            self.assign(target.value, labels, env)
        else:
            self.expr(target, env)

    def expr(self, node: ast.AST | None, env: dict[str, set[str]]) -> set[str]:
        if node is None:
            return set()
        labels = self._expr(node, env)
        self.taint.record(node, labels, self.chain)
        return labels

    def _expr(self, node: ast.AST, env: dict[str, set[str]]) -> set[str]:
        if isinstance(node, ast.Name):
            return set(env.get(node.id, set()))
        if isinstance(node, ast.Constant):
            return set()
        if isinstance(node, ast.Attribute):
            base = self.expr(node.value, env)
            if REQUEST in base:
                return {"req", "str", "anykey"} if node.attr in REQUEST_ATTRS else set()
            if node.attr == "__dict__":
                return base - {CONST_KEYS}
            # `payload.items`: a part of what the client filled in is still the client's
            return base - {REQUEST, "anykey", CONST_KEYS}
        if isinstance(node, ast.Subscript):
            base = self.expr(node.value, env)
            self.expr(node.slice, env)
            if isinstance(node.value, ast.Name) and node.value.id in self.constants:
                return set()  # an allow-list lookup chooses among our own values
            return base - {REQUEST, "anykey", CONST_KEYS, BODY}
        if isinstance(node, ast.Call):
            return self._call(node, env)
        if isinstance(node, ast.Lambda):
            return set()
        if isinstance(node, ast.Compare):
            for child in [node.left, *node.comparators]:
                self.expr(child, env)
            return set()
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            inner = dict(env)
            for generator in node.generators:
                labels = self.expr(generator.iter, inner)
                self.assign_items(generator.iter, generator.target, labels, inner)
                for condition in generator.ifs:
                    self.expr(condition, inner)
            if isinstance(node, ast.DictComp):
                return self.expr(node.key, inner) | self.expr(node.value, inner)
            return self.expr(node.elt, inner)
        if (
            isinstance(node, ast.Dict)
            and node.keys
            and all(isinstance(key, ast.Constant) for key in node.keys)
        ):
            labels = set()
            for value in node.values:
                labels |= self.expr(value, env)
            return labels | {CONST_KEYS} if labels else labels
        if isinstance(node, ast.NamedExpr):
            labels = self.expr(node.value, env)
            env[node.target.id] = labels
            return labels
        labels = set()
        for part in ast.iter_child_nodes(node):
            if isinstance(part, ast.expr):
                labels |= self.expr(part, env)
            elif isinstance(part, ast.keyword | ast.comprehension):
                for sub in ast.iter_child_nodes(part):
                    if isinstance(sub, ast.expr):
                        labels |= self.expr(sub, env)
        return labels - {REQUEST, CONST_KEYS, BODY}

    def _call(self, node: ast.Call, env: dict[str, set[str]]) -> set[str]:
        receiver: set[str] = set()
        if isinstance(node.func, ast.Attribute):
            receiver = self.expr(node.func.value, env)
            if REQUEST in receiver:
                return {"req", "str", "anykey"} if node.func.attr in REQUEST_ATTRS else set()
        else:
            self.expr(node.func, env)
        positional = [self.expr(arg, env) for arg in node.args]
        keywords = {k.arg: self.expr(k.value, env) for k in node.keywords if k.arg}
        for spread in node.keywords:
            if spread.arg is None:
                keywords.setdefault("**", set()).update(self.expr(spread.value, env))
        name = last_name(node)
        callee = self.callees.get(id(node))
        if callee is not None:
            if any(positional) or any(keywords.values()):
                self.taint.enter(
                    self.func,
                    node,
                    callee,
                    {"positional": positional, "keywords": keywords},
                    self.chain,
                    self.depth,
                )
            return set()
        if name in CONVERTERS or name in self.taint._enums:
            return {"req"} if any(positional) else set()
        if name == "getattr":
            return set()
        if (
            name == "get"
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in self.constants
        ):
            return set()
        labels = set(receiver)
        if isinstance(node.func, ast.Attribute) and node.func.attr in {
            "dict",
            "model_dump",
            "items",
            "keys",
            "copy",
        }:
            return labels
        for item in [*positional, *keywords.values()]:
            labels |= item
        labels -= {CONST_KEYS, BODY}
        return labels - {REQUEST, "anykey"} if name not in {"dict", "loads"} else labels
