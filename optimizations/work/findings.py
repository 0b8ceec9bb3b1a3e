"""Findings have one owner: every change of a finding's status goes through here.

- A scan's result is recorded by :func:`record_result`: findings upserted by
  fingerprint (one that comes back reopens), and open ones whose check ran
  again and did not report them become **fixed** — only then, and only for a
  check that really ran (an "unknown" check fixes nothing). The runner, the
  regression sentinel and HR's runbook coverage (:func:`fix_by_check`,
  :func:`reopen`) all come here.
- A person may set accepted risk, won't fix or false positive, each with a
  reason, or open a finding again (:func:`set_status`); never "fixed" (only a
  re-scan is evidence of that) and never "suppressed" (only the code's comment).
- One query API for lists, exports, the JSON API and the initiative's work
  board: :func:`filters_from` and :func:`query` (filters in :data:`FILTERS`).
"""

from __future__ import annotations

import datetime

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from optimizations.analyzers.base import CATEGORIES, CHECK_UNKNOWN, AnalysisResult
from optimizations.models import Finding, Job, PhaseTask
from optimizations.work import routing
from portal.audit import record
from portal.i18n import Phrase

# What a person may set by hand, and which of those need a reason.
HAND_SETTABLE = (Finding.OPEN, Finding.ACCEPTED, Finding.WONT_FIX, Finding.FALSE_POSITIVE)
HAND_CHOICES = [(value, label) for value, label in Finding.STATUSES if value in HAND_SETTABLE]
NEEDS_REASON = (Finding.ACCEPTED, Finding.WONT_FIX, Finding.FALSE_POSITIVE)


class NotSettable(ValueError):
    """A status a person may not set, or one set without its reason."""


# --- the one query API ------------------------------------------------------------
# The findings list, the initiative's work board, their CSV/JSON exports and the JSON
# API all read findings through ``query``: one meaning for each filter everywhere.

# source: the kind of analysis that reported it (code, db, security, benchmark…);
# category: what it is about; rule: rule ids starting with this (case-insensitive);
# q: text in the title or location; since: first seen on or after this day (YYYY-MM-DD).
FILTERS = ("source", "severity", "category", "status", "rule", "q", "since")
# The work board's own: the owning department, the assignee ("none": nobody) and
# whether the finding is a task of the initiative ("yes" / "no").
BOARD_FILTERS = (*FILTERS, "department", "assignee", "task")
CATEGORY_CHOICES = [(name, name.capitalize()) for name in CATEGORIES]


class BadFilter(ValueError):
    """A filter value the query cannot read (the message names it)."""


def filters_from(params, keys=FILTERS) -> dict[str, str]:
    """The filters from a query string (or any mapping); no ``status`` means open ones."""
    filters = {key: (params.get(key) or "").strip() for key in keys}
    if "status" not in params:
        filters["status"] = Finding.OPEN
    return filters


def query(filters: dict[str, str], *, target=None, initiative=None):
    """The findings of ``target`` (or of ``initiative``'s target, with the work board's
    filters and each finding's owning department as ``owner``) that match ``filters``.
    Unordered: lists and exports add ``.by_severity()``. Raises BadFilter."""
    findings: QuerySet[Finding]
    if initiative is not None:
        findings = Finding.objects.filter(target_id=initiative.target_id).annotate(
            owner=routing.department_case()
        )
    elif target is not None:
        findings = Finding.objects.filter(target=target)
    else:
        findings = Finding.objects.all()
    findings = filter_findings(findings, filters)
    if initiative is not None:
        findings = _board(findings, initiative, filters)
    return findings


def filter_findings(findings, filters: dict[str, str]):
    """Narrow a Finding queryset by source, severity, category, status, rule prefix, text
    and first-seen day. Raises BadFilter."""
    for key in ("source", "severity", "category", "status"):
        if filters.get(key):
            findings = findings.filter(**{key: filters[key]})
    if filters.get("rule"):
        findings = findings.filter(rule_id__istartswith=filters["rule"])
    if filters.get("q"):
        findings = findings.filter(
            Q(title__icontains=filters["q"]) | Q(location__icontains=filters["q"])
        )
    if filters.get("since"):
        try:
            since = datetime.date.fromisoformat(filters["since"])
        except ValueError:
            raise BadFilter(
                f"since: “{filters['since']}” is not a day (write it as YYYY-MM-DD)"
            ) from None
        findings = findings.filter(first_seen_at__date__gte=since)
    return findings


