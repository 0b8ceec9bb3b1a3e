"""The runbook topics of HR's standard pages exist in every installation."""

from django.db import migrations

from departments.runbook_templates import ensure_topics


def create(apps, schema_editor):
    ensure_topics(apps.get_model("departments", "Topic"))


class Migration(migrations.Migration):
    dependencies = [("departments", "0003_runbooks_and_training")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
