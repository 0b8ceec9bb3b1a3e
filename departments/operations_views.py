"""HR's quarterly operations review: incidents, MTTA and MTTR, alerts by target and
department, and the compliance register's changes in the quarter (incident response and
compliance are HR's)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from departments import compliance
from departments.models import Control
from optimizations.models import Incident
from optimizations.observe import metrics


@require_GET
def operations_review(request):
    """Everyone signed in reads it (like the compliance register); ?quarter=2026-Q4."""
    now = timezone.now()
    label = request.GET.get("quarter") or metrics.quarter_of(now).label
    try:
        span = metrics.parse_quarter(label)
    except ValueError:
        messages.error(request, _("%(label)s is not a quarter: write 2026-Q4.") % {"label": label})
        span = metrics.quarter_of(now)
    period = compliance.parse_period(span.label)
    previous = period.previous()
    months = [metrics.summary(metrics.month_of(span.start, -offset)) for offset in range(2, -1, -1)]
    context = {
        "nav_section": "compliance",
        "span": span,
        "quarter": metrics.summary(span),
        "months": months,
        "quarters": metrics.by_quarter(span.start, 4),
        "breakdown": metrics.breakdown(span),
        "without_postmortem": Incident.objects.filter(
            started_at__gte=span.start,
            started_at__lt=span.end,
            ended_at__isnull=False,
            postmortem__isnull=True,
        )
        .select_related("target")
        .order_by("started_at")[:50],
        # The compliance register's section: what changed since the previous quarter.
        "period": period,
        "previous": previous,
        "changes": compliance.changes(period),
        "recurrence": Control.QUARTERLY,
    }
    return render(request, "departments/operations_review.html", context)
