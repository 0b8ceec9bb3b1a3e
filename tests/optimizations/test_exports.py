"""CSV and JSON exports of findings and runs: content, filters, access, streaming."""

import csv
import datetime
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from optimizations.models import Finding, Job, PhaseTask, Run, TargetService
from optimizations.reports.views import exports
from tests.conftest import PERSONAS
from tests.factories import benchmark_job, load_summary

NOW = timezone.now()


def finding(target, rule="FSA101", severity="high", status=Finding.OPEN, **fields):
    fields.setdefault("title", f"{rule} title")
    fields.setdefault("fingerprint", f"{rule}-{fields['title']}-{fields.get('location', '')}")
    return Finding.objects.create(
        target=target,
        source=fields.pop("source", "code"),
        rule_id=rule,
        severity=severity,
        category=fields.pop("category", "fastapi"),
        status=status,
        first_seen_at=NOW - datetime.timedelta(days=2),
        last_seen_at=NOW,
        **fields,
    )


def many_findings(target, count, prefix="bulk"):
    Finding.objects.bulk_create(
        Finding(
            target=target,
            source="db",
            rule_id=f"DB{n % 7}",
            severity="medium",
            category="index",
            title=f"{prefix} {n}",
            fingerprint=f"{prefix}-{n}",
            first_seen_at=NOW,
            last_seen_at=NOW,
            evidence={"n": n},
        )
        for n in range(count)
    )


def benchmark_run(target, user=None, initiative=None, p95=180.5):
    run = Run.objects.create(
        target=target,
        mode="performance",
        focus=["fastapi", "sqlalchemy"],
        status="succeeded",
        verdict="fail",
        triggered_by=user,
        initiative=initiative,
        finished_at=NOW,
    )
    benchmark_job(
        target,
        finished=NOW,
        duration_s=0,
        run=run,
        verdict="fail",
        summary=load_summary(
            p95,
            med=42.0,
            p99=390.0,
            rps=412.25,
            error_rate=0.0125,
            hdr={"latency": "x" * 1000},
            tracked={"reported": 2, "fixed": 1},
        ),
    )
    Job.objects.create(
        run=run,
        kind="code_scan",
        target=target,
        status=Job.SUCCEEDED,
        verdict="pass",
        summary={"counts": {"total": 3}, "tracked": {"reported": 3, "fixed": 0}},
    )
    return run


def many_runs(target, count, initiative=None):
    runs = Run.objects.bulk_create(
        Run(target=target, mode="custom", status="succeeded", initiative=initiative)
        for _ in range(count)
    )
    Job.objects.bulk_create(
        Job(
            run=run,
            kind="benchmark",
            target=target,
            status=Job.SUCCEEDED,
            summary={"rps": 100.0 + n, "latency_ms": {"p95": 50.0}},
        )
        for n, run in enumerate(runs)
    )


def rows_of(response):
    assert response.status_code == 200
    assert response.streaming
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def json_of(response):
    assert response.status_code == 200
    assert response.streaming and response["Content-Type"] == "application/json"
    return json.loads(b"".join(response.streaming_content))


@pytest.fixture
def other(departments):
    return TargetService.objects.create(
        name="Billing",
        slug="billing",
        base_url="http://127.0.0.1:8102",
        owner_department=departments["dev"],
    )


# --- findings -------------------------------------------------------------------


