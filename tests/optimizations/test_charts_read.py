"""Charts that read: 1-2-5 log labels, distinct colours, a histogram of bars, a
burn-down over its planned period, room for titles."""

import datetime

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


def test_a_burn_down_on_day_one_spans_the_planned_period():
    day_one = datetime.datetime(2026, 12, 1, 10, tzinfo=datetime.UTC)
    tasks = [
        {
            "hours": hours,
            "done_at_start": False,
            "created": day_one,
            "moves": [],
            "phase": phase,
            "phase_name": f"Phase {phase}",
        }
        for phase, hours in ((1, 8.0), (2, 16.0), (3, 4.0))
    ]
    figure = charts.phase_burndown(Initiative(), tasks, now=day_one)
    start, end = figure.layout.xaxis.range
    assert str(start).startswith("2026-12-01") and str(end).startswith("2027-01-26")
