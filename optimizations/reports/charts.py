"""Every chart the portal draws, built server-side as Plotly figures.

Views ask this module for a figure and hand its JSON to the page; the page's
small script (static/js/charts.js) draws it with the plotly.js that the
plotly package ships (portal.staticfinders), so figure and library always
match. Charts that grow live (a running benchmark) are extended in the
browser with the rows the job page's poll brings.
"""

from __future__ import annotations

import datetime
import functools
import json
import math
import statistics
from collections import defaultdict

import plotly.graph_objects as go
import plotly.io as pio
from django.utils import formats, timezone
from django.utils.translation import get_language, gettext, ngettext
from plotly.io.json import to_json_plotly
from plotly.subplots import make_subplots

from optimizations.analyzers.base import MOST_SEVERE_FIRST
from optimizations.analyzers.loadgen.hdr import Histogram
from optimizations.models.results import SEVERITY_LABELS

PALETTE = {
    "offered": "#94a3b8",
    "achieved": "#0f766e",
    "errors": "#dc2626",
    "p50": "#2563eb",
    "p95": "#d97706",
    "p99": "#7c3aed",  # not red: errors are red, and both share a chart
    "service": "#0891b2",
    "memory": "#0f766e",
}
LAYOUT = {
    "margin": {"l": 56, "r": 16, "t": 48, "b": 40},
    "font": {"family": "system-ui, sans-serif", "size": 12, "color": "#1c2430"},
    "paper_bgcolor": "#ffffff",
    "plot_bgcolor": "#ffffff",
    # The legend at the foot of the figure, below the x axis's labels and title (placed
    # under the plot at a fraction of its height, it covered them once they rotated).
    "legend": {"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0},
    "hovermode": "x unified",
}


def log_ticks(values) -> dict:
    """A logarithmic axis labelled 1-2-5 (1, 2, 5, 10, 20, 50 …) over the values' range,
    each label written in full (Plotly's own labels read "5 2 1000 5 2 100")."""
    positive = [v for v in values if isinstance(v, int | float) and v > 0]
    if not positive:
        return {"type": "log"}
    low, high = min(positive), max(positive)
    ticks, decade = [], 10.0 ** math.floor(math.log10(low))
    while decade <= high * 10:
        ticks += [decade * step for step in (1, 2, 5)]
        decade *= 10
    shown = [t for t in ticks if low / 2.5 <= t <= high * 2.5] or ticks[:3]
    return {"type": "log", "tickvals": shown, "ticktext": [f"{t:,.10g}" for t in shown]}


def value_axis(values, **linear) -> dict:
    """A logarithmic axis labelled 1-2-5 when the values span a decade or more; below
    that a log axis has one label or none over the data, so a linear one (``linear``:
    its other properties, such as rangemode)."""
    positive = [v for v in values if isinstance(v, int | float) and v > 0]
    if positive and max(positive) / min(positive) < 10:
        return {"type": "linear", **linear}
    return log_ticks(positive)


# --- Time axes ---------------------------------------------------------------------
# Plotly picks a time axis's tick spacing from the axis's width in pixels (seconds,
# minutes, hours, days, weeks, months, years); the format of each spacing is ours, in
# the page's language, chosen for the span of the data (a date beside the time once the
# span crosses midnight, the year once it crosses a new year), so no axis reads
# "02:54:41.8595" or "Dec 7, 2026" under every tick.

SECOND_MS, MINUTE_MS, HOUR_MS, DAY_MS = 1_000, 60_000, 3_600_000, 86_400_000
DATE_FORMATS = {
    "en": {
        "seconds": "%H:%M:%S",
        "minutes": "%H:%M",
        "day_minutes": "%b %-d %H:%M",
        "days": "%b %-d",
        "year_days": "%b %-d, %Y",
        "months": "%b %Y",
        "years": "%Y",
        "hover_day": "%b %-d, %Y",
        "hover_minute": "%b %-d, %Y %H:%M",
        "hover_second": "%b %-d, %Y %H:%M:%S",
    },
    "ja": {
        "seconds": "%H:%M:%S",
        "minutes": "%H:%M",
        "day_minutes": "%-m/%-d %H:%M",
        "days": "%-m/%-d",
        "year_days": "%Y/%-m/%-d",
        "months": "%Y年%-m月",
        "years": "%Y年",
        "hover_day": "%Y/%-m/%-d",
        "hover_minute": "%Y/%-m/%-d %H:%M",
        "hover_second": "%Y/%-m/%-d %H:%M:%S",
    },
}
# A single moment is shown in the two hours around it (a single day between the days
# either side); a span under a minute in the minute around it (never milliseconds apart
# on the axis).
SINGLE_MOMENT_PAD = datetime.timedelta(hours=1)
SHORTEST_SPAN = datetime.timedelta(minutes=1)


def local_time(when):
    """A datetime in the reader's time zone (Plotly draws a time's wall clock and
    ignores its offset); a date stays a date."""
    if isinstance(when, datetime.datetime) and timezone.is_aware(when):
        return timezone.localtime(when)
    return when


def _moment(when) -> datetime.datetime:
    if isinstance(when, datetime.datetime):
        return when
    return datetime.datetime.combine(when, datetime.time())


def time_axis(times, language: str | None = None) -> dict:
    """A date axis for ``times`` (datetimes in the reader's time zone, or dates): tick
    formats per tick spacing for the data's span, the hover format, and a range padded
    out when the span is too short to space ticks over."""
    words = DATE_FORMATS.get((language or get_language() or "en")[:2], DATE_FORMATS["en"])
    moments = sorted(_moment(when) for when in times if when is not None)
    axis: dict = {"type": "date"}
    if not moments:
        return axis
    low, high = moments[0], moments[-1]
    span = high - low
    dates_only = all(m.time() == datetime.time() for m in moments)
    if span < SHORTEST_SPAN:
        pad = SINGLE_MOMENT_PAD if not span else (SHORTEST_SPAN - span) / 2
        if dates_only:  # a day's figure: the days either side of it
            pad = datetime.timedelta(days=1)
        low, high = low - pad, high + pad
        axis["range"] = [low.isoformat(), high.isoformat()]
    one_day = low.date() == high.date()
    one_year = low.year == high.year
    axis["tickformatstops"] = [
        {"dtickrange": [None, MINUTE_MS - 1], "value": words["seconds"]},
        {
            "dtickrange": [MINUTE_MS, DAY_MS - 1],
            "value": words["minutes" if one_day else "day_minutes"],
        },
        {"dtickrange": [DAY_MS, 28 * DAY_MS], "value": words["days" if one_year else "year_days"]},
        {"dtickrange": ["M1", "M6"], "value": words["months"]},
        {"dtickrange": ["M12", None], "value": words["years"]},
    ]
    if dates_only:
        axis["hoverformat"] = words["hover_day"]
        if high - low <= datetime.timedelta(days=10):  # a tick a day, never noon
            axis.update(tickmode="linear", tick0=low.date().isoformat(), dtick=DAY_MS)
    elif span < datetime.timedelta(hours=1):
        axis["hoverformat"] = words["hover_second"]
    else:
        axis["hoverformat"] = words["hover_minute"]
    return axis


def week_ticks(weeks: list[datetime.date]) -> dict:
    """Ticks on weekly data at its weeks' Mondays: every week, every other week, or the
    first of each month (so a few weeks never read as days, nor half a year crowds)."""
    if not weeks:
        return {}
    if len(weeks) <= 6:
        return {"tickmode": "linear", "tick0": weeks[0].isoformat(), "dtick": 7 * DAY_MS}
    if len(weeks) <= 12:
        return {"tickmode": "linear", "tick0": weeks[0].isoformat(), "dtick": 14 * DAY_MS}
    return {"tickmode": "linear", "tick0": weeks[0].replace(day=1).isoformat(), "dtick": "M1"}


def elapsed_axis(seconds: list[float]) -> tuple[float, str]:
    """The unit an elapsed-time axis reads best in for its longest value: (seconds per
    unit, axis title) — seconds up to five minutes, minutes up to five hours, then hours."""
    longest = max((s for s in seconds if s is not None), default=0.0)
    if longest > 5 * 3600:
        return 3600.0, gettext("hours since start")
    if longest > 5 * 60:
        return 60.0, gettext("minutes since start")
    return 1.0, gettext("seconds since start")


# --- Figures that are not charts ------------------------------------------------------
# What a chart would show with no span (a figure: numbers) or with nothing to draw (a
# sentence), decided here and written by static/js/charts.js from the figure's
# layout.meta instead of drawing axes.


def as_numbers(title: str, items: list[tuple[str, str]], note: str = "") -> dict:
    """A figure shown as numbers: ``items`` are (value as written, what it is)."""
    return {
        "data": [],
        "layout": {
            "meta": {
                "show": "numbers",
                "title": title,
                "items": [{"value": value, "label": label} for value, label in items],
                "note": note,
            }
        },
    }


def as_message(title: str, text: str) -> dict:
    """A figure with nothing to draw, said in words."""
    return {"data": [], "layout": {"meta": {"show": "message", "title": title, "text": text}}}


def shown_as(figure) -> str:
    """How a builder's result reaches the reader: "chart", "numbers" or "message"."""
    layout = figure.get("layout", {}) if isinstance(figure, dict) else {}
    return (layout.get("meta") or {}).get("show", "chart")


# The per-second row fields the benchmark timeline shows, in trace order.
TIMELINE_FIELDS = ("offered", "achieved", "errors", "p50_ms", "p95_ms", "p99_ms")


def to_json(figure: go.Figure | dict) -> str:
    """A figure's JSON for the page: a go.Figure, or a plain {"data", "layout"} dict
    (the SLO board's figures, built without plotly's validation; see _plain_figure)."""
    if isinstance(figure, dict):
        return to_json_plotly(figure)
    return figure.to_json()


def sample_rows(measurements) -> list[dict]:
    """Rows {second, name: value, …} from a job's sample.* Measurements."""
    rows: dict[int, dict] = defaultdict(dict)
    for second, name, value in measurements:
        rows[second][name.removeprefix("sample.")] = value
    return [{"row": second, **values} for second, values in sorted(rows.items())]


LATENCY_FIELDS = ("p50_ms", "p95_ms", "p99_ms")


def timeline_points(rows: list[dict]) -> dict:
    """The x values and the y values of each timeline trace, for the live extension.

    A second in which nothing was answered has no latency (a gap in the line),
    not a latency of zero.
    """
    xs = [row.get("at", row["row"]) for row in rows]
    points = {"x": xs}
    for field in TIMELINE_FIELDS:
        values = []
        for row in rows:
            value = row.get(field)
            if field in LATENCY_FIELDS and not row.get("ok") and not row.get("achieved"):
                value = None
            values.append(value)
        points[field] = values
    return points


def benchmark_timeline(rows: list[dict]) -> go.Figure:
    """Offered and achieved rate with errors above; latency percentiles below."""
    points = timeline_points(rows)
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.1,
        subplot_titles=(
            gettext("Requests per second"),
            gettext("Latency from the intended send time (ms)"),
        ),
    )
    traces = [
        ("offered", "offered", 1, {"dash": "dot"}),
        ("achieved", "achieved", 1, {}),
        ("errors", "errors", 1, {}),
        ("p50_ms", "p50", 2, {}),
        ("p95_ms", "p95", 2, {}),
        ("p99_ms", "p99", 2, {}),
    ]
    for field, name, row, line in traces:
        color = PALETTE[name.split("_")[0]]
        figure.add_trace(
            go.Scatter(
                x=points["x"],
                y=points[field],
                name=gettext(name),
                mode="lines",
                line={"color": color, "width": 2, **line},
            ),
            row=row,
            col=1,
        )
    # Tall enough for the latency subplot's 1-2-5 labels over three decades.
    figure.update_layout(**LAYOUT, height=540)
    figure.update_xaxes(title_text=gettext("seconds since start"), row=2, col=1)
    # Latency spans milliseconds to seconds when a target saturates.
    latencies = [v for field in LATENCY_FIELDS for v in points[field] if v]
    figure.update_yaxes(**value_axis(latencies, rangemode="tozero"), row=2, col=1)
    return figure


