"""Polling that stays cheap: an unchanged job or run costs one query and no rendering.

The job page's poll slows down (1, 2, 3, then 5 s) while its job sits still
and speeds up again when it changes; the run page's poll is answered 304
while nothing changes; both stop (286) when the work has ended.
"""

import re

import pytest
from django.utils import timezone

from optimizations.jobs import polling
from optimizations.models import Job, JobLog, Run


def htmx_get(client, url, **headers):
    return client.get(url, headers={"HX-Request": "true", **headers})


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    """The coarse clock a running job's stamp carries (its duration moves): held still."""
    now = {"step": 1}
    monkeypatch.setattr(polling, "_clock", lambda: now["step"])
    return now


@pytest.fixture
def watcher(login, qa_engineer):
    client = login(qa_engineer)
    client.get("/")  # the session has its time zone from now on
    return client


@pytest.fixture
def running_job(target, qa_engineer):
    run = Run.objects.create(target=target, mode="performance", triggered_by=qa_engineer)
    job = Job.objects.create(run=run, kind="probe", target=target, triggered_by=qa_engineer)
    job.claim("analysis@test")
    return job


def next_poll(body: str) -> tuple[str, str]:
    """(the URL the next poll asks, its trigger) from an answer's poll element."""
    element = _found(r'<div id="job-\d+-poll"[^>]*>', body).group(0)
    url = _found(r'hx-get="([^"]+)"', element).group(1).replace("&amp;", "&")
    return url, _found(r'hx-trigger="([^"]+)"', element).group(1)


def _found(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text)
    assert match is not None, f"{pattern} not in {text[:500]}"
    return match


def test_an_unchanged_job_is_polled_less_often_and_costs_one_query(
    watcher, running_job, django_assert_max_num_queries
):
    first = htmx_get(watcher, f"/jobs/{running_job.pk}/live/?after=0").content.decode()
    url, trigger = next_poll(first)
    assert trigger == "every 1s" and f'id="job-{running_job.pk}-status"' in first
    triggers = []
    for _ in range(5):
        # Authentication (session, user) and the job: nothing else, nothing rendered.
        with django_assert_max_num_queries(3):
            answer = htmx_get(watcher, url)
        assert answer.status_code == 200
        body = answer.content.decode()
        assert f'id="job-{running_job.pk}-status"' not in body
        url, trigger = next_poll(body)
        triggers.append(trigger)
    assert triggers == ["every 2s", "every 3s", "every 5s", "every 5s", "every 5s"]
    # It moves: the status comes back and the rhythm is one second again.
    Job.objects.filter(pk=running_job.pk).update(progress=40, step="rules")
    body = htmx_get(watcher, url).content.decode()
    assert f'id="job-{running_job.pk}-status"' in body and "rules" in body
    assert next_poll(body)[1] == "every 1s"


def test_new_log_lines_are_a_change(watcher, running_job):
    url, _ = next_poll(htmx_get(watcher, f"/jobs/{running_job.pk}/live/?after=0").content.decode())
    JobLog.objects.create(job=running_job, seq=1, at=timezone.now(), message="hello")
    Job.objects.filter(pk=running_job.pk).update(log_lines=1)
    body = htmx_get(watcher, url).content.decode()
    assert "hello" in body and next_poll(body)[1] == "every 1s"


def test_an_ended_job_stops_polling_even_after_a_quiet_spell(watcher, running_job):
    url, _ = next_poll(htmx_get(watcher, f"/jobs/{running_job.pk}/live/?after=0").content.decode())
    url, _ = next_poll(htmx_get(watcher, url).content.decode())
    running_job.succeed({"checks": []}, "pass")
    assert htmx_get(watcher, url).status_code == 286


def test_an_unchanged_run_answers_304_from_one_query(
    watcher, running_job, django_assert_max_num_queries
):
    url = f"/runs/{running_job.run_id}/live/"
    first = htmx_get(watcher, url)
    assert first.status_code == 200 and first["ETag"]
    assert "no-cache" in first["Cache-Control"]
    with django_assert_max_num_queries(3):  # session, user, the run's jobs
        again = htmx_get(watcher, url, **{"If-None-Match": first["ETag"]})
    assert again.status_code == 304 and again.content == b""
    Job.objects.filter(pk=running_job.pk).update(progress=55)
    changed = htmx_get(watcher, url, **{"If-None-Match": first["ETag"]})
    assert changed.status_code == 200 and changed["ETag"] != first["ETag"]
    running_job.succeed({"checks": []}, "pass")
    assert htmx_get(watcher, url, **{"If-None-Match": changed["ETag"]}).status_code == 286


def test_the_run_etag_is_per_user(watcher, running_job, login, manager):
    url = f"/runs/{running_job.run_id}/live/"
    tag = htmx_get(watcher, url)["ETag"]
    other = login(manager)
    other.get("/")
    # The section shows what each may do: another user's copy is not reused.
    assert htmx_get(other, url, **{"If-None-Match": tag}).status_code == 200


def test_a_running_job_still_shows_its_duration_moving(watcher, running_job, clock):
    url, _ = next_poll(htmx_get(watcher, f"/jobs/{running_job.pk}/live/?after=0").content.decode())
    body = htmx_get(watcher, url).content.decode()
    assert f'id="job-{running_job.pk}-status"' not in body
    clock["step"] += 1  # ten seconds on: "took" changed
    url, _ = next_poll(body)
    assert f'id="job-{running_job.pk}-status"' in htmx_get(watcher, url).content.decode()


def test_the_stop_polling_answer_still_carries_the_final_fragment(watcher, running_job):
    """htmx swaps a 286 answer in like a 200, then stops: the page gets the end state."""
    running_job.succeed({"checks": []}, "pass")
    response = htmx_get(watcher, f"/jobs/{running_job.pk}/live/?after=0")
    assert response.status_code == 286 and response.reason_phrase == "Stop Polling"
    body = response.content.decode()
    assert f'id="job-{running_job.pk}-status"' in body
    assert f'<div id="job-{running_job.pk}-poll"></div>' in body  # no next poll
    run = htmx_get(watcher, f"/runs/{running_job.run_id}/live/")
    assert run.status_code == 286 and f'id="run-{running_job.run_id}-jobs"' in run.content.decode()
    assert 'hx-trigger="every' not in run.content.decode()
