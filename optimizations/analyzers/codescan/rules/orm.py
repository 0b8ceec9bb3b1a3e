"""ORM and query rules: N+1 (FSA101, FSA102), unbounded results and pagination (FSA105,
FSA106), leading-wildcard LIKE (FSA107), counting rows (FSA108), commit per row (FSA109)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from ..index import ClassInfo, Func, Relationship, Route
from ..syntax import annotation_names, const_str, keyword, last_name, param_defaults, words
from . import Hit, check
from .common import QUERY_METHODS, Scan

PAGE_SIZE_NAMES = words(
    "items_per_page limit max_items max_results page_size pagesize per_page perpage size take"
)
TEXT_TYPES = re.compile(r"\b(str|String|Text|Unicode|UnicodeText|VARCHAR|CITEXT|CHAR)\b")
NON_TEXT_TYPES = re.compile(r"\b(ARRAY|JSON|JSONB|list|dict|HSTORE|TSVECTOR|Range)\b")


@check("FSA101")
def query_in_loop(scan: Scan) -> Iterator[Hit]:
    for func in scan.functions():
        for loop, _iterable, _targets, body in scan.row_loops(func):
            for node in body:
                if not isinstance(node, ast.Call):
                    continue
                direct = scan.index.db_call(func, node, QUERY_METHODS)
                callee = None if direct else scan.callee(func, node)
                if direct or (callee is not None and scan.executes_query(callee)):
                    via = f" (through {callee.qual})" if callee is not None else ""
                    yield Hit(
                        "FSA101",
                        func.file,
                        node,
                        func,
                        detail=f"query per row of the loop at line {loop.lineno}{via}",
                        evidence={"loop_line": loop.lineno},
                    )


@check("FSA102")
def lazy_load_per_row(scan: Scan) -> Iterator[Hit]:
    lazy = scan.lazy
    if not lazy:
        return
    for func in scan.functions():
        row_loops = scan.row_loops(func)
        if not row_loops:
            continue
        chain = scan.chain_functions(func, 2)
        loaded = scan.loader_mentions(chain)
        # the rows' model: what this function queries, else what its callees query
        models = scan.queried_models([func]) or scan.queried_models(chain)
        for loop, _iterable, targets, body in row_loops:
            reported = set()
            for node in body:
                owner = node.value if isinstance(node, ast.Attribute) else None
                if isinstance(owner, ast.Attribute) and owner.attr == "awaitable_attrs":
                    owner = owner.value  # `await row.awaitable_attrs.rel`: still one SELECT a row
                if not (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.ctx, ast.Load)
                    and isinstance(owner, ast.Name)
                    and owner.id in targets
                    and node.attr in lazy
                ):
                    continue
                rels = [r for r in lazy[node.attr] if not models or r.model in models]
                if not rels or node.attr in loaded or "*" in loaded or node.attr in reported:
                    continue
                reported.add(node.attr)
                rel = rels[0]
                yield Hit(
                    "FSA102",
                    func.file,
                    node,
                    func,
                    detail=f"`{rel.model}.{rel.name}` is lazy and read for each row of the loop "
                    f"at line {loop.lineno} without an eager-load option",
                    evidence={"relationship": f"{rel.model}.{rel.name}", "loop_line": loop.lineno},
                )
    yield from _serialized_relationships(scan, lazy)


def _response_schema(scan: Scan, route: Route) -> ClassInfo | None:
    candidates: list[ast.AST] = []
    if route.response_model is not None:
        candidates = annotation_names(route.response_model)
    elif route.func.node.returns is not None:
        candidates = annotation_names(route.func.node.returns)
    for node in candidates:
        info = scan.index.class_for(route.func.file.module, node)
        if info is not None and info.is_schema:
            return info
    return None


def _serialized_relationships(scan: Scan, lazy: dict[str, list[Relationship]]) -> Iterator[Hit]:
    for route in scan.index.routes:
        schema = _response_schema(scan, route)
        if schema is None:
            continue
        chain = scan.chain_functions(route.func, 3)
        models = scan.queried_models(chain)
        if not models:
            continue
        loaded = scan.loader_mentions(chain) | _awaited_relationships(chain)
        for field_name, annotation in schema.fields.items():
            if field_name not in lazy or field_name in loaded or "*" in loaded:
                continue
            nested = [
                scan.index.class_for(schema.file.module, n) for n in annotation_names(annotation)
            ]
            if not any(info is not None and info.is_schema for info in nested):
                continue
            rels = [r for r in lazy[field_name] if r.model in models]
            if not rels:
                continue
            rel = rels[0]
            async_note = " (under asyncio: MissingGreenlet)" if route.func.is_async else ""
            yield Hit(
                "FSA102",
                route.func.file,
                route.decorator,
                route.func,
                detail=f"the response schema {schema.name} reads `{rel.model}.{rel.name}`, a lazy "
                f"relationship the query does not eager-load: one SELECT per row{async_note}",
                evidence={"relationship": f"{rel.model}.{rel.name}", "route": route.label},
            )


def _awaited_relationships(funcs: list[Func]) -> set[str]:
    """Relationships loaded explicitly (``await row.awaitable_attrs.rel``): FSA102 reports
    that loop itself, not the serializer that then reads loaded attributes."""
    return {
        node.attr
        for func in funcs
        for node in func.nodes
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "awaitable_attrs"
    }


@check("FSA105")
def unbounded_results(scan: Scan) -> Iterator[Hit]:
    index = scan.index
    for qual in index.reach:
        func = index.functions[qual]
        for node in func.nodes:
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"all", "fetchall"}
                and scan.is_rows(func, node.func.value)
            ):
                continue
            names = scan.statement_names(func, node.func.value)
            if not names & {"select", "query", "text"}:
                continue
            bounded = {
                "limit",
                "slice",
                "where",
                "filter",
                "filter_by",
                "fetch",
                "having",
                "count",
                "get",
                "with_parent",
            }
            if names & bounded:
                continue
            if not names & {"select", "query"} and not _raw_sql_unbounded(func, node.func.value):
                continue  # raw SQL we cannot read, or that filters/limits itself
            yield Hit(
                "FSA105",
                func.file,
                node,
                func,
                detail="the whole table is read: no LIMIT and no filter on this statement",
                evidence={"request_path": index.reach[qual]},
            )
    yield from _page_size_params(scan)


def _raw_sql_unbounded(func: Func, expr: ast.AST) -> bool:
    """A ``text()`` statement is unbounded only when its SQL can be read and has neither a
    WHERE nor a LIMIT; SQL built elsewhere (an adapter's property) is not known to be."""
    pending: list[ast.AST] = [expr]
    seen: set[str] = set()
    while pending:
        node = pending.pop()
        for inner in ast.walk(node):
            if isinstance(inner, ast.Call) and last_name(inner) == "text" and inner.args:
                sql: ast.AST = inner.args[0]
                if isinstance(sql, ast.Name) and len(func.assigns.get(sql.id, [])) == 1:
                    sql = func.assigns[sql.id][0]
                text = const_str(sql)
                if text is None:
                    return False
                return not re.search(r"\b(WHERE|LIMIT|FETCH)\b", text, re.IGNORECASE)
            if isinstance(inner, ast.Name) and inner.id not in seen:
                seen.add(inner.id)
                pending += func.assigns.get(inner.id, [])
    return False


def _bounded_marker(call: ast.AST | None) -> bool:
    return isinstance(call, ast.Call) and any(k.arg in {"le", "lt"} for k in call.keywords)


def _page_size_params(scan: Scan) -> Iterator[Hit]:
    index = scan.index
    entry = [r.func for r in index.routes] + [
        index.functions[q] for q in sorted(index.dependencies) if q in index.functions
    ]
    seen = set()
    for func in entry:
        if func.qual in seen:
            continue
        seen.add(func.qual)
        defaults = param_defaults(func.node)
        clamped = {
            n.id
            for call in func.nodes
            if isinstance(call, ast.Call) and last_name(call) in {"min", "clamp"}
            for n in ast.walk(call)
            if isinstance(n, ast.Name)
        }
        for param in index.request_params(func):
            if param.arg.lower() not in PAGE_SIZE_NAMES:
                continue
            default = defaults.get(param.arg)
            types = {last_name(n) for n in annotation_names(param.annotation)}
            is_int = "int" in types or (
                isinstance(default, ast.Constant) and isinstance(default.value, int)
            )
            if isinstance(default, ast.Call) and default.args:
                first = default.args[0]
                is_int |= isinstance(first, ast.Constant) and isinstance(first.value, int)
            if not is_int and not types & {"conint", "PositiveInt"}:
                continue
            markers = [default] + [
                m
                for n in [param.annotation]
                if isinstance(n, ast.Subscript) and last_name(n.value) == "Annotated"
                for m in (n.slice.elts[1:] if isinstance(n.slice, ast.Tuple) else [])
            ]
            if isinstance(param.annotation, ast.Call):
                markers.append(param.annotation)
            if _means_all(default) or (
                isinstance(default, ast.Call) and default.args and _means_all(default.args[0])
            ):
                yield Hit(
                    "FSA105",
                    func.file,
                    param,
                    func,
                    detail=f"page-size parameter `{param.arg}` defaults to -1, which means "
                    "'every row'",
                    evidence={"parameter": param.arg},
                )
                continue
            if _none_default(default) and _reaches_limit(scan, func, param.arg):
                yield Hit(
                    "FSA105",
                    func.file,
                    param,
                    func,
                    detail=f"page-size parameter `{param.arg}` defaults to None and reaches "
                    "`.limit()`: LIMIT NULL, every row, unless the client sends one",
                    evidence={"parameter": param.arg},
                )
                continue
            if any(_bounded_marker(m) for m in markers) or param.arg in clamped:
                continue
            yield Hit(
                "FSA105",
                func.file,
                param,
                func,
                detail=f"page-size parameter `{param.arg}` has no upper bound (`le=`): a client "
                "can ask for every row",
                evidence={"parameter": param.arg},
            )
    for qual in index.reach:
        func = index.functions[qual]
        for node in func.nodes:
            spelled = _all_spelling(node)
            if spelled is not None:
                yield Hit(
                    "FSA105",
                    func.file,
                    node,
                    func,
                    detail=f"`{spelled}` asks for every row",
                    evidence={"parameter": spelled.split(" ")[0].split("=")[0]},
                )
                continue
            if (
                isinstance(node, ast.Compare)
                and isinstance(node.left, ast.Name)
                and node.left.id.lower() in PAGE_SIZE_NAMES
                and len(node.ops) == 1
                and _is_all_marker(node.ops[0], node.comparators[0])
            ):
                yield Hit(
                    "FSA105",
                    func.file,
                    node,
                    func,
                    detail=f"`{node.left.id}` has a value that means 'no limit'",
                    evidence={"parameter": node.left.id},
                )


def _means_all(value: ast.AST | None) -> bool:
    """-1: the "no limit" spelling of many pagination helpers."""
    return (
        isinstance(value, ast.UnaryOp)
        and isinstance(value.op, ast.USub)
        and isinstance(value.operand, ast.Constant)
        and value.operand.value == 1
    )


def _none_default(value: ast.AST | None) -> bool:
    if isinstance(value, ast.Call) and last_name(value) in {"Query", "Param"}:
        value = value.args[0] if value.args else keyword(value, "default")
    return isinstance(value, ast.Constant) and value.value is None


def _limit_args(func: Func) -> set[str]:
    """Names passed straight to ``.limit(...)`` in a function."""
    return {
        node.args[0].id
        for node in func.nodes
        if isinstance(node, ast.Call)
        and last_name(node) == "limit"
        and node.args
        and isinstance(node.args[0], ast.Name)
    }


def _reaches_limit(scan: Scan, func: Func, name: str) -> bool:
    """Whether ``name`` reaches ``.limit(name)`` as it is, here or in a function it calls."""
    if name in _limit_args(func):
        return True
    for call, callee in func.calls:
        params = [p.arg for p in callee.params]
        if callee.cls is not None and params and params[0] in {"self", "cls"}:
            params = params[1:]
        passed: list[str | None] = [
            params[i]
            for i, arg in enumerate(call.args)
            if i < len(params) and isinstance(arg, ast.Name) and arg.id == name
        ]
        passed += [
            k.arg for k in call.keywords if isinstance(k.value, ast.Name) and k.value.id == name
        ]
        if any(p in _limit_args(callee) for p in passed if p):
            return True
    return False


def _all_spelling(node: ast.AST) -> str | None:
    """``limit or -1`` / ``per_page=-1`` in a call: spellings of "every row"."""
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or) and len(node.values) == 2:
        first, second = node.values
        if (
            isinstance(first, ast.Name)
            and first.id.lower() in PAGE_SIZE_NAMES
            and _means_all(second)
        ):
            return f"{first.id} or -1"
    if isinstance(node, ast.Call):
        for item in node.keywords:
            if item.arg and item.arg.lower() in PAGE_SIZE_NAMES and _means_all(item.value):
                return f"{item.arg}=-1"
    return None


