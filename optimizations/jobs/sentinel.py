"""The regression sentinel: scheduled re-runs of a finished initiative's benchmark set.

When an initiative is marked done, ``arm`` creates (or re-arms) a weekly
schedule on its target and remembers the run of the initiative's newest load
set as the reference. When the schedule is due, the beat
(``housekeeping.start_sentinel``) re-runs the reference's exact configuration
(the parameters of its set, duration included, as many runs as it had and at
least 5) as a benchmark set; when that run lands, ``check_after_run``
compares the two sets through the comparison rule, one value per run
(optimizations.jobs.baselines.compare_sets):

- a significant regression on any metric becomes a high-severity finding (one
  per initiative, upserted like any scan's), reopens the initiative and its
  phase 4, and its manager and the target's owners are told;
- "inconclusive" reaches the same people, with why (add runs, or what made
  the sets incomparable);
- "no change" and "improved" change nothing.

Every message goes through portal.notify.route.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from optimizations.analyzers import stats
from optimizations.analyzers.base import AnalysisResult, FindingData
from optimizations.jobs import baselines, cron, kinds
from optimizations.models import Finding, Initiative, Job, Phase, Run, Schedule
from optimizations.work import findings
from optimizations.work.actions import do_set_phase_status
from portal.audit import record
from portal.i18n import Phrase
from portal.models import Notification
from portal.notify import Joined, Text, in_language, route

logger = logging.getLogger(__name__)

# How the schedule reads on the schedules page; what it starts is a benchmark set.
MODE = "performance"
FOCUS = ["fastapi"]
CRON = "0 3 * * 1"  # weekly, Monday 03:00
RULE_ID = "benchmark.regression"
QA_PHASE = 4
SET_MODE = baselines.DEFAULT_MODE
# The two sets' roles as the sentinel's messages name them (in each reader's language).
REFERENCE = Phrase(gettext_noop("Reference"))
RERUN = Phrase(gettext_noop("Re-run"))
THE_SENTINELS = Phrase(gettext_noop("the sentinel's"))


def schedule_name(initiative: Initiative) -> str:
    return f"Regression sentinel: {initiative.title}"[:120]


def reference_set(initiative: Initiative) -> baselines.BenchmarkSet | None:
    """The set to guard: the initiative's newest load set (a set of 5 or more runs
    when there is one); else, when the initiative measured nothing, the target's."""
    for scope in (initiative, None):
        sets = baselines.sets_of(initiative.target, SET_MODE, scope)
        full = [s for s in sets if s.size >= stats.MIN_RUNS]
        chosen = (full or sets)[-1] if sets else None
        if chosen is not None:
            chosen.role, chosen.how = REFERENCE, THE_SENTINELS
            return chosen
    return None


def reference_run(initiative: Initiative) -> Run | None:
    found = reference_set(initiative)
    return Run.objects.get(pk=found.run_id) if found else None


def set_of_run(run_id: int) -> baselines.BenchmarkSet | None:
    """The load set of one run (the largest, should it hold several)."""
    sets = [
        s
        for s in baselines._group(baselines._rows(baselines._benchmarks().filter(run_id=run_id)))
        if s.mode == SET_MODE
    ]
    return max(sets, key=lambda s: s.size) if sets else None


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
    found = reference_set(initiative)
    if found is None:
        record(
            actor,
            "schedule.sentinel",
            initiative,
            Phrase(
                gettext_noop(
                    "no regression sentinel for “%(title)s”: %(target)s has no successful "
                    "benchmark to guard; run a performance analysis, then mark it done again"
                ),
                title=initiative.title,
                target=str(initiative.target),
            ),
            initiative=initiative,
            target=initiative.target,
        )
        return None
    reference = Run.objects.get(pk=found.run_id)
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
        armed = gettext_noop(
            "armed the regression sentinel of “%(title)s”: weekly benchmark set of %(target)s "
            "against run #%(run)s (%(set)s, re-run with the same parameters), first on %(first)s"
        )
    else:
        for name, value in fields.items():
            setattr(schedule, name, value)
        schedule.save()
        armed = gettext_noop(
            "re-armed the regression sentinel of “%(title)s”: weekly benchmark set of "
            "%(target)s against run #%(run)s (%(set)s, re-run with the same parameters), "
            "first on %(first)s"
        )
    record(
        actor,
        "schedule.sentinel",
        schedule,
        Phrase(
            armed,
            title=initiative.title,
            target=str(initiative.target),
            run=reference.pk,
            set=found.label,
            first=f"{timezone.localtime(schedule.next_run_at):%Y-%m-%d %H:%M}",
        ),
        changes={"sentinel_reference": [None, reference.pk], "cron": [None, CRON]},
        initiative=initiative,
        target=initiative.target,
    )
    return schedule


