"""Rules for the patterns of the organisation's own optimisation guide (the seed document).

Its samples show SQLAlchemy 1.x habits in 2.x code and server settings that do
not do what their comments say: the reserved Declarative attribute ``metadata``
(FSA110), ``dict(row)`` on SQLAlchemy 2 rows (FSA111), ``async with
session.stream(...)`` on an AsyncSession (FSA112), ``JSON`` columns where
PostgreSQL's ``JSONB`` serves (FSA113), ``echo_pool=True`` hard-coded (FSA207),
the server without uvloop/httptools (FSA306), and a whole export built in
memory and serialized in one response (FSA307). The catalog entries are in
``rules/__init__.py`` beside the others.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from ..index import Func
from ..kinds import ENGINE_FACTORIES
from ..project import SourceFile, pinned_major
from ..syntax import annotation_names, const_str, is_true, keyword, last_name
from . import Hit, check
from .common import Scan

COLUMN_FACTORIES = {"Column", "mapped_column", "relationship", "column_property", "Field"}
# Receivers whose `.stream()` really is an async context manager (AsyncConnection).
CONNECTION_NAME = re.compile(r"^(conn|connection|aconn|async_conn)$|_(conn|connection)$")
STREAM_METHODS = {"stream", "stream_scalars"}
POSTGRES_DRIVERS = {"asyncpg", "psycopg", "psycopg2", "psycopg2-binary", "psycopg-binary", "pg8000"}
OTHER_DRIVERS = {
    "aiosqlite",
    "pysqlite3",
    "pymysql",
    "aiomysql",
    "asyncmy",
    "mysqlclient",
    "mysql-connector-python",
    "oracledb",
    "cx-oracle",
    "pyodbc",
    "aioodbc",
}
OTHER_DATABASE_URL = re.compile(
    r"""\b(sqlite|mysql|mariadb|oracle|mssql)(\+\w+)?://|["']sqlite["']"""
)
DEV_PATH = re.compile(r"(^|/)(dev|devel|development|local|tests?)(/|_|\.|$)|_(dev|local)\.py$")
DEV_CONDITION = re.compile(r"debug|dev|local|testing", re.IGNORECASE)
EXPORT_NAME = re.compile(
    r"export|download|dump|dataset|bulk|csv|ndjson|backup|report|full|(^|[_/])all($|[_/])",
    re.IGNORECASE,
)
ROW_COLLECTORS = {"all", "fetchall", "partitions"}


# --- FSA110: the reserved attribute `metadata` ---------------------------------------------


@check("FSA110")
def reserved_metadata(scan: Scan) -> Iterator[Hit]:
    for info in scan.index.classes.values():
        if not info.is_model:
            continue
        for stmt in info.node.body:
            targets: list[ast.expr]
            value: ast.expr | None
            annotation: ast.expr | None
            if isinstance(stmt, ast.Assign):
                targets, value, annotation = stmt.targets, stmt.value, None
            elif isinstance(stmt, ast.AnnAssign):
                targets, value, annotation = [stmt.target], stmt.value, stmt.annotation
            else:
                continue
            if not any(isinstance(t, ast.Name) and t.id == "metadata" for t in targets):
                continue
            # `metadata = MetaData(...)` on a base is how a custom MetaData is given: legal.
            mapped = isinstance(value, ast.Call) and last_name(value) in COLUMN_FACTORIES
            mapped |= annotation is not None and last_name(
                annotation.value if isinstance(annotation, ast.Subscript) else annotation
            ) in {"Mapped", "Column"}
            if mapped:
                yield Hit(
                    "FSA110",
                    info.file,
                    stmt,
                    None,
                    detail=f"`{info.name}.metadata` is a column: Declarative reserves the name "
                    "for the table's MetaData, the class fails at import",
                    evidence={"model": info.qual},
                )


# --- FSA111: dict(row) ----------------------------------------------------------------------


