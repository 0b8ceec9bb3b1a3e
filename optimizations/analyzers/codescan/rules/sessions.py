"""Engine and session lifecycle rules: engine per request (FSA201), expire_on_commit
(FSA202), sessions never closed (FSA203), pre-ping/recycle (FSA204), pooling mismatches
(FSA205), hard-coded echo (FSA206)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from ..index import Func
from ..project import SourceFile
from ..syntax import is_true, keyword, last_name
from . import Hit, check
from .common import Scan

DEFAULT_MAX_CONNECTIONS = 100  # PostgreSQL's default max_connections


def _engine_calls(scan: Scan) -> Iterator[tuple[SourceFile, Func | None, ast.Call]]:
    """(file, func or None, call) for every create_engine/create_async_engine call."""
    for source in scan.index.files:
        for node in scan.index.file_nodes(source):
            if isinstance(node, ast.Call) and scan.index.is_engine_factory(source, node):
                yield source, scan.index.enclosing_function(source, node.lineno), node


def _url(scan: Scan, source: SourceFile, call: ast.Call) -> str | None:
    arg = call.args[0] if call.args else keyword(call, "url")
    if arg is None:
        return None
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr):
        return "".join(str(v.value) if isinstance(v, ast.Constant) else "{}" for v in arg.values)
    if isinstance(arg, ast.Name):
        value = scan.index.module_defs.get(source.module, {}).get(arg.id)
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return value.value
    return None


def _is_sqlite(url: str | None) -> bool:
    return bool(url) and url is not None and url.startswith("sqlite")


def _sqlite_options(call: ast.Call) -> bool:
    """``connect_args={"check_same_thread": False}`` exists only for SQLite's driver."""
    args = keyword(call, "connect_args")
    return isinstance(args, ast.Dict) and any(
        isinstance(key, ast.Constant) and key.value == "check_same_thread" for key in args.keys
    )


def _poolclass(call: ast.Call) -> str:
    value = keyword(call, "poolclass")
    return last_name(value) if value is not None else ""


@check("FSA201")
def engine_per_request(scan: Scan) -> Iterator[Hit]:
    index = scan.index
    for qual, chain in index.reach.items():
        func = index.functions[qual]
        if func.is_cached() or qual in index.lifespans:
            continue
        if any(isinstance(n, ast.Global | ast.Nonlocal) for n in func.nodes):
            continue  # the lazily created module singleton
        for node in func.nodes:
            if index.is_engine_factory(func, node) and not func.once_only(node):
                yield Hit(
                    "FSA201",
                    func.file,
                    node,
                    func,
                    detail=f"`{last_name(node)}()` runs on every request that reaches {func.qual}",
                    evidence={"request_path": chain},
                )


def _reads_after_commit(scan: Scan) -> str | None:
    """A place where an object is read after `await session.commit()` without refresh."""
    for func in scan.functions():
        if not func.is_async:
            continue
        added: dict[str, int] = {}
        commits: list[int] = []
        refreshed: dict[str, list[int]] = {}
        reads: list[tuple[str, int]] = []
        for node in func.nodes:
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr == "add" and node.args and isinstance(node.args[0], ast.Name):
                    added.setdefault(node.args[0].id, node.lineno)
                elif node.func.attr == "commit" and id(node) in func.awaited:
                    commits.append(node.lineno)
                elif (
                    node.func.attr == "refresh" and node.args and isinstance(node.args[0], ast.Name)
                ):
                    refreshed.setdefault(node.args[0].id, []).append(node.lineno)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if isinstance(node.ctx, ast.Load):
                    reads.append((node.value.id, node.lineno))
            elif isinstance(node, ast.Return) and isinstance(node.value, ast.Name):
                reads.append((node.value.id, node.lineno))
        for name, line in reads:
            if name not in added:
                continue
            for commit in commits:
                if added[name] < commit < line and not any(
                    commit < r < line for r in refreshed.get(name, [])
                ):
                    return f"{func.file.rel}:{line}"
    return None


