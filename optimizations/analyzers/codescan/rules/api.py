"""FastAPI rules: ORM objects returned without a response model (FSA301), heavy work or the
request's session in BackgroundTasks (FSA302), settings rebuilt per request (FSA303),
module-level state changed per request (FSA305)."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence

from ..index import Func
from ..syntax import annotation_names, last_name, line_of, words
from . import Hit, check
from .aio import BLOCKING_NETWORK, BLOCKING_PROCESS
from .common import QUERY_METHODS, Scan

LEAKY_CONVERTERS = {"jsonable_encoder", "vars", "model_to_dict", "asdict"}
MUTATORS = words(
    "__setitem__ add append appendleft clear discard extend insert pop popitem "
    "popleft remove setdefault update"
)
MUTABLE_FACTORIES = {"dict", "list", "set", "defaultdict", "OrderedDict", "Counter", "deque"}


def _orm_value(
    scan: Scan, func: Func, expr: ast.AST, depth: int = 0, seen: set[str] | None = None
) -> bool:
    """Whether ``expr`` is an ORM object, rows of one, or a dict dumped from one."""
    seen = set() if seen is None else seen
    while isinstance(expr, ast.Await):
        expr = expr.value
    if isinstance(expr, ast.Attribute):
        return expr.attr in {"__dict__", "_mapping"}
    if isinstance(expr, ast.ListComp | ast.GeneratorExp):
        return _orm_value(scan, func, expr.elt, depth, seen)
    if isinstance(expr, ast.Dict):
        # `{**row_dict, "extra": 1}` leaks whatever row_dict holds
        return any(
            key is None and _orm_value(scan, func, value, depth, seen)
            for key, value in zip(expr.keys, expr.values, strict=True)
        )
    if isinstance(expr, ast.DictComp):
        # `{c.key: getattr(row, c.key) for c in row.__table__.columns}`: every column
        return any(
            isinstance(n, ast.Attribute) and n.attr in {"__table__", "__mapper__"}
            for generator in expr.generators
            for n in ast.walk(generator.iter)
        )
    if isinstance(expr, ast.Name):
        if expr.id in seen:
            return False
        seen.add(expr.id)
        return any(_orm_value(scan, func, v, depth, seen) for v in func.assigns.get(expr.id, []))
    if not isinstance(expr, ast.Call):
        return False
    name = last_name(expr)
    if name in LEAKY_CONVERTERS or name == "_asdict":
        return True
    if scan.index.model_at(func, expr.func):
        return True
    node: ast.AST = expr
    while isinstance(node, ast.Call | ast.Attribute):
        if isinstance(node, ast.Call):
            if scan.index.db_call(func, node, QUERY_METHODS):
                return True
            callee = scan.callee(func, node)
            if callee is not None and depth < 2:
                returns = callee.node.returns
                if any(scan.index.model_at(callee, n) for n in annotation_names(returns)):
                    return True
                return any(
                    isinstance(r, ast.Return)
                    and r.value is not None
                    and _orm_value(scan, callee, r.value, depth + 1)
                    for r in callee.nodes
                )
            node = node.func
        else:
            node = node.value
    if isinstance(node, ast.Name):  # reached through .func / .value: never ``expr``
        return _orm_value(scan, func, node, depth, seen)
    return False


@check("FSA301")
def no_response_model(scan: Scan) -> Iterator[Hit]:
    for route in scan.index.routes:
        func = route.func
        decorator = route.decorator
        if any(k.arg == "response_class" for k in decorator.keywords):
            continue
        declared = route.response_model if route.has_response_model else func.node.returns
        declared_is_none = isinstance(declared, ast.Constant) and declared.value is None
        if declared is not None and not declared_is_none:
            names = annotation_names(declared)
            tables = [last_name(n) for n in names if scan.index.model_at(func, n)]
            if tables:
                yield Hit(
                    "FSA301",
                    func.file,
                    decorator,
                    func,
                    detail=f"the response model is the table model {tables[0]} itself: every "
                    "column is sent",
                    evidence={"route": route.label},
                )
                continue
            if not ({last_name(n) for n in names} & {"dict", "Dict", "Any", "object"}):
                continue
        for node in func.nodes:
            if (
                isinstance(node, ast.Return)
                and node.value is not None
                and _orm_value(scan, func, node.value)
            ):
                yield Hit(
                    "FSA301",
                    func.file,
                    decorator,
                    func,
                    detail=f"{route.label} returns ORM data (line {node.lineno}) without a "
                    "response model",
                    evidence={"route": route.label, "return_line": node.lineno},
                )
                break


def _heavy(scan: Scan, func: Func) -> str | None:
    for current in scan.chain_functions(func, 2):
        for node in current.nodes:
            if isinstance(node, ast.Call):
                dotted = scan.index.resolve(current, node.func)
                if dotted in BLOCKING_PROCESS:
                    return f"`{dotted}()` in {current.qual}"
            if isinstance(node, ast.For | ast.AsyncFor | ast.While):
                for inner in ast.walk(node):
                    if not isinstance(inner, ast.Call):
                        continue
                    dotted = scan.index.resolve(current, inner.func)
                    if dotted in BLOCKING_NETWORK or scan.index.db_call(
                        current, inner, QUERY_METHODS
                    ):
                        return f"a loop of queries or network calls in {current.qual}"
    return None


@check("FSA302")
def background_task_misuse(scan: Scan) -> Iterator[Hit]:
    for func in scan.functions():
        for node in func.nodes:
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_task"
                and node.args
            ):
                continue
            params = {p.arg for p in func.params}
            sessions = [
                ast.unparse(arg)
                for arg in [*node.args[1:], *(k.value for k in node.keywords)]
                if isinstance(arg, ast.Name)
                and arg.id in params
                and (scan.index.kind_of(func, arg) or "").startswith("session")
            ]
            if sessions:
                yield Hit(
                    "FSA302",
                    func.file,
                    node,
                    func,
                    detail=f"the request's session `{sessions[0]}` is handed to a background "
                    "task: it is closed by the time the task runs",
                    severity="medium",
                )
                continue
            handed = [*node.args[1:], *(k.value for k in node.keywords)]
            payload = _request_payload(scan, func, handed)
            if payload:
                yield Hit(
                    "FSA302",
                    func.file,
                    node,
                    func,
                    detail=f"the request's payload {payload} is handed to a background task: "
                    "the whole body stays in this worker's memory until the task runs, and is "
                    "lost if the worker restarts",
                )
                continue
            task = scan.index._callee(func, node.args[0]) if node.args else None
            heavy = _heavy(scan, task) if task is not None else None
            if heavy:
                yield Hit(
                    "FSA302",
                    func.file,
                    node,
                    func,
                    detail=f"heavy work in a background task: {heavy}",
                )


COLLECTION_TYPES = {"list", "List", "Sequence", "Iterable", "set", "Set", "tuple", "Tuple"}
BODY_READERS = {"json", "body", "form", "stream"}


def _request_payload(scan: Scan, func: Func, args: Sequence[ast.AST]) -> str | None:
    """How an argument carries the request's body: a list body parameter, or what was read
    or built from it (`[item.dict() for item in items]`, `await request.json()`)."""
    if func.qual not in scan.index.route_of:
        return None
    lists = {
        p.arg: ast.unparse(p.annotation)
        for p in scan.index.request_params(func)
        if isinstance(p.annotation, ast.Subscript)
        and last_name(p.annotation.value) in COLLECTION_TYPES
    }

    def origin(expr: ast.AST, depth: int = 0, seen: set[str] | None = None) -> str | None:
        seen = set() if seen is None else seen
        for node in ast.walk(expr):
            if isinstance(node, ast.Name) and node.id in lists:
                return f"`{node.id}: {lists[node.id]}`"
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in BODY_READERS
                and last_name(node.func.value) in {"request", "req"}
            ):
                return f"`{ast.unparse(node)}`"
            if isinstance(node, ast.Name) and node.id not in seen and depth < 4:
                seen.add(node.id)
                for value in func.assigns.get(node.id, []):
                    found = origin(value, depth + 1, seen)
                    if found:
                        return found
        return None

    for arg in args:
        if isinstance(arg, ast.Name):
            found = origin(arg)
            if found:
                return f"`{arg.id}` (from {found})" if found.strip("`") != arg.id else found
    return None


@check("FSA303")
def settings_per_request(scan: Scan) -> Iterator[Hit]:
    index = scan.index
    settings = {q for q, info in index.classes.items() if info.is_settings}
    if not settings:
        return
    for qual, chain in index.reach.items():
        func = index.functions[qual]
        if func.is_cached() or qual in index.lifespans:
            continue
        for node in func.nodes:
            if isinstance(node, ast.Call):
                info = index.class_for(func.file.module, node.func)
                if info is not None and info.qual in settings:
                    yield Hit(
                        "FSA303",
                        func.file,
                        node,
                        func,
                        detail=f"`{info.name}()` is built on every request",
                        evidence={"request_path": chain},
                    )
    for source in index.files:
        for node in scan.index.file_nodes(source):
            if isinstance(node, ast.Call) and last_name(node) == "Depends" and node.args:
                info = index.class_for(source.module, node.args[0])
                if info is not None and info.qual in settings:
                    yield Hit(
                        "FSA303",
                        source,
                        node,
                        index.enclosing_function(source, node.lineno),
                        detail=f"`Depends({info.name})` builds the settings on every request",
                    )


def _module_mutables(scan: Scan) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for module, defs in scan.index.module_defs.items():
        for name, value in defs.items():
            if name.startswith("__"):
                continue
            if isinstance(value, ast.Dict | ast.List | ast.Set) or (
                isinstance(value, ast.Call) and last_name(value) in MUTABLE_FACTORIES
            ):
                found.setdefault(module, set()).add(name)
    return found


@check("FSA305")
def shared_state_per_request(scan: Scan) -> Iterator[Hit]:
    """Reported once per module variable, at its definition, with where requests change it."""
    index = scan.index
    mutables = _module_mutables(scan)
    sites: dict[tuple[str, str], list[str]] = {}
    for qual, chain in index.reach.items():
        func = index.functions[qual]
        module = func.file.module
        names = {name: (module, name) for name in mutables.get(module, set())}
        for alias, dotted in index.imports.get(module, {}).items():
            owner, _, name = dotted.rpartition(".")
            if name in mutables.get(owner, set()):
                names[alias] = (owner, name)
        if not names:
            continue
        declared_global = {
            n for node in func.nodes if isinstance(node, ast.Global) for n in node.names
        }
        local = {p.arg for p in func.params} | (set(func.assigns) - declared_global)
        locked = _under_lock(func)
        for node in func.nodes:
            target = _mutated_name(node, declared_global)
            if target is None or target not in names or target in local or id(node) in locked:
                continue
            if _memo_store(scan, func, node, target):
                continue
            where = f"{func.file.rel}:{line_of(node)} ({chain[0].split(' → ')[0]})"
            sites.setdefault(names[target], []).append(where)
    for (module, name), changed_at in sorted(sites.items()):
        source = index.by_module[module]
        yield Hit(
            "FSA305",
            source,
            index.module_defs[module][name],
            None,
            detail=f"module-level `{name}` is changed by requests at {', '.join(changed_at[:3])}: "
            "per process, lost on restart, raced by concurrent requests",
            evidence={"changed_at": changed_at},
        )


def _mutated_name(node: ast.AST, declared_global: set[str]) -> str | None:
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in MUTATORS
        and isinstance(node.func.value, ast.Name)
    ):
        return node.func.value.id
    if isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
        targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
        for target in targets:
            if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                return target.value.id
            if isinstance(target, ast.Name) and target.id in declared_global:
                return target.id
    return None


def _memo_store(scan: Scan, func: Func, node: ast.AST, name: str) -> bool:
    """``CACHE[key] = value`` in a function that first looks ``key`` up in ``CACHE``: a memo,
    written once per key. It grows per request only when the client chooses the key."""
    if not isinstance(node, ast.Assign) or len(node.targets) != 1:
        return False
    target = node.targets[0]
    if not (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)):
        return False
    key = ast.unparse(target.slice)
    looked_up = False
    for other in func.nodes:
        if (
            isinstance(other, ast.Call)
            and last_name(other) == "get"
            and isinstance(other.func, ast.Attribute)
            and isinstance(other.func.value, ast.Name)
            and other.func.value.id == name
            and other.args
            and ast.unparse(other.args[0]) == key
        ) or (
            isinstance(other, ast.Compare)
            and len(other.ops) == 1
            and isinstance(other.ops[0], ast.In | ast.NotIn)
            and isinstance(other.comparators[0], ast.Name)
            and other.comparators[0].id == name
            and ast.unparse(other.left) == key
        ):
            looked_up = True
            break
    return looked_up and "str" not in scan.taint.labels(target.slice)


def _under_lock(func: Func) -> set[int]:
    inside: set[int] = set()
    for node in func.nodes:
        if isinstance(node, ast.With | ast.AsyncWith) and any(
            "lock" in ast.unparse(item.context_expr).lower() for item in node.items
        ):
            inside.update(id(n) for n in ast.walk(node))
    return inside