def _is_all_marker(op: ast.cmpop, value: ast.AST) -> bool:
    number: float | None = None
    if isinstance(value, ast.Constant) and isinstance(value.value, int):
        number = value.value
    elif (
        isinstance(value, ast.UnaryOp)
        and isinstance(value.op, ast.USub)
        and isinstance(value.operand, ast.Constant)
        # `-"x"` or `-None` parse too (and raised TypeError here, failing the rule)
        and isinstance(value.operand.value, int | float)
    ):
        number = -value.operand.value
    if number is None:
        return False
    if isinstance(op, ast.Eq | ast.NotEq):
        return number < 0
    if isinstance(op, ast.Lt):
        return number in {0, 1}
    if isinstance(op, ast.LtE):
        return number in {0, -1}
    return False


@check("FSA106")
def request_offset(scan: Scan) -> Iterator[Hit]:
    for func in scan.functions():
        for node in func.nodes:
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "offset"
                and node.args
                and "req" in scan.taint.labels(node.args[0])
            ):
                yield Hit(
                    "FSA106",
                    func.file,
                    node,
                    func,
                    detail="the OFFSET comes from the request: deep pages scan every skipped row",
                    evidence={"request_path": scan.taint.chain(node.args[0])},
                )


def _leading_wildcard(expr: ast.AST) -> bool:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value.startswith("%")
    if isinstance(expr, ast.JoinedStr) and expr.values:
        first = expr.values[0]
        return isinstance(first, ast.Constant) and str(first.value).startswith("%")
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return _leading_wildcard(expr.left)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mod):
        return _leading_wildcard(expr.left)
    if isinstance(expr, ast.Call) and last_name(expr) == "format":
        return isinstance(expr.func, ast.Attribute) and _leading_wildcard(expr.func.value)
    return False


