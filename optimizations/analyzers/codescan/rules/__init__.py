"""The FSA rule catalog: what each rule means, why it matters, how to fix it.

The checks themselves live in the modules beside this one and register with
:func:`check` (``rules.checks`` imports them all); the catalog is data so that
the portal, SARIF export and the tests read the same titles, severities and
documentation links.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..index import Func
    from ..project import SourceFile
    from .common import Scan

SA = "https://docs.sqlalchemy.org/en/20"
FA = "https://fastapi.tiangolo.com"


@dataclass(frozen=True)
class Rule:
    """One rule of the catalog."""

    id: str
    title: str
    severity: str
    category: str
    tags: tuple[str, ...]
    doc_url: str
    why: str
    fix: str


@dataclass
class Hit:
    """One place a check fired; the analyzer turns it into a FindingData."""

    rule_id: str
    file: SourceFile
    node: ast.AST
    func: Func | None = None  # None at module level
    detail: str = ""
    severity: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def _rule(
    id: str,
    title: str,
    severity: str,
    category: str,
    tags: str,
    doc_url: str,
    why: str,
    fix: str,
) -> Rule:
    return Rule(id, title, severity, category, tuple(tags.split()), doc_url, why, fix)


RULES: dict[str, Rule] = {
    r.id: r
    for r in [
        _rule(
            "FSA001",
            "File could not be parsed",
            "low",
            "correctness",
            "fastapi sqlalchemy async security correctness",
            "https://docs.python.org/3/reference/grammar.html",
            "The worker's Python cannot read this file, so no rule checked it; its findings are "
            "unknown, not absent.",
            "Fix the syntax error, or run the scan on a worker with the Python version the "
            "project targets.",
        ),
        _rule(
            "FSA002",
            "Suppression without a reason",
            "low",
            "correctness",
            "fastapi sqlalchemy async security correctness performance architecture",
            "https://docs.github.com/en/code-security/code-scanning/managing-code-scanning-alerts/resolving-code-scanning-alerts#dismissing-alerts",
            "A `# kaizen: ignore` comment hides a finding from everyone who reads the report "
            "later; without the reason nobody can tell a judged false positive from a problem "
            "swept under the rug. It suppresses nothing until it says why.",
            "Add the reason after the comment: `# kaizen: ignore[FSA301] -- the response is "
            "filtered by the gateway`.",
        ),
        _rule(
            "FSA101",
            "Query inside a loop over query results (N+1)",
            "high",
            "performance",
            "sqlalchemy performance",
            f"{SA}/orm/queryguide/relationships.html",
            "Each iteration sends one more statement: N rows cost N+1 round trips, and the "
            "endpoint slows down linearly with the data.",
            "Fetch the related rows in one statement: a JOIN, `selectinload()`, or one query "
            "with `WHERE id IN (...)` before the loop.",
        ),
        _rule(
            "FSA102",
            "Lazy relationship loaded per row (N+1)",
            "high",
            "performance",
            "sqlalchemy performance correctness async",
            f"{SA}/orm/queryguide/relationships.html#relationship-loader-api",
            "Reading a lazy relationship on each row (or letting the response serializer read "
            "it) emits one SELECT per row; under asyncio the implicit I/O raises "
            "`MissingGreenlet` instead.",
            "Add an eager-load option to the query (`selectinload(Model.rel)` for collections, "
            "`joinedload(Model.rel)` for many-to-one), or `lazy='raise'` on the relationship "
            "to catch it in tests.",
        ),
        _rule(
            "FSA103",
            "One AsyncSession shared by concurrent tasks",
            "high",
            "correctness",
            "sqlalchemy async correctness",
            f"{SA}/orm/extensions/asyncio.html#using-asyncsession-with-concurrent-tasks",
            "An AsyncSession is one connection and one transaction in progress; SQLAlchemy's "
            "docs say it is not safe for concurrent tasks (gather, TaskGroup, create_task): "
            "statements interleave on one connection and fail or corrupt state.",
            "Give each concurrent task its own session from the sessionmaker, or run the "
            "statements one after another.",
        ),
        _rule(
            "FSA104",
            "Blocking call on the event loop",
            "high",
            "performance",
            "fastapi async performance",
            f"{FA}/async/#in-a-hurry",
            "An `async def` route or dependency runs on the event loop; a blocking DB or I/O "
            "call anywhere below it (route → service → repository) stops every other request "
            "of the worker until it returns.",
            "Use the async API (AsyncSession, httpx.AsyncClient, asyncio.sleep), declare the "
            "route with plain `def` so FastAPI runs it in the threadpool, or wrap the call in "
            "`await run_in_threadpool(...)`.",
        ),
        _rule(
            "FSA105",
            "Unbounded result set",
            "medium",
            "performance",
            "fastapi sqlalchemy performance",
            f"{FA}/tutorial/query-params-str-validations/#number-validations-greater-than-and-less-than-or-equal",
            "A query without LIMIT, or a page size the client may set to anything (or to -1 "
            "for 'all'), reads and serializes the whole table as it grows.",
            "Always paginate: `limit: int = Query(50, ge=1, le=200)` and `.limit(limit)` on "
            "the statement.",
        ),
        _rule(
            "FSA106",
            "OFFSET pagination driven by the request",
            "low",
            "performance",
            "sqlalchemy performance",
            "https://www.postgresql.org/docs/current/queries-limit.html",
            "PostgreSQL still reads and discards every skipped row, so deep pages get slower "
            "linearly; without a unique ORDER BY the pages overlap or skip rows.",
            "Use keyset pagination (`WHERE (created_at, id) < (:last_created_at, :last_id) "
            "ORDER BY created_at DESC, id DESC LIMIT :n`), or cap the offset.",
        ),
        _rule(
            "FSA107",
            "Leading-wildcard LIKE",
            "medium",
            "performance",
            "sqlalchemy performance",
            "https://www.postgresql.org/docs/current/pgtrgm.html#PGTRGM-INDEX",
            "A pattern starting with `%` cannot use a B-tree index: every search scans the "
            "whole table.",
            "Create a trigram index (`CREATE INDEX ... USING gin (col gin_trgm_ops)`), use "
            "full-text search, or anchor the pattern (`startswith`).",
        ),
        _rule(
            "FSA108",
            "Counting by loading rows",
            "medium",
            "performance",
            "sqlalchemy performance",
            f"{SA}/core/functions.html#sqlalchemy.sql.functions.count",
            "`len(....all())` transfers and builds every row to count them.",
            "Let the database count: `select(func.count()).select_from(Model).where(...)`.",
        ),
        _rule(
            "FSA109",
            "Commit or flush per row in a loop",
            "low",
            "performance",
            "sqlalchemy performance",
            f"{SA}/orm/queryguide/dml.html#orm-bulk-insert-statements",
            "A commit per row is a round trip and a WAL flush per row; a bulk load of 10 000 "
            "rows becomes 10 000 transactions.",
            "Add all rows, then commit once (or `session.execute(insert(Model), rows)` for "
            "bulk inserts).",
        ),
        _rule(
            "FSA110",
            "Reserved Declarative attribute `metadata` used as a column",
            "high",
            "correctness",
            "sqlalchemy correctness",
            f"{SA}/orm/declarative_tables.html#accessing-table-and-metadata",
            "Declarative keeps the table's MetaData in the class attribute `metadata`; a column "
            "named so raises `InvalidRequestError: Attribute name 'metadata' is reserved` when "
            "the model is imported, so the application does not start.",
            "Give the attribute another name and keep the column name: "
            "`meta: Mapped[dict] = mapped_column('metadata', JSONB)`.",
        ),
        _rule(
            "FSA111",
            "`dict(row)` on a SQLAlchemy 2 Row",
            "medium",
            "correctness",
            "sqlalchemy correctness",
            f"{SA}/changelog/migration_20.html#result-rows-act-like-named-tuples",
            "Since SQLAlchemy 2.0 a Row behaves like a named tuple, not a mapping: `dict(row)` "
            "raises (or pairs up values by accident when each row has two columns).",
            "`row._mapping` (a read-only mapping), `dict(row._mapping)`, or iterate "
            "`result.mappings()`.",
        ),
        _rule(
            "FSA112",
            "`async with` on AsyncSession.stream()",
            "high",
            "correctness",
            "sqlalchemy async correctness",
            f"{SA}/orm/extensions/asyncio.html#sqlalchemy.ext.asyncio.AsyncSession.stream",
            "`AsyncSession.stream()` is a coroutine that returns an AsyncResult; only "
            "`AsyncConnection.stream()` is an async context manager. `async with "
            "session.stream(...)` raises TypeError on every call: the endpoint never streams.",
            "`result = await session.stream(stmt)` then `async for row in result:`; or "
            "`async with engine.connect() as conn: async with conn.stream(stmt) as result:`.",
        ),
        _rule(
            "FSA113",
            "JSON column where PostgreSQL's JSONB serves",
            "low",
            "performance",
            "sqlalchemy performance",
            "https://www.postgresql.org/docs/current/datatype-json.html",
            "PostgreSQL's `json` stores the text as given: every `->`/`->>` re-parses the "
            "document, and no GIN index (`jsonb_path_ops`) can serve containment or key "
            "lookups. `jsonb` is stored parsed, faster to query and indexable.",
            "`from sqlalchemy.dialects.postgresql import JSONB` and `mapped_column(JSONB)` "
            "(an `ALTER COLUMN ... TYPE jsonb USING col::jsonb` migration).",
        ),
        _rule(
            "FSA201",
            "Engine created per request",
            "critical",
            "performance",
            "sqlalchemy fastapi performance architecture",
            f"{SA}/core/connections.html#basic-usage",
            "An Engine owns a connection pool and is meant to be created once per process; "
            "creating one per request opens a new connection (and pool) every time and leaks "
            "connections until the server refuses more.",
            "Create the engine once at module level or in the lifespan handler and share it "
            "through a dependency.",
        ),
        _rule(
            "FSA202",
            "Async session factory without expire_on_commit=False",
            "medium",
            "correctness",
            "sqlalchemy async correctness",
            f"{SA}/orm/extensions/asyncio.html#preventing-implicit-io-when-using-asyncsession",
            "After commit every attribute expires; the next attribute read (often by the "
            "response serializer) needs implicit I/O, which an AsyncSession cannot do: "
            "`MissingGreenlet`.",
            "`async_sessionmaker(engine, expire_on_commit=False)`.",
        ),
        _rule(
            "FSA203",
            "Session never closed",
            "high",
            "correctness",
            "sqlalchemy fastapi correctness reliability",
            f"{FA}/tutorial/dependencies/dependencies-with-yield/",
            "A session that is returned by a dependency, or created without `with` and never "
            "closed, keeps its connection checked out until garbage collection: the pool runs "
            "dry under load.",
            "Use a dependency with `yield` inside `with SessionLocal() as session:` (or "
            "try/finally close).",
        ),
        _rule(
            "FSA204",
            "Long-lived pool without pre-ping or recycle",
            "info",
            "correctness",
            "sqlalchemy architecture reliability",
            f"{SA}/core/pooling.html#dealing-with-disconnects",
            "Connections kept in the pool break when the server, a proxy or a firewall drops "
            "them; the first request after that fails.",
            "`create_engine(url, pool_pre_ping=True)` and/or `pool_recycle=1800`.",
        ),
        _rule(
            "FSA205",
            "Pooling mismatch",
            "medium",
            "performance",
            "sqlalchemy architecture performance",
            f"{SA}/dialects/postgresql.html#prepared-statement-cache",
            "Pooling settings that do not fit the deployment: asyncpg's prepared-statement "
            "cache breaks behind PgBouncer transaction pooling, an app pool behind transaction "
            "pooling double-pools, NullPool without a pooler reconnects per request, and "
            "pool size × workers beyond max_connections refuses connections under load.",
            "Match the pool to the deployment: see the detail of this finding.",
        ),
        _rule(
            "FSA206",
            "echo=True hard-coded",
            "low",
            "performance",
            "sqlalchemy performance security",
            f"{SA}/core/engines.html#sqlalchemy.create_engine.params.echo",
            "Every statement and its parameters are logged: slow, noisy, and personal data in "
            "the logs.",
            "Drive it from settings (`echo=settings.sql_echo`, off by default).",
        ),
        _rule(
            "FSA207",
            "echo_pool=True hard-coded",
            "low",
            "performance",
            "sqlalchemy performance architecture",
            f"{SA}/core/engines.html#sqlalchemy.create_engine.params.echo_pool",
            "Every checkout, checkin and reset of the pool is logged: a log line per request "
            "in production, and noise that hides real warnings. A comment saying "
            "'development only' does not make it so.",
            "Drive it from settings (`echo_pool=settings.debug_pool`, off by default), or "
            "turn the `sqlalchemy.pool` logger up only while debugging.",
        ),
        _rule(
            "FSA301",
            "Route returns ORM objects without a response model",
            "medium",
            "security",
            "fastapi security",
            f"{FA}/tutorial/response-model/",
            "Without a response model FastAPI serializes every field of the object, including "
            "password hashes and internal columns, and the API's shape follows the table.",
            "Declare `response_model=` (or a return annotation) with a Pydantic schema that "
            "lists the public fields.",
        ),
        _rule(
            "FSA302",
            "Heavy work or the request's session in BackgroundTasks",
            "medium",
            "performance",
            "fastapi correctness performance",
            f"{FA}/tutorial/background-tasks/#caveat",
            "Background tasks run in the same worker after the response: heavy work there "
            "competes with requests, and the request's session is already closed when the "
            "task runs.",
            "Open a new session inside the task; send heavy work to a task queue (Celery, arq).",
        ),
        _rule(
            "FSA303",
            "Settings rebuilt per request",
            "low",
            "performance",
            "fastapi performance",
            f"{FA}/advanced/settings/#creating-the-settings-only-once-with-lru_cache",
            "A `BaseSettings()` reads the environment and .env files each time it is built.",
            "`@lru_cache def get_settings(): return Settings()` and depend on `get_settings`.",
        ),
        _rule(
            "FSA304",
            "Sync route with long blocking work",
            "info",
            "performance",
            "fastapi async performance",
            f"{FA}/async/#path-operation-functions",
            "Sync routes run in a threadpool of 40 threads by default; long sleeps or network "
            "calls hold a thread each, and the 41st concurrent request waits.",
            "Make the route `async def` with async clients, or move the work to a queue.",
        ),
        _rule(
            "FSA305",
            "Module-level mutable state changed per request",
            "medium",
            "correctness",
            "fastapi correctness",
            f"{FA}/deployment/concepts/#memory-per-process",
            "Module globals are per process: each worker sees its own copy, the data is lost "
            "on restart, and concurrent requests race on it.",
            "Keep shared state in the database or a cache (Redis); keep per-request state in "
            "the request.",
        ),
        _rule(
            "FSA306",
            "Server without uvloop and httptools",
            "low",
            "performance",
            "fastapi async performance architecture",
            "https://www.uvicorn.org/settings/#implementation",
            "uvicorn uses uvloop and httptools only when they are installed "
            "(`uvicorn[standard]`) and not overridden; otherwise the server runs on asyncio's "
            "pure-Python loop and the h11 parser, with markedly more CPU per request. An "
            "event-loop policy set when the app module is imported comes too late: uvicorn "
            "has created its loop by then.",
            "Depend on `uvicorn[standard]` and leave `loop`/`http` on auto, or pass "
            "`loop='uvloop', http='httptools'` (`--loop uvloop --http httptools`).",
        ),
        _rule(
            "FSA307",
            "Whole export built in memory and sent in one response",
            "medium",
            "performance",
            "fastapi sqlalchemy performance",
            f"{FA}/advanced/custom-response/#streamingresponse",
            "An export route that returns every row of an unbounded statement builds the whole "
            "result, then the whole JSON document, in the worker's memory before the first "
            "byte leaves; with FastAPI's default encoder (`jsonable_encoder` + `json.dumps`, "
            "pure Python) the serialization alone takes seconds on large tables.",
            "Stream it: `StreamingResponse` over `await session.stream(stmt)` (or "
            "`execution_options(yield_per=1000)`) as NDJSON; or paginate. For large JSON "
            "bodies declare a response model (FastAPI ≥ 0.130 serializes it in Rust) or use "
            "an orjson response class.",
        ),
        _rule(
            "FSA401",
            "CORS allows any origin with credentials",
            "high",
            "security",
            "fastapi security",
            "https://www.starlette.io/middleware/#corsmiddleware",
            "With `allow_origins=['*']` and `allow_credentials=True`, Starlette reflects any "
            "Origin back: every website can make authenticated requests and read the answers.",
            "List the trusted origins explicitly, or drop `allow_credentials`.",
        ),
        _rule(
            "FSA402",
            "SQL text built from strings",
            "medium",
            "security",
            "sqlalchemy security",
            f"{SA}/core/sqlelement.html#sqlalchemy.sql.expression.text",
            "SQL assembled with f-strings, `+`, `%` or `.format` is injectable when any part "
            "comes from a request, and defeats the statement cache.",
            "Use bound parameters: `text('... WHERE id = :id').bindparams(id=value)` or the "
            "SQL expression language.",
        ),
        _rule(
            "FSA403",
            "Column chosen by user input",
            "high",
            "security",
            "sqlalchemy security",
            f"{SA}/core/sqlelement.html#sqlalchemy.sql.expression.literal_column",
            "`getattr(Model, key)` / `order_by(key)` with a key from the request lets the "
            "client reach any attribute (sorting by `password_hash` leaks it row by row) or "
            "inject SQL through textual columns.",
            "Map allowed keys to columns: `SORTS = {'name': Model.name}`; `SORTS[key]` after "
            "checking `key in SORTS`, or type the parameter with a Literal/Enum.",
        ),
        _rule(
            "FSA404",
            "Mass assignment from the request body",
            "medium",
            "security",
            "fastapi security",
            "https://cheatsheetseries.owasp.org/cheatsheets/Mass_Assignment_Cheat_Sheet.html",
            "Copying every key of the body onto a model lets a client set fields it must not "
            "(`is_admin`, `owner_id`, `balance`).",
            "Accept a schema with only the writable fields and assign them explicitly (or "
            "`model_dump(include={...})`).",
        ),
        _rule(
            "FSA405",
            "Credentials in code",
            "high",
            "security",
            "security",
            f"{SA}/core/engines.html#creating-urls-programmatically",
            "A password in source code is in every clone, log and backup of the repository, "
            "and cannot be rotated without a release.",
            "Read the URL or password from the environment or a secret store "
            "(pydantic-settings `SecretStr`).",
        ),
        _rule(
            "FSA501",
            "Pydantic v1 API under Pydantic 2",
            "low",
            "correctness",
            "fastapi correctness",
            "https://docs.pydantic.dev/latest/migration/",
            "The project pins Pydantic 2; v1 names (`.dict()`, `orm_mode`, `@validator`, "
            "`parse_obj`) are deprecated shims, slower, and removed in v3.",
            "Use the v2 names: `model_dump()`, `from_attributes=True`, `@field_validator`, "
            "`model_validate()`.",
        ),
        _rule(
            "FSA502",
            "Legacy session.query() in SQLAlchemy 2 code",
            "info",
            "correctness",
            "sqlalchemy",
            f"{SA}/changelog/migration_20.html#migration-20-query-usage",
            "`Session.query()` is the legacy 1.x API; it does not exist on AsyncSession and "
            "mixes two styles in one code base.",
            "`session.scalars(select(Model).where(...))`.",
        ),
    ]
}

# A check runs over one Scan (rules.common, which imports this module).
type Check = Callable[[Scan], Iterable[Hit]]

CHECKS: dict[str, Check] = {}


def check[F: Check](rule_id: str) -> Callable[[F], F]:
    """Register the function that runs ``rule_id`` over a Scan."""

    def register(function: F) -> F:
        CHECKS[rule_id] = function
        return function

    return register