def check_after_run(run) -> None:
    """After a sentinel run lands: compare its set with the reference's; reopen the
    initiative on a significant regression, tell people when inconclusive. Idempotent
    for regressions (the finding remembers the run)."""
    schedule = (
        Schedule.objects.select_related("initiative__target", "sentinel_reference")
        .filter(pk=run.schedule_id, sentinel_reference__isnull=False)
        .first()
        if run.schedule_id
        else None
    )
    if schedule is None or schedule.initiative is None or schedule.sentinel_reference_id is None:
        return
    initiative = schedule.initiative
    before = set_of_run(schedule.sentinel_reference_id)
    after = set_of_run(run.pk)
    if before is None:
        _inconclusive(
            initiative,
            schedule,
            run,
            [
                f"the reference run #{schedule.sentinel_reference_id} has no {SET_MODE} benchmark "
                "left; mark the initiative done again to re-arm the sentinel"
            ],
        )
        return
    if after is None:
        _inconclusive(
            initiative,
            schedule,
            run,
            [f"run #{run.pk} measured no {SET_MODE} benchmark (its jobs failed or were cancelled)"],
        )
        return
    before.role, before.how = REFERENCE, THE_SENTINELS
    after.role = RERUN
    after.how = Phrase(
        gettext_noop("sentinel run of %(date)s"), date=str(timezone.localdate(run.created_at))
    )
    result = baselines.compare_sets(before, after)
    regressed = [m for m in result.metrics if m.c.verdict == stats.REGRESSED]
    if regressed:
        _regressed(initiative, schedule, before, after, regressed)
        return
    headline = result.headline
    if headline is None or headline.verdict == stats.INCONCLUSIVE:
        why = headline.reasons if headline else ["the runs' summaries have no p95 latency"]
        _inconclusive(initiative, schedule, run, why, before, after)
        return
    logger.info(
        "sentinel %s: %s against %s: %s; nothing changes",
        schedule.pk,
        after.label,
        before.label,
        headline.verdict,
    )


def _inconclusive(initiative, schedule, run, reasons, before=None, after=None) -> None:
    from django.urls import reverse

    sets = (
        Joined([" ", before.describe(), " · ", after.describe(), "."], separator="")
        if before and after
        else ""
    )
    logger.info("sentinel %s: run %s inconclusive: %s", schedule.pk, run.pk, "; ".join(reasons))
    url = reverse("run_detail", args=[run.pk])
    subject = Text(
        gettext_noop("Kaizen: the regression sentinel of “%(title)s” could not decide"),
        title=initiative.title,
    )
    # Each reader's inbox holds the subject in their language: any of them means reported.
    written = {in_language(subject, code)[:200] for code, _name in settings.LANGUAGES}
    if Notification.objects.filter(url=url, subject__in=written).exists():
        return  # this run was reported already (a run lands once; a re-check tells nobody twice)
    route(
        "sentinel.inconclusive",
        subject,
        Text(
            gettext_noop(
                "The weekly regression sentinel of “%(title)s” on %(target)s could not tell "
                "whether it regressed (run #%(pk)s).%(sets)s Why: %(reasons)s. Nothing was "
                "reopened; look at the runs, and add runs or re-arm the sentinel."
            ),
            title=initiative.title,
            target=initiative.target.name,
            pk=run.pk,
            sets=sets,
            reasons="; ".join(reasons),
        ),
        url,
        initiative=initiative,
    )


