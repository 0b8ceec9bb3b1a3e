"""The portfolio: roll-ups per department and target, most improved and regressed, charts."""

from __future__ import annotations

import datetime
import json
import re
from decimal import Decimal

import plotly.graph_objects as go
import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from optimizations.models import (
    Finding,
    Initiative,
    Job,
    PhaseTask,
    Run,
    TargetService,
)
from optimizations.reports import charts, portfolio
from optimizations.targets import slo
from optimizations.work import routing
from optimizations.work.actions import do_update_task
from optimizations.work.triage import do_triage_findings
from tests.factories import benchmark_job, load_summary

LOAD = {"mode": "load", "rate": 20.0, "duration": 30.0, "exclude": ["GET /metrics"], "seed": 1}


def p95s(level: float, seconds: int = 30) -> list[float]:
    """A steady per-second p95 around ``level`` with a little repeatable jitter (CV ≈ 1.4 %)."""
    return [level + (second % 5) - 2 for second in range(seconds)]


def benchmark(
    target, finished, values, *, params=None, initiative=None, run=None, unanswered=(), p95=None
):
    """A succeeded benchmark job: its summary (one p95 for the run: ``p95``, else the
    median of ``values``) and its per-second p95 and answered-request samples."""
    run = run or Run.objects.create(
        target=target,
        mode="performance",
        initiative=initiative,
        status="succeeded",
        finished_at=finished,
    )
    level = p95 if p95 is not None else sorted(values)[len(values) // 2] if values else 0.0
    return benchmark_job(
        target,
        finished=finished,
        run=run,
        initiative=initiative,
        params=params or LOAD,
        verdict="pass",
        summary=load_summary(level, offered_rate=None),
        per_second={
            "p95_ms": list(values),
            "ok": [0.0 if second in unanswered else 20.0 for second in range(len(values))],
        },
    )


def benchmark_set(target, finished, level, runs=5, *, params=None, initiative=None, run=None):
    """A benchmark set: one run of ``runs`` load tests (a minute apart, ending at
    ``finished``) whose p95s are ``level`` with a little repeatable jitter (±2 ms)."""
    run = run or Run.objects.create(
        target=target,
        mode="custom",
        initiative=initiative,
        status="succeeded",
        finished_at=finished,
    )
    return [
        benchmark(
            target,
            finished - datetime.timedelta(minutes=runs - 1 - n),
            [],
            params=params,
            initiative=initiative,
            run=run,
            p95=level + (n % 5) - 2,
        )
        for n in range(runs)
    ]


def make_target(departments, slug, department="dev"):
    return TargetService.objects.create(
        name=slug.replace("-", " ").title(),
        slug=slug,
        base_url="http://127.0.0.1:8100",
        owner_department=departments[department],
    )


def finding(
    target, rule, severity, category, *, source="code", status="open", seen=None, fixed=None
):
    now = timezone.now()
    return Finding.objects.create(
        target=target,
        source=source,
        rule_id=rule,
        severity=severity,
        category=category,
        title=rule,
        fingerprint=f"{rule}-{severity}-{source}-{Finding.objects.count()}",
        status=status,
        first_seen_at=seen or now,
        last_seen_at=seen or now,
        fixed_at=fixed,
    )


HOURS_AGO = [timezone.now() - datetime.timedelta(hours=h) for h in range(100)]


@pytest.fixture(autouse=True)
def fresh_cache():
    """The page keeps its roll-ups in the cache (per process): none from another test."""
    cache.clear()
    yield
    cache.clear()


# --- departments and targets ----------------------------------------------------------


def test_department_rollups_count_open_and_overdue_work_hours_and_owned_findings(
    target, initiative, departments
):
    today = timezone.localdate()
    dev_tasks = PhaseTask.objects.filter(phase__initiative=initiative, department__code="dev")
    dev_count = dev_tasks.count()
    first, second = dev_tasks.order_by("pk")[:2]
    PhaseTask.objects.filter(pk=first.pk).update(
        due_date=today - datetime.timedelta(days=3), logged_hours=Decimal("5.5")
    )
    PhaseTask.objects.filter(pk=second.pk).update(status=PhaseTask.DONE, logged_hours=Decimal(4))
    estimated = sum(t.estimate_hours or 0 for t in dev_tasks)
    # Another initiative's tasks that are done count their hours; archived ones nothing.
    finding(target, "FSA101", "high", "performance")
    finding(target, "FSA102", "medium", "performance")
    finding(target, "db.pool_usage", "high", "configuration", source="db")
    finding(target, "sec.headers", "low", "security", source="security")
    finding(target, "runbook.missing", "medium", "documentation", source="runbook")
    finding(target, "FSA103", "high", "performance", status="fixed")  # not open
    rows = {row["code"]: row for row in portfolio.department_rollups(today)}
    dev = rows["dev"]
    assert dev["open_tasks"] == dev_count - 1
    assert dev["overdue_tasks"] == 1
    assert dev["logged_hours"] == Decimal("9.5")
    assert dev["estimated_hours"] == estimated
    assert dev["hours_ratio"] == pytest.approx(9.5 / float(estimated))
    assert dev["findings"] == {"critical": 0, "high": 1, "medium": 1, "low": 0, "info": 0}
    assert rows["strategy"]["findings"]["high"] == 1
    assert rows["qa"]["findings"]["low"] == 1
    assert rows["hr"]["open_findings"] == 1
    initiative.status = Initiative.ARCHIVED
    initiative.save()
    rows = {row["code"]: row for row in portfolio.department_rollups(today)}
    assert rows["dev"]["open_tasks"] == 0 and rows["dev"]["hours_ratio"] is None


def test_open_findings_go_to_the_department_routing_gives_each(target):
    made = [
        finding(target, "FSA101", "high", "performance"),
        finding(target, "sec.negative_testing.orders", "medium", "performance", source="security"),
        finding(target, "sec.input_bounds", "low", "validation", source="security"),
        finding(target, "benchmark.operation_errors", "high", "reliability", source="benchmark"),
        finding(target, "db.idle_in_tx", "medium", "configuration", source="db"),
        finding(target, "probe.slow", "info", "unknown-category", source="probe"),
        finding(target, "runbook.missing", "low", "performance", source="runbook"),
        finding(target, "sec.other", "critical", "unknown-category", source="security"),
        finding(target, "db.pool", "high", "configuration", source="db", status="fixed"),
    ]
    expected: dict[str, dict[str, int]] = {}
    for f in made:
        if f.status == Finding.OPEN:
            by_severity = expected.setdefault(routing.route(f).department, {})
            by_severity[f.severity] = by_severity.get(f.severity, 0) + 1
    counted = portfolio.open_findings_by_department()
    assert {code: dict(counts) for code, counts in counted.items()} == expected
    assert expected["qa"] == {"medium": 1, "low": 1, "critical": 1}
    assert expected["hr"] == {"low": 1}


def test_target_rollups_show_findings_last_benchmark_and_initiatives(
    target, initiative, departments
):
    other = make_target(departments, "billing-api", "qa")
    finding(target, "FSA101", "critical", "performance")
    finding(target, "FSA102", "high", "performance")
    finding(other, "FSA101", "low", "performance", status="wont_fix")
    benchmark(target, HOURS_AGO[5], p95s(100))
    latest = benchmark(target, HOURS_AGO[1], p95s(100))
    rows = {row["target"].slug: row for row in portfolio.target_rollups()}
    assert rows["orders-api"]["findings"]["critical"] == 1
    assert rows["orders-api"]["open_findings"] == 2
    assert rows["orders-api"]["last_benchmark"].pk == latest.pk
    assert [i.pk for i in rows["orders-api"]["initiatives"]] == [initiative.pk]
    assert rows["billing-api"]["open_findings"] == 0
    assert rows["billing-api"]["last_benchmark"] is None


# --- most improved and regressed ---------------------------------------------------------


def test_improved_and_regressed_targets_are_ranked_by_their_shift(departments, target):
    faster = make_target(departments, "search-api")
    slower = make_target(departments, "cart-api")
    steady = make_target(departments, "users-api")
    # Orders: 200 ms at first, 100 ms now: improved against its baseline, ×0.5.
    base = benchmark_set(target, HOURS_AGO[30], 200)
    benchmark_set(target, HOURS_AGO[20], 101)
    latest = benchmark_set(target, HOURS_AGO[10], 100)
    # Search: 150 → 120 ms (×0.8).
    benchmark_set(faster, HOURS_AGO[30], 150)
    benchmark_set(faster, HOURS_AGO[10], 120)
    # Cart: 100 → 160 ms: regressed against its baseline.
    benchmark_set(slower, HOURS_AGO[30], 100)
    benchmark_set(slower, HOURS_AGO[20], 100)
    after = benchmark_set(slower, HOURS_AGO[2], 160)
    # Users: 100 → 103 ms: the whole interval within ×1.10, no change.
    benchmark_set(steady, HOURS_AGO[30], 100)
    benchmark_set(steady, HOURS_AGO[10], 103)
    changes = portfolio.benchmark_changes()
    assert [c.target.slug for c in changes.improved] == ["orders-api", "search-api"]
    first = changes.improved[0]
    assert (first.before.run_id, first.after.run_id) == (base[0].run_id, latest[0].run_id)
    assert first.comparison.ratio == pytest.approx(0.5, abs=0.01)
    assert first.evidence == "measured" and first.before.describe().startswith("Baseline: run #")
    low, high = first.comparison.ratio_ci
    assert low <= first.comparison.ratio <= high < 1 / 1.1
    assert [c.target.slug for c in changes.regressed] == ["cart-api"]
    regression = changes.regressed[0]
    assert regression.after.job_ids == [j.pk for j in after]
    assert regression.comparison.significant and regression.comparison.ratio == pytest.approx(1.6)
    assert [(c.target.slug, c.verdict) for c in changes.unclaimed] == [("users-api", "no change")]
    assert changes.compared_targets == 4 == changes.benchmarked_targets


def test_sets_under_other_load_or_of_too_few_runs_are_not_claimed(departments, target):
    # The later set ran at another rate: not comparable to the baseline, so no verdict on it.
    benchmark_set(target, HOURS_AGO[20], 100, params={**LOAD, "rate": 80.0})
    benchmark_set(target, HOURS_AGO[10], 300)
    short = make_target(departments, "short-api")
    benchmark_set(short, HOURS_AGO[20], 100, runs=3)
    benchmark_set(short, HOURS_AGO[10], 500, runs=3)
    lonely = make_target(departments, "lonely-api")
    benchmark_set(lonely, HOURS_AGO[10], 100)
    # Per-second samples are never replicates: 30 seconds of one run are one value.
    single = make_target(departments, "single-api")
    benchmark(single, HOURS_AGO[20], p95s(100))
    benchmark(single, HOURS_AGO[10], p95s(300))
    changes = portfolio.benchmark_changes()
    assert changes.improved == [] and changes.regressed == []
    why = {target.slug: reason for target, reason in changes.not_compared}
    assert "differs in rate" in why["orders-api"]
    assert why["lonely-api"].startswith("one load set so far (run #")
    unclaimed = {c.target.slug: c.comparison for c in changes.unclaimed}
    assert unclaimed["short-api"].verdict == "inconclusive"
    assert "at least 5 runs per side (has 3 and 3)" in unclaimed["short-api"].reasons[0]
    assert unclaimed["single-api"].verdict == "inconclusive"
    assert (unclaimed["single-api"].n_baseline, unclaimed["single-api"].n_candidate) == (1, 1)


def test_only_the_most_recently_benchmarked_targets_are_compared(departments):
    for n in range(3):
        t = make_target(departments, f"api-{n}")
        benchmark_set(t, HOURS_AGO[50 - n], 100)
        benchmark_set(t, HOURS_AGO[40 - n * 10], 200)
    changes = portfolio.benchmark_changes(limit=2)
    assert changes.benchmarked_targets == 3 and changes.compared_targets == 2
    assert {c.target.slug for c in changes.regressed} == {"api-1", "api-2"}


# --- findings over time and the burn-down ---------------------------------------------------


def test_findings_over_time_counts_what_was_open_at_each_weeks_end(target):
    now = timezone.now()
    weeks_ago = [now - datetime.timedelta(weeks=n) for n in range(10)]
    finding(target, "a", "high", "performance", seen=weeks_ago[5])
    finding(
        target, "b", "high", "performance", seen=weeks_ago[5], status="fixed", fixed=weeks_ago[2]
    )
    finding(target, "c", "low", "performance", seen=weeks_ago[1])
    finding(target, "d", "low", "performance", seen=weeks_ago[3], status="accepted")
    rows = portfolio.findings_over_time(weeks=8, now=now)
    assert len(rows) == 8 and rows[-1]["week"] <= timezone.localdate(now)
    assert [row["high"] for row in rows] == [0, 0, 2, 2, 2, 1, 1, 1]
    assert [row["low"] for row in rows] == [0, 0, 0, 0, 0, 0, 1, 1]
    figure = charts.findings_over_time(rows)
    data = json.loads(charts.to_json(figure))["data"]
    # Named as the badges name them (in the page's language): most severe first.
    assert [trace["name"] for trace in data] == ["Critical", "High", "Medium", "Low", "Info"]
    # The chart starts one empty week before the first finding.
    assert data[1]["y"] == [0, 2, 2, 2, 1, 1, 1]
    assert data[1]["x"][0] == rows[1]["week"].isoformat()
    assert (
        charts.findings_over_time(portfolio.findings_over_time(weeks=4, now=weeks_ago[8])) is None
    )


def test_findings_over_time_counts_findings_from_before_the_weeks_shown(target):
    now = timezone.now()
    weeks_ago = [now - datetime.timedelta(weeks=n) for n in range(30)]
    finding(target, "old-open", "high", "performance", seen=weeks_ago[20])
    finding(
        target,
        "old-fixed-before",
        "high",
        "performance",
        seen=weeks_ago[20],
        status="fixed",
        fixed=weeks_ago[10],
    )
    finding(
        target,
        "old-fixed-since",
        "high",
        "performance",
        seen=weeks_ago[20],
        status="fixed",
        fixed=weeks_ago[1],
    )
    finding(
        target,
        "new-fixed",
        "medium",
        "performance",
        seen=weeks_ago[3],
        status="fixed",
        fixed=weeks_ago[2],
    )
    finding(
        target,
        "old-triaged",
        "critical",
        "performance",
        seen=weeks_ago[20],
        status="false_positive",
    )
    rows = portfolio.findings_over_time(weeks=4, now=now)
    # Two old findings open all along; the one fixed a week ago closes in its week.
    assert [row["high"] for row in rows] == [2, 2, 1, 1]
    assert [row["medium"] for row in rows] == [1, 0, 0, 0]
    assert [row["critical"] for row in rows] == [0, 0, 0, 0]
    # A longer view sees the same findings open since they were first seen.
    longer = portfolio.findings_over_time(weeks=25, now=now)
    assert longer[-4:] == rows
    # (The week 20 weeks back is the fifth of 25; the one 10 weeks back the 15th.)
    assert [row["high"] for row in longer[3:6]] == [0, 3, 3]
    assert [row["high"] for row in longer[13:15]] == [3, 2]


def test_burndown_follows_the_task_status_changes_in_the_audit_trail(make_initiative, manager):
    start = timezone.localdate() - datetime.timedelta(days=10)
    initiative = make_initiative(start_date=start, target_date=start + datetime.timedelta(days=40))
    task = PhaseTask.objects.filter(phase__initiative=initiative, phase__number=1).first()
    total = float(
        sum(t.estimate_hours or 0 for t in PhaseTask.objects.filter(phase__initiative=initiative))
    )
    do_update_task(manager, task, status=PhaseTask.DONE)
    rows = portfolio.burndown_tasks(initiative)
    row = next(r for r in rows if r["pk"] == task.pk)
    assert row["moves"] and row["moves"][-1][1] is True and not row["done_at_start"]
    figure = charts.phase_burndown(initiative, rows)
    data = json.loads(charts.to_json(figure))["data"]
    phases = [trace for trace in data if trace.get("stackgroup") == "phases"]
    assert len(phases) == 4
    remaining_end = sum(trace["y"][-1] for trace in phases)
    assert remaining_end == pytest.approx(total - float(task.estimate_hours))
    # Before the change, every estimated hour was left (the phases' tasks appear as created).
    stacked = [sum(values) for values in zip(*(trace["y"] for trace in phases), strict=True)]
    assert max(stacked) == pytest.approx(total) and stacked[-1] < total
    ideal = next(trace for trace in data if trace["name"] == "ideal")
    assert ideal["y"] == [total, 0]
    # Reopened: the hours come back.
    do_update_task(manager, task, status=PhaseTask.DOING)
    figure = charts.phase_burndown(initiative, portfolio.burndown_tasks(initiative))
    data = json.loads(charts.to_json(figure))["data"]
    assert sum(t["y"][-1] for t in data if t.get("stackgroup")) == pytest.approx(total)


def test_a_task_done_without_a_recorded_change_burns_down_at_its_last_update(initiative):
    task = PhaseTask.objects.filter(phase__initiative=initiative).first()
    PhaseTask.objects.filter(pk=task.pk).update(status=PhaseTask.DONE)
    row = next(r for r in portfolio.burndown_tasks(initiative) if r["pk"] == task.pk)
    assert not row["done_at_start"] and [done for _, done in row["moves"]] == [True]


def test_charts_are_valid_plotly_figures(target, initiative):
    rows = portfolio.department_rollups()
    assert charts.open_work_by_department(rows) is not None  # the default tasks are open work
    finding(target, "FSA101", "high", "performance")
    for figure in (
        charts.open_work_by_department(rows),
        charts.findings_over_time(portfolio.findings_over_time()),
        charts.phase_burndown(initiative, portfolio.burndown_tasks(initiative)),
    ):
        # Building a Figure from the dict validates every trace and layout property.
        go.Figure(json.loads(charts.to_json(figure)))
    PhaseTask.objects.update(estimate_hours=None)
    assert charts.phase_burndown(initiative, portfolio.burndown_tasks(initiative)) is None


# --- the page ---------------------------------------------------------------------------


def build_portfolio(departments, manager, targets: int, first: int = 0):
    for n in range(first, first + targets):
        t = make_target(departments, f"svc-{n}")
        Initiative.objects.create(title=f"Initiative {n}", target=t, owner=manager)
        finding(t, "FSA101", "high", "performance")
        finding(t, "sec.headers", "low", "security", source="security")
        benchmark_set(t, HOURS_AGO[30], 100)
        benchmark_set(t, HOURS_AGO[10], 100 + 40 * (n % 2))


def test_the_page_and_its_changes_cost_the_same_queries_for_1_and_8_targets(
    login, viewer, manager, departments, django_assert_max_num_queries
):
    build_portfolio(departments, manager, 1)
    client = login(viewer)
    pages = (reverse("portfolio"), reverse("portfolio_changes"))
    with django_assert_max_num_queries(18):
        assert client.get(pages[0]).status_code == 200
    with django_assert_max_num_queries(10):
        assert client.get(pages[1], headers={"HX-Request": "true"}).status_code == 200
    one = []
    for url in pages:
        cache.clear()  # computed afresh each time, not read from the cache
        with CaptureQueriesContext(connection) as queries:
            client.get(url, headers={"HX-Request": "true"})
        one.append(len(queries))
    build_portfolio(departments, manager, 7, first=1)
    eight = []
    for url in pages:
        cache.clear()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, headers={"HX-Request": "true"})
        eight.append(len(queries))
    assert eight == one
    assert len(response.context["changes"].regressed) == 4


