"""The one verdict vocabulary of jobs, runs, scans, gates, controls and the CLI.

pass, fail, incomplete, error, cancelled (DESIGN.md "Verdicts and baselines").
A job's *status* (waiting, queued, running, succeeded, failed, cancelled,
expired) is not a verdict: a job that ended without doing its work (failed,
expired) has the verdict error, a cancelled one cancelled, a succeeded one the
analyzer's pass, fail or incomplete. An active job has none yet ("" — pending).
"Inconclusive" belongs to comparisons (stats.py) only.

The job transitions store ``Job.verdict`` as they happen (error on fail and
expire, cancelled on cancel, the analyzer's on success); ``Run.settle`` rolls
the jobs' verdicts up with :func:`roll_up`.
"""

from __future__ import annotations

from django.utils.translation import gettext

from optimizations.analyzers.base import CANCELLED, ERROR, FAIL, INCOMPLETE, PASS, VERDICTS

PENDING = ""

LABELS = {
    PASS: "pass",
    FAIL: "fail",
    INCOMPLETE: "incomplete",
    ERROR: "error",
    CANCELLED: "cancelled",
    PENDING: "pending",
}

# Exit codes of every command that judges (optimize, dbscan, codescan and the
# fastapi-sqlalchemy-optimize entry point).
EXIT_PASS, EXIT_FAIL, EXIT_ERROR, EXIT_INCOMPLETE = 0, 1, 2, 3
EXIT_CODES = {
    PASS: EXIT_PASS,
    FAIL: EXIT_FAIL,
    ERROR: EXIT_ERROR,
    CANCELLED: EXIT_ERROR,
    INCOMPLETE: EXIT_INCOMPLETE,
}
EXIT_HELP = (
    "Exit codes: 0 pass, 1 fail, 2 error / cancelled / could not start, "
    "3 incomplete (a check the verdict needs could not run; the output says what "
    "is missing and how to enable it)."
)

# Which verdict a run (or any set of judged parts) takes from its parts: the
# first of these present. A run that could not do all its work says so first (a
# job that failed outweighs a failed verdict, as the CLI's exit code always had
# it), then a cancel; then fail; incomplete is never pass.
_PRECEDENCE = (ERROR, CANCELLED, FAIL, INCOMPLETE, PASS)

# Job statuses (strings, so this module needs no model import).
_STATUS_VERDICT = {"failed": ERROR, "expired": ERROR, "cancelled": CANCELLED}
_ACTIVE = ("waiting", "queued", "running")


def of_job(status: str, verdict: str) -> str:
    """The verdict of a job with ``status`` whose stored verdict is ``verdict``.

    Reads rows stored before the transitions stored error and cancelled too.
    """
    if status in _ACTIVE:
        return PENDING
    if status in _STATUS_VERDICT:
        return _STATUS_VERDICT[status]
    return verdict if verdict in VERDICTS else INCOMPLETE


def roll_up(verdicts) -> str:
    """The verdict of a whole made of parts with these verdicts ("" if none ended)."""
    present = {v for v in verdicts if v}
    for verdict in _PRECEDENCE:
        if verdict in present:
            return verdict
    return PENDING


def exit_code(verdict: str) -> int:
    """0 pass, 1 fail, 2 error / cancelled / could not start, 3 incomplete."""
    return EXIT_CODES.get(verdict, EXIT_ERROR)


def from_check(status: str | bool | None) -> str:
    """A criterion's or a gate check's state as a verdict: met → pass, not met → fail,
    unknown → incomplete; "pending" (not judged yet) stays pending."""
    return {
        True: PASS,
        False: FAIL,
        None: INCOMPLETE,
        "met": PASS,
        "not_met": FAIL,
        "unknown": INCOMPLETE,
        "passed": PASS,
        "failed": FAIL,
    }.get(status, PENDING)


def badge_class(verdict: str) -> str:
    """The CSS class of a verdict's badge: incomplete has its own, never pass's."""
    return {
        PASS: "ok",
        FAIL: "bad",
        ERROR: "bad",
        INCOMPLETE: "warn",
        CANCELLED: "muted",
    }.get(verdict, "muted")


def reason_of_job(job) -> str:
    """Why a job's verdict is what it is, in words (empty for pass and pending)."""
    verdict = of_job(job.status, job.verdict)
    if verdict == ERROR:
        return job.error or gettext("the job ended without doing its work")
    if verdict == CANCELLED:
        return gettext("cancelled before it finished")
    if verdict in (FAIL, INCOMPLETE):
        return str((job.summary or {}).get("verdict_reason") or "")
    return ""


def reasons_of_run(jobs, skipped=()) -> list[str]:
    """Why a run did not pass: a line per job that did not pass, and per kind skipped
    (``why`` already in the reader's language: preflight.skipped_why)."""
    lines = [
        gettext("%(kind)s: incomplete — not run: %(why)s")
        % {"kind": item["kind"], "why": item["why"]}
        for item in skipped
    ]
    for job in jobs:
        verdict = of_job(job.status, job.verdict)
        if verdict in (PASS, PENDING):
            continue
        reason = reason_of_job(job)
        if reason:
            line = gettext("%(kind)s #%(job)s: %(verdict)s — %(reason)s")
        else:
            line = gettext("%(kind)s #%(job)s: %(verdict)s")
        lines.append(
            line % {"kind": job.kind, "job": job.pk, "verdict": gettext(verdict), "reason": reason}
        )
    return lines


def run_status_while_active(statuses) -> str:
    """A run's status while some of its jobs are still active: running as soon as any
    job runs or has ended (a run between two jobs is under way, not "queued");
    queued before its first job started. What a waiting job waits for is shown
    on the job."""
    statuses = set(statuses)
    if "running" in statuses or statuses - set(_ACTIVE):
        return "running"
    return "queued"


def run_progress(jobs) -> int:
    """How far a run got, 0–100: a job that succeeded counts whole, any other at the
    progress it reached (a cancelled or failed run never shows 100 %)."""
    jobs = list(jobs)
    if not jobs:
        return 0
    total = sum(100.0 if job.status == "succeeded" else float(job.progress or 0) for job in jobs)
    return int(total / len(jobs))