@check("FSA202")
def expire_on_commit(scan: Scan) -> Iterator[Hit]:
    read_after = _reads_after_commit(scan)
    for source in scan.index.files:
        for node in scan.index.file_nodes(source):
            if not isinstance(node, ast.Call):
                continue
            name = last_name(node)
            is_async = name in {"async_sessionmaker", "AsyncSession"} or (
                name == "sessionmaker"
                and last_name(keyword(node, "class_") or ast.Name("")) == "AsyncSession"
            )
            if not is_async:
                continue
            expire = keyword(node, "expire_on_commit")
            if isinstance(expire, ast.Constant) and expire.value is False:
                continue
            func = scan.index.enclosing_function(source, node.lineno)
            if not _is_sqlalchemy_name(scan, source, func, node.func):
                continue  # a local or project name that merely looks like the factory
            if name == "AsyncSession" and not _commits(func):
                continue  # a read-only session built on the spot never expires anything
            detail = "`expire_on_commit` is not False"
            if read_after:
                detail += f"; an object is read after commit at {read_after}"
            yield Hit(
                "FSA202",
                source,
                node,
                func,
                detail=detail,
                severity="high" if read_after else None,
                evidence={"read_after_commit": read_after or ""},
            )


def _is_sqlalchemy_name(scan: Scan, source: SourceFile, func: Func | None, expr: ast.AST) -> bool:
    """Whether ``expr`` names SQLAlchemy's (or SQLModel's) own callable, not a local variable,
    parameter or project definition that happens to share its name."""
    if (
        isinstance(expr, ast.Name)
        and func is not None
        and (expr.id in func.assigns or any(p.arg == expr.id for p in func.params))
    ):
        return False
    dotted = scan.index.resolve(func or source, expr)
    return dotted.split(".")[0] in {"sqlalchemy", "sqlmodel"}


def _commits(func: Func | None) -> bool:
    if func is None:
        return True
    return any(isinstance(n, ast.Call) and last_name(n) == "commit" for n in func.nodes)


def _creates_session(scan: Scan, func: Func, value: ast.AST) -> bool:
    if isinstance(value, ast.Await):
        value = value.value
    if not isinstance(value, ast.Call):
        return False
    dotted = scan.index.resolve(func, value.func)
    if dotted in scan.index.factories:
        return True
    return last_name(value) in {"Session", "AsyncSession"} and bool(value.args)


@check("FSA203")
def session_not_closed(scan: Scan) -> Iterator[Hit]:
    index = scan.index
    for func in scan.functions():
        nodes = list(func.nodes)
        yields = any(isinstance(n, ast.Yield | ast.YieldFrom) for n in nodes)
        closed_in_finally = _closed_in_finally(func)
        for node in nodes:
            if (
                isinstance(node, ast.Return)
                and node.value is not None
                and func.qual in index.dependencies
                and not yields
                and (
                    _creates_session(scan, func, node.value)
                    or (
                        isinstance(node.value, ast.Name)
                        and any(
                            _creates_session(scan, func, v)
                            for v in func.assigns.get(node.value.id, [])
                        )
                    )
                )
            ):
                yield Hit(
                    "FSA203",
                    func.file,
                    node,
                    func,
                    detail="the dependency returns the session instead of yielding it: "
                    "nothing closes it after the request",
                )
            if not (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and _creates_session(scan, func, node.value)
            ):
                continue
            name = node.targets[0].id
            closes = [
                n
                for n in nodes
                if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.attr == "close"
                and isinstance(n.func.value, ast.Name)
                and n.func.value.id == name
            ]
            handed_out = any(
                isinstance(n, ast.Return | ast.Yield)
                and isinstance(n.value, ast.Name)
                and n.value.id == name
                for n in nodes
            )
            in_with = any(
                isinstance(n, ast.With | ast.AsyncWith)
                and any(
                    isinstance(i.context_expr, ast.Name) and i.context_expr.id == name
                    for i in n.items
                )
                for n in nodes
            )
            if in_with or name in closed_in_finally:
                continue
            if closes and yields:
                yield Hit(
                    "FSA203",
                    func.file,
                    node,
                    func,
                    detail=f"`{name}.close()` is not in a `finally`: it is skipped when the "
                    "request fails",
                    severity="medium",
                )
            elif not closes and not (handed_out and func.qual not in index.dependencies):
                if handed_out and not yields:
                    continue  # returned: reported above when this is a dependency
                yield Hit(
                    "FSA203",
                    func.file,
                    node,
                    func,
                    detail=f"`{name}` is never closed",
                )


