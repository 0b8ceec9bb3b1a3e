"""HR's demo content: runbooks for operating FastAPI + SQLAlchemy + PostgreSQL services,
and a training module with a quiz. ``portal.demo.load_demo`` calls
``load_runbooks_and_training`` once, after the people and the demo target exist.

Everything is written through the same ``do_*`` functions the pages use, so
the demo has real revisions, audit events and training records.
"""

# ruff: noqa: E501 — a Markdown table row is one line, however long.

from __future__ import annotations

import datetime

from django.utils import timezone

from departments.actions import (
    do_assign_training,
    do_create_module,
    do_create_runbook,
    do_propose_runbook_edit,
    do_save_runbook,
)
from departments.models import Department, Membership, Runbook, Topic

CONNECTION_POOL = """\
# Connection-pool exhaustion

**Use when** requests queue or fail with
`sqlalchemy.exc.TimeoutError: QueuePool limit of size 10 overflow 20 reached,
connection timed out, timeout 30.00`, the API answers 500/503 in bursts, or
latency climbs while the database itself looks idle.

## 1. Confirm it is the pool

1. Check the service's pool metric (checked-out connections against
   `pool_size + max_overflow`). Above 80 % for ten minutes breaks the SLO;
   at 100 % requests wait `pool_timeout` seconds and then fail.
2. See what the connections are doing, on the database, read-only:

   ```sql
   SELECT application_name, state, count(*) AS connections,
          max(now() - state_change) AS longest_in_state
   FROM pg_stat_activity
   WHERE datname = current_database()
   GROUP BY 1, 2
   ORDER BY connections DESC;
   ```

   - many **idle in transaction** → sessions are opened and not closed or committed
     (see cause A);
   - many **active** with long durations → slow queries hold the connections
     (follow *Slow-query triage*);
   - few connections at all while the pool is full → the workers hold
     connections without using them (cause B).

3. Let Kaizen look from the outside as well:

   ```kaizen-run kind=db_scan target=shop-api
   label: DB scan: connections, pool use and slow statements (read-only)
   ```

## 2. Stop the bleeding

- **Connections stuck idle in transaction for more than 5 minutes** can be ended;
  their requests have long since timed out:

  ```sql
  SELECT pg_terminate_backend(pid)
  FROM pg_stat_activity
  WHERE state = 'idle in transaction'
    AND now() - state_change > interval '5 minutes'
    AND datname = current_database();
  ```

- **Restart the API workers one at a time** (never all at once): each restart
  returns its whole pool.
- **Do not raise `pool_size` blindly.** Every worker process has its own pool:
  `workers × (pool_size + max_overflow)` must stay below PostgreSQL's
  `max_connections` minus the connections reserved for administrators,
  migrations and monitoring. Raising it past that moves the failure into
  PostgreSQL, where it hits every client.

## 3. Find the cause

| Cause | What you see | Fix |
|---|---|---|
| A. Sessions not closed | idle in transaction grows with traffic | one session per request through a dependency with `yield`, closed in `finally` (or `async with AsyncSession(...)`) |
| B. Connection held across slow awaits | pool full, database quiet | do not call other services while a transaction is open; commit first, call, then open a new transaction |
| C. Blocking calls in `async def` endpoints | whole worker stalls, latency spikes for every route | use the async driver (asyncpg) or make the endpoint a plain `def` so it runs in the thread pool |
| D. Pool too small for the concurrency | steady queueing at peak only | size the pool from measured concurrency (Little's law: arrival rate × time holding a connection) |
| E. Slow queries | active connections with long durations | *Slow-query triage* |

The request-scoped session, the shape the code scan expects:

```python
async def get_session() -> AsyncIterator[AsyncSession]:
    async with SessionFactory() as session:
        yield session
```

## 4. Prevent it

- Set `idle_in_transaction_session_timeout = '60s'` for the application role,
  so a leaked transaction ends itself.
- Set `pool_pre_ping=True` and a `pool_recycle` below any proxy's idle timeout.
- Alert on pool use > 80 % for 10 minutes (the SLO), not at 100 %.
- Add a load test at the expected peak to phase 4 of the initiative.

## 5. Close

Write down what you saw and what you changed in the incident channel, and
link the Kaizen run. If code was at fault, open a finding for Development.
"""

CONNECTION_POOL_FIRST = (
    CONNECTION_POOL.split("## 4. Prevent it")[0]
    + """\
## 4. Close

Write down what you saw and what you changed in the incident channel, and
link the Kaizen run.
"""
)

