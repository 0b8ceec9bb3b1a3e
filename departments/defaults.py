"""The four departments of DESIGN.md, which exist in every installation."""

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
        "Database architecture\nMonitoring and observability\nScalability and capacity model\nROI",
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


def ensure_departments(department_model) -> None:
    """Create or refresh the four departments (used by a migration and by tests)."""
    for code, name, position, mission, responsibilities in DEPARTMENTS:
        department_model.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "position": position,
                "mission": mission,
                "responsibilities": responsibilities,
            },
        )
