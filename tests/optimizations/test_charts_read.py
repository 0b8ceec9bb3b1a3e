"""Charts that read: 1-2-5 log labels, distinct colours, a histogram of bars, a
burn-down over its planned period, room for titles."""

import datetime
from types import SimpleNamespace

from django.utils import timezone, translation

from optimizations.analyzers.loadgen.hdr import Histogram
from optimizations.reports import charts


def test_log_axes_are_labelled_1_2_5_in_full():
    axis = charts.log_ticks([3.2, 140.0, 2300.0])
    assert axis["type"] == "log"
    assert axis["tickvals"] == [2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
    assert axis["ticktext"][-3:] == ["1,000", "2,000", "5,000"]
    assert charts.log_ticks([0.4, 0.9])["ticktext"] == ["0.2", "0.5", "1", "2"]
    assert charts.log_ticks([None, 0]) == {"type": "log"}


def test_every_series_of_the_benchmark_timeline_has_its_own_colour_and_a_legend():
    rows = [{"row": i, "ok": 10, "achieved": 10, "p99_ms": 90.0 + i} for i in range(3)]
    figure = charts.benchmark_timeline(rows)
    colours = [trace.line.color for trace in figure.data]
    assert len(set(colours)) == len(colours)
    assert charts.PALETTE["errors"] != charts.PALETTE["p99"]
    assert all(trace.name for trace in figure.data)
    # Titles sit above the plot, with room to spare.
    assert figure.layout.margin.t >= 40


def test_the_latency_histogram_is_a_few_readable_bars():
    histogram = Histogram()
    for ms in (3, 4, 12, 15, 18, 22, 60, 61, 62, 140):
        histogram.record(ms * 1000, count=5)
    figure = charts.latency_histogram(histogram.to_dict())
    bar = figure.data[0]
    assert list(bar.x) == ["2–5", "10–20", "20–50", "50–100", "100–200"]
    assert list(bar.y) == [10, 15, 5, 15, 5]
    assert figure.layout.xaxis.type == "category"


class Initiative:
    start_date = datetime.date(2026, 12, 1)
    target_date = datetime.date(2027, 1, 26)


def burndown_tasks(created):
    return [
        {
            "hours": hours,
            "done_at_start": False,
            "created": created,
            "moves": [],
            "phase": phase,
            "phase_name": f"Phase {phase}",
        }
        for phase, hours in ((1, 8.0), (2, 16.0), (3, 4.5))
    ]


def test_a_burn_down_on_day_one_is_its_figures_not_a_stack_of_dots():
    day_one = datetime.datetime(2026, 12, 1, 10, tzinfo=datetime.UTC)
    tasks = burndown_tasks(day_one)
    tasks[1]["moves"] = [(day_one + datetime.timedelta(hours=2), True)]
    figure = charts.phase_burndown(Initiative(), tasks, now=day_one + datetime.timedelta(hours=3))
    assert charts.shown_as(figure) == "numbers"
    meta = figure["layout"]["meta"]
    assert [item["value"] for item in meta["items"]] == ["12.5", "8", "4.5"]
    assert "28.5" in meta["items"][0]["label"]
    assert [item["label"] for item in meta["items"][1:]] == ["1. Phase 1", "3. Phase 3"]
    assert meta["note"]


def test_a_burn_down_after_day_one_spans_the_planned_period_in_days():
    day_one = datetime.datetime(2026, 12, 1, 10, tzinfo=datetime.UTC)
    tasks = burndown_tasks(day_one)
    tasks[1]["moves"] = [(day_one + datetime.timedelta(days=2), True)]
    figure = charts.phase_burndown(Initiative(), tasks, now=day_one + datetime.timedelta(days=3))
    assert charts.shown_as(figure) == "chart"
    start, end = figure.layout.xaxis.range
    assert str(start).startswith("2026-12-01T00:00") and str(end).startswith("2027-01-26")
    stops = {tuple(stop.dtickrange): stop.value for stop in figure.layout.xaxis.tickformatstops}
    assert stops[(charts.DAY_MS, 28 * charts.DAY_MS)] == "%b %-d, %Y"  # crosses a new year
    assert [trace.y[-1] for trace in figure.data[:3]] == [8.0, 0.0, 4.5]
    assert len({trace.line.color for trace in figure.data}) == len(figure.data)


def formats_of(axis):
    return {tuple(stop["dtickrange"]): stop["value"] for stop in axis["tickformatstops"]}


AT = datetime.datetime(2026, 12, 7, 14, 5, 30)


def test_a_time_axis_formats_each_tick_spacing_for_the_span():
    minute = charts.time_axis([AT, AT + datetime.timedelta(minutes=1)], "en")
    assert "range" not in minute
    assert formats_of(minute)[(None, charts.MINUTE_MS - 1)] == "%H:%M:%S"
    assert formats_of(minute)[(charts.MINUTE_MS, charts.DAY_MS - 1)] == "%H:%M"
    assert minute["hoverformat"] == "%b %-d, %Y %H:%M:%S"
    # Over midnight, a time carries its day; within the year, a day no year.
    days = charts.time_axis([AT, AT + datetime.timedelta(hours=30)], "en")
    assert formats_of(days)[(charts.MINUTE_MS, charts.DAY_MS - 1)] == "%b %-d %H:%M"
    assert formats_of(days)[(charts.DAY_MS, 28 * charts.DAY_MS)] == "%b %-d"
    assert days["hoverformat"] == "%b %-d, %Y %H:%M"
    year = charts.time_axis([AT - datetime.timedelta(days=360), AT], "en")
    assert formats_of(year)[(charts.DAY_MS, 28 * charts.DAY_MS)] == "%b %-d, %Y"
    assert formats_of(year)[("M1", "M6")] == "%b %Y"
    # Weeks as dates: a hover says the day, not midnight.
    weeks = charts.time_axis([datetime.date(2026, 10, 5), datetime.date(2026, 12, 7)], "en")
    assert weeks["hoverformat"] == "%b %-d, %Y"


def test_a_time_axis_never_spaces_ticks_over_less_than_a_minute():
    single = charts.time_axis([AT], "en")
    assert single["range"] == ["2026-12-07T13:05:30", "2026-12-07T15:05:30"]
    seconds = charts.time_axis([AT, AT + datetime.timedelta(seconds=20)], "en")
    assert seconds["range"] == ["2026-12-07T14:05:10", "2026-12-07T14:06:10"]
    day = charts.time_axis([datetime.date(2026, 12, 7)], "en")
    assert day["range"] == ["2026-12-06T00:00:00", "2026-12-08T00:00:00"]
    assert day["hoverformat"] == "%b %-d, %Y"
    assert day["dtick"] == charts.DAY_MS and day["tick0"] == "2026-12-06"
    assert charts.time_axis([], "en") == {"type": "date"}


def test_a_time_axis_speaks_the_readers_language():
    days = charts.time_axis([AT - datetime.timedelta(days=40), AT], "ja")
    assert formats_of(days)[(charts.DAY_MS, 28 * charts.DAY_MS)] == "%-m/%-d"
    assert formats_of(days)[("M1", "M6")] == "%Y年%-m月"
    assert days["hoverformat"] == "%Y/%-m/%-d %H:%M"
    with translation.override("ja"):
        assert charts.time_axis([AT, AT])["hoverformat"] == "%Y/%-m/%-d %H:%M:%S"


def test_times_are_drawn_in_the_readers_time_zone():
    when = datetime.datetime(2026, 12, 7, 14, 0, tzinfo=datetime.UTC)
    with timezone.override("Asia/Tokyo"):
        assert charts.local_time(when).hour == 23
    assert charts.local_time(datetime.date(2026, 12, 7)) == datetime.date(2026, 12, 7)


def test_an_operations_chart_with_no_latency_says_so_in_words():
    answered_none = [
        {"name": "GET /", "latency_ms": dict.fromkeys(("med", "p95", "p99"), 0.0)},
        {"name": "POST /x", "latency_ms": None},
    ]
    figure = charts.operations_chart(answered_none)
    assert charts.shown_as(figure) == "message"
    assert "answered" in figure["layout"]["meta"]["text"]
    assert charts.operations_chart([]) is None


def test_an_operations_chart_within_a_decade_is_linear_and_over_decades_logarithmic():
    def op(name, med, p95, p99):
        return {"name": name, "latency_ms": {"med": med, "p95": p95, "p99": p99}}

    close = charts.operations_chart([op("GET /", 40.0, 52.0, 61.0), op("GET /a", 0.0, 0.0, 0.0)])
    assert close.layout.xaxis.type == "linear" and close.layout.xaxis.rangemode == "tozero"
    assert list(close.data[0].x) == [40.0, None]  # nothing answered: no bar, not a zero
    far = charts.operations_chart([op("GET /", 4.0, 52.0, 610.0)])
    assert far.layout.xaxis.type == "log" and 10 in far.layout.xaxis.tickvals


def test_the_axis_of_values_within_a_decade_is_linear():
    assert charts.value_axis([40, 60], rangemode="tozero") == {
        "type": "linear",
        "rangemode": "tozero",
    }
    assert charts.value_axis([4, 60])["type"] == "log"
    assert charts.value_axis([]) == {"type": "log"}


def test_one_benchmark_on_a_target_is_its_figures():
    point = {
        "at": datetime.datetime(2026, 12, 7, 14, tzinfo=datetime.UTC),
        "run_id": 3,
        "job_id": 9,
        "mode": "load",
        "p50": 12.0,
        "p95": 30.5,
        "p99": None,
        "rps": 200.0,
    }
    figure = charts.target_runs([point])
    assert charts.shown_as(figure) == "numbers"
    items = figure["layout"]["meta"]["items"]
    assert [(i["value"], i["label"]) for i in items] == [
        ("12.0", "p50 ms"),
        ("30.5", "p95 ms"),
        ("200.0", "req/s"),
    ]
    later = {**point, "at": point["at"] + datetime.timedelta(days=3), "run_id": 4}
    two = charts.target_runs([point, later])
    assert charts.shown_as(two) == "chart"
    assert two["layout"]["xaxis2"]["type"] == "date"
    assert two["layout"]["xaxis2"]["hoverformat"] == "%b %-d, %Y %H:%M"


def test_one_memory_sample_is_a_figure_and_a_long_run_reads_in_minutes_or_hours():
    assert charts.shown_as(charts.memory_trend([(0, 64 * 1024 * 1024)])) == "numbers"
    short = charts.memory_trend([(0, 1), (120, 2)])
    assert list(short.data[0].x) == [0, 120] and "seconds" in short.layout.xaxis.title.text
    hour = charts.memory_trend([(0, 1), (3600, 2)])
    assert list(hour.data[0].x) == [0, 60] and "minutes" in hour.layout.xaxis.title.text
    day = charts.memory_trend([(0, 1), (8 * 3600, 2)])
    assert list(day.data[0].x) == [0, 8] and "hours" in day.layout.xaxis.title.text


def test_an_slo_with_one_value_has_its_objective_across_a_padded_axis():
    row = SimpleNamespace(
        trend=[(datetime.datetime(2026, 12, 7, 14, tzinfo=datetime.UTC), 80.0)],
        label="p95",
        unit="ms",
        state="pass",
        threshold=100.0,
        comparison="<=",
    )
    figure = charts.slo_trends([row])
    objective = figure["data"][1]
    assert objective["x"] == figure["layout"]["xaxis"]["range"]
    start, end = objective["x"]
    assert start < end


def weekly(counts):
    monday = datetime.date(2026, 12, 7) - datetime.timedelta(weeks=len(counts) - 1)
    return [
        {"week": monday + datetime.timedelta(weeks=i), **dict.fromkeys(charts.SEVERITY_COLORS, 0)}
        | {"high": count}
        for i, count in enumerate(counts)
    ]


def test_findings_of_one_week_are_figures_and_weeks_are_ticked_as_weeks():
    one = charts.findings_over_time(weekly([0, 0, 0, 5]))
    assert charts.shown_as(one) == "numbers"
    assert {i["label"]: i["value"] for i in one["layout"]["meta"]["items"]}["high"] == "5"
    few = charts.findings_over_time(weekly([0, 2, 3, 5]))
    assert few["layout"]["xaxis"]["dtick"] == 7 * charts.DAY_MS
    assert few["layout"]["xaxis"]["tick0"] == "2026-11-16"  # a Monday, the first week shown
    some = charts.findings_over_time(weekly([1] * 10))
    assert some["layout"]["xaxis"]["dtick"] == 14 * charts.DAY_MS
    half_a_year = charts.findings_over_time(weekly([1] * 26))
    assert half_a_year["layout"]["xaxis"]["dtick"] == "M1"
    assert half_a_year["layout"]["xaxis"]["tick0"].endswith("-01")


def test_long_operation_names_are_shortened_and_one_that_never_answered_says_so():
    operations = [
        {"name": "GET /categories/{category_id}/stats", "latency_ms": {"med": 3.0, "p99": 40.0}},
        {"name": "GET /items", "latency_ms": {"med": 0.0, "p95": 0.0, "p99": 0.0}},
    ]
    figure = charts.operations_chart(operations)
    assert list(figure.layout.yaxis.tickvals) == [op["name"] for op in operations]
    short, silent = figure.layout.yaxis.ticktext
    assert "…" in short and len(short) <= 28 and short.endswith("/stats")
    assert silent == "GET /items (no answer)"


def test_slo_trends_carry_a_one_column_layout_for_a_phone():
    rows = [
        SimpleNamespace(
            trend=[(AT.replace(tzinfo=datetime.UTC), 80.0)],
            label=f"SLO {i}",
            unit="ms",
            state="pass",
            threshold=100.0,
            comparison="<=",
        )
        for i in range(4)
    ]
    figure = charts.slo_trends(rows)
    narrow = figure["layout"]["meta"]["narrow"]
    assert figure["layout"]["xaxis2"]["domain"] != [0.0, 1.0]
    assert all(narrow[f"xaxis{s}"]["domain"] == [0.0, 1.0] for s in ("", "2", "3", "4"))
    assert narrow["xaxis4"]["type"] == "date" and narrow["height"] == 800


def test_legends_sit_at_the_foot_of_the_figure_below_the_axis_labels():
    assert charts.LAYOUT["legend"]["yref"] == "container"
    assert charts.LAYOUT["legend"]["y"] == 0 and charts.LAYOUT["legend"]["yanchor"] == "bottom"


def test_the_hours_axis_of_open_work_has_its_own_round_ticks():
    rows = [
        {"name": "Dev", "open_tasks": 3, "overdue_tasks": 0, "open_findings": 30, "open_hours": 64}
    ]
    assert charts.open_work_by_department(rows)["layout"]["yaxis2"]["tickmode"] == "auto"


def test_stress_steps_start_at_zero_with_round_ticks_on_both_axes():
    steps = [
        {"offered_rate": 5.0, "achieved_rate": 4.8, "latency_ms": {"p99": 1200.0}},
        {"offered_rate": 6.25, "achieved_rate": 4.66, "latency_ms": {"p99": 4900.0}},
    ]
    figure = charts.stress_steps(steps)
    assert figure.layout.yaxis.rangemode == "tozero"
    assert figure.layout.yaxis2.tickmode == "auto" and figure.layout.yaxis2.type == "linear"
    steps[1]["latency_ms"]["p99"] = 49_000.0
    far = charts.stress_steps(steps)
    assert far.layout.yaxis2.type == "log" and far.layout.yaxis2.tickmode == "array"
