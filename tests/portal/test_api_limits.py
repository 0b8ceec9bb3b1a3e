"""The API answers bad input 422 (never 500) and refuses too many job starts with 429.

On PostgreSQL a huge offset or id was "bigint out of range" and a NUL byte
"cannot contain NUL": both 500s the fuzzer found. Starting jobs had no limit
(the fuzzer started 6 250); now a rate and a queue length apply per user and
per target, in the API (429 + Retry-After) and wherever jobs start.
"""

# The fixtures imported from test_api are parameters of the tests below.
# ruff: noqa: F811

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from optimizations.analyzers.base import Param, validate_params
from optimizations.jobs import engine, limits
from optimizations.models import Job, Run, TargetService
from tests.portal.test_api import api, detail, fake_kinds, made_run  # noqa: F401 (fixtures)

HUGE = 2**70


@pytest.mark.parametrize(
    "url",
    [
        f"/api/targets/orders-api/findings?offset={HUGE}",
        f"/api/targets/orders-api/measurements?offset={HUGE}",
        "/api/targets/orders-api/findings?offset=-1",
        "/api/targets/orders-api/findings?limit=0",
        "/api/targets/orders-api/findings?limit=501",
        f"/api/runs/{HUGE}",
        "/api/runs/0",
        f"/api/jobs/{HUGE}",
        f"/api/jobs/{HUGE}/log",
        f"/api/runs/{HUGE}/measurements",
        "/api/jobs/1/log?after=-5",
        f"/api/jobs/1/log?after={2**40}",
        "/api/targets/orders-api/measurements?name=p95%00",
        "/api/targets/orders-api/findings?rule=FSA%00",
        "/api/targets/orders%00api/findings",
    ],
)
def test_numbers_out_of_bounds_and_nul_bytes_are_422(api, viewer, target, url):
    response = api(viewer).get(url)
    assert response.status_code == 422, response.content
    assert detail(response)[0]["loc"]  # says which field


@pytest.mark.parametrize(
    "payload",
    [
        {"target": "orders-api", "mode": "performance", "initiative": HUGE},
        {"target": "orders-api", "mode": "performance", "initiative": 0},
        {"target": "orders\x00api", "mode": "performance"},
        {"target": "orders-api", "mode": "performance", "focus": ["fast\x00api"]},
        {"target": "orders-api", "mode": "performance", "focus": ["\ud800"]},
        {"target": "orders-api", "mode": "performance", "params": {"bench\x00mark": {}}},
    ],
)
def test_a_run_with_unstorable_or_unbounded_input_is_422(api, qa_engineer, target, payload):
    response = api(qa_engineer).post("/api/runs", payload)
    assert response.status_code == 422, response.content
    assert not Run.objects.exists()


def test_nan_and_infinity_in_a_body_are_refused_not_stored(api, qa_engineer, target, client):
    caller = api(qa_engineer)
    for constant in ("NaN", "Infinity", "-Infinity"):
        body = '{"target": "orders-api", "kind": "probe", "params": {"timeout": ' + constant + "}}"
        response = client.post(
            "/api/jobs", body, content_type="application/json", headers=caller.headers
        )
        assert response.status_code == 400, (constant, response.content)
    assert not Job.objects.exists()


def start(caller, slug="orders-api"):
    return caller.post("/api/jobs", {"target": slug, "kind": "probe"})


def test_a_user_starting_too_fast_is_answered_429_with_retry_after(
    api,
    qa_engineer,
    target,
    settings,
):
    settings.KAIZEN_JOB_START_RATE = 3
    caller = api(qa_engineer)
    assert [start(caller).status_code for _ in range(3)] == [201, 201, 201]
    refused = start(caller)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "3 runs in the last minute" in detail(refused)
    assert "KAIZEN_JOB_START_RATE" in detail(refused)
    assert Run.objects.count() == 3
    # A minute later the oldest start has left the window.
    Run.objects.update(created_at=timezone.now() - timedelta(seconds=61))
    assert start(caller).status_code == 201


def test_the_limit_per_target_holds_across_users(api, qa_engineer, dev_engineer, target, settings):
    settings.KAIZEN_TARGET_START_RATE = 2
    assert start(api(qa_engineer)).status_code == 201
    assert start(api(dev_engineer)).status_code == 201
    refused = start(api(dev_engineer))
    assert refused.status_code == 429 and "on Orders API" in detail(refused)
    other = TargetService.objects.create(
        name="Other",
        slug="other",
        base_url="http://127.0.0.1:9",
        owner_department=target.owner_department,
    )
    assert start(api(dev_engineer), other.slug).status_code == 201


def test_a_full_queue_refuses_but_waiting_jobs_do_not_count(
    api,
    qa_engineer,
    target,
    settings,
):
    settings.KAIZEN_JOB_QUEUE_MAX = 2
    caller = api(qa_engineer)
    assert start(caller).status_code == 201
    assert start(caller).status_code == 201
    Job.objects.update(status=Job.QUEUED)
    refused = start(caller)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "queued and not yet started" in detail(refused)
    # Jobs waiting for the target's lease (or their run's previous job) have no
    # queue message: they are not refused and not counted.
    Job.objects.update(status=Job.WAITING)
    assert start(caller).status_code == 201


def test_schedules_are_not_limited(qa_engineer, target, settings, fake_kinds):
    settings.KAIZEN_JOB_START_RATE = settings.KAIZEN_TARGET_START_RATE = 1
    for _ in range(3):
        engine.start_job(qa_engineer, target, "probe", {}, trigger="schedule")
    with pytest.raises(limits.TooManyStarts):
        engine.start_job(qa_engineer, target, "probe", {})
    assert Run.objects.count() == 3


def test_the_portal_says_why_it_did_not_start(client, qa_engineer, target, settings, fake_kinds):
    settings.KAIZEN_JOB_START_RATE = 1
    client.force_login(qa_engineer)
    client.post(f"/targets/{target.slug}/runs/", {"mode": "performance"})
    response = client.post(f"/targets/{target.slug}/runs/", {"mode": "performance"})
    assert response.status_code == 302
    shown = [str(message) for message in get_messages(response.wsgi_request)]
    assert any("runs in the last minute" in text and "Try again in" in text for text in shown)
    assert Run.objects.count() == 1


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", float("nan")])
def test_a_number_parameter_is_finite(value):
    # "nan" passed every bound (comparisons with NaN are false) and JSON cannot store it.
    with pytest.raises(ValueError, match="expected float"):
        validate_params(
            [Param("rate", "float", 1.0, "Requests per second", min=0, max=10)], {"rate": value}
        )


def test_a_benchmark_set_counts_like_any_other_start(qa_engineer, target, settings, fake_kinds):
    settings.KAIZEN_JOB_START_RATE = 1
    engine.start_job(qa_engineer, target, "probe", {})
    with pytest.raises(limits.TooManyStarts, match="runs in the last minute"):
        engine.start_set(qa_engineer, target)
    assert Run.objects.count() == 1
