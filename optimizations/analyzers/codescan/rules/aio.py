"""Event-loop rules: a session shared by concurrent tasks (FSA103), blocking calls below
async routes through the call graph (FSA104), long blocking work in sync routes (FSA304)."""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator

from ..index import Func
from ..syntax import last_name, words
from . import Hit, check
from .common import QUERY_METHODS, Scan

BLOCKING_NETWORK = words(
    "httpx.delete httpx.get httpx.head httpx.patch httpx.post httpx.put httpx.request "
    "httpx.stream requests.delete requests.get requests.head requests.options "
    "requests.patch requests.post requests.put requests.request smtplib.SMTP "
    "smtplib.SMTP_SSL socket.create_connection urllib.request.urlopen urllib3.request"
)
BLOCKING_PROCESS = {
    "time.sleep",
    "subprocess.run",
    "subprocess.call",
    "subprocess.check_call",
    "subprocess.check_output",
    "os.system",
    "os.popen",
}
BLOCKING_DRIVERS = {
    "psycopg2.connect",
    "psycopg.connect",
    "sqlite3.connect",
    "pymysql.connect",
    "MySQLdb.connect",
    "redis.Redis",
}
THREADPOOL_WRAPPERS = {"run_in_threadpool", "to_thread", "run_in_executor", "run_sync"}
HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "request", "send"}
SPAWNERS = {"create_task", "ensure_future", "start_soon", "spawn"}


def _offloaded(func: Func) -> set[int]:
    """Nodes inside the arguments of run_in_threadpool/to_thread: they run off the loop."""
    skipped: set[int] = set()
    for node in func.nodes:
        if isinstance(node, ast.Call) and last_name(node) in THREADPOOL_WRAPPERS:
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                skipped.update(id(n) for n in ast.walk(arg))
    return skipped


def _entered_async(func: Func) -> set[int]:
    """Calls entered by `async with` or iterated by `async for`: async APIs, never blocking
    (whether the call really is an async context manager is FSA112's question)."""
    found: set[int] = set()
    for node in func.nodes:
        if isinstance(node, ast.AsyncWith):
            found.update(id(item.context_expr) for item in node.items)
        elif isinstance(node, ast.AsyncFor):
            found.add(id(node.iter))
    return found


def blocking_call(scan: Scan, func: Func, call: ast.Call, network_only: bool = False) -> str | None:
    """A short description when ``call`` blocks the thread it runs on, else None."""
    index = scan.index
    dotted = index.resolve(func, call.func)
    if dotted in BLOCKING_NETWORK:
        return f"`{dotted}()` (blocking network I/O)"
    if dotted in BLOCKING_PROCESS:
        return f"`{dotted}()` (blocks the thread)"
    if dotted in BLOCKING_DRIVERS and not network_only:
        return f"`{dotted}()` (synchronous database driver)"
    if network_only:
        return _sync_http_client_call(scan, func, call)
    if isinstance(call.func, ast.Name) and call.func.id == "open" and dotted.endswith(".open"):
        owner = dotted.rsplit(".", 1)[0]
        if "open" not in index.module_defs.get(owner, {}) and owner == func.file.module:
            return "`open()` (blocking file I/O)"
    if not isinstance(call.func, ast.Attribute):
        return None
    awaited = id(call) in func.awaited
    receiver = index.kind_of(func, call.func.value)
    described = _sync_http_client_call(scan, func, call)
    if described:
        return described
    kind = index.db_call(func, call, QUERY_METHODS | {"commit", "flush", "rollback"})
    if kind is None and call.func.attr in {"connect", "begin"} and receiver == "engine_sync":
        kind = "engine_sync"
    if kind in {"session_sync", "engine_sync"} or (
        kind in {"session", "engine"} and not awaited and not func.is_async
    ):
        return f"`{ast.unparse(call.func)[:60]}()` on a synchronous session"
    if (
        kind in {"session", "engine"}
        and not awaited
        and func.is_async
        and not _is_argument(func, call)
    ):
        return f"`{ast.unparse(call.func)[:60]}()` on a synchronous session"
    return None


def _sync_http_client_call(scan: Scan, func: Func, call: ast.Call) -> str | None:
    if not isinstance(call.func, ast.Attribute) or call.func.attr not in HTTP_METHODS:
        return None
    if id(call) in func.awaited or scan.index.kind_of(func, call.func.value) != "http":
        return None
    return f"`{ast.unparse(call.func)[:60]}()` on a synchronous HTTP client"


def _is_argument(func: Func, call: ast.Call) -> bool:
    """Whether ``call`` is handed to another call (``wait_for(session.execute(...))``)."""
    for node in func.nodes:
        if (
            isinstance(node, ast.Call)
            and node is not call
            and (
                any(arg is call for arg in node.args) or any(k.value is call for k in node.keywords)
            )
        ):
            return True
    return False


def _walk_chains(
    scan: Scan, roots: list[tuple[Func, str]], follow_async: bool, max_depth: int = 6
) -> Iterator[tuple[Func, list[str]]]:
    """BFS from each root through the call graph: yields (func, chain) once per function."""
    seen: set[str] = set()
    queue: deque[tuple[Func, list[str]]] = deque((f, [label]) for f, label in roots)
    while queue:
        func, chain = queue.popleft()
        if func.qual in seen:
            continue
        seen.add(func.qual)
        yield func, chain
        if len(chain) > max_depth:
            continue
        offloaded = _offloaded(func)
        for call, callee in func.calls:
            if id(call) in offloaded or callee.qual in seen:
                continue
            if callee.is_async and not follow_async:
                continue
            queue.append((callee, [*chain, f"{callee.qual} ({callee.file.rel}:{call.lineno})"]))