def _result_source(
    scan: Scan, func: Func, expr: ast.AST, seen: set[str] | None = None
) -> str | None:
    """'rows' when ``expr`` iterates Row objects of an execute(), 'mapping'/'scalars' when it
    iterates something dict() accepts or the ORM objects of scalars(), None when unknown."""
    seen = set() if seen is None else seen
    while isinstance(expr, ast.Await):
        expr = expr.value
    if isinstance(expr, ast.Name):
        if expr.id in seen:
            return None
        seen.add(expr.id)
        kinds = {_result_source(scan, func, v, seen) for v in func.assigns.get(expr.id, [])}
        kinds.discard(None)
        return kinds.pop() if len(kinds) == 1 else None
    node = expr
    while isinstance(node, ast.Call | ast.Attribute | ast.Await):
        if isinstance(node, ast.Call):
            name = last_name(node)
            if name in {"mappings", "_mapping", "scalars", "scalar", "stream_scalars"}:
                return "mapping" if name in {"mappings", "_mapping"} else "scalars"
            if name in {"execute", "stream", "fetch"} and scan.index.db_call(
                func, node, {"execute", "stream", "fetch"}
            ):
                return "rows" if name != "fetch" else "mapping"  # asyncpg Records are mappings
            node = node.func
        elif isinstance(node, ast.Attribute):
            if node.attr in {"mappings", "_mapping"}:
                return "mapping"
            if node.attr in {"scalars", "stream_scalars"}:
                return "scalars"
            node = node.value
        else:
            node = node.value
    if isinstance(node, ast.Name) and node is not expr:
        return _result_source(scan, func, node, seen)
    return None


@check("FSA111")
def dict_of_row(scan: Scan) -> Iterator[Hit]:
    major = pinned_major(scan.index.deps.get("sqlalchemy"))
    if major is not None and major < 2:
        scan.notes["FSA111"] = (
            "passed",
            f"the project pins SQLAlchemy {major}.x, where dict(row) still works",
        )
        return
    for func in scan.functions():
        row_names: dict[str, int] = {}
        for loop, iterable, targets, _body in scan.loops(func):
            if _result_source(scan, func, iterable) == "rows":
                for name in targets:
                    row_names[name] = loop.lineno
        for name, values in func.assigns.items():
            for value in values:
                inner = value.value if isinstance(value, ast.Await) else value
                if (
                    isinstance(inner, ast.Call)
                    and last_name(inner) in {"first", "one", "one_or_none", "fetchone"}
                    and isinstance(inner.func, ast.Attribute)
                    and _result_source(scan, func, inner.func.value) == "rows"
                ):
                    row_names.setdefault(name, inner.lineno)
        if not row_names:
            continue
        for node in func.nodes:
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "dict"
                and len(node.args) == 1
                and not node.keywords
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id in row_names
            ):
                row = node.args[0].id
                yield Hit(
                    "FSA111",
                    func.file,
                    node,
                    func,
                    detail=f"`dict({row})`: a SQLAlchemy 2 Row is a named tuple, not a mapping; "
                    f"use `{row}._mapping` (or `.mappings()` on the result)",
                    severity="high" if major is not None else "medium",
                    evidence={"sqlalchemy": "2.x" if major else "version not pinned"},
                )


# --- FSA112: `async with session.stream(...)` -----------------------------------------------


def _enclosing_funcs(scan: Scan, func: Func) -> Iterator[Func]:
    """``func`` and the functions it is nested in (closures read their parameters)."""
    current: Func | None = func
    while current is not None:
        yield current
        parent_qual = current.qual.rsplit(".", 1)[0]
        current = scan.index.functions.get(parent_qual)


def _is_connection(scan: Scan, func: Func, expr: ast.AST) -> bool:
    """Whether ``expr`` was bound from ``engine.connect()``/``engine.begin()`` (an
    AsyncConnection, whose ``stream()`` is an async context manager)."""
    if not isinstance(expr, ast.Name):
        return False
    for owner in _enclosing_funcs(scan, func):
        bound = list(owner.assigns.get(expr.id, []))
        for node in owner.nodes:
            if isinstance(node, ast.With | ast.AsyncWith):
                bound += [
                    item.context_expr
                    for item in node.items
                    if isinstance(item.optional_vars, ast.Name) and item.optional_vars.id == expr.id
                ]
        for value in bound:
            value = value.value if isinstance(value, ast.Await) else value
            if (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Attribute)
                and value.func.attr in {"connect", "begin"}
                and (scan.index.kind_of(owner, value.func.value) or "").startswith("engine")
            ):
                return True
    return False


def _receiver_kind(scan: Scan, func: Func, expr: ast.AST) -> str | None:
    for owner in _enclosing_funcs(scan, func):
        if isinstance(expr, ast.Name) and owner is not func and expr.id not in owner.kinds:
            params = {p.arg for p in owner.params} | set(owner.assigns)
            if expr.id not in params:
                continue
        kind = scan.index.kind_of(owner, expr)
        if kind:
            return kind
    return None