def _column_type(scan: Scan, expr: ast.AST) -> str | None:
    """The declared type of ``Model.column`` when ``expr`` is one."""
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
        for model in scan.index.models_named(expr.value.id):
            if expr.attr in model.columns:
                return model.columns[expr.attr]
    return None


INDEXED_COLUMN = re.compile(r"\b(index|primary_key|unique)\s*=\s*True")


def _searchable_columns(scan: Scan) -> set[str]:
    """Columns with a trigram, GIN/GiST or expression index declared anywhere: raw SQL in
    migrations (``name gin_trgm_ops``), Alembic's ``op.create_index(..., postgresql_using=
    "gin", postgresql_ops={"name": "gin_trgm_ops"})`` or a model's ``Index(...)``."""
    if scan._searchable is not None:
        return scan._searchable
    found = set(re.findall(r"(\w+)\s+(?:gin|gist)_trgm_ops", scan.migration_text))
    found |= set(
        re.findall(r"[\"'](\w+)[\"']\s*:\s*[\"'](?:gin|gist)_trgm_ops", scan.migration_text)
    )
    # Alembic: op.create_index("ix", "items", ["name"], postgresql_using="gin", ...)
    for columns in re.findall(
        r"create_index\([^\[\)]*\[([^\]]*)\][^\)]*postgresql_using\s*=\s*[\"'](?:gin|gist)",
        scan.migration_text,
    ):
        found |= set(re.findall(r"\b([A-Za-z_]\w*)\b", columns))
    for tree in [source.parsed for source in scan.index.files]:
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and last_name(node) in {"Index", "create_index"}):
                continue
            using = const_str(keyword(node, "postgresql_using")) or ""
            ops = keyword(node, "postgresql_ops")
            if isinstance(ops, ast.Dict):
                found |= {k.value for k in ops.keys if isinstance(k, ast.Constant)}
            if using.lower() not in {"gin", "gist"}:
                continue
            for arg in node.args:
                items = arg.elts if isinstance(arg, ast.List | ast.Tuple) else [arg]
                for item in items:
                    if isinstance(item, ast.Constant) and isinstance(item.value, str):
                        found.add(item.value)
                    elif isinstance(item, ast.Attribute):
                        found.add(item.attr)
                    elif isinstance(item, ast.Call):  # an expression index: lower(name)
                        found |= {n.attr for n in ast.walk(item) if isinstance(n, ast.Attribute)}
                        found |= {
                            n.value
                            for n in ast.walk(item)
                            if isinstance(n, ast.Constant) and isinstance(n.value, str)
                        }
    scan._searchable = found
    return found


