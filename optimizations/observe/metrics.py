"""Incident counts, MTTA and MTTR per calendar month and quarter, and alerts by target
and department — what the portfolio and HR's quarterly operations review show.

An incident belongs to the period it started in. MTTA (mean time to acknowledge) is the
mean of acknowledged − started over those acknowledged; MTTR (mean time to resolve) the
mean of ended − started over those resolved. Incidents not acknowledged (or not
resolved) yet are counted but not in the means; the page says how many.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.utils import timezone

from optimizations.models import Incident


@dataclass(frozen=True)
class Span:
    """A calendar month or quarter in the server's time zone: [start, end)."""

    label: str
    start: datetime.datetime
    end: datetime.datetime


def _first(year: int, month: int) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime(year, month, 1))


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + month - 1 + months
    return index // 12, index % 12 + 1


def month_of(moment: datetime.datetime, back: int = 0) -> Span:
    local = timezone.localtime(moment)
    year, month = _add_months(local.year, local.month, -back)
    end_year, end_month = _add_months(year, month, 1)
    return Span(f"{year}-{month:02d}", _first(year, month), _first(end_year, end_month))


def quarter_of(moment: datetime.datetime, back: int = 0) -> Span:
    local = timezone.localtime(moment)
    year, month = _add_months(local.year, (local.month - 1) // 3 * 3 + 1, -3 * back)
    end_year, end_month = _add_months(year, month, 3)
    return Span(f"{year}-Q{(month - 1) // 3 + 1}", _first(year, month), _first(end_year, end_month))


def parse_quarter(label: str) -> Span:
    """ "2026-Q4" → that quarter; ValueError otherwise."""
    year, _, quarter = label.partition("-Q")
    number = int(quarter)
    if not 1 <= number <= 4:
        raise ValueError(f"no quarter {label!r}")
    return quarter_of(_first(int(year), 3 * number - 2))


def _mean_minutes(spans: list[datetime.timedelta]) -> float | None:
    if not spans:
        return None
    return round(sum(span.total_seconds() for span in spans) / len(spans) / 60, 1)


def _rows(span: Span, **filters):
    return Incident.objects.filter(
        started_at__gte=span.start, started_at__lt=span.end, **filters
    ).values_list("started_at", "acknowledged_at", "ended_at")


def summary(span: Span, **filters) -> dict:
    """{period, incidents, acknowledged, resolved, mtta_minutes, mttr_minutes} for ``span``
    (``filters`` narrow the incidents, e.g. target=…)."""
    return _summarise(span.label, list(_rows(span, **filters)))


def _summarise(label: str, rows) -> dict:
    to_ack = [ack - started for started, ack, _end in rows if ack is not None]
    to_resolve = [end - started for started, _ack, end in rows if end is not None]
    return {
        "period": label,
        "incidents": len(rows),
        "acknowledged": len(to_ack),
        "resolved": len(to_resolve),
        "mtta_minutes": _mean_minutes(to_ack),
        "mttr_minutes": _mean_minutes(to_resolve),
    }


def recent(now=None, months: int = 6, quarters: int = 4) -> dict[str, list[dict]]:
    """{"months": the last ``months`` months, "quarters": the last ``quarters`` quarters},
    newest first, from one query (the portfolio's incident panel)."""
    now = now or timezone.now()
    month_spans = [month_of(now, back) for back in range(months)]
    quarter_spans = [quarter_of(now, back) for back in range(quarters)]
    earliest = min(span.start for span in month_spans + quarter_spans)
    rows = list(
        Incident.objects.filter(started_at__gte=earliest).values_list(
            "started_at", "acknowledged_at", "ended_at"
        )
    )

    def within(span: Span) -> list:
        return [row for row in rows if span.start <= row[0] < span.end]

    return {
        "months": [_summarise(span.label, within(span)) for span in month_spans],
        "quarters": [_summarise(span.label, within(span)) for span in quarter_spans],
    }


def by_month(now=None, months: int = 6, **filters) -> list[dict]:
    now = now or timezone.now()
    return [summary(month_of(now, back), **filters) for back in range(months)]


def by_quarter(now=None, quarters: int = 4, **filters) -> list[dict]:
    now = now or timezone.now()
    return [summary(quarter_of(now, back), **filters) for back in range(quarters)]


def breakdown(span: Span) -> dict[str, list[dict]]:
    """Incidents of ``span`` by target and by department (with their MTTA and MTTR), and
    by the source of the alert that opened them."""
    rows = list(
        Incident.objects.filter(started_at__gte=span.start, started_at__lt=span.end).values_list(
            "target__slug",
            "target__name",
            "target__owner_department__name",
            "source",
            "started_at",
            "acknowledged_at",
            "ended_at",
        )
    )
    groups: dict[str, dict[tuple, list]] = {"target": {}, "department": {}, "source": {}}
    for slug, name, department, source, started, ack, end in rows:
        for group, key in (
            ("target", (slug, name)),
            ("department", (department, department)),
            ("source", (source, source)),
        ):
            groups[group].setdefault(key, []).append((started, ack, end))
    result = {}
    for group, entries in groups.items():
        result[group] = sorted(
            (
                {
                    "key": key,
                    "label": label,
                    "incidents": len(found),
                    "mtta_minutes": _mean_minutes([a - s for s, a, _e in found if a]),
                    "mttr_minutes": _mean_minutes([e - s for s, _a, e in found if e]),
                }
                for (key, label), found in entries.items()
            ),
            key=lambda row: (-row["incidents"], row["label"]),
        )
    return result