@check("FSA112")
def stream_entered_with_async_with(scan: Scan) -> Iterator[Hit]:
    for func in scan.functions():
        for node in func.nodes:
            if isinstance(node, ast.AsyncWith):
                entered = [(item.context_expr, "async with") for item in node.items]
            elif isinstance(node, ast.AsyncFor):
                # `async for row in session.stream(...)` without await: a coroutine, not
                # an async iterable (`async for row in await session.stream(...)` is right)
                entered = [(node.iter, "async for")]
            else:
                continue
            for call, how in entered:
                if not (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr in STREAM_METHODS
                ):
                    continue
                receiver = call.func.value
                if _is_connection(scan, func, receiver):
                    continue
                kind = _receiver_kind(scan, func, receiver)
                name = last_name(receiver)
                if kind == "session_async" or (
                    kind == "session" and not CONNECTION_NAME.search(name)
                ):
                    method = ast.unparse(call.func)
                    yield Hit(
                        "FSA112",
                        func.file,
                        call,
                        func,
                        detail=f"`{method}()` on an AsyncSession is a coroutine: `{how}` on it "
                        f"raises TypeError; `result = await {method}(...)` then "
                        "`async for row in result`",
                        evidence={"receiver": ast.unparse(receiver), "kind": kind},
                    )


# --- FSA113: JSON where JSONB serves --------------------------------------------------------


def _postgres_only(scan: Scan) -> str | None:
    """Why the project runs on PostgreSQL alone, or None when it may run elsewhere."""
    deps = set(scan.index.deps)
    if deps & OTHER_DRIVERS:
        return None
    # SQLite needs no package (sqlite3 is in the standard library): look for its URLs.
    if any(OTHER_DATABASE_URL.search(source.text) for source in scan.index.files):
        return None
    for source in scan.index.files:
        for dotted in scan.index.imports.get(source.module, {}).values():
            if dotted.startswith("sqlalchemy.dialects.") and not dotted.startswith(
                "sqlalchemy.dialects.postgresql"
            ):
                return None
    drivers = sorted(deps & POSTGRES_DRIVERS)
    if drivers:
        return f"the project's only database driver is {drivers[0]}"
    for source in scan.index.files:
        for dotted in scan.index.imports.get(source.module, {}).values():
            if dotted.startswith("sqlalchemy.dialects.postgresql"):
                return f"{source.rel} imports sqlalchemy.dialects.postgresql"
    return None


@check("FSA113")
def json_not_jsonb(scan: Scan) -> Iterator[Hit]:
    reason = _postgres_only(scan)
    if reason is None:
        scan.notes["FSA113"] = (
            "passed",
            "JSON is the right type here: the project also runs on a database other than "
            "PostgreSQL",
        )
        return
    for info in scan.index.classes.values():
        if not info.is_model:
            continue
        for stmt in info.node.body:
            value = stmt.value if isinstance(stmt, ast.Assign | ast.AnnAssign) else None
            if not (isinstance(value, ast.Call) and last_name(value) in COLUMN_FACTORIES):
                continue
            type_arg = next(
                (a for a in value.args if not isinstance(a, ast.Constant)), keyword(value, "type_")
            )
            if isinstance(type_arg, ast.Call):
                type_arg = type_arg.func
            if type_arg is None or last_name(type_arg) != "JSON":
                continue
            dotted = scan.index.resolve(info.file, type_arg)
            if dotted.startswith("sqlalchemy.dialects.postgresql") or not dotted.startswith(
                "sqlalchemy"
            ):
                continue
            yield Hit(
                "FSA113",
                info.file,
                type_arg,
                None,
                detail=f"`{info.name}` stores a JSON column as text-typed `json` ({reason}): "
                "every key lookup re-parses the document and no GIN index can serve it",
                evidence={"model": info.qual},
            )


# --- FSA207: echo_pool=True -----------------------------------------------------------------


def _under_dev_condition(source: SourceFile, node: ast.AST) -> bool:
    for parent in ast.walk(source.parsed):
        if (
            isinstance(parent, ast.If | ast.IfExp)
            and DEV_CONDITION.search(ast.unparse(parent.test))
            and any(child is node for child in ast.walk(parent))
        ):
            return True
    return False


def _engine_factory_call(scan: Scan, source: SourceFile, node: ast.AST) -> bool:
    """create_engine()/create_async_engine(), imported or not (guides paste it bare), and not
    a project function of that name."""
    if not isinstance(node, ast.Call) or last_name(node) not in ENGINE_FACTORIES:
        return False
    return scan.index.resolve(source, node.func) not in scan.index.functions


