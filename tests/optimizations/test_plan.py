"""Creating an initiative lays out the standard plan; progress is derived from tasks."""

from decimal import Decimal

import pytest

from optimizations.models import Phase, PhaseTask
from optimizations.work.actions import do_update_initiative
from optimizations.work.plan import (
    STANDARD_PHASES,
    progress_of_tasks,
    progress_percent,
    with_progress,
)


def test_an_initiative_gets_the_four_standard_phases(initiative):
    phases = list(initiative.phases.order_by("number"))
    assert [(p.number, p.name, p.lead_department.code) for p in phases] == [
        (1, "Analysis", "qa"),
        (2, "Implementation", "dev"),
        (3, "Infrastructure", "strategy"),
        (4, "Quality assurance", "qa"),
    ]
    assert all(p.exit_criterion for p in phases)


def test_each_phase_gets_its_default_tasks_owned_by_departments(initiative):
    tasks = PhaseTask.objects.filter(phase__initiative=initiative).order_by(
        "phase__number", "position"
    )
    got = [(t.phase.number, t.title, t.department.code) for t in tasks]
    expected = [
        (template.number, task.title, task.department)
        for template in STANDARD_PHASES
        for task in template.tasks
    ]
    assert got == expected
    assert [t.title for t in tasks if t.phase.number == 2] == [
        "Enhance FastAPI",
        "Enhance SQLAlchemy",
        "Enhance the database",
    ]


def test_tasks_standing_for_old_optimizer_commands_carry_them(initiative):
    analyze = PhaseTask.objects.get(phase__initiative=initiative, title="Analyze performance")
    assert analyze.run_mode == "performance"
    assert analyze.run_focus == ["fastapi", "sqlalchemy", "async"]
    security = PhaseTask.objects.get(phase__initiative=initiative, title="Security tests")
    assert security.run_mode == "quality"


def test_an_active_initiative_starts_in_phase_one(initiative):
    statuses = list(initiative.phases.order_by("number").values_list("status", flat=True))
    assert statuses == [Phase.ACTIVE, Phase.NOT_STARTED, Phase.NOT_STARTED, Phase.NOT_STARTED]


def test_a_draft_starts_its_first_phase_when_it_becomes_active(make_initiative, manager):
    draft = make_initiative(status="draft")
    assert not draft.phases.filter(status=Phase.ACTIVE).exists()
    do_update_initiative(manager, draft, status="active")
    assert draft.phases.get(number=1).status == Phase.ACTIVE


def test_phase_dates_split_the_initiative_span(make_initiative):
    import datetime

    start = datetime.date(2026, 1, 1)
    initiative = make_initiative(start_date=start, target_date=start + datetime.timedelta(days=80))
    ends = list(initiative.phases.order_by("number").values_list("planned_end", flat=True))
    assert ends == [start + datetime.timedelta(days=20 * n) for n in (1, 2, 3, 4)]


@pytest.mark.parametrize(
    ("total", "done", "status", "expected"),
    [
        (0, 0, "active", 0),
        (0, 0, "done", 100),
        (Decimal(10), Decimal(0), "active", 0),
        (Decimal(10), Decimal(5), "active", 50),
        (Decimal(3), Decimal(1), "active", 33),
        (Decimal(10), Decimal(10), "active", 100),
    ],
)
def test_progress_percent(total, done, status, expected):
    assert progress_percent(total, done, status) == expected


def test_progress_is_weighted_by_estimate_and_unestimated_tasks_weigh_one(initiative):
    phase = initiative.phases.get(number=2)  # estimates 24, 24, 16
    _fastapi, _sqlalchemy, database = phase.tasks.order_by("position")
    database.status = PhaseTask.DONE
    database.save()
    annotated = with_progress(Phase.objects.filter(pk=phase.pk)).get()
    assert progress_percent(annotated.total_weight, annotated.done_weight, phase.status) == 25
    # Without an estimate the task weighs 1: 1 of (24 + 24 + 1).
    database.estimate_hours = None
    database.save()
    annotated = with_progress(Phase.objects.filter(pk=phase.pk)).get()
    assert progress_percent(annotated.total_weight, annotated.done_weight, phase.status) == 2
    assert progress_of_tasks(phase.tasks.all(), phase.status) == 2


def test_sql_and_python_progress_agree(initiative):
    phase = initiative.phases.get(number=1)
    first = phase.tasks.order_by("position").first()
    first.status = PhaseTask.DONE
    first.save()
    annotated = with_progress(Phase.objects.filter(pk=phase.pk)).get()
    from_sql = progress_percent(annotated.total_weight, annotated.done_weight, phase.status)
    assert from_sql == progress_of_tasks(phase.tasks.all(), phase.status) == 57  # 16 of 28


def test_a_phase_without_tasks_has_zero_progress_until_done(initiative):
    phase = initiative.phases.get(number=3)
    phase.tasks.all().delete()
    annotated = with_progress(Phase.objects.filter(pk=phase.pk)).get()
    assert progress_percent(annotated.total_weight, annotated.done_weight, "active") == 0
    assert progress_percent(annotated.total_weight, annotated.done_weight, "done") == 100