def test_the_page_keeps_its_rollups_until_something_changes(
    login, viewer, manager, departments, target, django_assert_max_num_queries
):
    build_portfolio(departments, manager, 2)
    client = login(viewer)
    url = reverse("portfolio")
    first = client.get(url)
    as_of = first.context["as_of"]
    assert 'id="portfolio-as-of"' in first.content.decode()
    assert f'datetime="{as_of.isoformat()}"' in first.content.decode()
    # Read again: from the cache, with the change stamp's look-ups only.
    with django_assert_max_num_queries(7):
        again = client.get(url)
    assert again.context["as_of"] == as_of
    assert again.context["totals"] == first.context["totals"]
    severe = first.context["totals"]["severe_findings"]
    # A finding triaged (an audit event): computed afresh, without it.
    high = Finding.objects.filter(severity="high", status=Finding.OPEN).first()
    do_triage_findings(manager, [high], Finding.FALSE_POSITIVE, "not ours")
    after_triage = client.get(url)
    assert after_triage.context["as_of"] > as_of
    assert after_triage.context["totals"]["severe_findings"] == severe - 1
    # A new finding, and a job that ends, do so too.
    finding(target, "FSA120", "critical", "performance")
    assert client.get(url).context["totals"]["severe_findings"] == severe
    job = Job.objects.create(
        run=Run.objects.create(target=target, mode="performance"), kind="code_scan", target=target
    )
    stamp = portfolio.change_stamp()
    Job.objects.filter(pk=job.pk).update(status=Job.SUCCEEDED, finished_at=timezone.now())
    assert portfolio.change_stamp() != stamp
    # Reading changes nothing.
    assert portfolio.change_stamp() == portfolio.change_stamp()