def _narrowed(scan: Scan, func: Func, node: ast.AST) -> str | None:
    """An equality filter on an indexed column in the same statement as ``node``: the
    wildcard only filters the rows that index already found."""
    containing = [
        s for s in func.nodes if isinstance(s, ast.stmt) and any(n is node for n in ast.walk(s))
    ]
    # the innermost statement: an `if` around two queries is not one query
    statement = min(containing, key=lambda s: (s.end_lineno or s.lineno) - s.lineno, default=None)
    for root in [statement] if statement is not None else []:
        optional = {  # `X.id == v if v else True`, `or_(...)`: filters that may not apply
            id(n)
            for branch in ast.walk(root)
            if isinstance(branch, ast.IfExp)
            or (isinstance(branch, ast.BoolOp) and isinstance(branch.op, ast.Or))
            or (isinstance(branch, ast.Call) and last_name(branch) == "or_")
            for n in ast.walk(branch)
        }
        for compare in ast.walk(root):
            if id(compare) in optional:
                continue
            if not (
                isinstance(compare, ast.Compare)
                and len(compare.ops) == 1
                and isinstance(compare.ops[0], ast.Eq)
                and isinstance(compare.left, ast.Attribute)
                and isinstance(compare.left.value, ast.Name)
            ):
                continue
            other = compare.comparators[0]
            if (
                isinstance(other, ast.Attribute)
                and isinstance(other.value, ast.Name)
                and scan.index.models_named(other.value.id)
            ):
                continue  # a join condition between two tables, not a filter
            for model in scan.index.models_named(compare.left.value.id):
                column = model.columns.get(compare.left.attr, "")
                if INDEXED_COLUMN.search(column):
                    return f"{model.name}.{compare.left.attr}"
    return None


