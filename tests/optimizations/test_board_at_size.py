"""What keeps the target page and the SLO board fast at size (issue 9): uptime in one
query, the newest points per name by LIMIT, the board's figures as plain dicts that
draw exactly what make_subplots would, and the indexes those queries stand on."""

import datetime
import json

import plotly.graph_objects as go
import pytest
from django.core.cache import cache
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from plotly.subplots import make_subplots

from optimizations.jobs import availability
from optimizations.models import Job, Measurement, Run, TargetService
from optimizations.reports import charts, sloboard

NOW = timezone.now()


def ago(**span) -> datetime.datetime:
    return NOW - datetime.timedelta(**span)


def check(target, up: bool, when, name="availability.up"):
    return Measurement(
        target=target, name=name, value=1.0 if up else 0.0, unit="bool", measured_at=when
    )


@pytest.fixture
def other_target(db, departments):
    return TargetService.objects.create(
        name="Billing API",
        slug="billing-api",
        base_url="http://127.0.0.1:8101",
        owner_department=departments["dev"],
    )


# -- uptime ----------------------------------------------------------------------------


def test_uptime_reads_each_window_in_one_query(target, other_target, django_assert_num_queries):
    rows = [check(target, True, ago(hours=hour)) for hour in range(1, 24)]  # 23 up in 24 h
    rows.append(check(target, False, ago(hours=23, minutes=30)))  # 1 down in 24 h
    rows += [check(target, False, ago(days=day)) for day in (2, 3)]  # 2 down in 7 d
    rows += [check(target, True, ago(days=day)) for day in (8, 9, 10, 11)]  # 4 up in 30 d
    rows.append(check(target, False, ago(days=31)))  # outside every window
    rows.append(check(other_target, False, ago(hours=1)))  # another target's
    rows.append(check(target, False, ago(hours=1), name="metrics.pool_use"))  # another name
    Measurement.objects.bulk_create(rows)
    with django_assert_num_queries(1):
        uptime = availability.uptime(target, now=NOW)
    assert uptime == {
        "24 h": round(100 * 23 / 24, 3),
        "7 d": round(100 * 23 / 26, 3),
        "30 d": round(100 * 27 / 30, 3),
    }


def test_uptime_without_checks_is_unknown_per_window(target):
    Measurement.objects.bulk_create([check(target, True, ago(days=20))])
    assert availability.uptime(target, now=NOW) == {"24 h": None, "7 d": None, "30 d": 100.0}
    assert availability.uptime(target, now=ago(days=-20)) == {  # the check is 40 days old
        "24 h": None,
        "7 d": None,
        "30 d": None,
    }


# -- the board's newest points and daily availability ------------------------------------


def test_each_name_keeps_its_own_newest_points_however_many_another_has(target, other_target):
    rows = [
        Measurement(
            target=target,
            name="metrics.pool_use",
            value=float(minute),
            unit="%",
            measured_at=ago(minutes=minute),
        )
        for minute in range(200)
    ]
    rows += [
        Measurement(
            target=target,
            name="db.query.avg",
            value=float(day),
            unit="ms",
            measured_at=ago(days=day),
        )
        for day in range(1, 4)
    ]
    # Not trend points: a per-second sample, another target's value, a name the board ignores.
    rows.append(
        Measurement(
            target=target, name="db.query.avg", value=-1.0, unit="ms", second=3, measured_at=NOW
        )
    )
    rows.append(
        Measurement(
            target=other_target, name="db.query.avg", value=-2.0, unit="ms", measured_at=NOW
        )
    )
    rows.append(
        Measurement(target=target, name="http.latency.avg", value=-3.0, unit="ms", measured_at=NOW)
    )
    Measurement.objects.bulk_create(rows)
    data = sloboard.load(target)
    assert set(data.others) == {"metrics.pool_use", "db.query.avg"}
    pool = data.others["metrics.pool_use"]
    assert [p.value for p in pool] == [float(m) for m in range(sloboard.TREND_POINTS)]
    assert [p.value for p in data.others["db.query.avg"]] == [1.0, 2.0, 3.0]


