"""The pages a manager opens most cost a fixed number of queries, whatever the data size.

Each page is requested over a small data set and again after ten times as much
was added (initiatives with phases and tasks, runs, jobs, findings, summary and
per-second measurements, audit events, notifications): the number of queries
must not move, and stays under a fixed bound. bench/portal.py times the same
pages on PostgreSQL at full size (200 initiatives, 20 000 jobs, 100 000
findings, 1 000 000 samples).
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from departments.models import Membership
from optimizations.models import (
    Finding,
    Incident,
    Initiative,
    Job,
    Measurement,
    Phase,
    PhaseTask,
    Run,
)
from optimizations.work.plan import STANDARD_PHASES
from portal.models import AuditEvent, Notification

# Bounds with headroom for the panels issue 9 is adding; flatness is the real test.
BOUNDS = {
    "dashboard": 30,
    "initiative": 40,
    "target": 45,
    "findings": 20,
    "findings search": 20,
    "initiative list": 20,
    "job history": 20,
    "portfolio": 30,
    "slo board": 30,
    "roi": 30,
    "initiative findings": 20,
}
SEVERITIES = [value for value, _ in Finding.SEVERITIES]
STATUSES = [value for value, _ in Finding.STATUSES]


class World:
    """A target's history that grows by whole slices; each slice has a bit of everything."""

    def __init__(self, target, initiative, people, departments):
        self.target, self.initiative = target, initiative
        self.people, self.departments = people, departments
        self.slices = 0
        self.now = timezone.now()

    def grow(self, slices: int) -> None:
        for _ in range(slices):
            self._slice(self.slices)
            self.slices += 1

    def _slice(self, n: int) -> None:
        now, target, people = self.now, self.target, self.people
        today = timezone.localdate()
        # Two more initiatives on the target, with their phases and tasks, some overdue.
        initiatives = Initiative.objects.bulk_create(
            Initiative(
                title=f"Initiative {n}.{i}",
                target=target,
                owner=people[0],
                status=(Initiative.ACTIVE, Initiative.DONE)[i],
                run_mode="performance",
                start_date=today - datetime.timedelta(days=30),
                target_date=today + datetime.timedelta(days=30 + n),
            )
            for i in range(2)
        )
        phases = Phase.objects.bulk_create(
            Phase(
                initiative=initiative,
                number=t.number,
                name=t.name,
                lead_department=self.departments[t.lead],
                status=Phase.ACTIVE if t.number == 1 else Phase.NOT_STARTED,
                planned_end=today - datetime.timedelta(days=2 - t.number),
            )
            for initiative in initiatives
            for t in STANDARD_PHASES
        )
        PhaseTask.objects.bulk_create(
            PhaseTask(
                phase=phase,
                title=task.title,
                department=self.departments[task.department],
                assignee=people[(phase.number + position) % len(people)],
                status=("todo", "doing", "blocked", "done")[position % 4],
                estimate_hours=task.estimate_hours,
                due_date=phase.planned_end,
                logged_hours=Decimal("1.5"),
                position=position,
            )
            for phase in phases
            for position, task in enumerate(STANDARD_PHASES[phase.number - 1].tasks)
        )
        # The busy initiative gets runs, and tasks made from findings.
        main_phases = list(self.initiative.phases.order_by("number"))
        runs = Run.objects.bulk_create(
            Run(
                target=target,
                mode="performance",
                status="succeeded",
                verdict="fail",
                initiative=self.initiative if r % 2 else None,
                phase=main_phases[r % 4] if r % 2 else None,
                triggered_by=people[r % len(people)],
                finished_at=now,
            )
            for r in range(10)
        )
        jobs = Job.objects.bulk_create(
            Job(
                run=run,
                kind=kind,
                target=target,
                status=Job.SUCCEEDED,
                verdict="fail",
                initiative=run.initiative,
                phase=run.phase,
                started_at=now,
                finished_at=now,
                params={"mode": "load", "rate": 100.0, "duration": 20.0}
                if kind == "benchmark"
                else {},
                summary={
                    "rps": 90.0,
                    "latency_ms": {"med": 40.0, "p95": 80.0, "p99": 120.0},
                    "tracked": {"reported": 3, "fixed": 1},
                },
            )
            for run in runs
            for kind in ("benchmark", "code_scan", "db_scan")
        )
        findings = Finding.objects.bulk_create(
            Finding(
                target=target,
                source=("code", "db", "security")[f % 3],
                rule_id=f"R{f % 9}",
                severity=SEVERITIES[f % 5],
                category="query",
                title=f"Finding {n}.{f}",
                location=f"app/orders.py:{f}",
                fingerprint=f"{n}-{f}",
                status=STATUSES[f % 5] if f % 3 else Finding.OPEN,
                first_seen_at=now,
                last_seen_at=now,
                first_job=jobs[f % len(jobs)],
                last_job=jobs[f % len(jobs)],
                assignee=people[f % len(people)] if f % 2 else None,
            )
            for f in range(50)
        )
        PhaseTask.objects.bulk_create(
            PhaseTask(
                phase=main_phases[1],
                title=f"Fix {finding.rule_id}",
                department=self.departments["dev"],
                assignee=people[1],
                finding=finding,
                criterion={
                    "kind": "finding_gone",
                    "finding": finding.pk,
                    "source": "code",
                    "text": "gone on re-scan",
                },
                criterion_state="not_met",
                position=10,
            )
            for finding in findings[:3]
        )
        measurements = []
        for job in jobs:
            if job.kind == "benchmark":
                measurements += [
                    Measurement(
                        target=target,
                        run_id=job.run_id,
                        job=job,
                        name=name,
                        value=v,
                        unit="ms",
                        measured_at=now,
                    )
                    for name, v in (
                        ("http.latency.p95", 80.0),
                        ("http.latency.avg", 45.0),
                        ("http.throughput", 90.0),
                        ("http.error_rate", 0.01),
                    )
                ]
                measurements += [
                    Measurement(
                        target=target,
                        run_id=job.run_id,
                        job=job,
                        name=f"sample.{name}",
                        value=s,
                        unit="ms",
                        second=s,
                        measured_at=now,
                    )
                    for s in range(20)
                    for name in ("p95_ms", "achieved")
                ]
            elif job.kind == "db_scan":
                measurements.append(
                    Measurement(
                        target=target,
                        run_id=job.run_id,
                        job=job,
                        name="db.query.avg",
                        value=12.0,
                        unit="ms",
                        measured_at=now,
                    )
                )
        measurements += [
            Measurement(
                target=target,
                name="availability.up",
                value=1.0,
                unit="bool",
                measured_at=now - datetime.timedelta(minutes=m + 60 * n),
            )
            for m in range(60)
        ]
        Measurement.objects.bulk_create(measurements)
        AuditEvent.objects.bulk_create(
            AuditEvent(
                actor=people[e % len(people)],
                action="task.status",
                object_type="task",
                object_id=str(e),
                object_repr="A task",
                summary="moved a task",
                initiative=self.initiative if e % 2 else None,
                target=target,
            )
            for e in range(30)
        )
        Notification.objects.bulk_create(
            Notification(user=people[0], subject=f"Run {n}.{i} finished") for i in range(10)
        )
        Incident.objects.create(
            target=target,
            kind=Incident.DOWN,
            started_at=now - datetime.timedelta(hours=n + 1),
            ended_at=now - datetime.timedelta(hours=n),
        )


