"""The API under schemathesis: whatever a client sends, it never answers 5xx.

A fuzzer once got 38 × 500 out of 14 104 requests (a huge ``offset``, NUL
bytes…). This runs the same kind of fuzzing in the suite, so CI runs it on
SQLite and on PostgreSQL: every operation of /api/openapi.json with data that
fits the schema and data that does not (wrong types, out-of-range numbers,
NUL bytes), through the WSGI app in-process (Django's test client: no
network), as a token owner who may start jobs.

Deterministic: derandomized, a fixed number of examples per operation, no
example database; the whole file takes well under a minute.
"""

# The fixtures imported from test_api are parameters of the tests below.
# ruff: noqa: F811

import json

import pytest
import schemathesis
from django.core.management.color import no_style
from django.db import connection
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core import NotSet

from optimizations.api import api
from optimizations.models import Job, Run, TargetService
from portal.tokens import do_create_token
from tests.portal.test_api import fake_kinds  # noqa: F401 (fixture: no broker, fake analyzers)

EXAMPLES = 40

schema = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api"))
# Examples from the document, then the coverage phase (boundary values: each bound
# and one past it, wrong types, NUL bytes…), then random fuzzing.
schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=EXAMPLES,
    deterministic=True,
    database="none",
    allow_x00=True,
)

# Objects the ``world`` fixture makes; random slugs and ids would almost never
# name one, and a 404 tests nothing behind it.
EXISTING = {"slug": "shop-api", "run_id": 1, "job_id": 1}


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Each generated path, or the same path naming existing objects."""
    existing = {k: EXISTING.get(k, v) for k, v in (path_parameters or {}).items()}
    return st.sampled_from([path_parameters, existing])


@schema.hook
def flatmap_body(context, body):
    """Each generated body, or the same body naming the existing target."""
    if isinstance(body, dict) and "target" in body:
        return st.sampled_from([body, {**body, "target": EXISTING["slug"]}])
    return st.just(body)


@pytest.fixture
def world(db, manager, departments, fake_kinds):
    """Objects the fuzzer can reach: the documented example target, id 1 of each kind."""
    target = TargetService.objects.create(
        pk=1,
        name="Shop API",
        slug="shop-api",
        base_url="http://127.0.0.1:9",
        owner_department=departments["dev"],
    )
    run = Run.objects.create(pk=1, target=target, mode="performance", triggered_by=manager)
    Job.objects.create(pk=1, run=run, kind="probe", target=target, status=Job.SUCCEEDED)
    # Rows made with explicit ids: PostgreSQL's sequences must move past them.
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [TargetService, Run, Job]):
            cursor.execute(sql)
    _token, key = do_create_token(manager, "fuzz")
    return {"Authorization": f"Bearer {key}"}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_the_api_answer_5xx(case, world, client):
    kwargs = {"headers": {**(case.headers or {}), **world}, "query_params": case.query or {}}
    if not isinstance(case.body, NotSet):
        body = case.body  # None is JSON null
        kwargs["data"] = body if isinstance(body, (bytes, str)) else json.dumps(body)
        kwargs["content_type"] = case.media_type or "application/json"
    response = client.generic(case.method.upper(), case.formatted_path, **kwargs)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} {case.query} {case.body!r} → "
        f"{response.status_code} {response.content[:500]!r}"
    )