def _bin_floor(value: float) -> float:
    """The 1-2-5 edge at or below ``value`` (0.37 → 0.2, 37 → 20, 120 → 100)."""
    if value <= 0:
        return 0.0
    decade = 10.0 ** math.floor(math.log10(value))
    for step in (5, 2, 1):
        if value >= step * decade * (1 - 1e-9):
            return round(step * decade, 12)
    return round(decade, 12)


def _next_edge(edge: float) -> float:
    if edge <= 0:
        return 0.001
    decade = 10.0 ** math.floor(math.log10(edge) + 1e-9)
    step = round(edge / decade)
    return round({1: 2, 2: 5}.get(step, 10) * decade, 12)


def latency_histogram(hdr: dict | None) -> go.Figure | None:
    """The latency distribution of the whole run from its HDR histogram."""
    if not hdr or not hdr.get("total"):
        return None
    histogram = Histogram.from_dict(hdr)
    scale = 1000.0 if hdr.get("unit", "us") == "us" else 1.0
    # The HDR buckets are hundreds of thin slivers on a log axis: gathered into
    # 1-2-5 bins (…, 10–20, 20–50, 50–100 ms, …) they are bars one can read.
    bins: dict[float, int] = {}
    for low, _high, count in histogram.buckets():
        if count:
            edge = _bin_floor(low / scale)
            bins[edge] = bins.get(edge, 0) + count
    edges = sorted(bins)
    labels = [f"{edge:,.10g}–{_next_edge(edge):,.10g}" for edge in edges]
    figure = go.Figure(
        go.Bar(
            x=labels,
            y=[bins[edge] for edge in edges],
            marker_color=PALETTE["achieved"],
            name=gettext("requests"),
        )
    )
    figure.update_layout(
        **LAYOUT,
        height=300,
        bargap=0.15,
        title={"text": gettext("Latency distribution"), "x": 0},
        xaxis={"title": gettext("latency (ms)"), "type": "category"},
        yaxis={"title": gettext("requests")},
        showlegend=False,
    )
    return figure