def test_the_targets_table_is_kept_with_the_rollups_and_rendered_again_on_a_change(
    login, viewer, manager, departments, target
):
    build_portfolio(departments, manager, 2)
    client = login(viewer)
    url = reverse("portfolio")

    def targets_table() -> tuple[str, str]:
        html = client.get(url).content.decode()
        start = html.index('<section class="panel" id="portfolio-targets">')
        table = html[start : html.index("</section>", start)]
        row = re.search(r'<tr id="portfolio-target-svc-0">.*?</tr>', table, re.S)
        assert row is not None
        return table, row.group(0)

    table, row = targets_table()
    assert re.search(r">1 high<", row, re.I) and not re.search(r">2 high<", row, re.I)
    # A change no stamp sees (an update behind the product's back, as in the admin) is
    # not shown while the stamp stands: the table comes from the cache.
    Initiative.objects.filter(title="Initiative 0").update(title="Renamed quietly")
    assert targets_table() == (table, row)
    svc_0 = TargetService.objects.get(slug="svc-0")
    finding(svc_0, "FSA121", "high", "performance")  # a new finding: a new stamp
    table_after, row_after = targets_table()
    assert re.search(r">2 high<", row_after, re.I) and "Renamed quietly" in row_after
    assert table_after.replace(row_after, "") == table.replace(row, "")