def test_newest_points_keep_their_run_and_job(target):
    run = Run.objects.create(target=target, mode="custom")
    job = Job.objects.create(run=run, kind="db_scan", target=target, status=Job.SUCCEEDED)
    Measurement.objects.create(
        target=target, run=run, job=job, name="db.pool.use", value=40.0, unit="%", measured_at=NOW
    )
    (point,) = sloboard.load(target).others["db.pool.use"]
    assert (point.value, point.run_id, point.job_id, point.at) == (40.0, run.pk, job.pk, NOW)


def test_daily_availability_counts_each_days_checks(target, empty_cache):
    today = timezone.localtime(NOW).replace(hour=12, minute=0, second=0, microsecond=0)
    if today > NOW:
        today -= datetime.timedelta(days=1)
    rows = [check(target, True, today - datetime.timedelta(minutes=m)) for m in range(3)]
    rows.append(check(target, False, today - datetime.timedelta(minutes=3)))
    rows += [check(target, False, today - datetime.timedelta(days=2))]
    rows.append(check(target, True, ago(days=31)))  # outside the 30 days
    Measurement.objects.bulk_create(rows)
    days = sloboard.load(target).availability
    assert [(str(day), up, checks) for day, up, checks in days] == [
        (str((today - datetime.timedelta(days=2)).date()), 0.0, 1),
        (str(today.date()), 0.75, 4),
    ]


@pytest.fixture
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def day_checks(target, day: datetime.date, ups: int, downs: int = 0) -> list[Measurement]:
    """``ups`` + ``downs`` checks spread over the hours of ``day`` (UTC, the test time zone)."""
    start = timezone.make_aware(datetime.datetime.combine(day, datetime.time()))
    return [
        check(target, n < ups, start + datetime.timedelta(minutes=7 + 60 * n))
        for n in range(ups + downs)
    ]


def test_closed_days_are_read_once_and_the_ends_of_the_window_every_time(
    target, empty_cache, django_assert_num_queries
):
    now = timezone.make_aware(datetime.datetime(2026, 3, 31, 23, 30))
    today, first = now.date(), datetime.date(2026, 3, 1)  # the window opens on 1 March, 23:30

    def at(day, hour, minute):
        return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour, minute)))

    rows = []
    for back in range(32):
        rows += day_checks(target, today - datetime.timedelta(days=back), ups=3, downs=back % 2)
    rows.append(check(target, True, at(first, 23, 45)))
    Measurement.objects.bulk_create(rows)
    expected = sloboard.availability_days(target, now)
    assert expected[0] == (first, 1.0, 1)  # its checks of 00:07 … 03:07 fall out
    assert expected[1] == (datetime.date(2026, 3, 2), 0.75, 4) and expected[-1] == (today, 1.0, 3)
    assert len(expected) == 31
    with django_assert_num_queries(1):
        assert sloboard.availability_days(target, now) == expected
    # Both ends stay live with the closed days between them cached.
    Measurement.objects.bulk_create(
        [check(target, False, at(first, 23, 50)), check(target, False, at(today, 23, 29))]
    )
    later = sloboard.availability_days(target, now)
    assert later[0] == (first, 0.5, 2) and later[-1] == (today, 0.75, 4)
    assert later[1:-1] == expected[1:-1]
    # A closed day's roll-up is not read again that day (its checks are final).
    closed = today - datetime.timedelta(days=3)
    Measurement.objects.bulk_create(day_checks(target, closed, ups=0, downs=1))
    assert sloboard.availability_days(target, now) == later
    cache.clear()
    assert {d: n for d, _, n in sloboard.availability_days(target, now)}[closed] == 5


def test_yesterday_is_read_live_just_after_midnight(target, empty_cache):
    now = timezone.make_aware(datetime.datetime(2026, 3, 31, 0, 5))
    yesterday = now.date() - datetime.timedelta(days=1)
    Measurement.objects.bulk_create(day_checks(target, yesterday, ups=2))
    assert sloboard.availability_days(target, now)[-1] == (yesterday, 1.0, 2)
    # A check that began at 23:59 and was stored at 00:05 still counts for yesterday.
    late = timezone.make_aware(datetime.datetime.combine(yesterday, datetime.time(23, 59)))
    Measurement.objects.bulk_create([check(target, False, late)])
    assert sloboard.availability_days(target, now)[-1] == (yesterday, 2 / 3, 3)