def _board(findings, initiative, filters: dict[str, str]):
    if filters.get("department"):
        findings = findings.filter(owner=filters["department"])
    assignee = filters.get("assignee", "")
    if assignee == "none":
        findings = findings.filter(assignee__isnull=True)
    elif assignee.isdigit():
        findings = findings.filter(assignee_id=int(assignee))
    if filters.get("task") == "yes":
        findings = findings.filter(tasks__phase__initiative=initiative).distinct()
    elif filters.get("task") == "no":
        findings = findings.exclude(
            pk__in=PhaseTask.objects.filter(
                phase__initiative=initiative, finding__isnull=False
            ).values("finding_id")
        )
    return findings


# --- what people may do -----------------------------------------------------------


def check_settable(status: str, reason: str) -> None:
    """Raise NotSettable unless a person may set ``status`` with this ``reason``."""
    if status == Finding.FIXED:
        raise NotSettable(
            gettext(
                "Only a re-scan marks a finding fixed: run the check that found it again "
                "(the finding is fixed when that check runs and no longer reports it)."
            )
        )
    if status not in HAND_SETTABLE:
        raise NotSettable(
            gettext("A finding cannot be set to “%(status)s” by hand.") % {"status": status}
        )
    if status in NEEDS_REASON and not (reason or "").strip():
        raise NotSettable(
            gettext("Say why the finding is “%(status)s”: a reason is required.")
            % {"status": STATUS_WORDS[status].shown()}
        )


# A finding's status inside a sentence ("marked FSA101 … accepted").
STATUS_WORDS = {
    Finding.OPEN: Phrase(gettext_noop("open")),
    Finding.ACCEPTED: Phrase(gettext_noop("accepted")),
    Finding.FIXED: Phrase(gettext_noop("fixed")),
    Finding.WONT_FIX: Phrase(gettext_noop("won't fix")),
    Finding.FALSE_POSITIVE: Phrase(gettext_noop("false positive")),
    Finding.SUPPRESSED: Phrase(gettext_noop("suppressed in code")),
}


@transaction.atomic
def set_status(actor, findings, status: str, reason: str) -> int:
    """A person triages findings (one reason for all); audited. Returns how many changed.

    Fixed and suppressed findings are the scans' to change, not a person's: they
    are left as they are (a fixed one reopens when its check reports it again).
    """
    check_settable(status, reason)
    reason = (reason or "").strip()
    chosen = [
        f
        for f in findings
        if f.status not in (Finding.FIXED, Finding.SUPPRESSED)
        and (f.status != status or f.status_reason != reason)
    ]
    if not chosen:
        return 0
    Finding.objects.filter(pk__in=[f.pk for f in chosen]).update(
        status=status, status_reason=reason, status_changed_by=actor
    )
    for finding in chosen:
        values = {"rule": finding.rule_id, "title": finding.title, "status": STATUS_WORDS[status]}
        record(
            actor,
            "finding.status",
            finding,
            Phrase(
                gettext_noop("marked %(rule)s “%(title)s” %(status)s: %(reason)s"),
                **values,
                reason=reason,
            )
            if reason
            else Phrase(gettext_noop("marked %(rule)s “%(title)s” %(status)s"), **values),
            changes={"status": [finding.status, status]},
            target=finding.target,
        )
        finding.status, finding.status_reason, finding.status_changed_by = status, reason, actor
    return len(chosen)


# --- what checks do -------------------------------------------------------------


def fix_by_check(findings, reason: str, *, job: Job | None = None, now=None) -> int:
    """Open (or suppressed) findings a check ran again and did not see: fixed, with why."""
    ids = [f.pk for f in findings if f.status in (Finding.OPEN, Finding.SUPPRESSED)]
    if not ids:
        return 0
    return Finding.objects.filter(pk__in=ids, status__in=(Finding.OPEN, Finding.SUPPRESSED)).update(
        status=Finding.FIXED,
        fixed_at=now or timezone.now(),
        fixed_in_job=job,
        status_reason=reason[:2000],
        status_changed_by=None,
    )


def reopen(finding: Finding, reason: str, *, now=None) -> bool:
    """A fixed finding its check reports again is open again (a person's triage stands)."""
    if finding.status != Finding.FIXED:
        return False
    finding.status, finding.fixed_at, finding.fixed_in_job = Finding.OPEN, None, None
    finding.status_reason = reason[:2000]
    if now is not None:
        finding.last_seen_at = now
    return True


def check_of(rule_id: str, evidence: dict) -> str:
    """The check a finding belongs to: named in its evidence, else its rule id."""
    return str(evidence.get("check") or rule_id)


