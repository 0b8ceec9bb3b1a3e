"""The job and run pages: live progress and log, paging, download, history, status, inbox."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from optimizations.models import Job, JobLog, Measurement, Run
from portal.models import Notification


def htmx_get(client, url):
    return client.get(url, headers={"HX-Request": "true"})


@pytest.fixture
def running_job(target, qa_engineer):
    run = Run.objects.create(target=target, mode="performance", triggered_by=qa_engineer)
    job = Job.objects.create(run=run, kind="probe", target=target, triggered_by=qa_engineer)
    job.claim("analysis@test")
    return job


def add_lines(job, count, start=1):
    now = timezone.now()
    JobLog.objects.bulk_create(
        JobLog(job=job, seq=seq, at=now, message=f"line {seq}")
        for seq in range(start, start + count)
    )
    Job.objects.filter(pk=job.pk).update(log_lines=start + count - 1)
    job.refresh_from_db()


def test_the_job_page_shows_the_tail_of_a_long_log_and_polls(login, running_job, qa_engineer):
    add_lines(running_job, 1000)
    page = login(qa_engineer).get(running_job.get_absolute_url()).content.decode()
    assert "line 1000" in page and "line 801" in page and "line 800<" not in page
    assert "Show earlier lines" in page
    assert f'hx-get="/jobs/{running_job.pk}/live/?after=1000&rows=-1"' in page


def test_the_live_answer_carries_only_new_lines_and_the_status(login, running_job, qa_engineer):
    add_lines(running_job, 10)
    add_lines(running_job, 3, start=11)
    body = htmx_get(login(qa_engineer), f"/jobs/{running_job.pk}/live/?after=10").content.decode()
    assert "line 11" in body and "line 13" in body and "line 10<" not in body
    assert f'hx-swap-oob="beforeend:#job-{running_job.pk}-log"' in body
    assert f'id="job-{running_job.pk}-status" hx-swap-oob="true"' in body
    assert "?after=13" in body  # the next poll asks for what follows


def oob_targets(body):
    """The ids an htmx answer swaps out of band."""
    ids = re.findall(r'id="([^"]+)"[^>]*hx-swap-oob="(?:true|delete)"', body)
    return ids + re.findall(r'hx-swap-oob="[a-z]+:#([^"]+)"', body)


@pytest.mark.parametrize("lines_at_load", [0, 10])
def test_every_out_of_band_swap_of_a_poll_finds_its_target_in_the_page(
    login, running_job, qa_engineer, lines_at_load
):
    client = login(qa_engineer)
    if lines_at_load:
        add_lines(running_job, lines_at_load)
    page = client.get(running_job.get_absolute_url()).content.decode()
    add_lines(running_job, 3, start=lines_at_load + 1)
    first = htmx_get(client, f"/jobs/{running_job.pk}/live/?after={lines_at_load}").content.decode()
    add_lines(running_job, 3, start=lines_at_load + 4)
    after = lines_at_load + 3
    second = htmx_get(client, f"/jobs/{running_job.pk}/live/?after={after}").content.decode()
    # The placeholder goes with the first lines, once; later polls do not ask again.
    assert (f'id="job-{running_job.pk}-log-empty"' in first) == (lines_at_load == 0)
    assert f"job-{running_job.pk}-log-empty" not in second
    assert oob_targets(first) and oob_targets(second)
    # An out-of-band element without an id has no target either ("#null" in the console).
    for body in (first, second):
        tags = re.findall(r'<[^>]*hx-swap-oob="[^":]*"[^>]*>', body)  # no selector of its own
        assert tags and [tag for tag in tags if ' id="' not in tag] == []
    for target in oob_targets(first) + oob_targets(second):
        if target != f"job-{running_job.pk}-log-empty":
            assert f'id="{target}"' in page
    if lines_at_load == 0:
        assert f'id="job-{running_job.pk}-log-empty"' in page


def test_polling_stops_when_the_job_ends_and_the_result_arrives(login, running_job, qa_engineer):
    running_job.succeed({"checks": []}, "pass")
    response = htmx_get(login(qa_engineer), f"/jobs/{running_job.pk}/live/?after=0")
    assert response.status_code == 286
    body = response.content.decode()
    assert "hx-trigger" not in body.split(f'id="job-{running_job.pk}-poll"')[1].split(">")[0]
    assert f'id="job-{running_job.pk}-result" hx-swap-oob="true"' in body


@pytest.mark.parametrize("lines", [10, 5000])
def test_the_live_endpoint_costs_the_same_few_queries_however_long_the_log(
    login, running_job, qa_engineer, lines, django_assert_max_num_queries
):
    add_lines(running_job, lines)
    client = login(qa_engineer)
    client.get("/")  # the session has its time zone from now on
    add_lines(running_job, 5, start=lines + 1)
    # 2 for authentication (session, user) + the job + its new lines.
    with django_assert_max_num_queries(4):
        response = htmx_get(client, f"/jobs/{running_job.pk}/live/?after={lines}")
    assert f"line {lines + 5}" in response.content.decode()


def test_a_job_far_ahead_sends_its_newest_lines_and_says_what_it_skipped(
    login, running_job, qa_engineer
):
    add_lines(running_job, 2000)
    body = htmx_get(login(qa_engineer), f"/jobs/{running_job.pk}/live/?after=0").content.decode()
    assert "line 2000" in body and "line 1501" in body and "line 1500<" not in body
    assert "1500 lines in between" in body


def test_earlier_lines_come_a_page_at_a_time(login, running_job, qa_engineer):
    add_lines(running_job, 1200)
    body = login(qa_engineer).get(f"/jobs/{running_job.pk}/log/?before=801").content.decode()
    assert "line 800" in body and "line 301" in body and "line 300<" not in body
    assert "?before=301" in body


def test_the_whole_log_downloads_as_text(login, running_job, qa_engineer):
    add_lines(running_job, 3000)
    response = login(qa_engineer).get(f"/jobs/{running_job.pk}/log.txt")
    text = b"".join(response.streaming_content).decode()
    assert response["Content-Disposition"].startswith("attachment")
    assert text.count("\n") == 3001 and text.rstrip().endswith("line 3000")


def test_a_viewer_may_watch_but_not_cancel_or_rerun(login, running_job, viewer):
    client = login(viewer)
    assert client.get(running_job.get_absolute_url()).status_code == 200
    assert client.post(reverse("job_cancel", args=[running_job.pk])).status_code == 403
    assert client.post(reverse("run_rerun", args=[running_job.run_id])).status_code == 403
    assert (
        client.post(
            reverse("run_start", args=[running_job.target.slug]), {"mode": "performance"}
        ).status_code
        == 403
    )


def test_cancelling_a_running_job_asks_its_worker(login, running_job, qa_engineer):
    login(qa_engineer).post(reverse("job_cancel", args=[running_job.pk]))
    running_job.refresh_from_db()
    assert running_job.cancel_requested and running_job.status == Job.RUNNING


def test_job_history_filters_by_parameter_value(login, target, qa_engineer):
    run = Run.objects.create(target=target, mode="quality")
    Job.objects.create(
        run=run, kind="benchmark", target=target, params={"mode": "stress", "duration": 30}
    )
    Job.objects.create(
        run=run, kind="benchmark", target=target, params={"mode": "load", "duration": 60}
    )
    client = login(qa_engineer)
    assert client.get("/jobs/?param=mode=stress").context["page"].paginator.count == 1
    assert client.get("/jobs/?param=duration=60").context["page"].paginator.count == 1
    assert client.get("/jobs/?kind=benchmark&status=queued").context["page"].paginator.count == 2


@pytest.mark.parametrize("jobs", [1, 40])
def test_job_history_costs_the_same_queries_for_few_and_many(
    login, target, qa_engineer, jobs, django_assert_max_num_queries
):
    run = Run.objects.create(target=target, mode="quality", triggered_by=qa_engineer)
    Job.objects.bulk_create(
        Job(run=run, kind="probe", target=target, triggered_by=qa_engineer) for _ in range(jobs)
    )
    client = login(qa_engineer)
    client.get("/")
    with django_assert_max_num_queries(8):
        assert client.get("/jobs/").status_code == 200


def test_the_status_page_reports_the_parts(login, qa_engineer, settings):
    response = login(qa_engineer).get(reverse("status"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "broker" in body and "Workers" in body and "beat" in body


def test_the_inbox_lists_and_marks_read(login, qa_engineer):
    Notification.objects.create(user=qa_engineer, subject="Run #1 succeeded", url="/runs/1/")
    client = login(qa_engineer)
    assert "Run #1 succeeded" in client.get(reverse("inbox")).content.decode()
    assert '<span class="count">1</span>' in client.get("/").content.decode()
    client.post(reverse("inbox_read"))
    assert Notification.objects.get().read_at is not None


def add_rows(job, first, count):
    now = timezone.now()
    Measurement.objects.bulk_create(
        Measurement(
            target=job.target,
            job=job,
            run=job.run,
            name=f"sample.{name}",
            value=value,
            unit="",
            second=row,
            measured_at=now,
        )
        for row in range(first, first + count)
        for name, value in (
            ("at", row + 1.0),
            ("offered", 100.0),
            ("achieved", 99.0 + row),
            ("errors", 0.0),
            ("p50_ms", 2.0),
            ("p95_ms", 5.0),
            ("p99_ms", 9.0),
        )
    )


@pytest.fixture
def running_benchmark(target, qa_engineer):
    run = Run.objects.create(target=target, mode="quality", triggered_by=qa_engineer)
    job = Job.objects.create(run=run, kind="benchmark", target=target, triggered_by=qa_engineer)
    job.claim("benchmark@test")
    return job


def test_a_running_benchmark_draws_its_timeline_and_loads_plotly_locally(
    login, running_benchmark, qa_engineer
):
    add_rows(running_benchmark, 0, 5)
    page = login(qa_engineer).get(running_benchmark.get_absolute_url()).content.decode()
    assert "/static/vendor/plotly.min.js" in page and "cdn" not in page
    assert f'data-target="job-{running_benchmark.pk}-timeline"' in page
    assert "&rows=4" in page  # the poll asks for the rows after the last one drawn


def test_each_poll_brings_only_the_new_rows_in_few_queries(
    login, running_benchmark, qa_engineer, django_assert_max_num_queries
):
    add_rows(running_benchmark, 0, 600)
    client = login(qa_engineer)
    client.get("/")
    add_rows(running_benchmark, 600, 2)
    with django_assert_max_num_queries(5):  # 2 for authentication + job, log lines, rows
        body = htmx_get(
            client, f"/jobs/{running_benchmark.pk}/live/?after=0&rows=599"
        ).content.decode()
    assert 'class="plotly-extend"' in body and "&rows=601" in body
    extension = body.split('class="plotly-extend"')[1].split(">", 1)[1].split("</script>")[0]
    import json

    points = json.loads(extension)
    assert points["x"] == [601.0, 602.0] and points["achieved"] == [699.0, 700.0]


def test_a_job_started_from_its_htmx_form_sends_the_browser_to_the_job(login, target, qa_engineer):
    response = login(qa_engineer).post(
        reverse("job_start", args=[target.slug, "probe"]), {}, headers={"HX-Request": "true"}
    )
    job = Job.objects.get(target=target, kind="probe")
    # django-htmx's HttpResponseClientRedirect: htmx reads HX-Redirect and navigates.
    assert response.status_code == 200 and "Location" not in response
    assert response["HX-Redirect"] == job.get_absolute_url()


def test_a_job_started_without_htmx_is_an_ordinary_redirect(login, target, qa_engineer):
    response = login(qa_engineer).post(reverse("job_start", args=[target.slug, "probe"]))
    assert response.status_code == 302
    assert response["Location"] == Job.objects.get(target=target).get_absolute_url()


def test_the_history_shows_one_line_per_job_with_the_parameters_that_matter(
    login, target, qa_engineer
):
    run = Run.objects.create(target=target, mode="custom", triggered_by=qa_engineer)
    params = {
        "mode": "stress",
        "start_rate": 50.0,
        "duration": None,
        "paths": [],
        "timeout": 5.0,
        "seed": 1,
        "arrival": "constant",
        "max_connections": 512,
        "connections": 10,
    }
    Job.objects.create(run=run, kind="benchmark", target=target, params=params)
    page = login(qa_engineer).get(reverse("job_list")).content.decode()
    line = page.split('<tr id="job-', 1)[1].split("</tr>", 1)[0]
    shown = line.split('<details class="params">', 1)[0]
    assert "mode=stress start_rate=50 connections=10" in shown
    assert "timeout" not in shown and "duration=None" not in shown and "paths=[]" not in shown
    # The rest on demand, set ones only.
    folded = line.split('<details class="params">', 1)[1]
    assert "all 7 parameters" in folded and "<dt>timeout</dt><dd>5</dd>" in folded
    assert "None" not in folded


def test_the_history_filters_live_in_the_url_and_paging_keeps_them(login, target, qa_engineer):
    run = Run.objects.create(target=target, mode="custom", triggered_by=qa_engineer)
    Job.objects.bulk_create(Job(run=run, kind="probe", target=target, params={}) for _ in range(51))
    client = login(qa_engineer)
    page = client.get(reverse("job_list") + "?kind=probe&status=queued&page=1").content.decode()
    assert 'value="probe" selected' in page and 'value="queued" selected' in page
    assert 'href="?kind=probe&amp;status=queued&amp;page=2"' in page
    second = client.get(reverse("job_list") + "?kind=probe&status=queued&page=2").content.decode()
    assert second.count('<tr id="job-') == 1
