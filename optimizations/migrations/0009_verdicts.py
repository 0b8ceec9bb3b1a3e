# One verdict vocabulary: pass, fail, incomplete, error, cancelled. Jobs stored
# before it kept "" for a failed, expired or cancelled job and for a succeeded
# one whose analysis judged nothing, and runs rolled "" up as if it were nothing
# (a cancelled run read "pass"). This gives those rows the verdicts the job
# transitions now store, and rolls each ended run up again.

import re

import django.db.models.deletion
from django.db import migrations, models

_PRECEDENCE = ("error", "cancelled", "fail", "incomplete", "pass")
_ACTIVE = ("waiting", "queued", "running")


def _job_verdict(status, verdict):
    # The rule of optimizations.verdicts.of_job, frozen here as migrations must be.
    if status in _ACTIVE:
        return ""
    if status in ("failed", "expired"):
        return "error"
    if status == "cancelled":
        return "cancelled"
    return verdict if verdict in _PRECEDENCE else "incomplete"


def forwards(apps, schema_editor):
    Job = apps.get_model("optimizations", "Job")
    Run = apps.get_model("optimizations", "Run")
    for status, verdict in (("failed", "error"), ("expired", "error"), ("cancelled", "cancelled")):
        Job.objects.filter(status=status).update(verdict=verdict)
    Job.objects.filter(status="succeeded").exclude(verdict__in=_PRECEDENCE).update(
        verdict="incomplete"
    )
    for run in Run.objects.filter(finished_at__isnull=False).only("pk", "verdict").iterator():
        present = {
            _job_verdict(status, verdict)
            for status, verdict in Job.objects.filter(run_id=run.pk).values_list(
                "status", "verdict"
            )
        }
        rolled = next((v for v in _PRECEDENCE if v in present), "")
        if rolled != run.verdict:
            Run.objects.filter(pk=run.pk).update(verdict=rolled)


def findings_fixed_only_by_a_rescan(apps, schema_editor):
    """A finding marked fixed by a person is open again (only a re-scan fixes); one a
    re-scan fixed names that job."""
    Finding = apps.get_model("optimizations", "Finding")
    Job = apps.get_model("optimizations", "Job")
    Finding.objects.filter(status="fixed", status_changed_by__isnull=False).update(
        status="open",
        fixed_at=None,
        status_reason="It was marked fixed by hand; only a re-scan that runs its check "
        "again marks it fixed.",
    )
    jobs = set(Job.objects.values_list("pk", flat=True))
    for finding in Finding.objects.filter(status="fixed").only("pk", "status_reason").iterator():
        match = re.search(r"job #(\d+)", finding.status_reason or "")
        if match and int(match.group(1)) in jobs:
            Finding.objects.filter(pk=finding.pk).update(fixed_in_job_id=int(match.group(1)))


class Migration(migrations.Migration):
    dependencies = [
        ("optimizations", "0008_job_lifecycle"),
    ]

    operations = [
        # Going back keeps the new verdicts: they are words the old code shows as they are.
        migrations.RunPython(forwards, migrations.RunPython.noop),
        # Findings have one owner (optimizations.findings): the job that fixed one.
        migrations.AddField(
            model_name="finding",
            name="fixed_in_job",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="optimizations.job",
            ),
        ),
        migrations.RunPython(findings_fixed_only_by_a_rescan, migrations.RunPython.noop),
    ]