@transaction.atomic
def _regressed(initiative, schedule, before, after, regressed) -> None:
    worst = next((m for m in regressed if m.key == baselines.HEADLINE), regressed[0])
    c = worst.c
    data = FindingData(
        rule_id=RULE_ID,
        title=(
            f"{worst.label} regressed {c.estimate_text} since “{initiative.title}” was done "
            f"({c.median_baseline:.1f} → {c.median_candidate:.1f} {worst.unit})"
        ),
        severity="high",
        category="performance",
        location=f"run #{after.run_id} against run #{before.run_id}",
        key=f"initiative:{initiative.pk}",
        evidence={
            "initiative": initiative.pk,
            "metric": worst.key,
            "reference_run": before.run_id,
            "reference_jobs": before.job_ids,
            "run": after.run_id,
            "jobs": after.job_ids,
            "reference": before.describe(),
            "rerun": after.describe(),
            "median_before": c.median_baseline,
            "median_after": c.median_candidate,
            "values_before": worst.a,
            "values_after": worst.b,
            "estimate": c.estimate_text,
            "ratio": c.ratio,
            "interval": c.interval_text,
            "confidence": c.confidence,
            "p_value": c.p_value,
            "evidence": c.evidence,
            "regressed": [m.key for m in regressed],
            "reasons": c.reasons,
        },
        fix_hint=(
            "Compare the two sets (the compare page takes both runs' benchmarks), look at what "
            "changed in the service since the reference run, and fix it or re-baseline."
        ),
    )
    kind = kinds.get("benchmark")
    fingerprint = data.fingerprint(kind.source)
    last_job = after.jobs[-1].pk
    existing = Finding.objects.filter(
        target_id=initiative.target_id, fingerprint=fingerprint
    ).first()
    if existing is not None and existing.last_job_id == last_job:
        return  # this run was checked already
    job = after_job(last_job)
    findings.upsert(job, kind.source, AnalysisResult(findings=[data]), timezone.now())
    finding = Finding.objects.get(target_id=initiative.target_id, fingerprint=fingerprint)
    if finding.status in Finding.TRIAGED:
        logger.info("sentinel %s: regression finding %s was triaged", schedule.pk, finding.pk)
        return
    if initiative.status != Initiative.DONE:
        return  # reopened already: the finding is updated, nobody is told twice
    _reopen(initiative, finding, worst, before, after)


def after_job(pk: int):
    return Job.objects.select_related("target", "run").get(pk=pk)


def _reopen(initiative: Initiative, finding: Finding, worst, before, after) -> None:
    from django.urls import reverse

    initiative.status = Initiative.ACTIVE
    initiative.save(update_fields=["status", "updated_at"])
    phase = initiative.phases.filter(number=QA_PHASE).first()
    if phase is not None:
        do_set_phase_status(None, phase, Phase.ACTIVE)
    record(
        None,
        "initiative.reopen",
        initiative,
        Phrase(
            gettext_noop("the regression sentinel reopened “%(title)s”: %(finding)s"),
            title=initiative.title,
            finding=finding.title,
        ),
        changes={"status": [Initiative.DONE, Initiative.ACTIVE]},
        initiative=initiative,
        target=initiative.target,
    )
    c = worst.c
    route(
        "sentinel.regressed",
        Text(
            gettext_noop("Kaizen: %(target)s regressed; “%(title)s” is reopened"),
            target=initiative.target.name,
            title=initiative.title,
        ),
        Text(
            gettext_noop(
                "The weekly regression sentinel of “%(title)s” measured a significant "
                "regression on %(target)s: %(finding)s. %(measured)s The initiative and its "
                "quality-assurance phase are active again."
            ),
            title=initiative.title,
            target=initiative.target.name,
            finding=finding.title,
            # The comparison's own figures stay as the comparison rule writes them.
            measured=Joined(
                [
                    f"{worst.label} {c.estimate_text}, {c.confidence:.1%} interval "
                    f"{c.interval_text}, p = {c.p_value:.3g} ({c.n_baseline} and "
                    f"{c.n_candidate} runs). ",
                    before.describe(),
                    " · ",
                    after.describe(),
                    ".",
                ],
                separator="",
            ),
        ),
        reverse("finding_detail", args=[finding.pk]),
        initiative=initiative,
    )