def operations_chart(operations: list[dict]) -> go.Figure | dict | None:
    """p50 / p95 / p99 per operation, so the bottleneck endpoint stands out; in words
    when no operation has a latency (nothing answered: the load engine writes zeros)."""
    if not operations:
        return None
    title = gettext("Latency per operation (ms)")

    def latency(op: dict, quantile: str) -> float | None:
        return (op.get("latency_ms") or {}).get(quantile) or None

    values = [latency(op, q) for op in operations for q in ("med", "p95", "p99")]
    if not any(values):
        return as_message(
            title,
            gettext("No operation has a latency to draw: none of their requests was answered."),
        )
    names = [op["name"] for op in operations]
    labels = [
        _short(op["name"])
        if any(latency(op, q) for q in ("med", "p95", "p99"))
        else gettext("%(operation)s (no answer)") % {"operation": _short(op["name"])}
        for op in operations
    ]
    figure = go.Figure()
    for quantile in ("med", "p95", "p99"):
        key = {"med": "p50"}.get(quantile, quantile)
        figure.add_trace(
            go.Bar(
                y=names,
                x=[latency(op, quantile) for op in operations],
                name=key,
                orientation="h",
                marker_color=PALETTE[key],
            )
        )
    figure.update_layout(
        **{**LAYOUT, "hovermode": "y unified"},
        height=120 + 34 * len(names),
        barmode="group",
        title={"text": title, "x": 0},
        xaxis={"title": "ms", **value_axis(values, rangemode="tozero")},
        yaxis={"autorange": "reversed", "tickvals": names, "ticktext": labels},
    )
    return figure