def test_each_target_has_its_own_closed_days(target, other_target, empty_cache):
    now = timezone.make_aware(datetime.datetime(2026, 3, 31, 12, 0))
    Measurement.objects.bulk_create(day_checks(target, datetime.date(2026, 3, 20), ups=2))
    Measurement.objects.bulk_create(
        day_checks(other_target, datetime.date(2026, 3, 20), ups=0, downs=1)
    )
    assert sloboard.availability_days(target, now) == [(datetime.date(2026, 3, 20), 1.0, 2)]
    assert sloboard.availability_days(other_target, now) == [(datetime.date(2026, 3, 20), 0.0, 1)]


def test_board_queries_stay_flat_with_many_minute_checks(
    target, empty_cache, django_assert_num_queries
):
    rows = [check(target, minute % 100 != 0, ago(minutes=minute)) for minute in range(3000)]
    rows += [
        Measurement(
            target=target,
            name="metrics.pool_use",
            value=50.0,
            unit="%",
            measured_at=ago(minutes=minute),
        )
        for minute in range(3000)
    ]
    Measurement.objects.bulk_create(rows)
    with django_assert_num_queries(4):  # jobs, newest points, daily availability, baseline
        rows = sloboard.board(target)
    by_key = {row.key: row for row in rows}
    assert by_key["availability_pct"].value == pytest.approx(99.0)
    assert len(by_key["pool_use_pct"].trend) == sloboard.TREND_POINTS


# -- the board's figures ------------------------------------------------------------------


def trend_row(index: int, points: int, state="pass") -> sloboard.SloRow:
    row = sloboard.SloRow(
        key=f"key{index}",
        label=f"SLO {index}",
        unit="ms",
        threshold=100.0,
        direction="max",
        state=state,
    )
    row.trend = [(ago(days=points - n), 40.0 + n) for n in range(points)]
    return row


def run_point(n: int, mode: str) -> dict:
    return {
        "at": ago(days=10 - n),
        "run_id": n,
        "job_id": 100 + n,
        "mode": mode,
        "p50": 10.0 + n,
        "p95": 20.0 + n,
        "p99": 30.0 + n,
        "rps": 500.0 + n,
    }


def domains(layout: dict) -> dict:
    return {
        key: [round(v, 6) for v in value["domain"]]
        for key, value in layout.items()
        if key.startswith(("xaxis", "yaxis"))
    }


