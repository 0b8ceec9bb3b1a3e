"""Security rules: CORS wildcard with credentials (FSA401), SQL built from strings (FSA402),
columns chosen by user input (FSA403), mass assignment (FSA404), credentials in code
(FSA405). FSA403 and FSA404 fire only on values the taint says came from the request."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from ..index import ClassInfo, Func
from ..project import SourceFile
from ..syntax import annotation_names, const_str, is_true, keyword, last_name, words
from ..taint import BODY, PRIVILEGED_FIELDS
from . import Hit, check
from .common import Scan

WILDCARD_REGEXES = {".*", ".+", "^.*$", "^.+$", "https?://.*", "https://.*", "http.*"}
SQL_WORDS = re.compile(
    r"\b(SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|WITH|WHERE|ORDER\s+BY|GROUP\s+BY|VALUES)\b",
    re.IGNORECASE,
)
DSN = re.compile(
    r"\b(?P<scheme>postgres(?:ql)?(?:\+\w+)?|mysql(?:\+\w+)?|mariadb(?:\+\w+)?|redis|rediss|"
    r"amqps?|mongodb(?:\+srv)?|mssql(?:\+\w+)?|oracle(?:\+\w+)?|cockroachdb(?:\+\w+)?)://"
    r"(?P<user>[^:/\s@]+):(?P<password>[^@\s/]+)@(?P<host>[^/\s:?]+)"
)
PLACEHOLDERS = words(
    "... change-me changeme example pass passwd password pwd secret user username xxx xxxx"
)
# Names of fields that are usually the server's to set, not the client's.
INTERNAL_WORDS = re.compile(
    r"cost|margin|internal|secret|hash|credit|balance|discount|role|admin|owner|tenant|"
    r"permission|verified|approved|quota"
)
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"}
COLUMN_SINKS = {"order_by", "group_by", "distinct", "with_only_columns", "add_columns"}
COLUMN_WRAPPERS = {"desc", "asc", "nulls_first", "nulls_last", "column", "literal_column"}


def _cors_calls(scan: Scan) -> Iterator[tuple[SourceFile, ast.Call]]:
    for source in scan.index.files:
        for node in scan.index.file_nodes(source):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            if last_name(node) in {"add_middleware", "Middleware"} and (
                last_name(node.args[0]) == "CORSMiddleware"
            ):
                yield source, node


def _module_value(scan: Scan, source: SourceFile, expr: ast.AST | None) -> ast.AST | None:
    if isinstance(expr, ast.Name):
        return scan.index.module_defs.get(source.module, {}).get(expr.id, expr)
    return expr


@check("FSA401")
def cors_wildcard_credentials(scan: Scan) -> Iterator[Hit]:
    for source, call in _cors_calls(scan):
        origins = _module_value(scan, source, keyword(call, "allow_origins") or ast.List([]))
        wildcard = const_str(origins) == "*" or (
            isinstance(origins, ast.List | ast.Tuple | ast.Set)
            and any(const_str(e) == "*" for e in origins.elts)
        )
        regex = const_str(_module_value(scan, source, keyword(call, "allow_origin_regex")))
        wildcard |= regex in WILDCARD_REGEXES
        credentials = _module_value(scan, source, keyword(call, "allow_credentials"))
        if wildcard and is_true(credentials):
            yield Hit(
                "FSA401",
                source,
                call,
                scan.index.enclosing_function(source, call.lineno),
                detail="any origin, with credentials: Starlette mirrors the caller's Origin",
            )


def _constant(func: Func, expr: ast.AST, depth: int = 0) -> bool:
    """Whether ``expr`` can only hold the program's own constants."""
    if isinstance(expr, ast.Constant):
        return True
    if isinstance(expr, ast.Name):
        if expr.id.isupper():
            return True
        values = func.assigns.get(expr.id)
        if values and depth < 6:
            return all(_constant(func, v, depth + 1) for v in values)
        loop_iters = [
            n.iter
            for n in func.nodes
            if isinstance(n, ast.For | ast.comprehension)
            and isinstance(n.target, ast.Name)
            and n.target.id == expr.id
        ]
        return bool(loop_iters) and all(_constant(func, i, depth + 1) for i in loop_iters)
    if isinstance(expr, ast.Attribute):
        return (
            expr.attr.isupper()
            or expr.attr in {"__tablename__", "name", "key"}
            or (isinstance(expr.value, ast.Name) and expr.value.id.isupper())
        )
    if isinstance(expr, ast.Tuple | ast.List | ast.Set):
        return all(_constant(func, e, depth) for e in expr.elts)
    if isinstance(expr, ast.JoinedStr):
        return all(_constant(func, v, depth) for v in expr.values)
    if isinstance(expr, ast.FormattedValue):
        return _constant(func, expr.value, depth)
    if isinstance(expr, ast.BinOp):
        return _constant(func, expr.left, depth) and _constant(func, expr.right, depth)
    if isinstance(expr, ast.Call) and last_name(expr) == "join":
        return all(_constant(func, a, depth) for a in expr.args)
    if isinstance(expr, ast.Subscript) and depth < 6:
        # CONFIGS[key]["table"]: whatever the key, the value is one of ours
        return _constant(func, expr.value, depth + 1)
    if (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr == "get"
        and depth < 6
    ):
        default = expr.args[1] if len(expr.args) > 1 else None
        return _constant(func, expr.func.value, depth + 1) and (
            default is None or _constant(func, default, depth + 1)
        )
    return False