@pytest.fixture
def world(target, initiative, manager, make_user, departments):
    people = [
        manager,
        make_user("dev1", ("dev", Membership.ENGINEER)),
        make_user("qa1", ("qa", Membership.ENGINEER)),
        make_user("strat1", ("strategy", Membership.ENGINEER)),
        make_user("hr1", ("hr", Membership.EDITOR)),
    ]
    # The manager owns tasks of the busy initiative too ("my open tasks").
    PhaseTask.objects.filter(phase__initiative=initiative).update(assignee=manager)
    return World(target, initiative, people, departments)


def _pages(world):
    initiative, slug = world.initiative.pk, world.target.slug
    return {
        "dashboard": "/",
        "initiative": f"/initiatives/{initiative}/",
        "target": f"/targets/{slug}/",
        "findings": f"/targets/{slug}/findings/?status=",
        "findings search": f"/targets/{slug}/findings/?status=&q=orders",
        "initiative list": "/initiatives/",
        "job history": "/jobs/",
        "portfolio": "/portfolio/",
        "slo board": f"/targets/{slug}/slo/",
        "roi": f"/initiatives/{initiative}/roi/",
        "initiative findings": f"/initiatives/{initiative}/findings/",
    }


def _count(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


def test_the_main_pages_cost_the_same_queries_with_ten_times_the_data(
    world, login, manager, django_assert_max_num_queries
):
    client = login(manager)
    pages = _pages(world)
    world.grow(1)
    client.get("/")  # the session learns the user's time zone once
    # Each page twice: the first request after the data changed (what a page caches is
    # computed again) and the next one (served from that cache where the page keeps one).
    small = {page: (_count(client, url), _count(client, url)) for page, url in pages.items()}
    world.grow(9)
    large = {}
    for page, url in pages.items():
        with django_assert_max_num_queries(BOUNDS[page]):
            cold = _count(client, url)
        large[page] = (cold, _count(client, url))
    assert large == small, f"queries per page with 1 slice of data: {small}; with 10: {large}"


def test_the_larger_data_set_is_really_larger(world):
    world.grow(1)
    small = (Run.objects.count(), Finding.objects.count(), Measurement.objects.count())
    world.grow(9)
    large = (Run.objects.count(), Finding.objects.count(), Measurement.objects.count())
    assert all(big >= 10 * few for few, big in zip(small, large, strict=True))
    assert (
        Initiative.objects.count() == 1 + 20
        and PhaseTask.objects.filter(
            phase__initiative=world.initiative, finding__isnull=False
        ).count()
        == 30
    )


def test_the_open_task_indexes_cover_exactly_the_open_statuses():
    # The dashboard's overdue and my-tasks lists read these partial indexes; a status added
    # to OPEN_STATUSES but not to their condition would silently fall back to a full scan.
    conditions = {index.name: index.condition for index in PhaseTask._meta.indexes}
    for name in ("task_open_due", "task_open_assignee_due"):
        assert conditions[name] == Q(status__in=PhaseTask.OPEN_STATUSES)
