"""Version-gated rules: Pydantic v1 API under a Pydantic 2 pin (FSA501), legacy
``session.query()`` in SQLAlchemy 2 code (FSA502). Without a pin they do not guess."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from ...base import CHECK_PASSED, CHECK_UNKNOWN
from ..index import ClassInfo, Func, Index
from ..project import pinned_major
from ..syntax import annotation_names, last_name
from . import Hit, check
from .common import Scan

V1_CLASS_METHODS = {
    "parse_obj",
    "parse_raw",
    "parse_file",
    "from_orm",
    "schema",
    "schema_json",
    "update_forward_refs",
    "construct",
    "validate",
}
V1_CONFIG = {
    "orm_mode",
    "allow_population_by_field_name",
    "schema_extra",
    "anystr_strip_whitespace",
    "allow_mutation",
    "underscore_attrs_are_private",
}
V1_FIELD_KEYWORDS = {"regex", "min_items", "max_items", "const", "allow_mutation"}
V1_IMPORTS = {"validator", "root_validator", "BaseSettings", "parse_obj_as"}
V1_INSTANCE_METHODS = {"dict", "json", "copy"}


@check("FSA501")
def pydantic_v1_api(scan: Scan) -> Iterator[Hit]:
    major = pinned_major(scan.index.deps.get("pydantic"))
    if major != 2:
        scan.notes["FSA501"] = (
            (CHECK_PASSED, f"the project pins Pydantic {major}: v1 API is expected")
            if major is not None
            else (CHECK_UNKNOWN, "no Pydantic pin found (pyproject, requirements or lock file)")
        )
        return
    index = scan.index
    schemas = {info.name for info in index.classes.values() if info.is_schema}
    for source in index.files:
        for node in scan.index.file_nodes(source):
            if isinstance(node, ast.ImportFrom) and node.module == "pydantic":
                for alias in node.names:
                    if alias.name in V1_IMPORTS:
                        yield Hit(
                            "FSA501",
                            source,
                            node,
                            None,
                            detail=f"`from pydantic import {alias.name}` is Pydantic v1 API",
                        )
            elif (
                isinstance(node, ast.Call)
                and last_name(node) == "Field"
                and any(k.arg in V1_FIELD_KEYWORDS for k in node.keywords)
            ):
                bad = next(k.arg for k in node.keywords if k.arg in V1_FIELD_KEYWORDS)
                yield Hit("FSA501", source, node, None, detail=f"`Field({bad}=...)` is v1")
            elif isinstance(node, ast.ClassDef) and any(
                info.node is node and info.is_schema
                for info in index.class_by_name.get(node.name, [])
            ):
                for stmt in node.body:
                    if isinstance(stmt, ast.ClassDef) and stmt.name == "Config":
                        for inner in stmt.body:
                            if (
                                isinstance(inner, ast.Assign)
                                and isinstance(inner.targets[0], ast.Name)
                                and inner.targets[0].id in V1_CONFIG
                            ):
                                yield Hit(
                                    "FSA501",
                                    source,
                                    inner,
                                    None,
                                    detail=f"`class Config: {inner.targets[0].id}` is v1 "
                                    "configuration",
                                )
    callers = _callers(index)
    for func in index.functions.values():
        typed = {
            p.arg
            for p in func.params
            if any(last_name(n) in schemas for n in annotation_names(p.annotation))
        }
        for node in func.nodes:
            if not isinstance(node, ast.Call):
                continue
            name = last_name(node)
            if not isinstance(node.func, ast.Attribute):
                continue
            owner = node.func.value
            if name in V1_CLASS_METHODS and last_name(owner) in schemas:
                yield Hit("FSA501", func.file, node, func, detail=f"`.{name}()` is v1 API")
            elif (
                name == "dict"
                and not node.args
                and isinstance(owner, ast.Name)
                and owner.id not in func.kinds
                and _is_pydantic_receiver(index, func, owner.id, node, callers)
            ):
                yield Hit("FSA501", func.file, node, func, detail="`.dict()` is v1 API")
            elif name in {"json", "copy"} and isinstance(owner, ast.Name) and owner.id in typed:
                yield Hit("FSA501", func.file, node, func, detail=f"`.{name}()` is v1 API")
    for func in index.functions.values():
        for decorator in func.node.decorator_list:
            if last_name(decorator) in {"validator", "root_validator"}:
                dotted = index.resolve(func, getattr(decorator, "func", decorator))
                if dotted.startswith("pydantic.") and not dotted.startswith("pydantic.v1"):
                    yield Hit(
                        "FSA501",
                        func.file,
                        decorator,
                        func,
                        detail=f"`@{last_name(decorator)}` is v1 API",
                    )


@check("FSA502")
def legacy_query(scan: Scan) -> Iterator[Hit]:
    major = pinned_major(scan.index.deps.get("sqlalchemy"))
    modern = any(
        "mapped_column" in source.text or "DeclarativeBase" in source.text
        for source in scan.index.files
    )
    if major is not None and major < 2:
        scan.notes["FSA502"] = (CHECK_PASSED, f"the project pins SQLAlchemy {major}")
        return
    if major is None and not modern:
        scan.notes["FSA502"] = (
            CHECK_UNKNOWN,
            "no SQLAlchemy 2 pin and no 2.0-style models found",
        )
        return
    for func in scan.functions():
        for node in func.nodes:
            if isinstance(node, ast.Call) and scan.index.db_call(func, node, {"query"}):
                yield Hit(
                    "FSA502",
                    func.file,
                    node,
                    func,
                    detail=f"`{ast.unparse(node.func)[:40]}()` is the 1.x Query API",
                )


PYDANTIC_DICT_KEYWORDS = {"exclude_unset", "exclude_none", "exclude_defaults", "by_alias"}


# callee qual → (caller, call site) of every project call to it
type Callers = dict[str, list[tuple[Func, ast.Call]]]


def _callers(index: Index) -> Callers:
    found: Callers = {}
    for caller in index.functions.values():
        for call, callee in caller.calls:
            found.setdefault(callee.qual, []).append((caller, call))
    return found


def _own_dict(index: Index, info: ClassInfo, seen: set[str] | None = None) -> bool:
    """Whether a class (or a project base of it) defines its own ``dict()``."""
    seen = set() if seen is None else seen
    if info.qual in seen:
        return False
    seen.add(info.qual)
    if any(
        isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name == "dict"
        for stmt in info.node.body
    ):
        return True
    return any(_own_dict(index, index.classes[b], seen) for b in info.bases if b in index.classes)


def _schema_type(index: Index, func: Func, annotation: ast.expr | None) -> bool | None:
    """True: a Pydantic model without its own dict(); False: another type; None: unknown."""
    names = annotation_names(annotation)
    if not names or {last_name(n) for n in names} & {"Any", "object"}:
        return None
    for node in names:
        info = index.class_for(func.file.module, node)
        if info is not None and info.is_schema:
            return not _own_dict(index, info)
    return False


def _is_pydantic_receiver(
    index: Index, func: Func, name: str, call: ast.Call, callers: Callers
) -> bool:
    """``name.dict()``: is ``name`` a Pydantic model whose class keeps BaseModel's dict()?

    Its type comes from its annotation, from what it was assigned (``X(...)``,
    ``X.model_validate(...)``), or, for an unannotated parameter, from the arguments the
    project's callers pass; unknown types count only with Pydantic's own keywords.
    """
    params = {p.arg: p for p in func.params}
    if name in params:
        known = _schema_type(index, func, params[name].annotation)
        if known is not None:
            return known
        position = [p.arg for p in func.params]
        if func.cls is not None and position and position[0] in {"self", "cls"}:
            position = position[1:]
        verdicts = []
        for caller, site in callers.get(func.qual, []):
            arg = None
            if name in position and position.index(name) < len(site.args):
                arg = site.args[position.index(name)]
            arg = arg or next((k.value for k in site.keywords if k.arg == name), None)
            if isinstance(arg, ast.Name):
                caller_params = {p.arg: p for p in caller.params}
                if arg.id in caller_params:
                    verdicts.append(_schema_type(index, caller, caller_params[arg.id].annotation))
        if verdicts and all(v is not None for v in verdicts):
            return all(verdicts)
    for value in func.assigns.get(name, []):
        if isinstance(value, ast.Call):
            target = value.func
            if isinstance(target, ast.Attribute) and target.attr in {
                "model_validate",
                "parse_obj",
                "model_construct",
            }:
                target = target.value
            info = index.class_for(func.file.module, target)
            if info is not None:
                return info.is_schema and not _own_dict(index, info)
    return any(k.arg in PYDANTIC_DICT_KEYWORDS for k in call.keywords)