def _closed_in_finally(func: Func) -> set[str]:
    names = set()
    for node in func.nodes:
        if isinstance(node, ast.Try | ast.TryStar):
            for stmt in node.finalbody:
                for inner in ast.walk(stmt):
                    if (
                        isinstance(inner, ast.Call)
                        and isinstance(inner.func, ast.Attribute)
                        and inner.func.attr == "close"
                        and isinstance(inner.func.value, ast.Name)
                    ):
                        names.add(inner.func.value.id)
    return names


@check("FSA204")
def pool_without_pre_ping(scan: Scan) -> Iterator[Hit]:
    for source, func, call in _engine_calls(scan):
        if func is not None and func.qual in scan.index.reach and not func.is_cached():
            continue  # FSA201's business: that engine should not exist at all
        url = _url(scan, source, call)
        if (
            _is_sqlite(url)
            or _sqlite_options(call)
            or _poolclass(call) in {"NullPool", "StaticPool"}
        ):
            continue
        options = engine_options(scan, source, func, call)
        if options is None or "pool_pre_ping" in options or "pool_recycle" in options:
            continue  # set, or passed through **options we cannot read: not "missing"
        yield Hit(
            "FSA204",
            source,
            call,
            func,
            detail="the pool neither pre-pings nor recycles its connections",
        )


def _pooler(scan: Scan) -> tuple[str, str]:
    """('transaction' | 'session' | 'present' | 'none', where it was seen)."""
    chosen = scan.options.get("pooler", "auto")
    if chosen and chosen != "auto":
        return chosen, "the scan's pooler parameter"
    for path, text in sorted(scan.config_texts.items()):
        if re.search(r"pool_?mode\W{1,4}transaction", text, re.IGNORECASE):
            return "transaction", path
    for path, text in sorted(scan.config_texts.items()):
        if "pgbouncer" in text.lower() or "pgcat" in text.lower():
            return "present", path
    return "none", ""


def _workers(scan: Scan) -> tuple[int, str]:
    given = int(scan.options.get("workers") or 0)
    if given:
        return given, "the scan's workers parameter"
    patterns = (
        r"(?:\s-w|--workers)[ =]+(\d+)",
        r"^\s*workers\s*=\s*(\d+)",
        r"WEB_CONCURRENCY\W{1,3}(\d+)",
    )
    for path, text in sorted(scan.config_texts.items()):
        for pattern in patterns:
            match = re.search(pattern, text, re.MULTILINE)
            if match:
                return int(match.group(1)), path
    return 0, ""


def _dict_keys(
    scan: Scan, owner: Func | SourceFile, expr: ast.AST, depth: int = 0
) -> dict[str, ast.AST] | None:
    """The keys → values of what ``**expr`` unpacks, when it can be read; else None."""
    if isinstance(expr, ast.Dict):
        keys: dict[str, ast.AST] = {}
        for key, value in zip(expr.keys, expr.values, strict=True):
            # `**{}` passes keyword names: any other key cannot be read as options
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                return None
            keys[key.value] = value
        return keys
    if isinstance(expr, ast.Call) and last_name(expr) == "dict" and not expr.args:
        if any(item.arg is None for item in expr.keywords):
            return None
        return {item.arg: item.value for item in expr.keywords if item.arg is not None}
    if depth > 2:
        return None
    if isinstance(expr, ast.Name) and isinstance(owner, Func):
        values = owner.assigns.get(expr.id, [])
        if len(values) == 1:
            return _dict_keys(scan, owner, values[0], depth + 1)
        return None
    if isinstance(expr, ast.Call):
        callee = scan.index.functions.get(scan.index.resolve(owner, expr.func))
        if callee is None:
            return None
        returns = [n.value for n in callee.nodes if isinstance(n, ast.Return) and n.value]
        if len(returns) == 1:
            return _dict_keys(scan, callee, returns[0], depth + 1)
    return None