def test_the_page_shows_rollups_and_charts_and_loads_the_changes_after(
    login, viewer, manager, departments, target
):
    build_portfolio(departments, manager, 2)
    client = login(viewer)
    response = client.get(reverse("portfolio"))
    body = response.content.decode()
    assert response.status_code == 200
    for anchor in (
        'id="portfolio-departments"',
        f'hx-get="{reverse("portfolio_changes")}" hx-trigger="load"',
        'id="portfolio-target-svc-1"',
        'data-target="portfolio-open-work"',
        'data-target="portfolio-findings"',
        'aria-current="page">Portfolio',
    ):
        assert anchor in body
    assert "not measured yet" in body  # Orders API has no benchmark
    response = client.get(reverse("portfolio_changes"), headers={"HX-Request": "true"})
    fragment = response.content.decode()
    assert fragment.lstrip().startswith('<div id="portfolio-changes">')
    assert 'id="portfolio-regressed"' in fragment and 'id="portfolio-improved"' in fragment
    regressed = response.context["changes"].regressed
    assert [c.target.slug for c in regressed] == ["svc-1"]
    assert f'href="{regressed[0].before.url}"' in fragment
    assert f'href="{regressed[0].after.url}"' in fragment
    # Two sets each: the first is the baseline, named in the same words as everywhere.
    assert "×1.40" in fragment and regressed[0].before.describe() in fragment
    assert regressed[0].after.describe() in fragment and "measured" in fragment
    # Without HTMX, the panel is a page of its own.
    page = client.get(reverse("portfolio_changes")).content.decode()
    assert "<html" in page and 'id="portfolio-regressed"' in page