def _built_parts(expr: ast.AST) -> tuple[str, list[ast.expr]] | None:
    """(literal text, interpolated expressions) when ``expr`` builds a string, else None."""
    if isinstance(expr, ast.JoinedStr):
        values = [v.value for v in expr.values if isinstance(v, ast.FormattedValue)]
        text = "".join(str(v.value) for v in expr.values if isinstance(v, ast.Constant))
        return (text, values) if values else None
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add | ast.Mod):
        literal = [n.value for n in ast.walk(expr) if isinstance(n, ast.Constant)]
        text = "".join(v for v in literal if isinstance(v, str))
        if not text:
            return None
        parts = []
        for side in (expr.left, expr.right):
            inner = _built_parts(side)
            if inner is not None:
                parts += inner[1]
            elif not isinstance(side, ast.Constant):
                parts.append(side)
        return (text, parts) if parts else None
    if (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr == "format"
        and isinstance(expr.func.value, ast.Constant)
        and isinstance(expr.func.value.value, str)
    ):
        parts = [*expr.args, *(k.value for k in expr.keywords)]
        return (expr.func.value.value, parts) if parts else None
    return None


def _sql_argument(scan: Scan, func: Func, call: ast.Call) -> tuple[ast.AST, bool] | None:
    """(the SQL argument, whether it is certainly SQL) of a call that runs or wraps SQL."""
    name = last_name(call)
    if not call.args:
        return None
    dotted = scan.index.resolve(func, call.func)
    if dotted.rsplit(".", 1)[-1] == "text" or name == "text":
        # only SQLAlchemy's (or SQLModel's) text(), under any alias: an HTML builder's
        # text() is not SQL
        if dotted.split(".")[0] in {"sqlalchemy", "sqlmodel"}:
            return call.args[0], True
        return None
    if name == "exec_driver_sql":
        return call.args[0], True
    if isinstance(call.func, ast.Attribute) and name in {
        "execute",
        "executemany",
        "fetch",
        "fetchrow",
        "fetchval",
        "exec",
    }:
        receiver = ast.unparse(call.func.value).lower()
        if scan.index.db_call(func, call, {name}) or "cursor" in receiver or receiver == "cur":
            return call.args[0], False
    return None


@check("FSA402")
def sql_from_strings(scan: Scan) -> Iterator[Hit]:
    for func in scan.functions():
        for node in func.nodes:
            if not isinstance(node, ast.Call):
                continue
            found = _sql_argument(scan, func, node)
            if found is None:
                continue
            arg, certain = found
            candidates = [arg]
            if isinstance(arg, ast.Name):
                candidates = func.assigns.get(arg.id, []) or [arg]
            severity, reason = None, ""
            for candidate in candidates:
                built = _built_parts(candidate)
                if built is None:
                    if "str" in scan.taint.labels(candidate) and certain:
                        severity, reason = "critical", "the whole statement comes from the request"
                    continue
                text, parts = built
                if not certain and not SQL_WORDS.search(text):
                    continue
                tainted = [p for p in parts if "str" in scan.taint.labels(p)]
                if tainted:
                    severity = "critical"
                    reason = f"`{ast.unparse(tainted[0])[:40]}` comes from the request"
                    break
                dynamic = [p for p in parts if not _constant(func, p)]
                if dynamic and severity is None:
                    severity = "medium"
                    reason = f"`{ast.unparse(dynamic[0])[:40]}` is interpolated into the SQL"
            if severity is None:
                continue
            yield Hit(
                "FSA402",
                func.file,
                node,
                func,
                detail=reason,
                severity=severity,
                evidence={"request_path": scan.taint.chain(arg)} if severity == "critical" else {},
            )