SLOW_QUERY = """\
# Slow-query triage

**Use when** the DB scan reports slow statement families, the slow-query rate
passes 5 %, or an endpoint's latency is dominated by database time.

Kaizen's definitions: a **slow query** is one execution taking **≥ 1 s**; a
**slow family** is a normalised statement whose mean is **≥ 50 ms over ≥ 50
calls**. Both thresholds are per target and editable.

## 1. Find the statements that cost the most

Start from total time, not from the single slowest call: a 20 ms query run
two million times a day costs more than a 3 s report run twice.

```sql
SELECT queryid,
       calls,
       round(total_exec_time)              AS total_ms,
       round(mean_exec_time::numeric, 1)   AS mean_ms,
       rows / greatest(calls, 1)           AS rows_per_call,
       left(query, 120)                    AS statement
FROM pg_stat_statements
ORDER BY total_exec_time DESC
LIMIT 15;
```

Or let Kaizen do it (read-only, with a statement timeout):

```kaizen-run kind=db_scan target=shop-api
label: DB scan of the shop's database
```

## 2. Read the plan

Run `EXPLAIN (ANALYZE, BUFFERS)` with real parameters. It **executes** the
statement: for anything that writes, wrap it so nothing stays changed:

```sql
BEGIN;
EXPLAIN (ANALYZE, BUFFERS) UPDATE orders SET status = 'paid' WHERE id = 42;
ROLLBACK;
```

What to look for:

| In the plan | Usually means | Usual fix |
|---|---|---|
| `Seq Scan` on a large table with a selective `Filter` | no usable index | an index — roll it out with *Rolling out an index* |
| estimated rows far from actual rows | stale statistics | `ANALYZE table;` then re-check |
| `Sort` with `external merge` | `work_mem` too small for this sort | an index that delivers the order, or a smaller result |
| large `OFFSET` | deep pagination reads and drops rows | keyset pagination (`WHERE id > :last ORDER BY id LIMIT 50`) |
| `Filter: (lower(email) = …)` on an indexed column | the function hides the index | an expression index on `lower(email)` |
| `LIKE '%term'` | a leading wildcard cannot use a B-tree | trigram index (`pg_trgm`) or full-text search |

## 3. Check the ORM side

Many slow families are not one slow query but many fast ones:

- **N+1**: one query per row because a relationship loads lazily. Use
  `selectinload()` (collections) or `joinedload()` (many-to-one) in the query
  that fetches the rows.
- **Loading whole rows for a count**: use `select(func.count())`, not
  `len(result.all())`.
- **Columns you never read**: `load_only()` for wide tables.

## 4. Decide and record

- Quick wins (an index, `ANALYZE`, an eager load) go into the initiative's
  phase 2 as tasks for Development.
- Architecture problems (a table that outgrew its design, reporting on the
  primary) go to Strategy for phase 3.
- Re-run the DB scan after the fix: Kaizen marks the finding fixed only when
  the check ran again and passed.
"""

SLOW_QUERY_ORM_LAST = "- **Columns you never read**: `load_only()` for wide tables.\n"
SLOW_QUERY_PROPOSED = """\
- **Eager loading declared on the model**: `lazy="joined"` on a relationship
  adds the join to *every* query of the parent, used or not. Keep the default
  and choose the loading per query.
"""

INDEX_ROLLOUT = """\
# Rolling out an index with CREATE INDEX CONCURRENTLY

A plain `CREATE INDEX` holds a lock that **blocks every write** to the table
until it finishes — minutes on a large table. `CONCURRENTLY` builds the index
while writes go on, at the price of two table scans and a few rules below.

## Before

1. Prove the index helps: `EXPLAIN (ANALYZE, BUFFERS)` of the slow statement
   on a copy of production data, with the index created there.
2. Check there is no equivalent index already (the DB scan reports duplicates
   and unused indexes).
3. Estimate the size and time: roughly the size of the indexed columns ×
   rows; make sure the disk has twice that free.
4. Pick a quiet hour. The build competes for I/O with the service.

## The migration

`CREATE INDEX CONCURRENTLY` **cannot run inside a transaction block**, and
Alembic runs each migration in one. Step out of it explicitly:

```python
def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("SET lock_timeout = '5s'")
        op.create_index(
            "ix_orders_customer_id_created_at",
            "orders",
            ["customer_id", "created_at"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_orders_customer_id_created_at",
            table_name="orders",
            postgresql_concurrently=True,
            if_exists=True,
        )
```

`lock_timeout` matters: the build still waits for a brief lock at the start
and the end, behind any long transaction. Failing after 5 s and retrying is
better than queueing every write behind it.

## During

Watch the progress from another session:

```sql
SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total
FROM pg_stat_progress_create_index;
```

## If it fails

A failed or cancelled concurrent build leaves an **INVALID** index behind: it
is maintained on every write but never used. Find and drop it, then retry:

```sql
SELECT indexrelid::regclass AS index
FROM pg_index
WHERE NOT indisvalid;

DROP INDEX CONCURRENTLY IF EXISTS ix_orders_customer_id_created_at;
```

## After

1. `ANALYZE orders;` so the planner knows the new statistics.
2. `EXPLAIN` the statement again and confirm the index is used.
3. Re-run the DB scan and a load test against the baseline; record the
   measured saving on the initiative.
4. Drop any index the new one makes redundant — concurrently, too.
"""

