"""The organisation's standard four-phase plan and how progress is derived from it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import (
    Case,
    Count,
    DecimalField,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.utils.translation import gettext_noop

from optimizations.models import GateSignoff, Phase, PhaseTask
from portal.i18n import Phrase


@dataclass(frozen=True)
class TaskTemplate:
    title: str
    description: str
    department: str
    estimate_hours: int
    run_mode: str = ""
    run_focus: tuple[str, ...] = ()


@dataclass(frozen=True)
class PhaseTemplate:
    number: int
    name: str
    lead: str
    exit_criterion: str
    tasks: tuple[TaskTemplate, ...] = field(default_factory=tuple)


# The texts are marked for the catalogue (gettext_noop) and stored in English: see
# DEFAULT_TEXTS below.
STANDARD_PHASES = (
    PhaseTemplate(
        1,
        gettext_noop("Analysis"),
        "qa",
        gettext_noop("A baseline benchmark and DB snapshot exist."),
        (
            TaskTemplate(
                gettext_noop("Analyze performance"),
                gettext_noop(
                    "FastAPI, SQLAlchemy, database: code scan, DB scan and a baseline benchmark."
                ),
                "qa",
                16,
                run_mode="performance",
                run_focus=("fastapi", "sqlalchemy", "async"),
            ),
            TaskTemplate(
                gettext_noop("Find bottlenecks"),
                gettext_noop(
                    "API endpoints, DB queries, connection pool: the capacity knee, pool and "
                    "settings."
                ),
                "qa",
                12,
                run_mode="strategy",
                run_focus=("architecture", "scaling"),
            ),
        ),
    ),
    PhaseTemplate(
        2,
        gettext_noop("Implementation"),
        "dev",
        gettext_noop("No open high-severity performance finding."),
        (
            TaskTemplate(
                gettext_noop("Enhance FastAPI"),
                gettext_noop("Async, middleware, response optimization."),
                "dev",
                24,
            ),
            TaskTemplate(
                gettext_noop("Enhance SQLAlchemy"),
                gettext_noop("ORM, queries, relationships."),
                "dev",
                24,
            ),
            TaskTemplate(
                gettext_noop("Enhance the database"),
                gettext_noop("Indexes, connection pool, caching."),
                "dev",
                16,
            ),
        ),
    ),
    PhaseTemplate(
        3,
        gettext_noop("Infrastructure"),
        "strategy",
        gettext_noop("Capacity model and monitoring checks pass."),
        (
            TaskTemplate(
                gettext_noop("Architecture"),
                gettext_noop("Scalability, monitoring, high availability."),
                "strategy",
                16,
            ),
            TaskTemplate(
                gettext_noop("Monitoring"),
                gettext_noop("Performance metrics, alerting, logging."),
                "strategy",
                12,
            ),
        ),
    ),
    PhaseTemplate(
        4,
        gettext_noop("Quality assurance"),
        "qa",
        gettext_noop("SLOs met on the latest benchmark, no open high-severity security finding."),
        (
            TaskTemplate(
                gettext_noop("Performance tests"),
                gettext_noop("Load, stress, endurance."),
                "qa",
                16,
                run_mode="quality",
                run_focus=("testing",),
            ),
            TaskTemplate(
                gettext_noop("Security tests"),
                gettext_noop("API security, data protection."),
                "qa",
                12,
                run_mode="quality",
                run_focus=("security", "validation"),
            ),
        ),
    ),
)


# The plan's default names, criteria and descriptions. They are stored in English when
# an initiative is created and translated when shown, so a bilingual organisation reads
# one plan in each person's language (and the CLI, the API and exports in English);
# text a person typed (a renamed phase, a new task) is shown as written.
DEFAULT_TEXTS = frozenset(
    text
    for phase in STANDARD_PHASES
    for text in (
        phase.name,
        phase.exit_criterion,
        *(part for task in phase.tasks for part in (task.title, task.description)),
    )
)


def default_text(value):
    """``value`` as a Phrase (translated where shown) when it is one of the plan's default
    texts, else as it is."""
    return Phrase(value) if isinstance(value, str) and value in DEFAULT_TEXTS else value


def _weight():
    # A task weighs its estimate; one without an estimate weighs 1.
    return Case(
        When(tasks__estimate_hours__gt=0, then=F("tasks__estimate_hours")),
        When(tasks__isnull=True, then=Value(Decimal(0))),
        default=Value(Decimal(1)),
        output_field=DecimalField(max_digits=9, decimal_places=1),
    )


def with_progress(phases):
    """Annotate a Phase queryset with the weights its progress is derived from, and
    whether its newest gate sign-off was an override (a phase closed with work left
    says how it was closed, never "Done" at 0 %)."""
    newest = GateSignoff.objects.filter(phase=OuterRef("pk")).order_by("-signed_at", "-pk")
    return phases.annotate(
        total_weight=Sum(_weight()),
        done_weight=Sum(_weight(), filter=Q(tasks__status="done")),
        closed_by_override=Subquery(newest.values("override")[:1]),
        override_reason=Subquery(newest.values("override_reason")[:1]),
    )


def progress_percent(total_weight, done_weight, status: str) -> int:
    """Done weight over total weight; a phase without tasks is 0 % until done."""
    total = Decimal(total_weight or 0)
    if total <= 0:
        return 100 if status == "done" else 0
    return int((Decimal(done_weight or 0) * 100 / total).to_integral_value(rounding="ROUND_FLOOR"))


def progress_of_tasks(tasks, status: str) -> int:
    """The same arithmetic over task objects already in memory."""
    tasks = list(tasks)
    total = sum((task.weight for task in tasks), Decimal(0))
    done = sum((task.weight for task in tasks if task.status == "done"), Decimal(0))
    return progress_percent(total, done, status)


def attach_phases(initiatives) -> None:
    """Give each initiative its phases with progress, and its count of open tasks
    (``open_tasks``), in one query for all of them."""
    initiatives = list(initiatives)
    by_initiative = defaultdict(list)
    phases = (
        with_progress(
            Phase.objects.filter(initiative__in=initiatives).select_related("lead_department")
        )
        .annotate(open_tasks=Count("tasks", filter=Q(tasks__status__in=PhaseTask.OPEN_STATUSES)))
        .order_by("initiative_id", "number")
    )
    for phase in phases:
        phase.progress = progress_percent(phase.total_weight, phase.done_weight, phase.status)
        by_initiative[phase.initiative_id].append(phase)
    for initiative in initiatives:
        initiative.phase_list = by_initiative[initiative.pk]
        initiative.open_tasks = sum(phase.open_tasks for phase in initiative.phase_list)