@pytest.mark.parametrize("count", [1, 3, 4, 8])
def test_slo_trends_draw_the_grid_make_subplots_would(count):
    rows = [trend_row(n, 1 + n % 3, state=("pass", "fail", "unknown")[n % 3]) for n in range(count)]
    figure = charts.slo_trends(rows)
    lines = -(-count // 3)
    expected = make_subplots(
        rows=lines,
        cols=3,
        subplot_titles=[f"SLO {n} (ms)" for n in range(count)],
        vertical_spacing=0.5 / lines,
        horizontal_spacing=0.08,
    ).to_plotly_json()["layout"]
    assert domains(figure["layout"]) == domains(expected)
    titles = [
        (a["text"], round(a["x"], 6), round(a["y"], 6)) for a in figure["layout"]["annotations"]
    ]
    assert titles == [
        (a["text"], round(a["x"], 6), round(a["y"], 6)) for a in expected["annotations"]
    ]
    assert figure["layout"]["height"] == 230 * lines and figure["layout"]["showlegend"] is False
    # Each SLO: its values and its dashed objective on its own axes, colored by its state.
    drawn = go.Figure(json.loads(charts.to_json(figure)))  # plotly validates the dict
    assert len(drawn.data) == 2 * count
    last = drawn.data[2 * (count - 1)]
    assert last.xaxis == (f"x{count}" if count > 1 else "x") and list(last.y) == [
        40.0 + n for n in range(1 + (count - 1) % 3)
    ]
    assert drawn.data[1].line.dash == "dash" and list(drawn.data[1].y) == [100.0, 100.0]
    assert drawn.data[0].line.color == charts.PALETTE["achieved"]
    assert drawn.layout.template.layout.colorway  # the same default template as other charts


def test_slo_trends_without_a_trend_draw_nothing():
    assert charts.slo_trends([trend_row(0, 0)]) is None


def test_target_runs_draw_one_line_per_mode_on_shared_axes():
    points = [run_point(n, mode) for n, mode in enumerate(["load", "stress", "load", "endurance"])]
    figure = charts.target_runs(points)
    drawn = go.Figure(json.loads(charts.to_json(figure)))
    # load first, then the others by name: per mode p50, p95, p99 above and req/s below.
    assert [trace.name for trace in drawn.data] == [
        "p50 (load)",
        "p95 (load)",
        "p99 (load)",
        "req/s (load)",
        "p50 (endurance)",
        "p95 (endurance)",
        "p99 (endurance)",
        "req/s (endurance)",
        "p50 (stress)",
        "p95 (stress)",
        "p99 (stress)",
        "req/s (stress)",
    ]
    assert [trace.yaxis for trace in drawn.data[:4]] == ["y", "y", "y", "y2"]
    assert list(drawn.data[3].y) == [500.0, 502.0]
    assert drawn.data[0].text == ("run #0 · job #100 (load)", "run #2 · job #102 (load)")
    # Room between the two for the lower one's title (0.12 put it against the upper's 0).
    expected = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.18)
    assert domains(figure["layout"]) == domains(expected.to_plotly_json()["layout"])
    assert drawn.layout.xaxis.matches == "x2" and drawn.layout.xaxis.showticklabels is False
    assert drawn.layout.yaxis.rangemode == "tozero" == drawn.layout.yaxis2.rangemode
    assert charts.target_runs([]) is None


def test_bundle_takes_plain_figures_and_plotly_figures():
    plain = charts.target_runs([run_point(1, "load"), run_point(2, "load")])
    plotly_figure = charts.comparison_runs([(NOW, 1.0)], [(NOW, 2.0)], "p95")
    figures = charts.bundle(plain=plain, plotly=plotly_figure, missing=None)
    assert set(figures) == {"plain", "plotly"}
    assert json.loads(figures["plain"])["data"][0]["x"] == [
        ago(days=9).isoformat(),
        ago(days=8).isoformat(),
    ]
    assert json.loads(figures["plotly"]) == json.loads(plotly_figure.to_json())


def test_board_page_carries_both_figures(login, viewer, target):
    run = Run.objects.create(target=target, mode="custom")
    for n in range(2):
        job = Job.objects.create(
            run=run,
            kind="benchmark",
            target=target,
            status=Job.SUCCEEDED,
            params={"mode": "load"},
            finished_at=ago(hours=2 - n),
        )
        Measurement.objects.bulk_create(
            Measurement(
                target=target,
                run=run,
                job=job,
                name=name,
                value=value,
                unit="ms",
                measured_at=ago(hours=2 - n),
            )
            for name, value in (
                ("http.latency.avg", 40.0 + n),
                ("http.latency.p99", 90.0),
                ("http.throughput", 20.0),
            )
        )
    response = login(viewer).get(reverse("target_slo", args=[target.slug]))
    figures = response.context["figures"]
    assert json.loads(figures["slo-trends"])["data"][0]["y"] == [40.0, 41.0]
    assert json.loads(figures["target-runs"])["data"][2]["y"] == [90.0, 90.0]
    body = response.content.decode()
    assert 'data-target="slo-trends"' in body and 'data-target="target-runs"' in body


# -- the indexes ---------------------------------------------------------------------------


def _index_columns(table: str) -> list[list[str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return [c["columns"] for c in constraints.values() if c["index"]]


def test_minute_checks_and_the_job_history_have_their_indexes(db):
    # Uptime and the daily availability read (target, name, measured_at, value) from the
    # index alone; the newest points walk it backwards; the job history walks its own.
    assert ["target_id", "name", "measured_at", "value"] in _index_columns(
        Measurement._meta.db_table
    )
    assert ["created_at", "id"] in _index_columns(Job._meta.db_table)
