"""What the rules need to know about a project beyond one line of code.

The index is built once per scan: imports resolved to dotted names, classes
(SQLAlchemy models with their relationships and loader strategies, Pydantic
schemas, settings classes), every function with its calls resolved to the
project's own functions (the call graph), the FastAPI routes and the
functions used as dependencies, and which functions a request can reach.
Within a function, ``kind_of`` tells a sync Session from an AsyncSession, an
engine or an HTTP client, from annotations, dependencies and assignments.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass, field

from .kinds import (
    ASYNC_SESSION_TYPES,
    DB_EXEC_METHODS,
    DB_WRITE_METHODS,
    ENGINE_FACTORIES,
    SYNC_SESSION_TYPES,
    KindsMixin,
)
from .project import Dependency, SourceFile
from .syntax import (
    annotated_depends,
    annotation_names,
    const_str,
    depends_default,
    is_true,
    keyword,
    last_name,
    once_only_calls,
    param_defaults,
    walk_body,
    words,
)

HTTP_METHODS = {"get", "post", "put", "patch", "delete", "options", "head", "trace", "api_route"}
CACHE_DECORATORS = {"lru_cache", "cache", "cached_property", "cached", "alru_cache"}
# Method names too common to resolve by name alone when the receiver's type is unknown.
COMMON_METHODS = (
    DB_EXEC_METHODS
    | DB_WRITE_METHODS
    | words(
        "__init__ add all append close copy create decode dict encode first format items "
        "join json keys list lower one patch pop post put read remove replace run save "
        "send set split strip update upper values write"
    )
)


@dataclass(eq=False)
class ClassInfo:
    """A class of the project, with what the rules care about."""

    qual: str
    name: str
    node: ast.ClassDef
    file: SourceFile
    bases: list[str] = field(default_factory=list)  # resolved dotted names
    is_model: bool = False
    is_schema: bool = False
    is_settings: bool = False
    relationships: dict[str, Relationship] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)  # name → type text
    fields: dict[str, ast.AST] = field(default_factory=dict)  # schema fields → annotation
    extra_allowed: bool = False
    from_attributes: bool = False
    attr_types: dict[str, str] = field(default_factory=dict)  # self.x → class qual


@dataclass
class Relationship:
    """One ``relationship()`` of a model and how it loads."""

    name: str
    model: str
    target: str
    lazy: str
    line: int


@dataclass(eq=False)
class Func:
    """A function or method of the project."""

    qual: str
    name: str
    node: ast.FunctionDef | ast.AsyncFunctionDef
    file: SourceFile
    cls: ClassInfo | None
    is_async: bool
    calls: list[tuple[ast.Call, Func]] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)
    assigns: dict[str, list[ast.AST]] = field(default_factory=dict)
    awaited: set[int] = field(default_factory=set)
    params: list[ast.arg] = field(default_factory=list)

    _nodes: list[ast.AST] | None = None
    _once: set[int] | None = None

    @property
    def line(self) -> int:
        return self.node.lineno

    @property
    def nodes(self) -> list[ast.AST]:
        """Every node of the body (not of nested functions), walked once and kept."""
        if self._nodes is None:
            self._nodes = list(walk_body(self.node))
        return self._nodes

    def decorator_names(self) -> set[str]:
        return {last_name(d) for d in self.node.decorator_list}

    def is_cached(self) -> bool:
        return bool(self.decorator_names() & CACHE_DECORATORS)

    def is_cli_command(self) -> bool:
        """A click/typer command (``@cli.command()``, ``@app.command()``, ``@click.group()``):
        run from a terminal or a cron job, never by a request."""
        for decorator in self.node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if last_name(target) in {"command", "group", "callback"} and isinstance(
                target, ast.Attribute
            ):
                return True
        return False

    def once_only(self, node: ast.AST) -> bool:
        """Whether ``node`` runs only while the function lazily creates what it keeps."""
        if self._once is None:
            self._once = once_only_calls(self.node)
        return id(node) in self._once


@dataclass
class Route:
    """One FastAPI path operation."""

    func: Func
    method: str
    path: str
    decorator: ast.Call
    response_model: ast.AST | None
    has_response_model: bool

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


class Index(KindsMixin):
    """The project as the rules see it."""

    def __init__(self, files: list[SourceFile], deps: dict[str, Dependency] | None = None):
        self.files = [f for f in files if f.tree is not None]
        self.deps = deps or {}
        self.by_module = {f.module: f for f in self.files}
        # When the scan starts below the package root (examples/shop_api/fast), imports
        # spell the full path (examples.shop_api.fast.db): these prefixes are stripped.
        self.root_prefixes: list[str] = []
        if self.files:
            first = self.files[0]
            root_parts = first.path.parts[: len(first.path.parts) - len(first.rel.split("/"))]
            self.root_prefixes = [".".join(root_parts[i:]) + "." for i in range(1, len(root_parts))]
            self.root_prefixes.sort(key=len, reverse=True)
        self.imports: dict[str, dict[str, str]] = {}
        self.module_defs: dict[str, dict[str, ast.AST]] = {}
        self.classes: dict[str, ClassInfo] = {}
        self.class_by_name: dict[str, list[ClassInfo]] = {}
        self.functions: dict[str, Func] = {}
        self.func_by_node: dict[int, Func] = {}
        self.methods_by_name: dict[str, list[Func]] = {}
        self.routes: list[Route] = []
        self.route_of: dict[str, Route] = {}
        self.dependencies: set[str] = set()
        self.dependency_classes: set[str] = set()
        self.lifespans: set[str] = set()
        self.factories: dict[str, str] = {}  # dotted name of a session factory → "sync"/"async"
        self.engines: dict[str, str] = {}  # dotted name of a module-level engine → "sync"/"async"
        self.session_deps: dict[str, str] = {}  # dependency function → session kind
        self.reach: dict[str, list[str]] = {}  # request-reachable function → chain from a route
        for source in self.files:
            self._collect_module(source)
        for info in self.classes.values():
            self._classify(info, set())
        for info in self.classes.values():
            if info.is_model:
                self._collect_model(info)
            if info.is_schema:
                self._collect_schema(info)
        self._collect_factories()
        self.functions_by_name: dict[str, list[Func]] = {}
        for func in self.functions.values():
            if func.cls is None:
                self.functions_by_name.setdefault(func.name, []).append(func)
        self._top_packages = {m.split(".")[0] for m in self.by_module}
        for func in self.functions.values():
            self._collect_locals(func)
        self._collect_routes()
        self._collect_session_deps()
        for func in self.functions.values():
            self._collect_kinds(func)
        for func in self.functions.values():
            self._resolve_calls(func)
        self._compute_reach()

    # --- names ----------------------------------------------------------------------------

    def _collect_module(self, source: SourceFile) -> None:
        imports: dict[str, str] = {}
        defs: dict[str, ast.AST] = {}
        package_parts = source.module.split(".")
        if not source.rel.endswith("__init__.py"):
            package_parts = package_parts[:-1]
        for node in ast.walk(source.parsed):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        imports[alias.asname] = self._in_project(alias.name)
                    else:
                        imports[alias.name.split(".")[0]] = alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = package_parts[: len(package_parts) - node.level + 1]
                    base = ".".join([*base_parts, *([node.module] if node.module else [])])
                else:
                    base = node.module or ""
                for alias in node.names:
                    imports[alias.asname or alias.name] = self._in_project(
                        f"{base}.{alias.name}".strip(".")
                    )
        for node in source.parsed.body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        defs[target.id] = node.value
            elif (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and node.value is not None
            ):
                defs[node.target.id] = node.value
        self.imports[source.module] = imports
        self.module_defs[source.module] = defs
        self._collect_defs(source, source.parsed.body, source.module, None)

    def _collect_defs(
        self, source: SourceFile, body: list[ast.stmt], prefix: str, cls: ClassInfo | None
    ) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                info = ClassInfo(f"{prefix}.{node.name}", node.name, node, source)
                info.bases = [self.resolve_in(source.module, b) or last_name(b) for b in node.bases]
                self.classes[info.qual] = info
                self.class_by_name.setdefault(node.name, []).append(info)
                self._collect_defs(source, node.body, info.qual, info)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                func = Func(
                    f"{prefix}.{node.name}",
                    node.name,
                    node,
                    source,
                    cls,
                    isinstance(node, ast.AsyncFunctionDef),
                )
                func.params = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
                self.functions[func.qual] = func
                self.func_by_node[id(node)] = func
                if cls is not None:
                    self.methods_by_name.setdefault(node.name, []).append(func)
                self._collect_defs(source, node.body, func.qual, None)

    def _in_project(self, dotted: str) -> str:
        for prefix in self.root_prefixes:
            if dotted.startswith(prefix):
                return dotted[len(prefix) :]
        return dotted

    def resolve_in(self, module: str, expr: ast.AST) -> str | None:
        """The dotted name ``expr`` refers to in ``module``, following imports."""
        if isinstance(expr, ast.Name):
            imported = self.imports.get(module, {}).get(expr.id)
            if imported:
                return imported
            return f"{module}.{expr.id}"
        if isinstance(expr, ast.Attribute):
            base = self.resolve_in(module, expr.value)
            return f"{base}.{expr.attr}" if base else None
        return None

    def resolve(self, func_or_file: Func | SourceFile, expr: ast.AST) -> str:
        file = func_or_file.file if isinstance(func_or_file, Func) else func_or_file
        return self.resolve_in(file.module, expr) or ""

    def _is_project_path(self, dotted: str) -> bool:
        """Whether an imported dotted name points into the project, under any import root
        (``app.models.User`` for the module ``backend.app.models``)."""
        if not hasattr(self, "_suffixes"):
            self._suffixes: set[str] = set()
            for name in self.by_module:
                parts = name.split(".")
                self._suffixes.update(".".join(parts[i:]) for i in range(len(parts)))
        parts = dotted.split(".")
        return any(".".join(parts[:i]) in self._suffixes for i in range(len(parts), 0, -1))

    def class_for(self, module: str, expr: ast.AST) -> ClassInfo | None:
        dotted = self.resolve_in(module, expr)
        if dotted and dotted in self.classes:
            return self.classes[dotted]
        head = expr
        while isinstance(head, ast.Attribute):
            head = head.value
        imported = self.imports.get(module, {}).get(getattr(head, "id", ""), "")
        if imported and not self._is_project_path(imported):
            return None  # another library's class of the same name (ukrr_extract's Settings)
        # re-exported through a package __init__, or imported under another path
        candidates = self.class_by_name.get(last_name(expr), [])
        return candidates[0] if len(candidates) == 1 else None

    # --- classes --------------------------------------------------------------------------

    def _classify(self, info: ClassInfo, seen: set[str]) -> None:
        if info.qual in seen:
            return
        seen.add(info.qual)
        keywords = {k.arg: k.value for k in info.node.keywords}
        body_names: set[str] = set()
        for stmt in info.node.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else []
            if isinstance(stmt, ast.AnnAssign):
                targets = [stmt.target]
            body_names.update(t.id for t in targets if isinstance(t, ast.Name))
        for base in info.bases:
            short = base.rsplit(".", 1)[-1]
            parent = self.classes.get(base) or next(
                iter(self.class_by_name.get(short, []) if short != info.name else []), None
            )
            if parent is not None and parent is not info:
                self._classify(parent, seen)
                info.is_model |= parent.is_model and (
                    "__tablename__" in body_names or not _is_abstract_base(parent)
                )
                info.is_schema |= parent.is_schema
                info.is_settings |= parent.is_settings
                info.extra_allowed |= parent.extra_allowed
                info.from_attributes |= parent.from_attributes
            if short in {"BaseSettings"}:
                info.is_settings = True
            elif short in {"BaseModel", "RootModel", "GenericModel"} or (
                short == "SQLModel" and not is_true(keywords.get("table"))
            ):
                info.is_schema = True
        if "__tablename__" in body_names or "__table__" in body_names:
            info.is_model = True
        if is_true(keywords.get("table")):
            info.is_model, info.is_schema = True, False
        if info.is_settings:
            info.is_schema = False

    def _collect_model(self, info: ClassInfo) -> None:
        for stmt in info.node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                name, value, annotation = stmt.target.id, stmt.value, stmt.annotation
            elif (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
            ):
                name, value, annotation = stmt.targets[0].id, stmt.value, None
            else:
                continue
            called = last_name(value) if isinstance(value, ast.Call) else ""
            if isinstance(value, ast.Call) and called in {"relationship", "Relationship"}:
                self._add_relationship(info, name, value, annotation, stmt.lineno)
            elif called in {"Column", "mapped_column", "Field"} or annotation is not None:
                parts = [p for p in (annotation, value if called else None) if p is not None]
                info.columns[name] = " ".join(ast.unparse(p) for p in parts)[:200]

    def _add_relationship(
        self,
        info: ClassInfo,
        name: str,
        call: ast.Call,
        annotation: ast.expr | None,
        line: int,
    ) -> None:
        lazy = const_str(keyword(call, "lazy"))
        extra = keyword(call, "sa_relationship_kwargs")
        if lazy is None and isinstance(extra, ast.Dict):
            for key, value in zip(extra.keys, extra.values, strict=False):
                if const_str(key) == "lazy":
                    lazy = const_str(value)
        target = const_str(call.args[0]) if call.args else None
        if target is None and call.args:
            target = last_name(call.args[0])
        if not target and annotation is not None:
            names = annotation_names(annotation)
            target = last_name(names[0]) if names else ""
        info.relationships[name] = Relationship(
            name, info.name, target or "", lazy or "select", line
        )
        backref = keyword(call, "backref")
        backref_name = const_str(backref)
        if backref_name is None and isinstance(backref, ast.Call) and backref.args:
            backref_name = const_str(backref.args[0])
        if backref_name and target:
            for other in self.class_by_name.get(target.rsplit(".", 1)[-1], []):
                other.relationships.setdefault(
                    backref_name, Relationship(backref_name, other.name, info.name, "select", line)
                )

    def _collect_schema(self, info: ClassInfo) -> None:
        for stmt in info.node.body:
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and last_name(stmt.annotation) != "ClassVar"
            ):
                info.fields[stmt.target.id] = stmt.annotation
            config_values: list[tuple[str, ast.AST]] = []
            if isinstance(stmt, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "model_config" for t in stmt.targets
            ):
                if isinstance(stmt.value, ast.Call):
                    config_values = [(k.arg or "", k.value) for k in stmt.value.keywords]
                elif isinstance(stmt.value, ast.Dict):
                    config_values = [
                        (const_str(k) or "", v)
                        for k, v in zip(stmt.value.keys, stmt.value.values, strict=False)
                    ]
            elif isinstance(stmt, ast.ClassDef) and stmt.name == "Config":
                for inner in stmt.body:
                    if isinstance(inner, ast.Assign) and isinstance(inner.targets[0], ast.Name):
                        config_values.append((inner.targets[0].id, inner.value))
            for key, value in config_values:
                text = ast.unparse(value)
                if key == "extra" and "allow" in text:
                    info.extra_allowed = True
                if key in {"from_attributes", "orm_mode"} and is_true(value):
                    info.from_attributes = True

    def models_named(self, name: str) -> list[ClassInfo]:
        return [c for c in self.class_by_name.get(name, []) if c.is_model]

    def model_at(self, func_or_file: Func | SourceFile, expr: ast.AST) -> ClassInfo | None:
        """The ORM model ``expr`` names where it is written, resolved through the imports.

        A Pydantic schema that shares its name with a model (``schemas.Deck`` beside
        ``models.Deck``) is not that model: the name alone decides only when every
        class of that name in the project is a model.
        """
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            try:
                expr = ast.parse(expr.value, mode="eval").body
            except SyntaxError:
                return None
        if not isinstance(expr, ast.Name | ast.Attribute):
            return None
        file = func_or_file.file if isinstance(func_or_file, Func) else func_or_file
        dotted = self.resolve_in(file.module, expr) or ""
        found = self.classes.get(dotted) or self.classes.get(self._in_project(dotted))
        if found is not None:
            return found if found.is_model else None
        candidates = self.class_by_name.get(last_name(expr), [])
        if not candidates:
            return None
        module = dotted.rsplit(".", 1)[0]
        near = [c for c in candidates if module and c.qual.rsplit(".", 1)[0].endswith(module)]
        if len(near) == 1:
            return near[0] if near[0].is_model else None
        models = [c for c in candidates if c.is_model]
        return models[0] if len(models) == len(candidates) else None

    def lazy_relationships(self) -> dict[str, list[Relationship]]:
        """Relationship name → the lazily loaded relationships of that name."""
        found: dict[str, list[Relationship]] = {}
        for info in self.classes.values():
            for rel in info.relationships.values():
                if rel.lazy in {"select", "True", "true"}:
                    found.setdefault(rel.name, []).append(rel)
        return found

    # --- call graph -----------------------------------------------------------------------

    def _resolve_calls(self, func: Func) -> None:
        for node in func.nodes:
            if isinstance(node, ast.Call):
                callee = self._callee(func, node.func)
                if callee is not None and callee is not func:
                    func.calls.append((node, callee))

    def _callee(self, func: Func, target: ast.AST) -> Func | None:
        module = func.file.module
        if isinstance(target, ast.Name):
            dotted = self.resolve_in(module, target) or ""
            found = self.functions.get(dotted) or self.functions.get(f"{func.qual}.{target.id}")
            if found is None and dotted in self.classes:
                return None
            if found is None and dotted.split(".")[0] in self._top_packages:
                # imported through a package that re-exports it
                candidates = self.functions_by_name.get(target.id, [])
                if len(candidates) == 1:
                    found = candidates[0]
            return found
        if not isinstance(target, ast.Attribute):
            return None
        owner = target.value
        if isinstance(owner, ast.Name) and owner.id in {"self", "cls"} and func.cls is not None:
            return self._method(func.cls, target.attr, set())
        if isinstance(owner, ast.Name) and owner.id not in func.kinds:
            dotted = self.resolve_in(module, target) or ""
            if dotted in self.functions:
                return self.functions[dotted]
            owner_class = self.class_for(module, owner) if owner.id[:1].isupper() else None
            if owner_class is not None:
                return self._method(owner_class, target.attr, set())
            owner_class = self._local_class(func, owner.id)
            if owner_class is not None:
                return self._method(owner_class, target.attr, set())
        if (
            isinstance(owner, ast.Attribute)
            and isinstance(owner.value, ast.Name)
            and owner.value.id == "self"
            and func.cls is not None
        ):
            attr_class = func.cls.attr_types.get(owner.attr) or self._init_attr_class(
                func.cls, owner.attr
            )
            if attr_class and attr_class in self.classes:
                return self._method(self.classes[attr_class], target.attr, set())
        if isinstance(owner, ast.Name) and func.kinds.get(owner.id, "").startswith(
            ("session", "engine", "http")
        ):
            return None
        if target.attr in COMMON_METHODS or target.attr.startswith("__"):
            return None
        candidates = self.methods_by_name.get(target.attr, [])
        return candidates[0] if len(candidates) == 1 else None

    def _method(self, info: ClassInfo, name: str, seen: set[str]) -> Func | None:
        if info.qual in seen:
            return None
        seen.add(info.qual)
        found = self.functions.get(f"{info.qual}.{name}")
        if found is not None:
            return found
        for base in info.bases:
            parent = self.classes.get(base) or next(
                iter(self.class_by_name.get(base.rsplit(".", 1)[-1], [])), None
            )
            if parent is not None:
                found = self._method(parent, name, seen)
                if found is not None:
                    return found
        return None

    def _local_class(self, func: Func, name: str) -> ClassInfo | None:
        """The project class of a parameter (by annotation) or of a local built from one."""
        for param in func.params:
            if param.arg == name:
                for name_node in annotation_names(param.annotation):
                    info = self.class_for(func.file.module, name_node)
                    if info is not None:
                        return info
                default = param_defaults(func.node).get(name)
                target = depends_default(default)
                if target is not None:
                    info = self.class_for(func.file.module, target)
                    if info is not None:
                        return info
        for value in func.assigns.get(name, []):
            if isinstance(value, ast.Call):
                info = self.class_for(func.file.module, value.func)
                if info is not None:
                    return info
        return None

    def _init_attr_class(self, info: ClassInfo, attr: str) -> str | None:
        for stmt in info.node.body:
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and stmt.target.id == attr
            ):
                for name_node in annotation_names(stmt.annotation):
                    found = self.class_for(info.file.module, name_node)
                    if found is not None:
                        info.attr_types[attr] = found.qual
                        return found.qual
        init = self.functions.get(f"{info.qual}.__init__")
        if init is None:
            return None
        for node in init.nodes:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.targets[0], ast.Attribute)
                and node.targets[0].attr == attr
            ):
                value = node.value
                if isinstance(value, ast.Call):
                    found = self.class_for(info.file.module, value.func)
                elif isinstance(value, ast.Name):
                    found = self._local_class(init, value.id)
                else:
                    found = None
                if found is not None:
                    info.attr_types[attr] = found.qual
                    return found.qual
        return None

    # --- routes and dependencies ----------------------------------------------------------

    def _app_objects(self) -> set[str]:
        found = set()
        for module, defs in self.module_defs.items():
            for name, value in defs.items():
                if isinstance(value, ast.Call) and last_name(value) in {"FastAPI", "APIRouter"}:
                    found.add(f"{module}.{name}")
        return found

    def _collect_routes(self) -> None:
        apps = self._app_objects()
        prefixes = {}
        for module, defs in self.module_defs.items():
            for name, value in defs.items():
                if isinstance(value, ast.Call) and last_name(value) == "APIRouter":
                    prefixes[f"{module}.{name}"] = const_str(keyword(value, "prefix")) or ""
        for func in self.functions.values():
            uses_fastapi = any(
                v.startswith("fastapi") for v in self.imports.get(func.file.module, {}).values()
            )
            for decorator in func.node.decorator_list:
                if not (
                    isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                ):
                    continue
                method = decorator.func.attr
                owner = self.resolve(func, decorator.func.value)
                path = const_str(decorator.args[0]) if decorator.args else None
                path = path if path is not None else const_str(keyword(decorator, "path"))
                if method == "on_event" or (method == "websocket" and owner in apps):
                    if method == "on_event":
                        self.lifespans.add(func.qual)
                    continue
                if method not in HTTP_METHODS or path is None:
                    continue
                if owner not in apps and not (uses_fastapi and path.startswith("/")):
                    continue
                if method == "api_route":
                    methods = keyword(decorator, "methods")
                    method = (
                        "/".join(const_str(e) or "?" for e in methods.elts)
                        if isinstance(methods, ast.List | ast.Tuple)
                        else "get"
                    )
                response_model = keyword(decorator, "response_model")
                route = Route(
                    func,
                    method,
                    prefixes.get(owner, "") + path,
                    decorator,
                    response_model,
                    response_model is not None,
                )
                self.routes.append(route)
                self.route_of.setdefault(func.qual, route)
        for source in self.files:
            for node in self.file_nodes(source):
                if not isinstance(node, ast.Call):
                    continue
                called = last_name(node)
                if called in {"Depends", "Security"}:
                    target = node.args[0] if node.args else keyword(node, "dependency")
                    if target is not None:
                        self._add_dependency(source, target)
                elif called in {"FastAPI", "Starlette"}:
                    lifespan = keyword(node, "lifespan")
                    if lifespan is not None:
                        self.lifespans.add(self.resolve(source, lifespan))
        for func in self.functions.values():
            if func.name == "lifespan" or func.name.endswith("_lifespan"):
                self.lifespans.add(func.qual)
        # a class-based dependency with no argument: `x: Service = Depends()`
        for func in list(self.functions.values()):
            defaults = param_defaults(func.node)
            for param in func.params:
                default = defaults.get(param.arg)
                if (
                    isinstance(default, ast.Call)
                    and last_name(default) == "Depends"
                    and not default.args
                ):
                    for name_node in annotation_names(param.annotation):
                        self._add_dependency(func.file, name_node)

    def _add_dependency(self, source: SourceFile, target: ast.AST) -> None:
        dotted = self.resolve(source, target)
        if dotted in self.functions:
            self.dependencies.add(dotted)
            return
        info = self.class_for(source.module, target)
        if info is not None:
            self.dependency_classes.add(info.qual)
            init = self.functions.get(f"{info.qual}.__init__")
            if init is not None:
                self.dependencies.add(init.qual)
            return
        candidates = self.functions_by_name.get(last_name(target), [])
        if len(candidates) == 1:
            self.dependencies.add(candidates[0].qual)

    def _compute_reach(self) -> None:
        """Functions a request runs: routes, dependencies and what they call."""
        queue: deque[str] = deque()
        for route in self.routes:
            if route.func.qual not in self.reach:
                self.reach[route.func.qual] = [f"{route.label} → {route.func.qual}"]
                queue.append(route.func.qual)
        for qual in sorted(self.dependencies):
            if qual not in self.reach:
                self.reach[qual] = [f"dependency {qual}"]
                queue.append(qual)
        while queue:
            func = self.functions[queue.popleft()]
            for call, callee in func.calls:
                if callee.qual in self.reach or callee.qual in self.lifespans:
                    continue
                if callee.is_cached() or func.once_only(call) or callee.is_cli_command():
                    continue  # memoised, or the lazy creation of a kept object: not per request
                self.reach[callee.qual] = [*self.reach[func.qual], callee.qual]
                queue.append(callee.qual)

    def file_nodes(self, source: SourceFile) -> list[ast.AST]:
        """Every node of a file's tree, walked once and kept."""
        if not hasattr(self, "_file_nodes"):
            self._file_nodes: dict[str, list[ast.AST]] = {}
        if source.rel not in self._file_nodes:
            self._file_nodes[source.rel] = list(ast.walk(source.parsed))
        return self._file_nodes[source.rel]

    def is_engine_factory(self, owner: Func | SourceFile, call: ast.AST) -> bool:
        """``create_engine(...)`` of SQLAlchemy, not a project function of the same name."""
        if not isinstance(call, ast.Call) or last_name(call) not in ENGINE_FACTORIES:
            return False
        dotted = self.resolve(owner, call.func)
        return dotted not in self.functions and dotted.rsplit(".", 1)[0] not in self.by_module

    def enclosing_function(self, source: SourceFile, line: int) -> Func | None:
        """The innermost function of ``source`` whose lines include ``line``."""
        if not hasattr(self, "_by_file"):
            self._by_file: dict[str, list[Func]] = {}
            for func in self.functions.values():
                self._by_file.setdefault(func.file.rel, []).append(func)
        best = None
        for func in self._by_file.get(source.rel, []):
            inside = func.node.lineno <= line <= (func.node.end_lineno or 0)
            if inside and (best is None or func.node.lineno >= best.node.lineno):
                best = func
        return best

    def request_params(self, func: Func) -> list[ast.arg]:
        """Parameters of a route that FastAPI fills from the request (path, query, body...)."""
        defaults = param_defaults(func.node)
        found = []
        for param in func.params:
            if param.arg in {"self", "cls"}:
                continue
            default = defaults.get(param.arg)
            if depends_default(default) is not None or annotated_depends(param.annotation):
                continue
            if isinstance(default, ast.Call) and last_name(default) == "Depends":
                continue
            if self._alias_depends(func, param.annotation) if param.annotation else None:
                continue
            names = {last_name(n) for n in annotation_names(param.annotation)}
            if names & {
                "Request",
                "Response",
                "BackgroundTasks",
                "WebSocket",
                "HTTPConnection",
                "SecurityScopes",
                *SYNC_SESSION_TYPES,
                *ASYNC_SESSION_TYPES,
            }:
                continue
            found.append(param)
        return found


def _is_abstract_base(info: ClassInfo) -> bool:
    """``class Base(DeclarativeBase)`` is not itself a table."""
    names = {
        t.id
        for stmt in info.node.body
        if isinstance(stmt, ast.Assign)
        for t in stmt.targets
        if isinstance(t, ast.Name)
    }
    return "__tablename__" not in names and "__table__" not in names