def test_target_findings_csv_lists_the_open_findings_like_the_list_does(
    login, viewer, target, other, dev_engineer
):
    high = finding(target, location="app/items.py:42", assignee=dev_engineer)
    finding(target, rule="FSA200", severity="low", status=Finding.FIXED)
    finding(other, rule="OTHER1")
    response = login(viewer).get(reverse("target_findings_export", args=[target.slug, "csv"]))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'attachment; filename="kaizen-orders-api-findings-' in response["Content-Disposition"]
    rows = rows_of(response)
    assert [row["rule_id"] for row in rows] == ["FSA101"]
    row = rows[0]
    assert row["id"] == str(high.pk) and row["target"] == "orders-api"
    assert row["location"] == "app/items.py:42" and row["assignee"] == "devon"
    assert row["severity"] == "high" and row["status"] == "open"
    assert row["url"] == f"http://testserver/findings/{high.pk}/"
    assert datetime.datetime.fromisoformat(row["last_seen_at"]) == high.last_seen_at


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=", {"FSA101", "FSA200", "DB001", "SEC1"}),
        ("status=fixed", {"FSA200"}),
        ("source=db", {"DB001"}),
        ("severity=critical", {"SEC1"}),
        ("rule=fsa", {"FSA101"}),
        ("status=&rule=FSA", {"FSA101", "FSA200"}),
        ("q=orders.py", {"DB001"}),
        ("q=token", {"SEC1"}),
        ("source=security&severity=high", set()),
    ],
)
def test_findings_export_honours_the_list_filters(login, viewer, target, query, expected):
    finding(target)
    finding(target, rule="FSA200", severity="low", status=Finding.FIXED)
    finding(target, rule="DB001", severity="medium", source="db", location="models/orders.py:9")
    finding(target, rule="SEC1", severity="critical", source="security", title="Token leaks")
    url = reverse("target_findings_export", args=[target.slug, "csv"])
    rows = rows_of(login(viewer).get(f"{url}?{query}"))
    assert {row["rule_id"] for row in rows} == expected


def test_findings_are_ordered_most_severe_first(login, viewer, target):
    finding(target, rule="B", severity="low")
    finding(target, rule="A", severity="critical")
    finding(target, rule="C", severity="medium")
    url = reverse("target_findings_export", args=[target.slug, "json"])
    body = json_of(login(viewer).get(url))
    assert [f["severity"] for f in body["findings"]] == ["critical", "medium", "low"]


def test_target_findings_json_carries_the_evidence_and_the_filters(login, viewer, target):
    made = finding(target, evidence={"calls": 1200, "mean_ms": 81.5}, fix_hint="Add an index")
    url = reverse("target_findings_export", args=[target.slug, "json"])
    body = json_of(login(viewer).get(f"{url}?severity=high"))
    assert body["target"] == "orders-api"
    assert body["filters"] == {
        "source": "",
        "severity": "high",
        "category": "",
        "status": "open",
        "rule": "",
        "q": "",
        "since": "",
    }
    assert datetime.datetime.fromisoformat(body["exported_at"])
    (item,) = body["findings"]
    assert item["id"] == made.pk and item["evidence"] == {"calls": 1200, "mean_ms": 81.5}
    assert item["fix_hint"] == "Add an index" and item["assignee"] is None
    assert item["url"].endswith(f"/findings/{made.pk}/")


def test_an_empty_export_is_still_a_valid_document(login, viewer, target):
    url = reverse("target_findings_export", args=[target.slug, "json"])
    assert json_of(login(viewer).get(url))["findings"] == []
    rows = rows_of(login(viewer).get(reverse("target_findings_export", args=[target.slug, "csv"])))
    assert rows == []


def test_initiative_findings_are_its_targets_findings(login, viewer, initiative, other):
    finding(initiative.target, rule="MINE")
    finding(other, rule="THEIRS")
    url = reverse("initiative_findings_export", args=[initiative.pk, "json"])
    body = json_of(login(viewer).get(url))
    assert body["initiative"] == initiative.pk and body["target"] == "orders-api"
    assert [f["rule_id"] for f in body["findings"]] == ["MINE"]
    url = reverse("initiative_findings_export", args=[initiative.pk, "csv"])
    assert [row["rule_id"] for row in rows_of(login(viewer).get(url))] == ["MINE"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"FSA101", "SEC1"}),
        ("department=qa", {"SEC1"}),
        ("assignee=none", {"SEC1"}),
        ("task=yes", {"FSA101"}),
        ("task=no&status=", {"SEC1", "DB9"}),
        ("status=fixed", {"DB9"}),
    ],
)
def test_initiative_findings_export_honours_the_initiative_page_filters(
    login, viewer, initiative, dev_engineer, query, expected
):
    code = finding(initiative.target, assignee=dev_engineer)
    finding(initiative.target, rule="SEC1", source="security", category="security")
    finding(initiative.target, rule="DB9", source="db", status=Finding.FIXED)
    phase = initiative.phases.get(number=2)
    task = PhaseTask.objects.create(
        phase=phase, title="Fix it", department=phase.lead_department, finding=code
    )
    url = reverse("initiative_findings_export", args=[initiative.pk, "csv"])
    rows = rows_of(login(viewer).get(f"{url}?{query}"))
    assert {row["rule_id"] for row in rows} == expected
    for row in rows:
        assert row["task"] == (str(task.pk) if row["rule_id"] == "FSA101" else "")
        assert row["owner"] == {"FSA101": "dev", "SEC1": "qa", "DB9": "dev"}[row["rule_id"]]


