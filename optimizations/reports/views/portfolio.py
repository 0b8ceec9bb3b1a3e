"""The portfolio: every department and target at a glance, and what changed.

Everyone signed in reads it. The figures come from optimizations.reports.portfolio
(a bounded number of aggregate queries whatever the size of the data) and the
charts from optimizations.reports.charts.
"""

from __future__ import annotations

from django.core.cache import cache
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from optimizations.analyzers import stats
from optimizations.models import Initiative
from optimizations.observe import metrics
from optimizations.reports import charts, portfolio, sloboard
from portal import access
from portal.http import HtmxHttpRequest

RULE = {
    "min_runs": stats.MIN_RUNS,
    "margin": "×1.10",
    "rate_margin_pp": stats.RATE_MARGIN_PP,
}


@require_GET
def portfolio_page(request):
    context = {
        **overview(),
        "weeks": portfolio.FINDING_WEEKS,
        "fresh_seconds": portfolio.OVERVIEW_SECONDS,
        # portal.context_processors knows no "portfolio" section; the view's value wins.
        "nav_section": "portfolio",
    }
    return render(request, "optimizations/reports/portfolio.html", context)


def overview() -> dict:
    """The page's roll-ups, totals and charts, the same for everyone who reads them in
    one language.

    Reading them scans every finding twice, so they are kept in the cache for a
    minute at most, under the day and the change stamp (portfolio.change_stamp):
    a recorded change, a new finding or a job that ends computes them afresh. The
    page says when they were computed.
    """
    today = timezone.localdate()
    # Per language too: the charts' titles and legends are written in the reader's.
    stamp = portfolio.change_stamp()
    key = f"kaizen:portfolio:overview:{today}:{stamp}:{translation.get_language()}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    departments = portfolio.department_rollups(today)
    targets = portfolio.target_rollups()
    weekly = portfolio.findings_over_time()
    figures = charts.bundle(
        **{
            "portfolio-open-work": charts.open_work_by_department(departments),
            "portfolio-findings": charts.findings_over_time(weekly),
        }
    )
    totals = {
        "open_tasks": sum(row["open_tasks"] for row in departments),
        "overdue_tasks": sum(row["overdue_tasks"] for row in departments),
        "severe_findings": sum(
            row["findings"]["critical"] + row["findings"]["high"] for row in targets
        ),
        "active_initiatives": sum(
            1 for row in targets for i in row["initiatives"] if i.status == Initiative.ACTIVE
        ),
    }
    result = {
        "departments": departments,
        "targets": targets,
        "figures": figures,
        "totals": totals,
        "as_of": timezone.now(),
        # The page keeps its rendered targets' table under the same stamp.
        "stamp": key,
    }
    cache.set(key, result, portfolio.OVERVIEW_SECONDS)
    return result


@require_GET
@vary_on_headers("HX-Request")
def portfolio_incidents(request: HtmxHttpRequest) -> HttpResponse:
    """Incidents, MTTA and MTTR per month and quarter: a panel the portfolio page loads
    after it has shown everything else (its own query; a whole page opened directly)."""
    context = {"incidents": metrics.recent(), "incidents_only": True, "nav_section": "portfolio"}
    template = "optimizations/reports/portfolio.html"
    if request.htmx and not request.htmx.boosted:
        template += "#incidents_panel"
    return render(request, template, context)


@require_GET
@vary_on_headers("HX-Request")
def portfolio_changes(request: HtmxHttpRequest) -> HttpResponse:
    """Most improved and regressed targets: the comparison rule on many pairs of
    benchmarks costs a second or more the first time (then it is cached), so the
    portfolio page loads this panel after it has shown everything else."""
    context = {
        "changes": portfolio.benchmark_changes(),
        "rule": RULE,
        "limit": portfolio.MAX_COMPARED_TARGETS,
        "changes_only": True,
        "nav_section": "portfolio",
    }
    template = "optimizations/reports/portfolio.html"
    if request.htmx and not request.htmx.boosted:
        template += "#changes_panel"
    return render(request, template, context)


@require_GET
@vary_on_headers("HX-Request")
def initiative_burndown(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """An initiative's burn-down: a fragment for HTMX, a small page otherwise."""
    initiative = access.get_initiative_for_user(request, pk)
    figure = charts.phase_burndown(initiative, portfolio.burndown_tasks(initiative))
    context = {
        "initiative": initiative,
        "burndown": charts.to_json(figure) if figure is not None else None,
        "burndown_only": True,
    }
    template = "optimizations/reports/portfolio.html"
    if request.htmx and not request.htmx.boosted:
        template += "#burndown"
    return render(request, template, context)


@require_GET
@vary_on_headers("HX-Request")
def target_slo_counts(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """How many of a target's SLOs pass, fail or are unknown: a portfolio row's cell.

    The SLO board reads a few queries per target, so the portfolio page asks for
    each row's counts when the row scrolls into view instead of for all at once.
    """
    target = access.get_target_for_user(request, slug)
    if not request.htmx:  # opened directly: the target's whole SLO board
        return redirect("target_slo", target.slug)
    tally = sloboard.counts(sloboard.board(target))
    return render(
        request,
        "optimizations/reports/portfolio.html#slo_counts",
        {"target": target, "tally": tally},
    )
