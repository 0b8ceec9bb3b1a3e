"""The four departments of DESIGN.md exist in every installation."""

from django.db import migrations

from departments.defaults import ensure_departments


def create(apps, schema_editor):
    ensure_departments(apps.get_model("departments", "Department"))


class Migration(migrations.Migration):
    dependencies = [("departments", "0001_initial")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