@check("FSA104")
def blocking_in_async(scan: Scan) -> Iterator[Hit]:
    index = scan.index
    roots = [(r.func, f"{r.label} → {r.func.qual}") for r in index.routes if r.func.is_async]
    roots += [
        (index.functions[q], f"dependency {q}")
        for q in sorted(index.dependencies)
        if q in index.functions and index.functions[q].is_async
    ]
    reported: set[int] = set()
    for func, chain in _walk_chains(scan, roots, follow_async=True):
        offloaded = _offloaded(func) | _entered_async(func)
        for node in func.nodes:
            if not isinstance(node, ast.Call) or id(node) in offloaded or id(node) in reported:
                continue
            what = blocking_call(scan, func, node)
            if what is None:
                continue
            reported.add(id(node))
            depth = "" if len(chain) == 1 else f", {len(chain) - 1} call(s) below the route"
            yield Hit(
                "FSA104",
                func.file,
                node,
                func,
                detail=f"{what} runs on the event loop{depth}",
                evidence={"call_chain": chain},
            )


@check("FSA304")
def blocking_in_sync_route(scan: Scan) -> Iterator[Hit]:
    index = scan.index
    roots = [(r.func, f"{r.label} → {r.func.qual}") for r in index.routes if not r.func.is_async]
    reported: set[int] = set()
    for func, chain in _walk_chains(scan, roots, follow_async=False, max_depth=3):
        for node in func.nodes:
            if not isinstance(node, ast.Call) or id(node) in reported:
                continue
            what = blocking_call(scan, func, node, network_only=True)
            if what is None:
                continue
            reported.add(id(node))
            yield Hit(
                "FSA304",
                func.file,
                node,
                func,
                detail=f"{what} holds one of the threadpool's 40 threads",
                evidence={"call_chain": chain},
            )


def _sessions_in(scan: Scan, func: Func, expr: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(expr):
        if isinstance(node, ast.Name | ast.Attribute) and isinstance(
            getattr(node, "ctx", None), ast.Load
        ):
            kind = scan.index.kind_of(func, node)
            if kind in {"session", "session_async"}:
                found.add(ast.unparse(node))
    return found


def _shared_receivers(scan: Scan, func: Func, calls: list[ast.AST]) -> set[str]:
    """Receivers of project methods that hold a session (``self.repo.a()``, ``self.repo.b()``)."""
    owners: dict[str, int] = {}
    for call in calls:
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
            continue
        callee = scan.callee(func, call)
        if callee is None or callee.cls is None:
            continue
        init = scan.index.functions.get(f"{callee.cls.qual}.__init__")
        holds_session = init is not None and any(
            isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name)
            and n.value.id == "self"
            and scan.index.kind_of(init, n) == "session"
            for n in init.nodes
        )
        if holds_session:
            key = ast.unparse(call.func.value)
            owners[key] = owners.get(key, 0) + 1
    return {key for key, count in owners.items() if count >= 2}


@check("FSA103")
def session_shared_by_tasks(scan: Scan) -> Iterator[Hit]:
    for func in scan.functions():
        if not func.is_async:
            continue
        spawned: dict[str, list[ast.Call]] = {}
        in_loop = _calls_in_loops(func)
        for node in func.nodes:
            if not isinstance(node, ast.Call):
                continue
            name = last_name(node)
            if name == "gather":
                counts: dict[str, int] = {}
                awaitables: list[ast.AST] = []
                for arg in node.args:
                    many = 1
                    awaitable: ast.AST = arg
                    if isinstance(arg, ast.Starred):
                        awaitable = arg.value
                        many = 2
                        if isinstance(awaitable, ast.Name):
                            values = func.assigns.get(awaitable.id, [])
                            awaitable = values[0] if values else awaitable
                    awaitables.append(awaitable)
                    for session in _sessions_in(scan, func, awaitable):
                        counts[session] = counts.get(session, 0) + many
                shared = [s for s, c in counts.items() if c >= 2]
                shared += sorted(_shared_receivers(scan, func, awaitables))
                if shared:
                    yield Hit(
                        "FSA103",
                        func.file,
                        node,
                        func,
                        detail=f"`{shared[0]}` is used by several awaitables of one gather()",
                        evidence={"session": shared[0]},
                    )
            elif name in SPAWNERS:
                for session in _sessions_in(scan, func, node):
                    spawned.setdefault(session, []).append(node)
        for session, calls in spawned.items():
            other_uses = _other_uses(scan, func, session, calls)
            if len(calls) >= 2 or other_uses or any(id(c) in in_loop for c in calls):
                yield Hit(
                    "FSA103",
                    func.file,
                    calls[0],
                    func,
                    detail=f"`{session}` is handed to a concurrent task while other code uses it",
                    evidence={"session": session},
                )


def _calls_in_loops(func: Func) -> set[int]:
    found: set[int] = set()
    for node in func.nodes:
        if isinstance(node, ast.For | ast.AsyncFor | ast.While):
            found.update(id(n) for n in ast.walk(node) if isinstance(n, ast.Call))
    return found


def _other_uses(scan: Scan, func: Func, session: str, spawns: list[ast.Call]) -> bool:
    inside = {id(n) for call in spawns for n in ast.walk(call)}
    for node in func.nodes:
        if (
            isinstance(node, ast.Call)
            and id(node) not in inside
            and isinstance(node.func, ast.Attribute)
            and ast.unparse(node.func.value) == session
        ):
            return True
    return False