def _short(name: str, limit: int = 28) -> str:
    """A long operation name shortened in its middle (GET /categories/…/stats), so its
    bars keep the width of a phone; the hover and the table carry it whole."""
    if len(name) <= limit:
        return name
    keep = (limit - 1) // 2
    return f"{name[:keep]}…{name[-keep:]}"


def stress_steps(steps: list[dict]) -> go.Figure | None:
    """Offered and achieved rate per step with the corrected p99: where the knee is."""
    if not steps:
        return None
    offered = [step.get("offered_rate") for step in steps]
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(
        go.Scatter(
            x=offered,
            y=[step.get("achieved_rate") for step in steps],
            name=gettext("achieved req/s"),
            mode="lines+markers",
            line={"color": PALETTE["achieved"]},
        ),
        secondary_y=False,
    )
    figure.add_trace(
        go.Scatter(
            x=offered,
            y=[(step.get("latency_ms") or {}).get("p99") for step in steps],
            name="p99 ms",
            mode="lines+markers",
            line={"color": PALETTE["p99"]},
        ),
        secondary_y=True,
    )
    figure.update_layout(**LAYOUT, height=340, title={"text": gettext("Stress steps"), "x": 0})
    figure.update_xaxes(title_text=gettext("offered req/s"))
    figure.update_yaxes(title_text=gettext("achieved req/s"), rangemode="tozero", secondary_y=False)
    p99s = [(step.get("latency_ms") or {}).get("p99") for step in steps]
    p99_axis = value_axis(p99s, rangemode="tozero")
    figure.update_yaxes(
        title_text="p99 ms",
        # Its own round ticks (or its 1-2-5 labels), not the achieved axis's lines carried
        # over: Plotly's default for an overlaying axis, which read 10, 1650, 3280, 4920.
        tickmode="array" if "tickvals" in p99_axis else "auto",
        showgrid=False,
        **p99_axis,
        secondary_y=True,
    )
    return figure


def memory_trend(samples: list) -> go.Figure | dict | None:
    """The target's memory (PSS summed over its processes) over an endurance run, against
    the time since the start in seconds, minutes or hours as the run's length reads best;
    one sample is a figure, not a chart."""
    if not samples:
        return None
    title = gettext("Target memory (PSS, MiB)")
    if len(samples) == 1:
        return as_numbers(
            title, [(formats.number_format(samples[0][1] / (1024 * 1024), 1), "MiB PSS")]
        )
    per, unit = elapsed_axis([point[0] for point in samples])
    xs = [round(point[0] / per, 3) for point in samples]
    ys = [point[1] / (1024 * 1024) for point in samples]
    figure = go.Figure(
        go.Scatter(x=xs, y=ys, mode="lines", name="PSS", line={"color": PALETTE["memory"]})
    )
    figure.update_layout(
        **LAYOUT,
        height=300,
        title={"text": title, "x": 0},
        xaxis={"title": unit},
        yaxis={"title": "MiB"},
        showlegend=False,
    )
    return figure


def bundle(**figures) -> dict[str, str]:
    """{dom id: figure JSON} for the figures that exist (go.Figure or plain dict)."""
    return {name: to_json(figure) for name, figure in figures.items() if figure is not None}


def points_json(rows: list[dict]) -> str:
    return json.dumps(timeline_points(rows))


def comparison_runs(a_points: list, b_points: list, title: str) -> go.Figure:
    """Each run's value on both sides, in time order: the alternation and the spread."""
    figure = go.Figure()
    for name, points, color in (
        (gettext("A (before)"), a_points, PALETTE["offered"]),
        (gettext("B (after)"), b_points, PALETTE["achieved"]),
    ):
        figure.add_trace(
            go.Scatter(
                x=[local_time(when) for when, _ in points],
                y=[value for _, value in points],
                mode="markers",
                name=name,
                marker={"size": 11, "color": color},
            )
        )
    figure.update_layout(
        **LAYOUT,
        height=320,
        title={"text": title, "x": 0},
        xaxis=time_axis([local_time(when) for when, _ in [*a_points, *b_points]]),
    )
    return figure


# --- Portfolio and plan ------------------------------------------------------------
# The rows come from optimizations.reports.portfolio (bounded aggregate queries); these
# functions only draw them.

SEVERITY_COLORS = {
    "critical": "#7a1010",
    "high": "#dc2626",
    "medium": "#d97706",
    "low": "#2563eb",
    "info": "#94a3b8",
}
PHASE_COLORS = ("#2563eb", "#0f766e", "#d97706", "#7c3aed")