def test_csv_cells_cannot_become_spreadsheet_formulas(login, viewer, target):
    finding(target, rule="R1", title='=HYPERLINK("http://evil","x")', location="+1+2")
    finding(target, rule="R2", title="@SUM(A1:A9)", location="-2+3")
    finding(target, rule="R3", title="\tcmd", location="plain-location")
    url = reverse("target_findings_export", args=[target.slug, "csv"])
    rows = {row["rule_id"]: row for row in rows_of(login(viewer).get(url))}
    assert rows["R1"]["title"] == '\'=HYPERLINK("http://evil","x")'
    assert rows["R1"]["location"] == "'+1+2"
    assert rows["R2"]["title"] == "'@SUM(A1:A9)" and rows["R2"]["location"] == "'-2+3"
    assert rows["R3"]["title"] == "'\tcmd"
    assert rows["R3"]["location"] == "plain-location"  # only the first character counts
    # JSON is data, not a spreadsheet: it keeps the text as it is.
    body = json_of(login(viewer).get(reverse("target_findings_export", args=[target.slug, "json"])))
    assert '=HYPERLINK("http://evil","x")' in {f["title"] for f in body["findings"]}


# --- runs ---------------------------------------------------------------------------


def test_target_runs_csv_has_one_row_per_job_with_its_key_figures(
    login, viewer, target, qa_engineer, other
):
    run = benchmark_run(target, user=qa_engineer)
    empty = Run.objects.create(target=target, mode="quality", status="failed")
    benchmark_run(other)
    response = login(viewer).get(reverse("target_runs_export", args=[target.slug, "csv"]))
    assert 'filename="kaizen-orders-api-runs-' in response["Content-Disposition"]
    rows = rows_of(response)
    assert [(row["run_id"], row["kind"]) for row in rows] == [
        (str(empty.pk), ""),  # newest first; a run without jobs keeps its row
        (str(run.pk), "benchmark"),
        (str(run.pk), "code_scan"),
    ]
    bench = rows[1]
    assert bench["mode"] == "performance" and bench["focus"] == "fastapi,sqlalchemy"
    assert bench["status"] == "succeeded" and bench["verdict"] == "fail"
    assert bench["triggered_by"] == "aiko" and bench["url"].endswith(f"/runs/{run.pk}/")
    assert bench["job_status"] == "succeeded" and bench["job_verdict"] == "fail"
    assert bench["benchmark_mode"] == "load"
    assert float(bench["throughput_rps"]) == 412.25
    assert float(bench["latency_p95_ms"]) == 180.5 and float(bench["latency_p99_ms"]) == 390.0
    assert float(bench["error_rate"]) == 0.0125 and bench["findings_reported"] == "2"
    assert bench["db_avg_query_ms"] == ""  # a benchmark does not measure it
    assert "hdr" not in rows[0] and "x" * 100 not in str(rows)
    scan = rows[2]
    assert scan["findings_reported"] == "3" and scan["latency_p95_ms"] == ""


def test_target_runs_json_nests_the_jobs(login, viewer, target):
    run = benchmark_run(target)
    body = json_of(login(viewer).get(reverse("target_runs_export", args=[target.slug, "json"])))
    (item,) = body["runs"]
    assert item["run_id"] == run.pk and item["focus"] == ["fastapi", "sqlalchemy"]
    assert item["triggered_by"] is None and item["finished_at"]
    bench, scan = item["jobs"]
    assert bench["kind"] == "benchmark" and bench["status"] == "succeeded"
    assert bench["figures"] == {
        "benchmark_mode": "load",
        "throughput_rps": 412.25,
        "error_rate": 0.0125,
        "latency_med_ms": 42.0,
        "latency_p95_ms": 180.5,
        "latency_p99_ms": 390.0,
        "findings_reported": 2,
        "findings_fixed": 1,
    }
    assert scan["figures"] == {"findings_reported": 3, "findings_fixed": 0}