@check("FSA107")
def leading_wildcard(scan: Scan) -> Iterator[Hit]:
    trigram = _searchable_columns(scan)
    for func in scan.functions():
        for node in func.nodes:
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            method, column = node.func.attr, node.func.value
            if method in {"like", "ilike", "notlike", "notilike"} and node.args:
                pattern = node.args[0]
                if isinstance(pattern, ast.Name):
                    values = func.assigns.get(pattern.id, [])
                    hit = bool(values) and all(_leading_wildcard(v) for v in values)
                else:
                    hit = _leading_wildcard(pattern)
            elif method in {"contains", "icontains", "endswith", "iendswith"} and node.args:
                column_type = _column_type(scan, column)
                hit = column_type is not None and bool(TEXT_TYPES.search(column_type))
                hit = hit and not NON_TEXT_TYPES.search(column_type or "")
                hit = hit and not const_str(keyword(node, "autoescape"))
            else:
                continue
            if not hit:
                continue
            if _narrowed(scan, func, node):
                continue
            column_name = last_name(column)
            indexed = column_name in trigram
            yield Hit(
                "FSA107",
                func.file,
                node,
                func,
                detail=f"`{ast.unparse(column)[:60]}.{method}(...)` matches with a leading "
                "wildcard"
                + (": a trigram index exists, check it is used" if indexed else ": full scan"),
                severity="low" if indexed else None,
                evidence={"trigram_index": indexed},
            )