def _midnight(day):
    """A date as the start of that day, so dates and times share one axis."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time()))


def _hours(value: float) -> str:
    return formats.number_format(value, 1 if value % 1 else 0, use_l10n=True)


def phase_burndown(initiative, tasks: list[dict], now=None) -> go.Figure | dict | None:
    """Remaining estimated hours per phase over time (stacked), with the ideal line
    from the initiative's start date to its target date.

    ``tasks`` are optimizations.reports.portfolio.burndown_tasks rows: each task's
    estimate, when it was created, and when it was done or reopened. On day one (the
    initiative started and its work was planned less than a day ago) there is no span
    to draw over: the remaining hours are figures.
    """
    estimated = [task for task in tasks if task["hours"]]
    if not estimated:
        return None
    now = now or timezone.now()
    # Every change in remaining hours: (when, phase, ± hours).
    steps = []
    for task in estimated:
        remaining = not task["done_at_start"]
        if remaining:
            steps.append((task["created"], task["phase"], task["hours"]))
        for when, done in task["moves"]:
            if done and remaining:
                steps.append((when, task["phase"], -task["hours"]))
            elif not done and not remaining:
                steps.append((when, task["phase"], task["hours"]))
            remaining = not done
    steps.sort(key=lambda step: step[0])
    times = sorted({when for when, _, _ in steps} | {now})
    phases = sorted({task["phase"] for task in estimated})
    names = {task["phase"]: task["phase_name"] for task in estimated}
    levels: dict[int, list[float]] = {}
    for phase in phases:
        level, ys, pending = 0.0, [], [s for s in steps if s[1] == phase]
        position = 0
        for when in times:
            while position < len(pending) and pending[position][0] <= when:
                level += pending[position][2]
                position += 1
            ys.append(round(max(level, 0.0), 1))
        levels[phase] = ys
    total = round(sum(task["hours"] for task in estimated), 1)
    left_out = len(tasks) - len(estimated)
    title = gettext("Remaining estimated hours")
    if left_out:
        title += " " + ngettext(
            "(%(count)d task without an estimate not counted)",
            "(%(count)d tasks without an estimate not counted)",
            left_out,
        ) % {"count": left_out}
    began = min(times[0], _midnight(initiative.start_date)) if initiative.start_date else times[0]
    if now - began < datetime.timedelta(days=1):
        left = round(sum(ys[-1] for ys in levels.values()), 1)
        return as_numbers(
            title,
            [
                (
                    _hours(left),
                    gettext("hours left of %(total)s estimated, all phases")
                    % {"total": _hours(total)},
                ),
                *(
                    (_hours(levels[phase][-1]), f"{phase}. {names[phase]}")
                    for phase in phases
                    if levels[phase][-1]
                ),
            ],
            gettext("Day one: the burn-down is drawn once the work has a day behind it."),
        )
    figure = go.Figure()
    shown_times = [local_time(when) for when in times]
    for index, phase in enumerate(phases):
        figure.add_trace(
            go.Scatter(
                x=shown_times,
                y=levels[phase],
                name=f"{phase}. {names[phase]}",
                mode="lines",
                stackgroup="phases",
                line={"shape": "hv", "width": 1, "color": PHASE_COLORS[index % len(PHASE_COLORS)]},
            )
        )
    if initiative.target_date and initiative.target_date > initiative.start_date:
        figure.add_trace(
            go.Scatter(
                x=[initiative.start_date, initiative.target_date],
                y=[total, 0],
                name=gettext("ideal"),
                mode="lines",
                line={"color": "#1c2430", "dash": "dash", "width": 1.5},
            )
        )
    # The planned period on the x axis, so the work so far reads against the ideal line.
    start, end = local_time(began), shown_times[-1]
    if initiative.target_date:
        end = max(end, local_time(_midnight(initiative.target_date)))
    xaxis = {**time_axis([start, end]), "range": [start.isoformat(), end.isoformat()]}
    figure.update_layout(
        **LAYOUT,
        height=320,
        title={"text": title, "x": 0},
        xaxis=xaxis,
        yaxis={"title": gettext("hours"), "rangemode": "tozero"},
    )
    return figure


def open_work_by_department(rows: list[dict]) -> dict | None:
    """Open tasks per department (and how many are overdue), the open findings of
    the categories it owns, and the estimated hours its open tasks still need;
    rows are optimizations.reports.portfolio.department_rollups.

    A plain figure dict (as the SLO board's, see _plain_figure): the portfolio
    draws it on every visit. The layout is make_subplots' with a secondary y axis.
    """
    if not rows or not any(row["open_tasks"] or row["open_findings"] for row in rows):
        return None
    names = [row["name"] for row in rows]
    bars = (
        ("open_tasks", gettext("open tasks"), PALETTE["achieved"]),
        ("overdue_tasks", gettext("of them overdue"), PALETTE["errors"]),
        ("open_findings", gettext("open findings they own"), PALETTE["offered"]),
    )
    traces = [
        {
            "type": "bar",
            "x": names,
            "y": [row[key] for row in rows],
            "name": name,
            "marker": {"color": color},
            "xaxis": "x",
            "yaxis": "y",
        }
        for key, name, color in bars
    ]
    traces.append(
        {
            "type": "scatter",
            "x": names,
            "y": [float(row["open_hours"]) for row in rows],
            "name": gettext("estimated hours left"),
            "mode": "markers",
            "marker": {"size": 12, "symbol": "diamond", "color": PALETTE["service"]},
            "xaxis": "x",
            "yaxis": "y2",
        }
    )
    return _plain_figure(
        traces,
        {
            "hovermode": "x",
            "height": 320,
            "barmode": "group",
            "title": {"text": gettext("Open work per department"), "x": 0},
            "xaxis": {"anchor": "y", "domain": [0.0, 0.94]},
            "yaxis": {
                "anchor": "x",
                "domain": [0.0, 1.0],
                "title": {"text": gettext("count")},
                "rangemode": "tozero",
            },
            "yaxis2": {
                "anchor": "x",
                "overlaying": "y",
                "side": "right",
                "title": {"text": gettext("hours")},
                "rangemode": "tozero",
                "showgrid": False,
                "tickformat": ",.0f",
                # Its own round ticks (hours), not the count axis's lines carried over.
                "tickmode": "auto",
            },
        },
    )


def findings_over_time(rows: list[dict]) -> dict | None:
    """Open findings by severity at the end of each week (stacked), a plain figure
    dict; rows are optimizations.reports.portfolio.findings_over_time."""
    severities = MOST_SEVERE_FIRST
    if not rows or not any(row[name] for row in rows for name in severities):
        return None
    # Weeks before the first finding say nothing; one empty week shows where it began.
    first = next(i for i, row in enumerate(rows) if any(row[name] for name in severities))
    title = gettext("Open findings by severity, week by week")
    if first == len(rows) - 1:
        # Findings in one week only: a figure per severity, not a wall at the chart's edge.
        week = formats.date_format(rows[-1]["week"], "DATE_FORMAT")
        return as_numbers(
            title,
            [(formats.number_format(rows[-1][name]), gettext(name)) for name in severities],
            gettext("In the week starting %(week)s: a trend needs a second week.") % {"week": week},
        )
    rows = rows[max(first - 1, 0) :]
    weeks = [row["week"] for row in rows]
    traces = [
        {
            "type": "scatter",
            "x": weeks,
            "y": [row[severity] for row in rows],
            "name": str(SEVERITY_LABELS.get(severity, severity)),
            "mode": "lines",
            "stackgroup": "severity",
            "line": {"color": SEVERITY_COLORS[severity], "width": 1, "shape": "hv"},
        }
        for severity in severities
    ]
    return _plain_figure(
        traces,
        {
            "height": 320,
            "title": {"text": title, "x": 0},
            "yaxis": {"title": {"text": gettext("open findings")}, "rangemode": "tozero"},
            "xaxis": {
                "title": {"text": gettext("week starting")},
                **time_axis(weeks),
                **week_ticks(weeks),
            },
        },
    )


# --- ROI: before/after ------------------------------------------------------------


def before_after_latency(
    before: dict[str, list[float]],
    after: dict[str, list[float]],
    labels: tuple[str, str],
) -> go.Figure | None:
    """p50 and p95 latency of the baseline and the latest benchmark set, as boxes.

    Built from one value per run of each set (quartiles, whiskers, outlying
    runs as points): the values the comparison rule compares, with their spread.
    """
    if not (before.get("p95") and after.get("p95")):
        return None
    figure = go.Figure()
    for name, samples, color in (
        (labels[0], before, PALETTE["offered"]),
        (labels[1], after, PALETTE["achieved"]),
    ):
        xs, ys = [], []
        for quantile in ("p50", "p95"):
            values = samples.get(quantile) or []
            xs.extend([gettext("%(quantile)s per run") % {"quantile": quantile}] * len(values))
            ys.extend(values)
        figure.add_trace(go.Box(x=xs, y=ys, name=name, marker_color=color, boxpoints="outliers"))
    # A tenfold change flattens one side against zero on a linear axis: go logarithmic.
    low = min(statistics.median(before["p95"]), statistics.median(after["p95"]))
    high = max(statistics.median(before["p95"]), statistics.median(after["p95"]))
    logarithmic = low > 0 and high / low >= 10
    figure.update_layout(
        **{**LAYOUT, "hovermode": "closest"},
        height=360,
        boxmode="group",
        title={
            "text": gettext("Latency per run, before and after (ms, logarithmic scale)")
            if logarithmic
            else gettext("Latency per run, before and after (ms)"),
            "x": 0,
        },
        yaxis={"title": "ms", **log_ticks([*before["p95"], *after["p95"], *before.get("p50", [])])}
        if logarithmic
        else {"title": "ms", "rangemode": "tozero"},
    )
    return figure


# -- SLO board and per-target trends ---------------------------------------------------


# The SLO board draws these two on every visit: built as plain figure dicts (Plotly's
# JSON schema), since make_subplots and update_layout validate every property and
# cost the page tens of milliseconds of CPU. The layout is what make_subplots would
# make: the same axis domains, subplot titles and the default template, so they look
# like the other charts.

SUBPLOT_TITLE_SIZE = 16  # make_subplots' own


@functools.cache
def _template() -> dict:
    """The default template a go.Figure carries (its colorway, grid and fonts);
    shared by every plain figure, so never changed in place."""
    return pio.templates[pio.templates.default].to_plotly_json()


def _plain_figure(traces: list[dict], layout: dict) -> dict:
    return {"data": traces, "layout": {"template": _template(), **LAYOUT, **layout}}


def _grid(
    rows: int,
    columns: int,
    titles: list[str],
    *,
    horizontal_spacing: float,
    vertical_spacing: float,
    title_size: int = SUBPLOT_TITLE_SIZE,
    **yaxis,
) -> tuple[dict, list[tuple[str, str]]]:
    """Axes laid out as make_subplots(rows, columns) lays them out: the layout keys
    (xaxis…, yaxis… with ``yaxis`` properties on each, title annotations) and each
    cell's ("x2", "y2"), row by row."""
    width = (1.0 - horizontal_spacing * (columns - 1)) / columns
    height = (1.0 - vertical_spacing * (rows - 1)) / rows
    layout: dict = {"annotations": []}
    cells = []
    for index in range(rows * columns):
        row, column = divmod(index, columns)
        left = column * (width + horizontal_spacing)
        bottom = (rows - 1 - row) * (height + vertical_spacing)
        suffix = str(index + 1) if index else ""
        layout[f"xaxis{suffix}"] = {
            "anchor": f"y{suffix}",
            "domain": [round(left, 6), round(left + width, 6)],
        }
        layout[f"yaxis{suffix}"] = {
            "anchor": f"x{suffix}",
            "domain": [round(bottom, 6), round(bottom + height, 6)],
            **yaxis,
        }
        cells.append((f"x{suffix}", f"y{suffix}"))
        if index < len(titles):
            layout["annotations"].append(
                {
                    "text": titles[index],
                    "font": {"size": title_size},
                    "showarrow": False,
                    "x": round(left + width / 2, 6),
                    "xanchor": "center",
                    "xref": "paper",
                    "y": round(bottom + height, 6),
                    "yanchor": "bottom",
                    "yref": "paper",
                }
            )
    return layout, cells


def slo_trends(rows) -> dict | None:
    """One small chart per SLO with a trend (sloboard.SloRow), threshold dashed: three
    to a line, and one to a line on a phone (``layout.meta.narrow``, which
    static/js/charts.js lays over the layout when the chart is narrower than 560 px)."""
    rows = [row for row in rows if row.trend]
    if not rows:
        return None
    titles = [f"{gettext(row.label)} ({row.unit})" for row in rows]
    columns = 3
    lines = -(-len(rows) // columns)
    layout, cells = _grid(
        lines,
        columns,
        titles,
        horizontal_spacing=0.08,
        vertical_spacing=0.5 / lines,
        title_size=12,
    )
    narrow, _ = _grid(
        len(rows),
        1,
        titles,
        horizontal_spacing=0.0,
        vertical_spacing=0.5 / len(rows),
        title_size=12,
    )
    traces = []
    for row, (xaxis, yaxis) in zip(rows, cells, strict=False):
        xs = [local_time(when) for when, _ in row.trend]
        axis = time_axis(xs)
        layout[f"xaxis{xaxis[1:]}"].update(axis)
        narrow[f"xaxis{xaxis[1:]}"].update(axis)
        # The objective across the axis: over a padded range when the trend is one value.
        ends = axis.get("range") or [xs[0], xs[-1]]
        color = {"pass": PALETTE["achieved"], "fail": PALETTE["errors"]}.get(row.state, "#64748b")
        traces.append(
            {
                "type": "scatter",
                "x": xs,
                "y": [value for _, value in row.trend],
                "mode": "lines+markers",
                "name": gettext(row.label),
                "line": {"color": color, "width": 2},
                "hovertemplate": f"%{{y:.4g}} {row.unit}<extra>{gettext(row.label)}</extra>",
                "xaxis": xaxis,
                "yaxis": yaxis,
            }
        )
        traces.append(
            {
                "type": "scatter",
                "x": ends,
                "y": [row.threshold, row.threshold],
                "mode": "lines",
                "name": gettext("objective"),
                "line": {"color": "#94a3b8", "dash": "dash", "width": 1},
                "hovertemplate": gettext("objective %(comparison)s %(threshold)s %(unit)s")
                % {
                    "comparison": row.comparison,
                    "threshold": f"{row.threshold:g}",
                    "unit": row.unit,
                }
                + "<extra></extra>",
                "xaxis": xaxis,
                "yaxis": yaxis,
            }
        )
    narrow["height"] = 200 * len(rows)
    return _plain_figure(
        traces,
        {
            **layout,
            "hovermode": "closest",
            "height": 230 * lines,
            "showlegend": False,
            "meta": {"narrow": narrow},
        },
    )


def target_runs(points: list[dict]) -> dict | None:
    """Latency percentiles and throughput over a target's benchmarks, one point per job.

    Each mode is its own line (a stress test's point is its knee, an endurance
    test's its long run), so a load test is never joined to a stress test.
    """
    if not points:
        return None
    if len(points) == 1:
        point = points[0]
        when = formats.date_format(local_time(point["at"]), "DATETIME_FORMAT")
        items = [
            (formats.number_format(point[key], 1), f"{key} ms")
            for key in ("p50", "p95", "p99")
            if point[key] is not None
        ]
        if point["rps"] is not None:
            items.append((formats.number_format(point["rps"], 1), "req/s"))
        return as_numbers(
            gettext("One benchmark so far"),
            items,
            gettext("%(mode)s test, run #%(run)s, %(when)s: a trend needs a second one.")
            % {"mode": point["mode"], "run": point["run_id"], "when": when},
        )
    layout, _ = _grid(
        2,
        1,
        [gettext("Latency (ms)"), gettext("Throughput (req/s)")],
        horizontal_spacing=0.0,
        vertical_spacing=0.18,
        rangemode="tozero",
    )
    # Shared x axes, as make_subplots(shared_xaxes=True): the top one follows the bottom's.
    layout["xaxis"].update(matches="x2", showticklabels=False)
    layout["xaxis2"].update(time_axis([local_time(point["at"]) for point in points]))
    modes = sorted({point["mode"] for point in points}, key=lambda m: (m != "load", m))
    dashes = ["solid", "dot", "dash", "dashdot"]
    symbols = ["circle", "diamond", "square", "triangle-up"]
    traces = []
    for index, mode in enumerate(modes):
        mine = [point for point in points if point["mode"] == mode]
        common = {
            "type": "scatter",
            "x": [local_time(point["at"]) for point in mine],
            "legendgroup": mode,
            "mode": "lines+markers",
            "marker": {"symbol": symbols[index % len(symbols)], "size": 7},
            "text": [
                gettext("run #%(run_id)s · job #%(job_id)s (%(mode)s)")
                % {"run_id": p["run_id"], "job_id": p["job_id"], "mode": mode}
                for p in mine
            ],
        }
        dash = dashes[index % len(dashes)]
        for key in ("p50", "p95", "p99"):
            traces.append(
                {
                    **common,
                    "y": [point[key] for point in mine],
                    "name": f"{key} ({mode})",
                    "line": {"color": PALETTE[key], "dash": dash},
                    "hovertemplate": f"{key} %{{y:.4g}} ms<br>%{{text}}<extra></extra>",
                    "xaxis": "x",
                    "yaxis": "y",
                }
            )
        traces.append(
            {
                **common,
                "y": [point["rps"] for point in mine],
                "name": f"req/s ({mode})",
                "line": {"color": PALETTE["achieved"], "dash": dash},
                "hovertemplate": "%{y:.4g} req/s<br>%{text}<extra></extra>",
                "xaxis": "x2",
                "yaxis": "y2",
            }
        )
    return _plain_figure(traces, {**layout, "hovermode": "closest", "height": 480})


TRACE_COLORS = {"db": "#2563eb", "app": "#0f766e", "outbound": "#d97706"}


def endpoint_time_split(endpoints: list[dict]) -> dict | None:
    """Where a request's time goes, per endpoint: mean ms in the database, the app and
    outbound calls as stacked horizontal bars (observe.traces.endpoints; the page's
    endpoint table carries the same figures as text). ``endpoints``: dicts with
    ``endpoint``, ``db_ms``, ``app_ms``, ``outbound_ms`` and the three labels' words
    in ``labels``."""
    if not endpoints:
        return None
    names = [e["endpoint"] for e in reversed(endpoints)]
    labels = endpoints[0]["labels"]
    traces = [
        {
            "type": "bar",
            "orientation": "h",
            "name": labels[part],
            "y": names,
            "x": [round(e[f"{part}_ms"], 3) for e in reversed(endpoints)],
            "marker": {"color": TRACE_COLORS[part]},
            "hovertemplate": f"%{{x:.3g}} ms<extra>{labels[part]}</extra>",
        }
        for part in ("db", "app", "outbound")
    ]
    return _plain_figure(
        traces,
        {
            "barmode": "stack",
            "hovermode": "closest",
            "height": 120 + 28 * len(names),
            "xaxis": {"title": {"text": "ms"}, "rangemode": "tozero"},
            "yaxis": {"automargin": True},
        },
    )


def trace_waterfall(rows: list[dict]) -> dict | None:
    """One request's spans as horizontal bars from their offset (observe.traces.waterfall),
    first span on top, indented by depth in its label; coloured by database, app or
    outbound. ``rows``: dicts with ``label``, ``offset_ms``, ``duration_ms``, ``category``
    and ``hover``."""
    if not rows:
        return None
    traces = []
    for category, color in TRACE_COLORS.items():
        mine = [r for r in rows if r["category"] == category]
        if not mine:
            continue
        traces.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": mine[0]["category_label"],
                "y": [r["key"] for r in mine],
                "base": [round(r["offset_ms"], 3) for r in mine],
                "x": [max(round(r["duration_ms"], 3), 0.001) for r in mine],
                "marker": {"color": color},
                "customdata": [r["hover"] for r in mine],
                "hovertemplate": "%{customdata}<br>+%{base:.3g} ms, %{x:.3g} ms<extra></extra>",
            }
        )
    order = [r["key"] for r in rows]
    return _plain_figure(
        traces,
        {
            "barmode": "overlay",
            "hovermode": "closest",
            "height": 120 + 22 * len(rows),
            "xaxis": {"title": {"text": "ms"}, "rangemode": "tozero"},
            "yaxis": {
                "categoryorder": "array",
                "categoryarray": list(reversed(order)),
                "tickvals": order,
                "ticktext": [r["label"] for r in rows],
                "automargin": True,
            },
        },
    )
