"""Demo data for a newcomer: people, the demo target and one initiative in progress.

Only plan data is created here. Measurements, findings and verdicts never are:
they come from real runs against the demo target.
"""

from __future__ import annotations

import datetime
import secrets
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from departments.compliance import ensure_default_register
from departments.demo_content import load_runbooks_and_training
from departments.models import Department, Membership, Profile
from optimizations.jobs import baselines, engine
from optimizations.jobs.engine import CannotStart, start_run
from optimizations.models import Initiative, Job, PhaseTask, Run
from optimizations.reports.roi import do_update_roi_assumptions
from optimizations.work.actions import do_create_initiative, do_create_target, do_update_target

DEMO_TARGET_SLUG = "shop-api"

# (username, first name, last name, department, role)
DEMO_PEOPLE = [
    ("dev.manager", "Maria", "Okafor", Department.DEV, Membership.MANAGER),
    ("dev.engineer", "Devon", "Park", Department.DEV, Membership.ENGINEER),
    ("qa.manager", "Quentin", "Moreau", Department.QA, Membership.MANAGER),
    ("qa.engineer", "Aiko", "Tanaka", Department.QA, Membership.ENGINEER),
    ("strategy.manager", "Sofia", "Lindqvist", Department.STRATEGY, Membership.MANAGER),
    ("strategy.engineer", "Ravi", "Menon", Department.STRATEGY, Membership.ENGINEER),
    ("hr.manager", "Helen", "Brooks", Department.HR, Membership.MANAGER),
    ("hr.editor", "Tomás", "Ruiz", Department.HR, Membership.EDITOR),
    ("viewer", "Victor", "Stein", Department.STRATEGY, Membership.VIEWER),
]

# What an hour of each department costs in the demo's ROI assumptions (EUR).
DEMO_HOURLY_RATES = {
    Department.DEV: 95,
    Department.QA: 85,
    Department.STRATEGY: 110,
    Department.HR: 70,
}

# Who takes the default tasks of each phase in the demo initiative.
DEMO_ASSIGNEES = {1: "qa.engineer", 2: "dev.engineer", 3: "strategy.engineer", 4: "qa.engineer"}


def new_password() -> str:
    return "kaizen-" + secrets.token_urlsafe(9)


def demo_loaded() -> bool:
    return get_user_model().objects.filter(username=DEMO_PEOPLE[0][0]).exists()


@transaction.atomic
def load_demo(password: str, target_url: str) -> bool:
    """Create the demo people, target and initiative once; False when already there."""
    if demo_loaded():
        # A demo made before the compliance register existed gets its controls too.
        ensure_default_register()
        return False
    User = get_user_model()
    departments = {d.code: d for d in Department.objects.all()}
    users = {}
    for username, first, last, code, role in DEMO_PEOPLE:
        user = User.objects.create_user(
            username=username,
            first_name=first,
            last_name=last,
            email=f"{username}@example.com",
            password=password,
        )
        Profile.objects.create(user=user)
        Membership.objects.create(user=user, department=departments[code], role=role)
        users[username] = user
    manager = users["dev.manager"]
    target = do_create_target(
        manager,
        name="Shop API (demo)",
        slug=DEMO_TARGET_SLUG,
        base_url=target_url,
        owner_department=departments[Department.DEV],
        environment="demo",
        # The demo shop is a staging stand-in: the integrity probes may write to it.
        allows_writes=True,
        max_rate=5000,
        max_duration=1800,
        # What the demo shop sees at its busiest (and what 2 cores can give it).
        expected_rps=20,
        description=(
            "The demo FastAPI + SQLAlchemy shop that ./kaizen up starts beside the portal "
            "(examples/shop_api). It starts in slow mode, with the classic problems planted."
        ),
    )
    today = timezone.localdate()
    initiative = do_create_initiative(
        manager,
        title="Make the Shop API fast",
        target=target,
        run_mode=Initiative.COMPREHENSIVE,
        focus=[],
        owner=manager,
        description=(
            "Bring the shop's list and search endpoints within the SLOs: API average ≤ 100 ms, "
            "throughput ≥ 1000 req/s, error rate ≤ 1 %, memory −50 % against the baseline."
        ),
        start_date=today,
        target_date=today + datetime.timedelta(weeks=8),
        status=Initiative.ACTIVE,
    )
    for task in PhaseTask.objects.filter(phase__initiative=initiative).select_related("phase"):
        task.assignee = users[DEMO_ASSIGNEES[task.phase.number]]
        task.save(update_fields=["assignee"])

    # Assumptions, not measurements: what strategy would enter for the demo
    # shop (its busiest load, what an instance costs, what an hour costs).
    do_update_roi_assumptions(
        users["strategy.manager"],
        initiative,
        expected_peak_rps=target.expected_rps,
        cost_per_instance_month=Decimal("350"),
        currency="EUR",
        hourly_rates=DEMO_HOURLY_RATES,
        horizon_months=12,
        note="Demo assumptions — replace them with your organisation's figures.",
    )

    load_runbooks_and_training(users, target)
    ensure_default_register()
    return True