LOAD_TEST = """\
# Running a load test safely

A load test is the only way to know the SLOs hold at peak, and the easiest way
to cause the outage it was meant to prevent. Follow every step.

## Rules

- **Never against production** without a written approval from the service
  owner and the on-call lead. Staging or the demo target first.
- Kaizen only connects to allow-listed hosts, and keeps each test within the
  **target's own limits** on request rate and duration. Ask the owner to
  change the limits; do not work around them.
- Where the target has a training gate, you need a current completion of
  *Load testing FastAPI services safely* to start a benchmark.

## Before

1. Announce it in the service channel: what, when, how long, who stops it.
2. Check nothing else runs: deploys, migrations, batch jobs, other tests.
3. Make sure a **baseline** exists (phase 1 pins one). Without a baseline
   the result cannot be compared with anything.
4. Open the dashboards: latency, error rate, pool use, database CPU.

## Run

Start with a fixed-rate load test well below the expected peak:

```kaizen-run kind=benchmark target=shop-api
label: Load test: 50 requests per second for 60 seconds
mode: load
rate: 50
duration: 60
```

Then raise the rate in steps, or run a **stress** test (a ramp that finds
the capacity knee) once the load test passes.

## Stop at once when

| Signal | Threshold |
|---|---|
| error rate | > 5 % for 30 s |
| p99 latency | > 2 s for 30 s |
| database CPU | > 85 % |
| connection-pool use | > 90 % |
| anybody asks | always |

Cancelling the job in Kaizen stops the load within a second.

## After

1. Compare with the baseline in Kaizen: the comparison says whether a
   difference is real or noise.
2. Write the result on the initiative; a failed SLO becomes a finding.
3. Tell the channel it is over.
"""

INCIDENT_RESPONSE = """\
# Incident response — Shop API

## Severities

| Severity | Meaning | Response |
|---|---|---|
| SEV1 | the shop is down or losing orders | page on-call now; incident lead within 15 minutes |
| SEV2 | degraded: an SLO is breached (latency, errors > 1 %) | on-call within 30 minutes |
| SEV3 | a fault with a workaround | next working day |

## Roles

- **Incident lead** decides, keeps the timeline, and asks for help early.
- **Operator** changes one thing at a time and says so in the channel first.
- **Communicator** updates the status page and stakeholders every 30 minutes.

## The first 15 minutes

1. Acknowledge the page; open the incident channel; name the lead.
2. Is it up? Probe the service:

   ```kaizen-run kind=probe target=shop-api
   label: Probe the Shop API (health, OpenAPI, a few timed requests)
   ```

3. What changed? A deploy, a migration, a configuration change, a traffic
   spike. **If a deploy went out in the last hour, roll it back first** and
   diagnose afterwards.
4. Look at latency, error rate, connection-pool use and database load, and
   follow the matching runbook:
   - pool full or `QueuePool limit … reached` → *Connection-pool exhaustion*;
   - database busy, slow endpoints → *Slow-query triage*;
   - a migration holding locks → stop it; see *Rolling out an index*.

## Communication

> We are investigating degraded performance of the shop. Orders may be slow
> to complete. Next update in 30 minutes.

## Closing

- The incident ends when the SLOs hold again for 30 minutes.
- Within five working days: a blameless review — timeline, causes, what
  helped, what did not, and actions with owners and dates. Update this
  runbook and the others with what you learned.
"""

TRAINING_CONTENT = """\
# Load testing FastAPI services safely

This module qualifies you to start load tests from Kaizen. It takes about
twenty minutes: read the two runbooks, then answer the quiz.

1. Read **[Running a load test safely](/runbooks/running-a-load-test-safely/)** —
   the rules, the stop criteria, and why a baseline comes first.
2. Read **[Connection-pool exhaustion](/runbooks/connection-pool-exhaustion/)** —
   the failure a load test most often provokes in a SQLAlchemy service.

## What to remember

- A load test runs against staging or the demo target, never production
  without written approval.
- Kaizen keeps every test within the target's own limits and stops within a
  second when you cancel the job.
- Every worker process has its own connection pool:
  `workers × (pool_size + max_overflow)` must stay below PostgreSQL's
  `max_connections` minus the reserved connections.
- Without a baseline a result means nothing: compare, do not eyeball.
"""

