"""What a name holds inside a function: a sync or async session, an engine, an HTTP client.

Read from annotations (``Session``, ``AsyncSession``, ``Annotated[..., Depends(get_db)]``
aliases), from the dependency that provides a parameter, from ``with SessionLocal() as s``
and ``s = async_session()``, and as a last resort from the name (``session``, ``db``).
The Index mixes this in; it needs the index's imports, module definitions and functions.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

from .syntax import (
    annotated_depends,
    annotation_names,
    depends_default,
    keyword,
    last_name,
    looks_like_model,
    param_defaults,
    target_names,
    words,
)

SYNC_SESSION_TYPES = {"Session", "Connection", "scoped_session", "Engine"}
ASYNC_SESSION_TYPES = {"AsyncSession", "AsyncConnection", "async_scoped_session", "AsyncEngine"}
SESSION_NAME = re.compile(
    r"^(session|db|dbs|db_session|dbsession|sess|conn|connection|tx|uow)$|_(session|db|conn)$"
)
# Calls on a session or connection that go to the database.
DB_EXEC_METHODS = words(
    "exec exec_driver_sql execute fetch fetchrow fetchval get get_one query refresh "
    "scalar scalars stream stream_scalars"
)
DB_WRITE_METHODS = {"commit", "flush", "rollback", "merge", "delete"}
HTTP_CLIENT_FACTORIES = {
    "requests.Session",
    "requests.session",
    "httpx.Client",
    "httpx.AsyncClient",
    "aiohttp.ClientSession",
}
ENGINE_FACTORIES = {"create_engine", "create_async_engine"}
SESSION_FACTORIES = {"sessionmaker", "async_sessionmaker", "scoped_session", "async_scoped_session"}


if TYPE_CHECKING:
    from .index import Func
    from .project import SourceFile


class KindsMixin:
    """Session factories, engines and the kinds of local names; part of the Index."""

    # What the Index provides (declared here for the type checker; set in Index.__init__).
    module_defs: dict[str, dict[str, ast.AST]]
    by_module: dict[str, SourceFile]
    functions: dict[str, Func]
    dependencies: set[str]
    factories: dict[str, str]
    engines: dict[str, str]
    session_deps: dict[str, str]

    if TYPE_CHECKING:

        def resolve_in(self, module: str, expr: ast.AST) -> str | None: ...

        def resolve(self, func_or_file: Func | SourceFile, expr: ast.AST) -> str: ...

        def is_engine_factory(self, owner: Func | SourceFile, call: ast.AST) -> bool: ...

    # --- sessions and engines ---------------------------------------------------------------

    def _collect_factories(self) -> None:
        for module, defs in self.module_defs.items():
            for name, value in defs.items():
                if not isinstance(value, ast.Call):
                    continue
                called = last_name(value)
                if called in ENGINE_FACTORIES:
                    self.engines[f"{module}.{name}"] = (
                        "async" if called == "create_async_engine" else "sync"
                    )
        for module, defs in self.module_defs.items():
            for name, value in defs.items():
                if isinstance(value, ast.Call) and last_name(value) in SESSION_FACTORIES:
                    self.factories[f"{module}.{name}"] = self._factory_kind(module, value)

    def _factory_kind(self, module: str, call: ast.Call) -> str:
        called = last_name(call)
        if called.startswith("async_"):
            return "async"
        if called == "scoped_session" and call.args and isinstance(call.args[0], ast.Call):
            return self._factory_kind(module, call.args[0])
        class_ = keyword(call, "class_")
        if class_ is not None and last_name(class_).startswith("Async"):
            return "async"
        bind = keyword(call, "bind") or (call.args[0] if call.args else None)
        if bind is not None:
            dotted = self.resolve_in(module, bind)
            if self.engines.get(dotted or "") == "async":
                return "async"
        return "sync"

    def factory_kind(self, func_or_file: Func | SourceFile, expr: ast.AST) -> str | None:
        """'sync'/'async' when ``expr`` names a session factory, engine or Session class."""
        dotted = self.resolve(func_or_file, expr)
        if dotted in self.factories:
            return self.factories[dotted]
        for table in (self.factories, self.engines):
            matches = {v for k, v in table.items() if k.rsplit(".", 1)[-1] == last_name(expr)}
            if len(matches) == 1 and dotted.rsplit(".", 1)[0] not in self.by_module:
                return matches.pop()
        name = last_name(expr)
        if name in {"Session"}:
            return "sync"
        if name in {"AsyncSession"}:
            return "async"
        return None

    def _collect_locals(self, func: Func) -> None:
        for node in func.nodes:
            if isinstance(node, ast.Await):
                func.awaited.add(id(node.value))
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    for name in target_names(target):
                        func.assigns.setdefault(name, []).append(node.value)
            elif isinstance(node, ast.AnnAssign | ast.AugAssign) and node.value is not None:
                for name in target_names(node.target):
                    func.assigns.setdefault(name, []).append(node.value)
            elif isinstance(node, ast.NamedExpr):
                func.assigns.setdefault(node.target.id, []).append(node.value)

    def _collect_session_deps(self) -> None:
        """Dependencies that hand out a session: ``yield session`` / ``return session``."""
        for qual in sorted(self.dependencies):
            func = self.functions.get(qual)
            if func is None:
                continue
            self._collect_kinds(func)
            for node in func.nodes:
                if isinstance(node, ast.Yield | ast.Return) and node.value is not None:
                    kind = self.kind_of(func, node.value)
                    if kind and kind.startswith("session"):
                        self.session_deps[qual] = kind

    def _collect_kinds(self, func: Func) -> None:
        """What each local name holds: a sync/async session, an engine, an HTTP client."""
        kinds: dict[str, str] = {}
        defaults = param_defaults(func.node)
        for param in func.params:
            kind = self._annotation_kind(func, param.annotation)
            depends = depends_default(defaults.get(param.arg)) or annotated_depends(
                param.annotation
            )
            if depends is None and param.annotation is not None:
                depends = self._alias_depends(func, param.annotation)
            if depends is not None:
                target = self.resolve(func, depends)
                dep_kind = self.session_deps.get(target)
                if dep_kind:
                    kind = kind or dep_kind
                if kind is None:
                    dep_func = self.functions.get(target)
                    if dep_func is not None and dep_func.qual != func.qual:
                        self._collect_kinds(dep_func) if not dep_func.kinds else None
                        kind = self._returns_kind(dep_func)
            if kind:
                kinds[param.arg] = kind
        func.kinds = kinds
        for node in func.nodes:
            if isinstance(node, ast.With | ast.AsyncWith):
                for item in node.items:
                    if isinstance(item.optional_vars, ast.Name):
                        kind = self._value_kind(func, item.context_expr, with_item=True)
                        if kind:
                            kinds[item.optional_vars.id] = kind
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                assigned = node.targets[0]
                if isinstance(assigned, ast.Name):
                    kind = self._value_kind(func, node.value)
                    if kind:
                        kinds[assigned.id] = kind

    def _returns_kind(self, func: Func) -> str | None:
        for node in func.nodes:
            if isinstance(node, ast.Yield | ast.Return) and node.value is not None:
                kind = self.kind_of(func, node.value)
                if kind:
                    return kind
        return None

    def _alias_depends(self, func: Func, annotation: ast.AST) -> ast.AST | None:
        if isinstance(annotation, ast.Name):
            value = self._module_value(func.file.module, annotation)
            return annotated_depends(value)
        return None

    def _module_value(self, module: str, expr: ast.AST) -> ast.AST | None:
        dotted = self.resolve_in(module, expr) or ""
        owner, _, name = dotted.rpartition(".")
        return self.module_defs.get(owner, {}).get(name)

    def _annotation_kind(self, func: Func, annotation: ast.AST | None) -> str | None:
        if annotation is None:
            return None
        if isinstance(annotation, ast.Name):
            value = self._module_value(func.file.module, annotation)
            if value is not None and isinstance(value, ast.Subscript):
                annotation = value
        for name_node in annotation_names(annotation):
            name = last_name(name_node)
            if name in ASYNC_SESSION_TYPES:
                return "engine_async" if name.endswith("Engine") else "session_async"
            if name in SYNC_SESSION_TYPES:
                return "engine_sync" if name == "Engine" else "session_sync"
            dotted = self.resolve(func, name_node)
            if dotted in HTTP_CLIENT_FACTORIES:
                return "http"
        return None

    def _value_kind(self, func: Func, value: ast.AST, with_item: bool = False) -> str | None:
        if isinstance(value, ast.Await):
            value = value.value
        if not isinstance(value, ast.Call):
            if isinstance(value, ast.Name) and value.id in func.kinds:
                return func.kinds[value.id]
            return None
        dotted = self.resolve(func, value.func)
        if dotted in HTTP_CLIENT_FACTORIES or dotted.startswith(
            ("requests.", "httpx.", "aiohttp.")
        ):
            return "http"
        called = last_name(value)
        if self.is_engine_factory(func, value):
            return "engine_async" if called == "create_async_engine" else "engine_sync"
        if called in {"connect", "begin"} and isinstance(value.func, ast.Attribute):
            receiver = self.kind_of(func, value.func.value)
            if receiver and receiver.startswith("engine"):
                return "session" + receiver[len("engine") :]
            if receiver and receiver.startswith("session"):
                return receiver
        factory = self.factory_kind(func, value.func)
        if (
            factory
            and self.factories.get(dotted) is None
            and called
            not in {
                "Session",
                "AsyncSession",
            }
        ):
            # an engine name called like a function is not a session
            factory = None if any(k.endswith("." + called) for k in self.engines) else factory
        if factory:
            return f"session_{factory}"
        if isinstance(value.func, ast.Attribute) and value.func.attr == "begin":
            inner = value.func.value
            if isinstance(inner, ast.Call):
                kind = self.factory_kind(func, inner.func)
                if kind:
                    return f"session_{kind}"
        return None

    def kind_of(self, func: Func, expr: ast.AST) -> str | None:
        """What ``expr`` holds inside ``func``: 'session_sync', 'session_async', 'session'
        (a session of unknown flavour, by its name), 'engine_sync', 'engine_async', 'http'."""
        if isinstance(expr, ast.Name):
            if expr.id in func.kinds:
                return func.kinds[expr.id]
            dotted = self.resolve(func, expr)
            if dotted in self.engines:
                return "engine_" + self.engines[dotted]
            if SESSION_NAME.search(expr.id):
                return "session"
            if expr.id == "engine" or expr.id.endswith("_engine"):
                return "engine"
            return None
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
            if expr.value.id in {"self", "cls"}:
                if SESSION_NAME.search(expr.attr.lstrip("_")):
                    return "session"
                if expr.attr.lstrip("_") == "engine":
                    return "engine"
            dotted = self.resolve(func, expr)
            if dotted in self.engines:
                return "engine_" + self.engines[dotted]
            if expr.attr in {"session", "db"} and expr.value.id not in {
                "request",
                "req",
                "websocket",
                "ws",
                "flask",
                "g",
            }:
                return "session"
        if isinstance(expr, ast.Call):
            return self._value_kind(func, expr)
        return None

    def db_call(
        self, func: Func, call: ast.Call, methods: AbstractSet[str] = DB_EXEC_METHODS
    ) -> str | None:
        """The session kind when ``call`` runs a statement on a session/connection."""
        if not isinstance(call.func, ast.Attribute) or call.func.attr not in methods:
            return None
        kind = self.kind_of(func, call.func.value)
        if kind and (kind.startswith(("session", "engine"))):
            # dict.get / request.get on something merely named like a session
            if (
                call.func.attr == "get"
                and kind in {"session", "engine"}
                and (not call.args or not looks_like_model(call.args[0]))
            ):
                return None
            return kind
        return None
