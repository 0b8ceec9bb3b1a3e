"""The printable initiative report: where it stands, what it proved, what it cost."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

from django.db.models import Count, Sum
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from departments.models import Department
from optimizations.models import Finding, GateSignoff, PhaseTask, Run
from optimizations.reports import charts, portfolio, roi, sloboard
from optimizations.work import gates, routing
from optimizations.work.plan import progress_percent, with_progress
from portal import access


@require_GET
def initiative_report(request, pk):
    initiative = access.get_initiative_for_user(request, pk)
    target = initiative.target
    phases = list(
        with_progress(initiative.phases.select_related("lead_department")).order_by("number")
    )
    signoffs = defaultdict(list)
    for signoff in GateSignoff.objects.filter(phase__initiative=initiative).select_related(
        "signed_by"
    ):
        signoffs[signoff.phase_id].append(signoff)
    for phase in phases:
        phase.progress = progress_percent(phase.total_weight, phase.done_weight, phase.status)
        phase.checks = gates.evaluate(phase)
        phase.complete = gates.passes(phase.checks)
        phase.signoff_list = signoffs[phase.pk]
    departments = {d.pk: d for d in Department.objects.all()}
    work = []
    for row in (
        PhaseTask.objects.filter(phase__initiative=initiative)
        .values("department_id", "status")
        .annotate(n=Count("pk"), logged=Sum("logged_hours"), estimate=Sum("estimate_hours"))
    ):
        work.append(row)
    by_department = {}
    for row in work:
        entry = by_department.setdefault(
            row["department_id"],
            {
                "department": departments[row["department_id"]],
                "open": 0,
                "done": 0,
                "logged": Decimal(0),
                "estimate": Decimal(0),
            },
        )
        entry["done" if row["status"] == PhaseTask.DONE else "open"] += row["n"]
        entry["logged"] += row["logged"] or 0
        entry["estimate"] += row["estimate"] or 0
    finding_tasks = list(
        PhaseTask.objects.filter(phase__initiative=initiative, finding__isnull=False)
        .select_related("phase", "department", "finding", "assignee")
        .order_by("phase__number", "status", "pk")
    )
    open_findings = Counter()
    for owner, severity, n in (
        Finding.objects.filter(target=target, status=Finding.OPEN)
        .annotate(owner=routing.department_case())
        .values_list("owner", "severity")
        .annotate(n=Count("pk"))
    ):
        open_findings[(owner, severity)] += n
    codes = {d.code: d for d in departments.values()}
    findings_table = [
        (codes[code], [open_findings[(code, severity)] for severity, _ in Finding.SEVERITIES])
        for code in sorted(codes)
    ]
    board_data = sloboard.load(target)
    slo_rows = sloboard.board(target, data=board_data)
    runs = list(
        Run.objects.filter(target=target, created_at__date__gte=initiative.start_date)
        .select_related("triggered_by")
        .order_by("-created_at", "-pk")[:20]
    )
    figures = charts.bundle(
        **{
            "report-burndown": charts.phase_burndown(
                initiative, portfolio.burndown_tasks(initiative)
            ),
            "report-runs": charts.target_runs(sloboard.run_points(board_data)),
        }
    )
    context = {
        "initiative": initiative,
        "target": target,
        "phases": phases,
        "work": sorted(by_department.values(), key=lambda e: e["department"].code),
        "finding_tasks": finding_tasks,
        "findings_table": findings_table,
        "severities": Finding.SEVERITIES,
        "slo_rows": slo_rows,
        "slo_tally": sloboard.counts(slo_rows),
        "roi": roi.compute(initiative),
        "runs": runs,
        "figures": figures,
        "generated_at": timezone.now(),
    }
    return render(request, "optimizations/reports/initiative_report.html", context)
