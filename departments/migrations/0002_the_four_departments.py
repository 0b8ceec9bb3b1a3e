"""The four departments of DESIGN.md exist in every installation."""

from django.db import migrations

DEPARTMENTS = [
    (
        "dev",
        "Development",
        1,
        "Makes the organisation's FastAPI services fast: fixes the findings the scans "
        "report in code, queries and the database, and triggers code and DB scans.",
        "FastAPI async tuning\nSQLAlchemy ORM and query tuning\nDatabase performance\nAPI design",
    ),
    (
        "qa",
        "Quality assurance",
        2,
        "Proves the services meet their SLOs: runs benchmarks and security scans, tracks "
        "regressions and signs off phase gates.",
        "Performance, load, stress and endurance tests\nData-integrity and transaction checks\n"
        "Security testing\nRegression tracking",
    ),
    (
        "strategy",
        "Strategy",
        3,
        "Owns where the services go: database architecture, observability, capacity, SLOs "
        "and the return on the work.",
        "Database architecture\nMonitoring and observability\nScalability and capacity model\n"
        "ROI",
    ),
    (
        "hr",
        "HR / operations",
        4,
        "Keeps people able to run the services: runbooks, training and knowledge transfer, "
        "compliance and incident response.",
        "Runbooks and operations manuals\nTraining and knowledge transfer\nCompliance\n"
        "Incident response",
    ),
]


def create(apps, schema_editor):
    Department = apps.get_model("departments", "Department")
    for code, name, position, mission, responsibilities in DEPARTMENTS:
        Department.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "position": position,
                "mission": mission,
                "responsibilities": responsibilities,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("departments", "0001_initial")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
