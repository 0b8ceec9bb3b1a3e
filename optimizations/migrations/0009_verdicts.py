# One verdict vocabulary: pass, fail, incomplete, error, cancelled. Jobs stored
# before it kept "" for a failed, expired or cancelled job and for a succeeded
# one whose analysis judged nothing, and runs rolled "" up as if it were nothing
# (a cancelled run read "pass"). This gives those rows the verdicts the job
# transitions now store, and rolls each ended run up again.

from django.db import migrations

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


class Migration(migrations.Migration):
    dependencies = [
        ("optimizations", "0008_job_lifecycle"),
    ]

    operations = [
        # Going back keeps the new verdicts: they are words the old code shows as they are.
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
