"""Index suggestions, measured with HypoPG where the target already has it.

For each candidate statement family: the *generic* plan (the family's text has
$n placeholders; on PostgreSQL 15 that means PREPARE under
``plan_cache_mode = force_generic_plan`` and ``EXPLAIN EXECUTE`` with NULLs),
then hypothetical indexes on the columns its scans filter, join and sort on.
Two HypoPG pitfalls shape the loop: EXPLAIN ANALYZE ignores hypothetical
indexes (so we only EXPLAIN), and a statement prepared before a hypothetical
index existed keeps its old plan — so every measurement re-PREPAREs.

Acceptance is Dexter's bar: a single-column index when it saves ≥ 50 % of a
plan costing ≥ 100; a second column only when it halves the cost again. HypoPG
indexes live in this backend's memory only; we still drop each one and reset at
the end, and we never create the extension. Without HypoPG, suggestions are
heuristic and marked unvalidated. HypoPG cannot simulate GIN, so trigram
indexes for LIKE/ILIKE searches are always unvalidated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypedDict

from ..base import FindingData
from .common import DOCS, ScanState, normalise_sql, short
from .connect import QueryFailed, quote_ident
from .snapshots import Family

_STMT = re.compile(r"^\s*(select|with|update|delete)\b", re.I)
_PARAM = re.compile(r"\$(\d+)")
_COND = re.compile(
    r"(?:(?P<qual>\"[^\"]+\"|[a-z_][a-z0-9_]*)\.)?(?P<col>\"[^\"]+\"|[a-z_][a-z0-9_]*)\)?"
    r"(?:::[a-z ]+(?:\[\])?)?\s*(?P<op>=|<>|<=|>=|<|>|!?~~\*?|@>|&&)(?!\w)",
    re.I,
)
EQ_OPS = {"="}
RANGE_OPS = {"<", ">", "<=", ">="}
LIKE_OPS = {"~~", "~~*"}
MAX_FAMILIES = 25
MAX_CANDIDATES = 12
MAX_FK_PROBES = 20


@dataclass
class Scan:
    schema: str
    table: str
    node: str
    eq: list[str] = field(default_factory=list)
    rng: list[str] = field(default_factory=list)
    like: list[str] = field(default_factory=list)
    join: list[str] = field(default_factory=list)
    sort: list[str] = field(default_factory=list)


@dataclass
class Suggestion:
    schema: str
    table: str
    columns: tuple[str, ...]
    method: str = "btree"
    opclass: str = ""
    validated: bool = False
    queries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ddl(self) -> str:
        cols = ", ".join(
            f"{quote_ident(c)}{' ' + self.opclass if self.opclass else ''}" for c in self.columns
        )
        name = quote_ident(
            f"{self.table}_{'_'.join(self.columns)}_{'trgm_' if self.opclass else ''}idx"[:63]
        )
        using = f" USING {self.method}" if self.method != "btree" else ""
        return (
            f"CREATE INDEX CONCURRENTLY {name} ON {quote_ident(self.schema)}."
            f"{quote_ident(self.table)}{using} ({cols});"
        )

    @property
    def key(self) -> str:
        op = f" {self.opclass}" if self.opclass else ""
        return f"index:{self.schema}.{self.table} {self.method} ({', '.join(self.columns)}){op}"


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


# A node of an EXPLAIN (FORMAT JSON) plan: PostgreSQL's own JSON.
type PlanNode = dict[str, Any]
type TableKey = tuple[str, str]  # (schema, table)


class AcceptedIndex(TypedDict):
    table: TableKey
    columns: tuple[str, ...]
    cost_before: float
    cost_after: float


class Advice(TypedDict):
    """What the advisor measured for one statement family."""

    base_cost: float
    plan: list[str]
    accepted: list[AcceptedIndex]
    heuristic: list[Suggestion]


def walk(plan: PlanNode) -> Iterator[PlanNode]:
    yield plan
    for child in plan.get("Plans", []) or []:
        yield from walk(child)


def scans_of(plan: PlanNode, columns: dict[TableKey, set[str]]) -> list[Scan]:
    """The base-table scans of a plan with the columns filtered, joined and sorted on."""
    nodes = list(walk(plan))
    aliases: dict[str, TableKey] = {}
    scans: dict[tuple[str, str], Scan] = {}
    for node in nodes:
        if "Relation Name" in node:
            key: TableKey = (node.get("Schema", "public"), node["Relation Name"])
            alias: str = node["Alias"] if "Alias" in node else node["Relation Name"]
            aliases[alias] = key
            scans.setdefault(key, Scan(key[0], key[1], node["Node Type"]))
            if node["Node Type"] == "Seq Scan":
                scans[key].node = "Seq Scan"

    def add(
        expr: str,
        default_key: TableKey | None,
        bucket_for_op: Callable[[str, Scan], list[str] | None],
    ) -> None:
        for m in _COND.finditer(expr or ""):
            qual = _unquote(m.group("qual")) if m.group("qual") else None
            col = _unquote(m.group("col"))
            table = aliases.get(qual) if qual else default_key
            if table is None or col not in columns.get(table, set()):
                continue
            bucket = bucket_for_op(m.group("op"), scans[table])
            if bucket is not None and col not in bucket:
                bucket.append(col)

    def filt(op: str, scan: Scan) -> list[str] | None:
        if op in EQ_OPS:
            return scan.eq
        if op in RANGE_OPS:
            return scan.rng
        if op in LIKE_OPS:
            return scan.like
        return None

    for node in nodes:
        own = None
        if "Relation Name" in node:
            own = (node.get("Schema", "public"), node["Relation Name"])
        for attr in ("Filter", "Recheck Cond", "Index Cond"):
            if attr in node and own:
                add(node[attr], own, filt)
        for attr in ("Hash Cond", "Merge Cond", "Join Filter"):
            if attr in node:
                add(node[attr], None, lambda op, scan: scan.join if op in EQ_OPS else None)
        for key_expr in node.get("Sort Key", []) or []:
            m = re.match(r"^(?:(\w+)\.)?(\w+)", key_expr)
            if m:
                sorted_on = aliases.get(m.group(1)) if m.group(1) else (own or None)
                if sorted_on and m.group(2) in columns.get(sorted_on, set()):
                    scans[sorted_on].sort.append(m.group(2))
    return list(scans.values())


class Advisor:
    """Measures candidate indexes for statement families on one session."""

    def __init__(self, state: ScanState) -> None:
        self.state = state
        self.s = state.session
        self.hypo = state.caps.hypopg_schema
        self.counter = 0
        self.explains = 0
        self._columns: dict[tuple[str, str], set[str]] = {}
        self._leading: dict[tuple[str, str], set[str]] = {}
        self._rows: dict[tuple[str, str], float] = {}

    # -- plans ---------------------------------------------------------------
    def _prepare(self, query: str) -> tuple[str, int]:
        self.counter += 1
        name = f"kaizen_adv_{self.counter}"
        nparams = max((int(n) for n in _PARAM.findall(query)), default=0)
        self.s.run(f"PREPARE {name} AS {query}")
        return name, nparams

    def cost(self, query: str) -> tuple[float, PlanNode]:
        """Generic-plan total cost, re-prepared now so hypothetical indexes are seen."""
        name, nparams = self._prepare(query)
        try:
            args = f"({', '.join(['NULL'] * nparams)})" if nparams else ""
            raw = self.s.scalar(f"EXPLAIN (FORMAT JSON) EXECUTE {name}{args}")
            self.explains += 1
        finally:
            self.s.run(f"DEALLOCATE {name}")
        plan: PlanNode = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
        return float(plan["Total Cost"]), plan

    def _table_facts(self, keys: Iterable[TableKey]) -> None:
        missing = [k for k in keys if k not in self._columns]
        if not missing:
            return
        rows = self.s.rows(
            "SELECT n.nspname, c.relname, c.reltuples, "
            "array(SELECT attname FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 "
            "      AND NOT attisdropped) AS cols, "
            "array(SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = c.oid "
            "      AND a.attnum = i.indkey[0] WHERE i.indrelid = c.oid AND i.indisvalid "
            "      AND i.indpred IS NULL) AS leading "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest(%(s)s::text[], %(t)s::text[]))",
            {"s": [k[0] for k in missing], "t": [k[1] for k in missing]},
        )
        for r in rows:
            key = (r["nspname"], r["relname"])
            self._columns[key] = set(r["cols"])
            self._leading[key] = set(r["leading"])
            self._rows[key] = float(r["reltuples"])
        for key in missing:
            self._columns.setdefault(key, set())

    def _plan_tables(self, plan: PlanNode) -> list[TableKey]:
        return sorted(
            {
                (n.get("Schema", "public"), n["Relation Name"])
                for n in walk(plan)
                if "Relation Name" in n
            }
        )

    def hypothetical_cost(
        self, query: str, table: TableKey, cols: tuple[str, ...]
    ) -> tuple[float, bool]:
        """The generic-plan cost with a hypothetical index, and whether the plan uses it."""
        if self.hypo is None:
            raise ValueError("HypoPG is not available in this database")
        collist = ", ".join(quote_ident(c) for c in cols)
        ddl = f"CREATE INDEX ON {quote_ident(table[0])}.{quote_ident(table[1])} ({collist})"
        schema = quote_ident(self.hypo)
        oid = self.s.scalar(
            f"SELECT indexrelid FROM {schema}.hypopg_create_index(%(d)s)", {"d": ddl}
        )
        try:
            cost, plan = self.cost(query)
        finally:
            self.s.run(f"SELECT {schema}.hypopg_drop_index(%(o)s)", {"o": oid})
        used = any(f"<{oid}>" in str(n.get("Index Name", "")) for n in walk(plan))
        return cost, used

    # -- candidates ----------------------------------------------------------
    def candidates(self, scan: Scan) -> list[tuple[str, ...]]:
        leading = self._leading.get((scan.schema, scan.table), set())
        firsts = list(dict.fromkeys(scan.eq + scan.join + scan.rng + scan.sort))
        singles: list[tuple[str, ...]] = [(c,) for c in firsts if c not in leading]
        pairs: list[tuple[str, ...]] = []
        for a in scan.eq:
            for b in dict.fromkeys(scan.eq + scan.rng + scan.sort):
                if b != a:
                    pairs.append((a, b))
        return (singles + pairs)[:MAX_CANDIDATES]

    def advise(self, query: str, min_cost: float, min_saving: float) -> Advice:
        """Measure one family: base cost, plan excerpt, accepted and heuristic indexes."""
        base, plan = self.cost(query)
        tables = self._plan_tables(plan)
        self._table_facts(tables)
        scans = scans_of(plan, self._columns)
        out: Advice = {
            "base_cost": base,
            "plan": plan_excerpt(plan),
            "accepted": [],
            "heuristic": [],
        }
        for scan in scans:
            key = (scan.schema, scan.table)
            for col in scan.like:
                out["heuristic"].append(
                    Suggestion(scan.schema, scan.table, (col,), "gin", "gin_trgm_ops")
                )
            if scan.node != "Seq Scan" and not scan.eq and not scan.join:
                continue
            if not self.hypo:
                first = next(
                    iter(c for c in scan.eq + scan.join if c not in self._leading.get(key, set())),
                    None,
                )
                if (
                    first
                    and self._rows.get(key, 0) >= self.state.thresholds.seqscan_min_rows
                    and scan.node == "Seq Scan"
                ):
                    out["heuristic"].append(Suggestion(scan.schema, scan.table, (first,)))
                continue
        if not self.hypo or base < min_cost:
            return out
        best_single: tuple[float, TableKey, tuple[str, ...]] | None = None
        measured: list[tuple[float, TableKey, tuple[str, ...]]] = []
        for scan in scans:
            key = (scan.schema, scan.table)
            for cols in self.candidates(scan):
                self.state.ctx.check_cancel()
                try:
                    cost, used = self.hypothetical_cost(query, key, cols)
                except QueryFailed:
                    continue
                if not used:
                    continue
                measured.append((cost, key, cols))
                if len(cols) == 1 and (best_single is None or cost < best_single[0]):
                    best_single = (cost, key, cols)
        if best_single and best_single[0] <= base * (1 - min_saving / 100.0):
            accept = best_single
            for cost, key, cols in measured:
                # A second column only when it halves the cost again.
                again_halved = cost <= best_single[0] / 2 and cost < accept[0]
                if len(cols) == 2 and cols[0] == best_single[2][0] and again_halved:
                    accept = (cost, key, cols)
            out["accepted"].append(
                {
                    "table": accept[1],
                    "columns": accept[2],
                    "cost_before": base,
                    "cost_after": accept[0],
                }
            )
        return out


def plan_excerpt(plan: PlanNode, limit: int = 8) -> list[str]:
    lines: list[str] = []

    def visit(node: PlanNode, depth: int) -> None:
        if len(lines) >= limit:
            return
        what = node["Node Type"]
        if "Relation Name" in node:
            what += f" on {node['Relation Name']}"
        if "Index Name" in node:
            what += f" using {node['Index Name']}"
        extra = node.get("Filter") or node.get("Index Cond") or node.get("Hash Cond") or ""
        lines.append(
            f"{'  ' * depth}{what} (cost={node['Total Cost']:.0f} rows={node['Plan Rows']})"
            + (f" {extra}" if extra else "")
        )
        for child in node.get("Plans", []) or []:
            visit(child, depth + 1)

    visit(plan, 0)
    return lines


def _fk_probe(advisor: Advisor, fk: dict[str, Any], state: ScanState) -> dict[str, Any] | None:
    """Measure the lookup every parent DELETE and every relationship load runs."""
    cols = fk["columns"]
    where = " AND ".join(f"{quote_ident(c)} = ${i + 1}" for i, c in enumerate(cols))
    query = f"SELECT 1 FROM {quote_ident(fk['schema'])}.{quote_ident(fk['table'])} WHERE {where}"
    try:
        before, _ = advisor.cost(query)
        after, used = advisor.hypothetical_cost(query, (fk["schema"], fk["table"]), tuple(cols))
    except QueryFailed:
        return None
    if not used:
        return None
    return {
        "lookup": query,
        "cost_before": round(before, 1),
        "cost_after": round(after, 1),
        "saving_pct": round(100 * (1 - after / before), 1) if before else 0.0,
    }


def run_advisor(state: ScanState, families: list[Family], slow_ids: set[int]) -> None:
    """Suggest indexes for the heaviest families; attach measured savings to FK findings."""
    t = state.thresholds
    advisor = Advisor(state)
    suggestions: dict[str, Suggestion] = {}
    skipped: list[dict[str, str]] = []
    picked = [f for f in families if f.queryid in slow_ids]
    picked += [f for f in families if f.queryid not in slow_ids and f.mean_ms >= 1.0]
    picked = [f for f in picked if _STMT.match(normalise_sql(f.query))][:MAX_FAMILIES]
    try:
        advisor.s.run("SET plan_cache_mode = force_generic_plan")
        for fam in picked:
            state.ctx.check_cancel()
            query = normalise_sql(fam.query)
            try:
                result = advisor.advise(query, t.advisor_min_cost, t.advisor_min_saving_pct)
            except QueryFailed as exc:
                skipped.append({"query": short(query, 200), "why": str(exc)})
                continue
            info = {
                "queryid": fam.queryid,
                "query": short(query, 300),
                "calls": fam.calls,
                "mean_ms": round(fam.mean_ms, 2),
                "plan": result["plan"],
            }
            for acc in result["accepted"]:
                sug = Suggestion(
                    acc["table"][0], acc["table"][1], tuple(acc["columns"]), validated=True
                )
                sug = suggestions.setdefault(sug.key, sug)
                sug.queries.append(
                    {
                        **info,
                        "cost_before": round(acc["cost_before"], 1),
                        "cost_after": round(acc["cost_after"], 1),
                        "saving_pct": round(100 * (1 - acc["cost_after"] / acc["cost_before"]), 1),
                    }
                )
            if fam.queryid in slow_ids:
                for sug in result["heuristic"]:
                    sug = suggestions.setdefault(sug.key, sug)
                    if not sug.validated:
                        sug.queries.append(info)
        fk_measured = 0
        if advisor.hypo:
            for fk in state.facts.get("fk_uncovered", [])[:MAX_FK_PROBES]:
                probe = _fk_probe(advisor, fk, state)
                if probe:
                    fk_measured += 1
                    finding = fk["finding"]
                    finding.evidence["measured"] = probe
                    finding.fix_hint = (
                        f"{finding.evidence['ddl']} — HypoPG: a lookup by "
                        f"{', '.join(fk['columns'])} costs {probe['cost_before']} → "
                        f"{probe['cost_after']} ({probe['saving_pct']}% less). "
                        + finding.fix_hint.split(" — ", 1)[-1]
                    )
    finally:
        # Leave nothing behind in this backend either.
        if advisor.hypo:
            advisor.s.run(f"SELECT {quote_ident(advisor.hypo)}.hypopg_reset()")
        advisor.s.run("RESET plan_cache_mode")
        advisor.s.run("DEALLOCATE ALL")
    for sug in suggestions.values():
        if not sug.queries:
            continue
        _emit(state, sug)
    state.summary["advisor"] = {
        "hypopg": bool(advisor.hypo),
        "families_examined": len(picked),
        "explains": advisor.explains,
        "skipped": skipped[:20],
        "suggestions": len([s for s in suggestions.values() if s.queries]),
        "fk_lookups_measured": fk_measured,
    }
    count = len([s for s in suggestions.values() if s.queries])
    if not picked and not state.facts.get("fk_uncovered"):
        state.passed("db.index_suggestion", "no statement family worth an index")
        return
    detail = f"{count} suggestion(s) from {len(picked)} famil(ies)" + (
        "" if advisor.hypo else " — unvalidated: HypoPG is not in this database"
    )
    (state.failed if count else state.passed)("db.index_suggestion", detail)


def _emit(state: ScanState, sug: Suggestion) -> None:
    table = f"{quote_ident(sug.schema)}.{quote_ident(sug.table)}"
    cols = ", ".join(sug.columns)
    if sug.validated:
        best = max(q["saving_pct"] for q in sug.queries)
        title = (
            f"Index {table} ({cols}): generic-plan cost -{best:.0f}% for "
            f"{len(sug.queries)} statement famil(ies)"
        )
        severity = "medium"
        why = "measured with a HypoPG hypothetical index on the generic plan"
    else:
        reason = (
            "HypoPG cannot simulate GIN indexes"
            if sug.method == "gin"
            else "HypoPG is not available in this database"
        )
        title = f"Unvalidated: index {table} using {sug.method} ({cols})"
        severity = "low"
        why = f"heuristic, unvalidated: {reason}"
    hint = sug.ddl
    if sug.opclass == "gin_trgm_ops" and not state.caps.pg_trgm_schema:
        hint = "CREATE EXTENSION pg_trgm; then " + hint
    if sug.opclass == "gin_trgm_ops":
        hint += " — serves LIKE/ILIKE with a leading wildcard, which a B-tree cannot."
    state.add(
        FindingData(
            rule_id="db.index_suggestion",
            title=title,
            severity=severity,
            category="performance",
            location=table,
            key=sug.key,
            evidence={
                "ddl": sug.ddl,
                "validated": sug.validated,
                "how": why,
                "queries": sug.queries[:10],
            },
            fix_hint=hint,
            doc_url=DOCS + "indexes.html",
        )
    )