def _locks_rows(scan: Scan, func: Func, expr: ast.AST) -> bool:
    """Whether the rows come from ``with_for_update()``, here or in the function returning them."""
    if "with_for_update" in scan.statement_names(func, expr):
        return True
    values = func.assigns.get(expr.id, []) if isinstance(expr, ast.Name) else [expr]
    for value in values:
        for node in ast.walk(value):
            callee = scan.callee(func, node) if isinstance(node, ast.Call) else None
            if callee is not None and any(
                isinstance(n, ast.Call) and last_name(n) == "with_for_update" for n in callee.nodes
            ):
                return True
    return False


@check("FSA108")
def count_by_loading(scan: Scan) -> Iterator[Hit]:
    for func in scan.functions():
        for node in func.nodes:
            if not (isinstance(node, ast.Call) and last_name(node) == "len" and node.args):
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Name):
                uses = [
                    n
                    for n in func.nodes
                    if isinstance(n, ast.Name) and n.id == arg.id and isinstance(n.ctx, ast.Load)
                ]
                if len(uses) != 1:
                    continue  # the rows are used for something else too
            target = (
                arg.func.value
                if isinstance(arg, ast.Call)
                and isinstance(arg.func, ast.Attribute)
                and arg.func.attr in {"all", "fetchall"}
                else arg
            )
            if _locks_rows(scan, func, arg):
                continue  # SELECT ... FOR UPDATE: the rows are loaded to be locked
            if scan.is_rows(func, arg) or (target is not arg and scan.is_rows(func, target)):
                yield Hit(
                    "FSA108",
                    func.file,
                    node,
                    func,
                    detail="rows are loaded only to be counted",
                )


@check("FSA109")
def commit_per_row(scan: Scan) -> Iterator[Hit]:
    for func in scan.functions():
        if func.is_cli_command():
            continue  # a batch command run by hand, not a request
        for loop, _iterable, _targets, body in scan.loops(func):
            if not isinstance(loop, ast.For | ast.AsyncFor):
                continue
            adds = [
                n
                for n in body
                if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.attr in {"add", "add_all", "merge", "bulk_save_objects"}
                and scan.index.kind_of(func, n.func.value) not in {None, "http"}
            ]
            if not adds:
                continue
            for node in body:
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and scan.index.db_call(func, node, {"commit", "flush"})
                    and not _in_nested_loop(loop, node)
                    and not _isolated_per_row(loop, node)
                ):
                    yield Hit(
                        "FSA109",
                        func.file,
                        node,
                        func,
                        detail=f"`{node.func.attr}()` for each row of the loop at line "
                        f"{loop.lineno}",
                        evidence={"loop_line": loop.lineno},
                    )


def _isolated_per_row(loop: ast.AST, node: ast.AST) -> bool:
    """``try: ...; commit() except ...: rollback()`` inside the loop: one transaction per row
    on purpose, so that one bad row does not undo the others."""
    for inner in ast.walk(loop):
        if (
            isinstance(inner, ast.Try)
            and inner.handlers
            and any(n is node for stmt in inner.body for n in ast.walk(stmt))
        ):
            return True
    return False


def _in_nested_loop(loop: ast.AST, node: ast.AST) -> bool:
    for inner in ast.walk(loop):
        nested = inner is not loop and isinstance(inner, ast.For | ast.AsyncFor | ast.While)
        if nested and any(n is node for n in ast.walk(inner)):
            return True
    return False
