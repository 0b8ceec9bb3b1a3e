"""Five-field cron expressions (minute hour day-of-month month day-of-week)."""

from __future__ import annotations

import datetime

# Day of week takes 0–7: both 0 and 7 are Sunday.
FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)


def _field(text: str, name: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"{name}: bad step {step_text!r}")
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            first, last = part.split("-", 1)
            if not (first.isdigit() and last.isdigit()):
                raise ValueError(f"{name}: bad range {part!r}")
            start, end = int(first), int(last)
        elif part.isdigit():
            start = end = int(part)
            if step != 1:
                end = high
        else:
            raise ValueError(f"{name}: {part!r} is not a number, range or *")
        if not (low <= start <= high and low <= end <= high and start <= end):
            raise ValueError(f"{name}: {part!r} is outside {low}–{high}")
        values.update(range(start, end + 1, step))
    if name == "day of week" and 7 in values:
        values.discard(7)
        values.add(0)
    return values


def parse(expression: str) -> tuple[set[int], ...]:
    parts = expression.split()
    if len(parts) != 5:
        raise ValueError("a cron expression has five fields: minute hour day month weekday")
    return tuple(_field(text, *spec) for text, spec in zip(parts, FIELDS, strict=True))


def next_after(expression: str, after: datetime.datetime) -> datetime.datetime:
    """The first time strictly after ``after`` that matches (in after's time zone)."""
    minutes, hours, days, months, weekdays = parse(expression)
    dom_any = expression.split()[2] == "*"
    dow_any = expression.split()[4] == "*"
    start = (after + datetime.timedelta(minutes=1)).replace(second=0, microsecond=0)
    day = start.date()
    for _ in range(366 * 5):
        weekday = (day.weekday() + 1) % 7  # cron: 0 = Sunday
        if dom_any or dow_any:
            day_ok = (dom_any or day.day in days) and (dow_any or weekday in weekdays)
        else:  # both restricted: cron matches either
            day_ok = day.day in days or weekday in weekdays
        if day.month in months and day_ok:
            for hour in sorted(hours):
                for minute in sorted(minutes):
                    candidate = datetime.datetime.combine(
                        day, datetime.time(hour, minute), tzinfo=after.tzinfo
                    )
                    if candidate >= start:
                        return candidate
        day += datetime.timedelta(days=1)
    raise ValueError(f"{expression!r} never matches")


def describe(expression: str) -> str:
    """A few common shapes in words; the expression itself otherwise."""
    known = {
        "0 2 1 * *": "monthly, on the 1st at 02:00",
        "0 3 1 1,4,7,10 *": "quarterly, on the 1st at 03:00",
        "0 4 2 1 *": "yearly, on 2 January at 04:00",
    }
    return known.get(expression.strip(), expression)