def record_result(job: Job, source: str, result: AnalysisResult, now) -> tuple[set[str], int]:
    """A job's findings stored: (fingerprints reported, how many it fixed)."""
    reported = upsert(job, source, result, now)
    return reported, fix_vanished(job, source, result, reported, now)


def upsert(
    job: Job | None, source: str, result: AnalysisResult, now, *, target_id: int | None = None
) -> set[str]:
    """Findings upserted by fingerprint; a fixed one reported again reopens.

    Without a job (what a target's own telemetry showed, e.g. a runtime N+1 in its
    traces) ``target_id`` names the target and no job is recorded on the findings.
    """
    if job is not None:
        target_id = job.target_id
    if target_id is None:
        raise ValueError("findings need the job that reported them, or their target")
    came_back = f"It came back in job #{job.pk}." if job else f"It came back in the {source}s."
    by_print = {f.fingerprint(source): f for f in result.findings}
    existing = {
        f.fingerprint: f
        for f in Finding.objects.filter(target_id=target_id, fingerprint__in=list(by_print))
    }
    new, changed = [], []
    for fingerprint, data in by_print.items():
        fields = {
            "source": source,
            "rule_id": data.rule_id[:60],
            "severity": data.severity,
            "category": data.category,
            "title": data.title[:300],
            "location": data.location[:500],
            "evidence": data.evidence,
            "fix_hint": data.fix_hint,
            "doc_url": data.doc_url[:500],
        }
        finding = existing.get(fingerprint)
        suppressed = (data.evidence or {}).get("suppressed")
        if finding is None:
            finding = Finding(
                target_id=target_id,
                fingerprint=fingerprint,
                first_seen_at=now,
                last_seen_at=now,
                first_job=job,
                last_job=job,
                **fields,
            )
            _apply_suppression(finding, suppressed, job)
            new.append(finding)
            continue
        for name, value in fields.items():
            setattr(finding, name, value)
        finding.last_seen_at = now
        if job is not None:
            finding.last_job = job
        finding.times_seen += 1
        reopen(finding, came_back)
        _apply_suppression(finding, suppressed, job)
        changed.append(finding)
    Finding.objects.bulk_create(new)
    Finding.objects.bulk_update(
        changed,
        [
            *("source", "rule_id", "severity", "category", "title", "location", "evidence"),
            *("fix_hint", "doc_url", "last_seen_at", "last_job", "times_seen", "status"),
            *("fixed_at", "fixed_in_job", "status_reason"),
        ],
    )
    return set(by_print)


def _apply_suppression(finding: Finding, suppressed: dict | None, job: Job | None) -> None:
    """A `# kaizen: ignore[...] -- reason` in the code makes an open finding suppressed (shown
    so, with the reason; never fixed); the comment gone, it is open again. A person's triage
    (accepted, won't fix, false positive) stands either way."""
    if finding.status in Finding.TRIAGED:
        return
    if suppressed:
        reason = f"Suppressed in code: {suppressed.get('reason', '')}"
        if finding.status != Finding.SUPPRESSED or finding.status_reason != reason:
            finding.status, finding.status_reason, finding.fixed_at = (
                Finding.SUPPRESSED,
                reason,
                None,
            )
    elif finding.status == Finding.SUPPRESSED:
        finding.status = Finding.OPEN
        where = f"job #{job.pk}" if job else "the latest report"
        finding.status_reason = f"Its suppression comment was gone in {where}."


def fix_vanished(job: Job, source: str, result: AnalysisResult, reported: set[str], now) -> int:
    """Open findings whose check ran again and did not report them are fixed.

    A check that could not run ("unknown") fixes nothing: its findings stay open.
    """
    ran = {c.check_id for c in result.checks if c.status != CHECK_UNKNOWN}
    if not ran:
        return 0
    # A file the scan could not parse was not checked: its findings stand.
    unparsed = set(result.summary.get("unparsed_paths") or ())
    candidates = Finding.objects.filter(
        target_id=job.target_id,
        source=source,
        status__in=(Finding.OPEN, Finding.SUPPRESSED),  # code and comment both gone
    ).exclude(fingerprint__in=list(reported))
    gone = [
        finding
        for finding in candidates.only("pk", "status", "rule_id", "evidence", "location")
        if check_of(finding.rule_id, finding.evidence) in ran
        and finding.location.rsplit(":", 1)[0] not in unparsed
    ]
    return fix_by_check(gone, f"Gone when its check ran again in job #{job.pk}.", job=job, now=now)