@check("FSA207")
def echo_pool_hard_coded(scan: Scan) -> Iterator[Hit]:
    for source in scan.index.files:
        if DEV_PATH.search(source.rel):
            continue
        for node in scan.index.file_nodes(source):
            if not isinstance(node, ast.Call) or not _engine_factory_call(scan, source, node):
                continue
            echo_pool = keyword(node, "echo_pool")
            hard = is_true(echo_pool) or const_str(echo_pool) == "debug"
            if echo_pool is not None and hard and not _under_dev_condition(source, node):
                yield Hit(
                    "FSA207",
                    source,
                    echo_pool,
                    scan.index.enclosing_function(source, node.lineno),
                    detail="`echo_pool=True` logs every checkout and checkin of the pool, "
                    "in production too",
                )


# --- FSA306: the server without uvloop/httptools --------------------------------------------


def _installed(scan: Scan, package: str) -> bool | None:
    """Whether the project installs ``package`` (directly or via uvicorn[standard]);
    None when it declares no dependencies at all."""
    deps = scan.index.deps
    if not deps or "uvicorn" not in deps:
        return None
    if package in deps:
        return True
    return "standard" in getattr(deps["uvicorn"], "extras", set())


def _server_setting(scan: Scan, call: ast.Call, name: str, fast: str, package: str) -> str | None:
    value = keyword(call, name)
    text = const_str(value)
    if value is not None and text is None:
        return None  # from settings or the command line: cannot tell
    return _judge_setting(scan, name, text, fast, package)


def _judge_setting(scan: Scan, name: str, text: str | None, fast: str, package: str) -> str | None:
    if text == fast:
        return None
    if text in {None, "auto"}:
        installed = _installed(scan, package)
        if installed is None or installed:
            return None
        return f"`{name}` is auto but {package} is not installed (no `uvicorn[standard]`)"
    return f"`{name}={text!r}` instead of {fast!r}"


@check("FSA306")
def server_without_uvloop(scan: Scan) -> Iterator[Hit]:
    index = scan.index
    deployed = list(_deployed_without_uvloop(scan))
    yield from deployed
    for source in index.files:
        # with the deployment's own command reported, a `__main__` runner is a developer's
        dev_runs = _main_block_nodes(source) if deployed else set()
        for node in index.file_nodes(source):
            if not isinstance(node, ast.Call):
                continue
            dotted = index.resolve(source, node.func)
            if (
                dotted in {"uvicorn.run", "uvicorn.Config", "uvicorn.config.Config"}
                and id(node) not in dev_runs
            ):
                problems = [
                    p
                    for p in (
                        _server_setting(scan, node, "loop", "uvloop", "uvloop"),
                        _server_setting(scan, node, "http", "httptools", "httptools"),
                    )
                    if p
                ]
                if problems:
                    yield Hit(
                        "FSA306",
                        source,
                        node,
                        index.enclosing_function(source, node.lineno),
                        detail="the server runs on the pure-Python defaults: "
                        + "; ".join(problems),
                    )
            elif dotted == "asyncio.set_event_loop_policy" and node.args:
                policy = node.args[0].func if isinstance(node.args[0], ast.Call) else node.args[0]
                if index.resolve(source, policy).split(".")[0] != "uvloop":
                    continue
                if index.enclosing_function(source, node.lineno) is not None:
                    continue
                yield Hit(
                    "FSA306",
                    source,
                    node,
                    None,
                    detail="uvloop chosen by an event-loop policy when the module is imported: "
                    "uvicorn created its loop before it imports the app, so the server's loop "
                    "is not uvloop (and the policy API is deprecated since Python 3.14); "
                    "httptools is not selected either",
                )


def _main_block_nodes(source: SourceFile) -> set[int]:
    found: set[int] = set()
    for stmt in source.parsed.body:
        if isinstance(stmt, ast.If) and "__main__" in ast.unparse(stmt.test):
            found.update(id(n) for n in ast.walk(stmt))
    return found


UVICORN_COMMAND = re.compile(r"\buvicorn\s+(?:\S+\s+)*?([A-Za-z_][\w.]*):([A-Za-z_]\w*)\b(.*)$")