def test_initiative_runs_are_the_runs_started_for_it(login, viewer, initiative):
    mine = benchmark_run(initiative.target, initiative=initiative, p95=99.0)
    benchmark_run(initiative.target)  # on the same target, but not for the initiative
    body = json_of(
        login(viewer).get(reverse("initiative_runs_export", args=[initiative.pk, "json"]))
    )
    assert body["initiative"] == initiative.pk and body["title"] == initiative.title
    assert [run["run_id"] for run in body["runs"]] == [mine.pk]
    url = reverse("initiative_runs_export", args=[initiative.pk, "csv"])
    assert {row["latency_p95_ms"] for row in rows_of(login(viewer).get(url))} == {"99.0", ""}


# --- access ---------------------------------------------------------------------------


def _urls(target, initiative):
    return [
        reverse(name, args=[arg, fmt])
        for name, arg in (
            ("target_findings_export", target.slug),
            ("target_runs_export", target.slug),
            ("initiative_findings_export", initiative.pk),
            ("initiative_runs_export", initiative.pk),
        )
        for fmt in ("csv", "json")
    ]


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_everyone_signed_in_may_export_what_they_may_read(login, persona, target, initiative):
    # access.py: everyone signed in reads, the outsider of no department included.
    finding(target)
    benchmark_run(target, initiative=initiative)
    client = login(persona)
    for url in _urls(target, initiative):
        response = client.get(url)
        assert response.status_code == 200, url
        b"".join(response.streaming_content)


def test_anonymous_visitors_are_sent_to_sign_in(client, target, initiative):
    for url in _urls(target, initiative):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url


def test_unknown_objects_and_formats_are_not_found(login, outsider, target, initiative):
    client = login(outsider)
    assert client.get(reverse("target_findings_export", args=["nope", "csv"])).status_code == 404
    assert client.get(reverse("initiative_runs_export", args=[999999, "json"])).status_code == 404
    assert client.get(reverse("target_runs_export", args=[target.slug, "xlsx"])).status_code == 404
    assert client.post(reverse("target_runs_export", args=[target.slug, "csv"])).status_code == 405


# --- streaming ------------------------------------------------------------------------


def _queries(client, url) -> tuple[int, int]:
    """(queries, rows) of one export, its whole body read."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        body = b"".join(response.streaming_content).decode()
    return len(captured), body.count("\n")


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_findings_exports_stream_in_a_fixed_number_of_queries(login, viewer, target, fmt):
    client = login(viewer)
    url = reverse("target_findings_export", args=[target.slug, fmt])
    client.get(url)  # the session learns the user's time zone once
    many_findings(target, 5)
    small, small_rows = _queries(client, url)
    many_findings(target, 300, prefix="more")
    large, large_rows = _queries(client, url)
    assert large_rows - small_rows == 300
    assert large == small <= 4  # session, user, target, findings


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_runs_exports_stream_in_a_fixed_number_of_queries(login, viewer, initiative, fmt):
    client = login(viewer)
    urls = [
        reverse("target_runs_export", args=[initiative.target.slug, fmt]),
        reverse("initiative_runs_export", args=[initiative.pk, fmt]),
    ]
    client.get(urls[0])
    many_runs(initiative.target, 3, initiative=initiative)
    small = [_queries(client, url) for url in urls]
    many_runs(initiative.target, 200, initiative=initiative)
    large = [_queries(client, url) for url in urls]
    for (few, few_rows), (many, many_rows) in zip(small, large, strict=True):
        assert many_rows - few_rows == 200
        assert many == few <= 5  # session, user, target or initiative, runs, their jobs


def test_exports_read_in_chunks_and_do_not_hold_every_row(
    login, viewer, target, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(exports, "CHUNK", 10)
    many_runs(target, 35)
    client = login(viewer)
    client.get(reverse("target_findings_export", args=[target.slug, "csv"]))
    response = client.get(reverse("target_runs_export", args=[target.slug, "csv"]))
    body = response.streaming_content
    first = next(body)  # the header goes out before the rows are read
    assert first.startswith(b"run_id,")
    with django_assert_max_num_queries(6):  # runs, then jobs per 10 runs: 4 chunks
        rest = b"".join(body)
    assert rest.count(b"\n") == 35