@check("FSA403")
def column_from_input(scan: Scan) -> Iterator[Hit]:
    taint = scan.taint
    for func in scan.functions():
        in_query: set[int] = set()
        for node in func.nodes:
            if isinstance(node, ast.Call) and last_name(node) in COLUMN_SINKS | {
                "where",
                "filter",
                "select",
            }:
                in_query.update(id(n) for arg in node.args for n in ast.walk(arg))
        for node in func.nodes:
            key = None
            if isinstance(node, ast.Call) and last_name(node) == "getattr" and len(node.args) >= 2:
                target = node.args[0]
                is_model = bool(scan.index.models_named(last_name(target)))
                if is_model or id(node) in in_query:
                    key = node.args[1]
            elif isinstance(node, ast.Call) and last_name(node) in COLUMN_SINKS:
                for arg in node.args:
                    if isinstance(arg, ast.Call) and last_name(arg) in COLUMN_WRAPPERS:
                        arg = arg.args[0] if arg.args else arg
                    if not isinstance(arg, ast.Call) and "str" in taint.labels(arg):
                        key = arg
                        break
            elif isinstance(node, ast.Call) and last_name(node) in {"column", "literal_column"}:
                key = node.args[0] if node.args else None
            elif isinstance(node, ast.Subscript) and last_name(node.value) in {"c", "columns"}:
                key = node.slice
            if key is not None and "str" in taint.labels(key):
                yield Hit(
                    "FSA403",
                    func.file,
                    node,
                    func,
                    detail=f"`{ast.unparse(key)[:40]}` from the request chooses the column",
                    evidence={"request_path": taint.chain(key)},
                )


def _schema_of(scan: Scan, func: Func, name: str, depth: int = 0) -> ClassInfo | None:
    """The Pydantic schema a local name holds: a body parameter, or an item of one's list."""
    for param in func.params:
        if param.arg == name:
            for node in annotation_names(param.annotation):
                info = scan.index.class_for(func.file.module, node)
                if info is not None and info.is_schema:
                    return info
    if depth > 2:
        return None
    for node in func.nodes:
        if (
            isinstance(node, ast.For)
            and isinstance(node.target, ast.Name)
            and node.target.id == name
            and isinstance(node.iter, ast.Attribute)
            and isinstance(node.iter.value, ast.Name)
        ):
            outer = _schema_of(scan, func, node.iter.value.id, depth + 1)
            if outer is None:
                continue
            annotation = outer.fields.get(node.iter.attr)
            for inner in annotation_names(annotation):
                info = scan.index.class_for(outer.file.module, inner)
                if info is not None and info.is_schema:
                    return info
    return None


def _output_fields(scan: Scan) -> set[str]:
    """Fields of every schema a route answers with (nested ones included)."""
    if scan._output_fields is not None:
        return scan._output_fields
    found: set[str] = set()
    pending: list[tuple[str, ast.AST]] = []
    for route in scan.index.routes:
        declared = route.response_model or route.func.node.returns
        pending += [(route.func.file.module, n) for n in annotation_names(declared)]
    seen: set[str] = set()
    while pending:
        module, node = pending.pop()
        info = scan.index.class_for(module, node)
        if info is None or not info.is_schema or info.qual in seen:
            continue
        seen.add(info.qual)
        found |= set(info.fields)
        pending += [
            (info.file.module, n) for a in info.fields.values() for n in annotation_names(a)
        ]
    scan._output_fields = found
    return found


def _writable_internal(scan: Scan, schema: ClassInfo, model_name: str) -> list[str]:
    """Fields of an input schema a client should not set: privileged names, or columns of
    the model that no response ever shows (internal fields such as a cost price)."""
    fields = set(schema.fields)
    risky = fields & PRIVILEGED_FIELDS
    shown = _output_fields(scan)
    for model in scan.index.models_named(model_name):
        if shown:
            risky |= {
                f
                for f in fields
                if f in model.columns and f not in shown and INTERNAL_WORDS.search(f)
            }
    return sorted(risky)


