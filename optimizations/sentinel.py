"""The regression sentinel: scheduled re-runs of a finished initiative's benchmark.

When an initiative is marked done, ``arm`` creates (or re-arms) a weekly
schedule on its target that runs a performance code scan and load test
(``performance --focus fastapi``) and remembers the initiative's last run with
a benchmark as the reference. When a run of that schedule lands,
``check_after_run`` compares its benchmark with the reference's through the
comparison rule on the per-second p95 (optimizations.portfolio.compare_jobs).
A significant regression beyond noise becomes a high-severity finding (one per
initiative, upserted like any scan's), reopens the initiative and its phase 4,
and the owning department's managers hear of it. Anything else changes nothing.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from optimizations import cron
from optimizations.models import Finding, Initiative, Job, Phase, Run, Schedule

logger = logging.getLogger(__name__)

MODE = "performance"
FOCUS = ["fastapi"]
CRON = "0 3 * * 1"  # weekly, Monday 03:00
RULE_ID = "benchmark.regression"
QA_PHASE = 4


def schedule_name(initiative: Initiative) -> str:
    return f"Regression sentinel: {initiative.title}"[:120]


def reference_run(initiative: Initiative) -> Run | None:
    """The run to guard: the initiative's last run with a succeeded benchmark (a load
    test when there is one, since the sentinel runs a load test); else, when the
    initiative's runs measured nothing, the target's."""
    benchmarks = Job.objects.filter(kind="benchmark", status=Job.SUCCEEDED)
    newest = [F("finished_at").desc(nulls_last=True), F("pk").desc()]
    for jobs in (
        benchmarks.filter(run__initiative=initiative),
        benchmarks.filter(target=initiative.target_id, run__compared_with__isnull=True),
    ):
        job = (
            jobs.filter(params__mode="load").order_by(*newest).select_related("run").first()
            or jobs.order_by(*newest).select_related("run").first()
        )
        if job is not None:
            return job.run
    return None


def reference_job(run: Run) -> Job | None:
    """The benchmark of ``run`` to compare with: its load test, else any benchmark."""
    jobs = run.jobs.filter(kind="benchmark", status=Job.SUCCEEDED).order_by("pk")
    return jobs.filter(params__mode="load").first() or jobs.first()


def sentinel_of(initiative: Initiative) -> Schedule | None:
    return (
        Schedule.objects.filter(initiative=initiative, sentinel_reference__isnull=False)
        .order_by("pk")
        .first()
    )


@transaction.atomic
def arm(actor, initiative: Initiative) -> Schedule | None:
    """Start guarding a finished initiative: create or re-arm its sentinel schedule.

    Returns None (and records why) when nothing was ever benchmarked, since
    there is nothing to compare with.
    """
    from portal.audit import record

    reference = reference_run(initiative)
    if reference is None:
        record(
            actor,
            "schedule.sentinel",
            initiative,
            f"no regression sentinel for “{initiative.title}”: {initiative.target} has no "
            "successful benchmark to guard; run a performance analysis, then mark it done again",
            initiative=initiative,
            target=initiative.target,
        )
        return None
    now = timezone.localtime()
    fields = {
        "name": schedule_name(initiative),
        "mode": MODE,
        "focus": list(FOCUS),
        "cron": CRON,
        "enabled": True,
        "sentinel_reference": reference,
        "next_run_at": cron.next_after(CRON, now),
    }
    schedule = sentinel_of(initiative)
    if schedule is None:
        schedule = Schedule.objects.create(
            target=initiative.target,
            initiative=initiative,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            **fields,
        )
        verb = "armed"
    else:
        for name, value in fields.items():
            setattr(schedule, name, value)
        schedule.save()
        verb = "re-armed"
    record(
        actor,
        "schedule.sentinel",
        schedule,
        f"{verb} the regression sentinel of “{initiative.title}”: weekly benchmark of "
        f"{initiative.target} against run #{reference.pk}, first on "
        f"{timezone.localtime(schedule.next_run_at):%Y-%m-%d %H:%M}",
        changes={"sentinel_reference": [None, reference.pk], "cron": [None, CRON]},
        initiative=initiative,
        target=initiative.target,
    )
    return schedule


def check_after_run(run) -> None:
    """After a sentinel run lands: compare its benchmark with the reference's and
    reopen the initiative on a significant regression. Idempotent."""
    from optimizations import portfolio

    schedule = (
        Schedule.objects.select_related("initiative__target", "sentinel_reference")
        .filter(pk=run.schedule_id, sentinel_reference__isnull=False)
        .first()
        if run.schedule_id
        else None
    )
    if schedule is None or schedule.initiative is None:
        return
    initiative = schedule.initiative
    after = reference_job(run)
    before = reference_job(schedule.sentinel_reference)
    if after is None or before is None:
        logger.info(
            "sentinel %s: run %s has %s benchmark to compare; nothing changes",
            schedule.pk,
            run.pk,
            "no" if after is None else "a reference without a",
        )
        return
    samples = portfolio.benchmark_samples([before.pk, after.pk])
    comparison = portfolio.compare_jobs(before, after, samples)
    if comparison is None or comparison.verdict != "regressed":
        logger.info(
            "sentinel %s: run %s against run %s: %s; nothing changes",
            schedule.pk,
            run.pk,
            schedule.sentinel_reference_id,
            comparison.verdict if comparison else "too few seconds with answers",
        )
        return
    _regressed(initiative, schedule, before, after, comparison)


@transaction.atomic
def _regressed(initiative, schedule, before: Job, after: Job, comparison) -> None:
    from optimizations import kinds, portfolio, runner
    from optimizations.analyzers.base import AnalysisResult, FindingData

    data = FindingData(
        rule_id=RULE_ID,
        title=(
            f"p95 latency regressed {comparison.change:+.0%} since “{initiative.title}” was done "
            f"({comparison.median_baseline:.1f} → {comparison.median_candidate:.1f} ms)"
        ),
        severity="high",
        category="performance",
        location=f"run #{after.run_id} against run #{before.run_id}",
        key=f"initiative:{initiative.pk}",
        evidence={
            "initiative": initiative.pk,
            "metric": portfolio.SAMPLE_METRIC,
            "reference_run": before.run_id,
            "reference_job": before.pk,
            "run": after.run_id,
            "job": after.pk,
            "median_before_ms": comparison.median_baseline,
            "median_after_ms": comparison.median_candidate,
            "ci_before_ms": list(comparison.ci_baseline),
            "ci_after_ms": list(comparison.ci_candidate),
            "change": comparison.change,
            "change_ci": list(comparison.change_ci),
            "p_value": comparison.p_value,
            "threshold": comparison.threshold,
            "seconds": [comparison.n_baseline, comparison.n_candidate],
            "reasons": comparison.reasons,
        },
        fix_hint=(
            "Compare the two runs' benchmarks (the compare page shows both), look at what "
            "changed in the service since the reference run, and fix it or re-baseline."
        ),
    )
    kind = kinds.get("benchmark")
    fingerprint = data.fingerprint(kind.source)
    existing = Finding.objects.filter(target_id=after.target_id, fingerprint=fingerprint).first()
    if existing is not None and existing.last_job_id == after.pk:
        return  # this run was checked already
    runner._upsert_findings(after, kind, AnalysisResult(findings=[data]), timezone.now())
    finding = Finding.objects.get(target_id=after.target_id, fingerprint=fingerprint)
    if finding.status in Finding.TRIAGED:
        logger.info("sentinel %s: regression finding %s was triaged", schedule.pk, finding.pk)
        return
    if initiative.status != Initiative.DONE:
        return  # reopened already: the finding is updated, nobody is told twice
    _reopen(initiative, finding, comparison)


def _reopen(initiative: Initiative, finding: Finding, comparison) -> None:
    from django.urls import reverse

    from departments.models import Membership
    from optimizations.actions import do_set_phase_status
    from portal.audit import record
    from portal.notify import notify

    initiative.status = Initiative.ACTIVE
    initiative.save(update_fields=["status", "updated_at"])
    phase = initiative.phases.filter(number=QA_PHASE).first()
    if phase is not None:
        do_set_phase_status(None, phase, Phase.ACTIVE)
    record(
        None,
        "initiative.reopen",
        initiative,
        f"the regression sentinel reopened “{initiative.title}”: {finding.title}",
        changes={"status": [Initiative.DONE, Initiative.ACTIVE]},
        initiative=initiative,
        target=initiative.target,
    )
    target = initiative.target
    managers = [
        membership.user
        for membership in Membership.objects.filter(
            department_id=target.owner_department_id, role=Membership.MANAGER
        ).select_related("user")
    ]
    notify(
        [*managers, initiative.owner],
        f"Kaizen: {target.name} regressed; “{initiative.title}” is reopened",
        (
            f"The weekly regression sentinel of “{initiative.title}” measured a significant "
            f"regression on {target.name}: {finding.title}. Change {comparison.change:+.1%} "
            f"[{comparison.change_ci[0]:+.1%}, {comparison.change_ci[1]:+.1%}], "
            f"Mann–Whitney U p = {comparison.p_value:.3g}, noise threshold "
            f"±{comparison.threshold:.1%}. The initiative and its quality-assurance phase "
            "are active again."
        ),
        reverse("finding_detail", args=[finding.pk]),
    )