def _deployed_without_uvloop(scan: Scan) -> Iterator[Hit]:
    """`uvicorn module:app ...` in a Dockerfile, compose file or Procfile, reported at the
    app it serves: the same judgement as for uvicorn.run() in the code."""
    index = scan.index
    reported: set[str] = set()
    for rel, text in sorted(scan.config_texts.items()):
        for raw in text.splitlines():
            line = re.sub(r"[\"',\[\]]", " ", raw)
            match = UVICORN_COMMAND.search(line)
            if not match or "--factory" in line:
                continue
            module, attribute, flags = match.groups()
            source = index.by_module.get(module)
            value = index.module_defs.get(module, {}).get(attribute)
            if source is None or not (
                isinstance(value, ast.Call) and last_name(value) == "FastAPI"
            ):
                continue
            settings = {}
            for name in ("loop", "http"):
                flag = re.search(rf"--{name}[=\s]+(\S+)", flags)
                settings[name] = flag.group(1) if flag else None
            problems = [
                p
                for p in (
                    _judge_setting(scan, "loop", settings["loop"], "uvloop", "uvloop"),
                    _judge_setting(scan, "http", settings["http"], "httptools", "httptools"),
                )
                if p
            ]
            if problems and f"{module}:{attribute}" not in reported:
                reported.add(f"{module}:{attribute}")
                problems = [
                    p.replace("`loop`", "`--loop`").replace("`http`", "`--http`") for p in problems
                ]
                yield Hit(
                    "FSA306",
                    source,
                    value,
                    None,
                    detail=f"{rel} runs `uvicorn {module}:{attribute}` on the pure-Python "
                    "defaults: " + "; ".join(problems),
                    evidence={"deployment": rel, "command": raw.strip()[:200]},
                )


# --- FSA307: a whole export in one response -------------------------------------------------


def _unbounded_rows(
    scan: Scan, func: Func, expr: ast.AST, seen: set[str] | None = None
) -> ast.Call | None:
    """The `.all()` call when ``expr`` is every row of a statement without LIMIT."""
    seen = set() if seen is None else seen
    while isinstance(expr, ast.Await):
        expr = expr.value
    if isinstance(expr, ast.Name):
        if expr.id in seen:
            return None
        seen.add(expr.id)
        for value in func.assigns.get(expr.id, []):
            found = _unbounded_rows(scan, func, value, seen)
            if found is not None:
                return found
        return None
    if isinstance(expr, ast.ListComp | ast.GeneratorExp):
        return _unbounded_rows(scan, func, expr.generators[0].iter, seen)
    if isinstance(expr, ast.Dict):
        for value in expr.values:
            found = _unbounded_rows(scan, func, value, seen)
            if found is not None:
                return found
        return None
    if isinstance(expr, ast.Call) and last_name(expr) in {"list", "tuple"} and expr.args:
        return _unbounded_rows(scan, func, expr.args[0], seen)
    if (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr in ROW_COLLECTORS
        and scan.is_rows(func, expr.func.value)
    ):
        names = scan.statement_names(func, expr.func.value)
        # without any filter the read is FSA105's (the whole table); this rule is about an
        # export narrowed by a filter but still unbounded in size
        if (
            names & {"select", "query", "text"}
            and names & {"where", "filter", "filter_by", "join", "having"}
            and not names & {"limit", "slice", "fetch"}
        ):
            return expr
    return None


def _streams(func: Func) -> bool:
    return any(
        isinstance(n, ast.Call) and last_name(n) in {"StreamingResponse", "EventSourceResponse"}
        for n in func.nodes
    )


def _app_response_class(scan: Scan) -> str | None:
    for source in scan.index.files:
        for node in scan.index.file_nodes(source):
            if isinstance(node, ast.Call) and last_name(node) == "FastAPI":
                value = keyword(node, "default_response_class")
                if value is not None:
                    return last_name(value)
    return None


@check("FSA307")
def export_in_one_response(scan: Scan) -> Iterator[Hit]:
    default_class = _app_response_class(scan)
    for route in scan.index.routes:
        func = route.func
        if not (EXPORT_NAME.search(route.path) or EXPORT_NAME.search(func.name)):
            continue
        if _streams(func) or any(
            isinstance(n, ast.Call) and last_name(n) in {"limit", "slice"} for n in func.nodes
        ):
            continue  # streamed, or a paginated route (an "all" branch in it is FSA105's)
        for node in func.nodes:
            if not (isinstance(node, ast.Return) and node.value is not None):
                continue
            collected = _unbounded_rows(scan, func, node.value)
            if collected is None:
                continue
            declared = route.response_model if route.has_response_model else func.node.returns
            response_class = keyword(route.decorator, "response_class")
            if response_class is not None:
                encoder = f"{last_name(response_class)}"
            elif declared is not None and annotation_names(declared):
                encoder = "the response model (validated object by object)"
            elif default_class and default_class != "JSONResponse":
                encoder = default_class
            else:
                encoder = "jsonable_encoder + json.dumps (FastAPI's default, pure Python)"
            yield Hit(
                "FSA307",
                func.file,
                route.decorator,
                func,
                detail=f"{route.label} returns every row of a statement without LIMIT (line "
                f"{collected.lineno}) in one response: the whole export is held in memory, then "
                f"serialized by {encoder}",
                evidence={"route": route.label, "rows_line": collected.lineno},
            )
            break