ADMIN_GATE = re.compile(r"admin|superuser|staff", re.IGNORECASE)


def _admin_only(scan: Scan, chain: list[str]) -> bool:
    """The route of ``chain`` depends on an administrator check (``Depends(get_current_
    super_admin)``): privileged fields are the point of such an endpoint, not a leak."""
    if not chain or " → " not in chain[0]:
        return False
    route = scan.index.functions.get(chain[0].split(" → ", 1)[1])
    if route is None:
        return False
    return any(
        isinstance(node, ast.Call)
        and last_name(node) in {"Depends", "Security"}
        and node.args
        and ADMIN_GATE.search(ast.unparse(node.args[0]))
        for node in ast.walk(route.node.args)
    )


@check("FSA404")
def mass_assignment(scan: Scan) -> Iterator[Hit]:
    taint = scan.taint
    for func in scan.functions():
        for node in func.nodes:
            source = None
            if isinstance(node, ast.Call) and scan.index.models_named(last_name(node)):
                for item in node.keywords:
                    dumped = item.value
                    if not (
                        item.arg is None
                        and isinstance(dumped, ast.Call)
                        and last_name(dumped) in {"model_dump", "dict"}
                        and isinstance(dumped.func, ast.Attribute)
                        and isinstance(dumped.func.value, ast.Name)
                        and BODY in taint.labels(dumped.func.value)
                    ):  # a schema the client filled in, not one the server built
                        continue
                    schema = _schema_of(scan, func, dumped.func.value.id)
                    risky = _writable_internal(scan, schema, last_name(node)) if schema else []
                    if schema and risky and not _admin_only(scan, taint.chain(dumped)):
                        yield Hit(
                            "FSA404",
                            func.file,
                            node,
                            func,
                            detail=f"`{schema.name}` lets the client set {', '.join(risky)}, "
                            "and every field is copied into the model",
                            evidence={"fields": risky, "request_path": taint.chain(dumped)},
                        )
            if isinstance(node, ast.Call):
                name = last_name(node)
                is_model = bool(scan.index.models_named(name))
                if is_model or name == "values":
                    for item in node.keywords:
                        if item.arg is None and "anykey" in taint.labels(item.value):
                            source = item.value
                    if name == "values" and node.args and "anykey" in taint.labels(node.args[0]):
                        source = node.args[0]
                elif name == "setattr" and len(node.args) == 3:
                    if "anykey" in taint.labels(node.args[1]):
                        source = node.args[1]
                elif name == "update" and isinstance(node.func, ast.Attribute):
                    owner = node.func.value
                    dumps_object = (
                        isinstance(owner, ast.Attribute) and owner.attr == "__dict__"
                    ) or (isinstance(owner, ast.Call) and last_name(owner) == "vars")
                    if dumps_object and node.args and "anykey" in taint.labels(node.args[0]):
                        source = node.args[0]
            if source is not None and not _admin_only(scan, taint.chain(source)):
                yield Hit(
                    "FSA404",
                    func.file,
                    node,
                    func,
                    detail=f"every key of `{ast.unparse(source)[:40]}` (client-chosen) is "
                    "written to the model",
                    evidence={"request_path": taint.chain(source)},
                )


@check("FSA405")
def credentials_in_code(scan: Scan) -> Iterator[Hit]:
    for source in scan.index.files:
        docstrings = _docstring_ids(scan.index.file_nodes(source))
        for node in scan.index.file_nodes(source):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if id(node) in docstrings or "://" not in node.value:
                continue
            for match in DSN.finditer(node.value):
                password = match.group("password")
                if password.lower() in PLACEHOLDERS or re.search(r"[{}$<>*%]", password):
                    continue
                if match.group("host").lower() in LOOPBACK_HOSTS:
                    continue  # a developer's local default reaches no shared system

                yield Hit(
                    "FSA405",
                    source,
                    node,
                    scan.index.enclosing_function(source, node.lineno),
                    detail=f"a {match.group('scheme')} URL with its password "
                    f"({match.group('user')}:{'*' * 6}@{match.group('host')})",
                    evidence={"host": match.group("host")},
                )
                break


def _docstring_ids(nodes: list[ast.AST]) -> set[int]:
    found = set()
    for node in nodes:
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found
