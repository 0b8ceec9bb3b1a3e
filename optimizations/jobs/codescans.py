"""What an earlier code scan of a target reported, for "new since scan #N".

An earlier scan is read back from the JSON report the job stored (its
``kaizen-code_scan-<pk>.json`` artifact): it names every finding it reported by
fingerprint, the same fingerprint the Finding rows carry. The comparison itself
is the analyzer's (``codescan.since``), so the portal, the CLI and the SARIF
export agree on what "new" means.
"""

from __future__ import annotations

from django.core.cache import cache

from optimizations.analyzers.codescan.since import Earlier, load_report
from optimizations.models import Job, JobArtifact


class NoEarlierScan(ValueError):
    """The scan asked for does not exist, is not a finished code scan, or kept no report."""


def earlier_scan(pk: int | str, target_id: int | None = None, report: str = "json") -> Earlier:
    """The findings code scan #pk reported (read from its JSON or SARIF report);
    NoEarlierScan with why when it cannot say."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise NoEarlierScan(f"“{pk}” is not a scan number") from None
    jobs = Job.objects.filter(pk=pk, kind="code_scan")
    if target_id is not None:
        jobs = jobs.filter(target_id=target_id)
    job = jobs.only("pk", "status").first()
    if job is None:
        raise NoEarlierScan(f"scan #{pk} is not a code scan of this target")
    # An artifact never changes once stored: its parsed fingerprints are cached by job.
    key = f"codescan-report-{pk}-{report}"
    findings = cache.get(key)
    if findings is None:
        artifact = (
            JobArtifact.objects.filter(job_id=pk, name__endswith=f".{report}")
            .only("content")
            .first()
        )
        if artifact is None:
            raise NoEarlierScan(f"scan #{pk} kept no report (it did not finish)")
        findings = load_report(artifact.content, f"scan #{pk}").findings
        cache.set(key, findings, 3600)
    return Earlier(f"scan #{pk}", findings)


def code_scans_of(target_id: int, limit: int = 20) -> list[Job]:
    """The target's latest code scans that kept a report, newest first (for a chooser)."""
    return list(
        Job.objects.filter(target_id=target_id, kind="code_scan", artifacts__name__endswith=".json")
        .order_by("-pk")
        .only("pk", "created_at")[:limit]
    )