def engine_options(
    scan: Scan, source: SourceFile, func: Func | None, call: ast.Call
) -> dict[str, ast.AST] | None:
    """The keyword options an engine call passes, ``**options`` included when they can be
    read (a dict literal, ``dict(...)``, or a project function returning one); None when
    some come from ``**`` we cannot read: then no option may be called missing."""
    options: dict[str, ast.AST] = {}
    for item in call.keywords:
        if item.arg is not None:
            options[item.arg] = item.value
            continue
        unpacked = _dict_keys(scan, func or source, item.value)
        if unpacked is None:
            return None
        options.update(unpacked)
    return options


def _int_keyword(
    call: ast.Call, name: str, default: int, options: dict[str, ast.AST] | None = None
) -> int | None:
    if options is None and any(item.arg is None for item in call.keywords):
        return None  # **options we cannot read may set it
    value = (options or {}).get(name) if options is not None else keyword(call, name)
    if value is None:
        return default
    if isinstance(value, ast.Constant) and isinstance(value.value, int):
        return value.value
    return None


@check("FSA205")
def pooling_mismatch(scan: Scan) -> Iterator[Hit]:
    pooler, pooler_source = _pooler(scan)
    workers, workers_source = _workers(scan)
    uses_asyncpg = "asyncpg" in scan.index.deps
    for source, func, call in _engine_calls(scan):
        url = _url(scan, source, call) or ""
        if _is_sqlite(url):
            continue
        poolclass = _poolclass(call)
        is_async = last_name(call) == "create_async_engine"
        asyncpg = "+asyncpg" in url or (is_async and not url and uses_asyncpg)
        # PgBouncer's default pool_mode is session, where prepared statements survive.
        if pooler == "transaction" and asyncpg:
            connect_args = ast.unparse(keyword(call, "connect_args") or ast.Constant(""))
            if "statement_cache_size" not in connect_args and "cache_size=0" not in url:
                yield Hit(
                    "FSA205",
                    source,
                    call,
                    func,
                    detail=f"asyncpg behind PgBouncer ({pooler_source}) keeps prepared "
                    "statements: set connect_args={'statement_cache_size': 0, "
                    "'prepared_statement_cache_size': 0}",
                    evidence={"pooler": pooler, "seen_in": pooler_source},
                )
        if pooler == "transaction" and poolclass != "NullPool":
            yield Hit(
                "FSA205",
                source,
                call,
                func,
                detail=f"an application pool behind PgBouncer transaction pooling "
                f"({pooler_source}): use poolclass=NullPool and let PgBouncer pool",
                evidence={"pooler": pooler, "seen_in": pooler_source},
            )
        if pooler == "none" and poolclass == "NullPool":
            yield Hit(
                "FSA205",
                source,
                call,
                func,
                detail="NullPool without a connection pooler: every checkout opens a new "
                "PostgreSQL connection (no PgBouncer found in the deployment files)",
                evidence={"pooler": pooler},
            )
        if workers > 1 and poolclass != "NullPool":
            options = engine_options(scan, source, func, call)
            size = _int_keyword(call, "pool_size", 5, options)
            overflow = _int_keyword(call, "max_overflow", 10, options)
            limit = int(scan.options.get("max_connections") or 0) or DEFAULT_MAX_CONNECTIONS
            if size is not None and overflow is not None and workers * (size + overflow) > limit:
                yield Hit(
                    "FSA205",
                    source,
                    call,
                    func,
                    detail=f"{workers} workers ({workers_source}) × (pool_size {size} + "
                    f"max_overflow {overflow}) = {workers * (size + overflow)} connections, "
                    f"more than max_connections {limit}",
                    evidence={"workers": workers, "max_connections": limit},
                )


@check("FSA206")
def echo_hard_coded(scan: Scan) -> Iterator[Hit]:
    for source, func, call in _engine_calls(scan):
        echo = keyword(call, "echo")
        if echo is not None and (
            is_true(echo) or (isinstance(echo, ast.Constant) and echo.value == "debug")
        ):
            yield Hit("FSA206", source, echo, func, detail="`echo=True` logs every statement")