def test_everyone_signed_in_reads_the_portfolio(client, login, outsider):
    for url in (reverse("portfolio"), reverse("portfolio_changes")):
        assert client.get(url).status_code == 302  # to the login page
    for url in (reverse("portfolio"), reverse("portfolio_changes")):
        assert login(outsider).get(url).status_code == 200


def test_the_burndown_is_a_fragment_for_htmx_and_a_page_otherwise(login, viewer, initiative):
    client = login(viewer)
    url = reverse("initiative_burndown", args=[initiative.pk])
    fragment = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert fragment.lstrip().startswith(f'<section class="panel" id="burndown-{initiative.pk}"')
    assert "plotly-figure" in fragment
    page = client.get(url).content.decode()
    assert "<html" in page and f"burndown-{initiative.pk}-chart" in page
    assert client.get(reverse("initiative_burndown", args=[initiative.pk + 99])).status_code == 404


def test_each_targets_slo_counts_load_as_its_row_comes_into_view(
    login, viewer, target, django_assert_max_num_queries
):
    client = login(viewer)
    page = client.get(reverse("portfolio")).content.decode()
    url = reverse("portfolio_target_slo", args=[target.slug])
    assert f'hx-get="{url}" hx-trigger="revealed"' in page
    with django_assert_max_num_queries(15):
        cell = client.get(url, headers={"HX-Request": "true"}).content.decode()
    # Nothing measured yet: every SLO is unknown, none passes or fails.

    every = sum(1 for threshold in slo.THRESHOLDS if threshold.is_slo)
    assert "0 pass" in cell and "0 fail" in cell and f"{every} unknown" in cell
    assert reverse("target_slo", args=[target.slug]) in cell
    assert client.get(reverse("portfolio_target_slo", args=["nope"])).status_code == 404
