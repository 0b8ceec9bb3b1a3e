# Job lifecycle: the "waiting" status and what a job waits for, how often it was
# sent to its queue (the sweeper's re-send), and the per-target lease.

import django.db.models.deletion
from django.db import migrations, models


def followers_wait(apps, schema_editor):
    """Jobs that waited for their run's probe were "queued" with no message sent; they
    are "waiting" now (else the sweeper would take them for lost messages)."""
    Job = apps.get_model("optimizations", "Job")
    for job in Job.objects.filter(status="queued", enqueued_at__isnull=True, after__isnull=False):
        Job.objects.filter(pk=job.pk, status="queued").update(
            status="waiting", waiting_for_id=job.after_id
        )


class Migration(migrations.Migration):

    dependencies = [
        ('optimizations', '0007_measurement_value_index_job_history_index'),
    ]

    operations = [
        migrations.AddField(
            model_name='job',
            name='sends',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='job',
            name='waiting_for',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='optimizations.job'),
        ),
        migrations.AlterField(
            model_name='job',
            name='status',
            field=models.CharField(choices=[('waiting', 'Waiting'), ('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('cancelled', 'Cancelled'), ('expired', 'Expired')], default='queued', max_length=20),
        ),
        migrations.CreateModel(
            name='TargetLease',
            fields=[
                ('target', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='lease', serialize=False, to='optimizations.targetservice')),
                ('since', models.DateTimeField(blank=True, null=True)),
                ('health_ms', models.FloatField(blank=True, null=True)),
                ('last_ended_at', models.DateTimeField(blank=True, null=True)),
                ('holder', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='optimizations.job')),
                ('last_job', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='optimizations.job')),
            ],
        ),
        migrations.RunPython(followers_wait, migrations.RunPython.noop),
    ]