def _tour():
    """The demo initiative and its phase-1 tasks that stand for a command (None, [] if absent)."""
    initiative = Initiative.objects.filter(target__slug=DEMO_TARGET_SLUG).order_by("pk").first()
    if initiative is None:
        return None, []
    tasks = list(
        PhaseTask.objects.filter(phase__initiative=initiative, phase__number=1)
        .exclude(run_mode="")
        .select_related("phase", "assignee")
        .order_by("position")
    )
    return initiative, tasks


def _baseline_set_needed(initiative, first: PhaseTask) -> bool:
    """Whether the tour's baseline set never finished, read from the data.

    Not needed when a person pinned another run as the target's baseline, or a
    set of the tour is under way, or one ended with enough succeeded load tests
    for the comparison rule (baselines.SET_RUNS). Needed when there is none, or
    every one ended short (errored, expired, cancelled by a stopped worker).
    """
    target = initiative.target
    pinned = target.baseline_run
    if pinned is not None and pinned.task_id != first.pk:
        return False  # someone chose the baseline; the tour keeps out of it
    for run in Run.objects.filter(target=target, task=first, mode="custom"):
        if run.status in Job.ACTIVE:
            return False
        succeeded = run.jobs.filter(kind="benchmark", status=Job.SUCCEEDED).count()
        if succeeded >= baselines.SET_RUNS:
            return False
    return True


def _task_run_needed(task: PhaseTask) -> bool:
    """Whether a phase-1 task's run never finished: none, or each ended without a single
    succeeded job (a person's cancellation counts as a decision, not as never finished)."""
    for run in Run.objects.filter(task=task, mode=task.run_mode):
        if run.status in Job.ACTIVE or run.status == Job.CANCELLED:
            return False
        if run.jobs.filter(status=Job.SUCCEEDED).exists():
            return False
    return True


def tour_runs() -> list:
    """The newest run of each of the tour's items (the baseline set, then each task's)."""
    tasks = _tour()[1]
    if not tasks:
        return []
    items = [Run.objects.filter(task=tasks[0], mode="custom")]
    items += [Run.objects.filter(task=task, mode=task.run_mode) for task in tasks]
    newest = [runs.order_by("-created_at", "-pk").first() for runs in items]
    return [run for run in newest if run is not None]


def baseline_pending() -> bool:
    """Whether any of the demo's first-tour runs still has to be started."""
    initiative, tasks = _tour()
    if not tasks:
        return False
    return _baseline_set_needed(initiative, tasks[0]) or any(map(_task_run_needed, tasks))


def start_baseline() -> list[tuple[PhaseTask, Run | None, str]]:
    """Start what never finished of phase 1's analyses of the demo initiative: its baseline,
    measured for real.

    ``./kaizen up`` calls this on every start, when the workers and the demo
    target are up; what already ran (or runs) is left alone, so a first start
    that half-failed gets its baseline on the next one. First the baseline
    *set* (5 short load tests in one run, pinned as the target's baseline:
    before/after claims need at least 5 runs a side, optimizations.jobs.baselines),
    then each task that stands for a command runs it as the task's assignee. A
    refusal (training, broker) is returned, not raised.
    """
    initiative, tasks = _tour()
    started: list[tuple[PhaseTask, Run | None, str]] = []
    if tasks and _baseline_set_needed(initiative, tasks[0]):
        first = tasks[0]
        try:
            run = engine.start_set(
                first.assignee,
                initiative.target,
                initiative=initiative,
                phase=first.phase,
                task=first,
                trigger="cli",
            )
            do_update_target(first.assignee, initiative.target, baseline_run=run)
            started.append((first, run, ""))
        except CannotStart as refusal:
            started.append((first, None, f"baseline set: {refusal}"))
    for task in tasks:
        if not _task_run_needed(task):
            continue
        try:
            run = start_run(
                task.assignee,
                initiative.target,
                task.run_mode,
                task.run_focus,
                initiative=initiative,
                phase=task.phase,
                task=task,
                trigger="cli",
            )
            started.append((task, run, ""))
        except CannotStart as refusal:
            started.append((task, None, str(refusal)))
    return started