TRAINING_QUIZ = """\
? Which environments may you load test without written approval from the service owner?
+ Staging
+ The demo target
- Production, outside business hours
- Production, at a low rate
> Production always needs written approval from the service owner and the on-call lead.

? The API has 4 worker processes, each with pool_size=10 and max_overflow=5. How many database connections can it open at most?
- 15
- 40
+ 60
- 10
> Each process has its own pool: 4 × (10 + 5) = 60.

? During a load test the error rate passes 5 % for 30 seconds. What do you do?
+ Cancel the job at once
- Wait for the test to end, then look at the results
- Raise max_overflow so the errors stop
> It is a stop criterion: cancel. Kaizen stops the load within a second.

? Why must a baseline exist before you run a load test for an initiative?
- Kaizen refuses to run a load test otherwise
+ Without one, the result cannot be compared with anything
- The baseline warms up the database cache
> Results are judged against the baseline; the comparison tells a real difference from noise.

? Connections pile up "idle in transaction" under load. What is the likely cause?
+ Sessions opened per request are not closed or committed
- The pool is too large
- PostgreSQL's max_connections is too high
> A session that is never closed keeps its transaction, and its connection, open.
"""


def load_runbooks_and_training(users: dict, target) -> None:
    """Write the demo runbooks and the training module; assign it to Development's engineers.

    ``users`` maps the demo usernames to users (``hr.editor`` writes, ``hr.manager``
    owns incident response, ``dev.engineer`` proposes a change); ``target`` is the
    demo Shop API.
    """
    editor = users["hr.editor"]
    owner = users.get("hr.manager", editor)
    hr = Department.objects.get(code=Department.HR)
    topics = {topic.slug: topic for topic in Topic.objects.all()}
    today = timezone.localdate()

    def write(title, body, topic_slugs, phases, *, owned_by=editor, review_in=180, note=""):
        return do_create_runbook(
            editor,
            title=title,
            body=body,
            note=note or "First version",
            owner_department=hr,
            owner=owned_by,
            status=Runbook.PUBLISHED,
            topics=[topics[slug] for slug in topic_slugs],
            targets=[target],
            phases=phases,
            next_review_date=today + datetime.timedelta(days=review_in),
        )

    pool = write(
        "Connection-pool exhaustion",
        CONNECTION_POOL_FIRST,
        ["connection-pool-exhaustion", "incident-response"],
        [2, 3],
    )
    # A second revision, so the demo has a history and a diff to look at.
    do_save_runbook(
        editor,
        pool,
        title=pool.title,
        body=CONNECTION_POOL,
        note="Added prevention: idle_in_transaction_session_timeout, pre-ping, the 80 % alert",
    )
    # Reviewed half a year ago and due last week: the overdue badge has something to show.
    slow = write(
        "Slow-query triage",
        SLOW_QUERY,
        ["slow-query-triage"],
        [1, 2],
        review_in=-6,
    )
    # An engineer's change waiting for HR's approval.
    do_propose_runbook_edit(
        users["dev.engineer"],
        slow,
        title=slow.title,
        body=SLOW_QUERY.replace(SLOW_QUERY_ORM_LAST, SLOW_QUERY_ORM_LAST + SLOW_QUERY_PROPOSED),
        note="Warn about lazy='joined' on relationships",
    )
    write(
        "Rolling out an index with CREATE INDEX CONCURRENTLY",
        INDEX_ROLLOUT,
        ["index-rollout"],
        [2],
    )
    load_test = write(
        "Running a load test safely",
        LOAD_TEST,
        ["load-test-procedure"],
        [1, 4],
        review_in=90,
    )
    write(
        "Incident response — Shop API",
        INCIDENT_RESPONSE,
        ["incident-response"],
        [],
        owned_by=owner,
        review_in=120,
    )

    module = do_create_module(
        editor,
        title="Load testing FastAPI services safely",
        summary="The rules, the stop criteria and the pool arithmetic — required before "
        "you start a load test.",
        content=TRAINING_CONTENT,
        quiz=TRAINING_QUIZ,
        pass_mark=80,
        recertify_after_days=365,
        status="published",
        owner_department=hr,
        runbooks=[load_test, pool],
    )
    dev = Department.objects.get(code=Department.DEV)
    do_assign_training(
        editor,
        module,
        department=dev,
        role=Membership.ENGINEER,
        due_date=today + datetime.timedelta(days=21),
        note="Before the phase 4 load tests of the Shop API initiative.",
    )
