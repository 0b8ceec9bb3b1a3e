"""Beat's tick (the reaper) runs on a queue no analysis or benchmark worker consumes."""

from __future__ import annotations

import pytest
from django.conf import settings

from optimizations import tasks
from optimizations.jobs.kinds import KINDS
from portal.celery import app
from portal.processes import commands


def queues_of(process: str) -> set[str]:
    argv = commands("/tmp")[process]
    return set(argv[argv.index("--queues") + 1].split(","))


def routed_queue(task_name: str) -> str:
    route = app.amqp.router.route({}, task_name, args=(), kwargs={})
    return route["queue"].name


def job_workers() -> list[str]:
    names = commands("/tmp")
    return [name for name in names if name.startswith("worker-") and name != "worker-maintenance"]


@pytest.mark.parametrize(
    "task_name", ["optimizations.tasks.tick", "optimizations.tasks.check_availability"]
)
def test_beats_chores_go_to_a_queue_that_no_job_worker_consumes(task_name):
    queue = routed_queue(task_name)
    assert queue == "maintenance"
    assert queue in queues_of("worker-maintenance")
    for process in job_workers():
        assert queue not in queues_of(process), f"{process} would run {task_name} between jobs"


def test_jobs_never_land_on_the_maintenance_worker():
    # The run_job task is sent with the kind's queue explicitly (landing.enqueue).
    maintenance = queues_of("worker-maintenance")
    for name, kind in KINDS.items():
        assert kind.queue not in maintenance, f"job kind {name} would occupy the reaper's slot"
        assert any(kind.queue in queues_of(p) for p in job_workers()), f"nobody runs {name}"
    assert routed_queue("optimizations.tasks.run_job") not in maintenance


def test_the_maintenance_worker_has_its_own_slots():
    argv = commands("/tmp")["worker-maintenance"]
    assert int(argv[argv.index("--concurrency") + 1]) >= 1
    assert argv[argv.index("--prefetch-multiplier") + 1] == "1"


def test_beats_chores_are_time_limited_and_expire_instead_of_piling_up():
    schedule = settings.CELERY_BEAT_SCHEDULE
    tick = schedule["kaizen-tick"]
    assert 0 < tick["options"]["expires"] <= max(3 * settings.KAIZEN_TICK_SECONDS, 30)
    assert schedule["kaizen-availability"]["options"]["expires"] > 0
    for task_name in ("optimizations.tasks.tick", "optimizations.tasks.check_availability"):
        task = app.tasks[task_name]
        assert task.name == getattr(tasks, task_name.rsplit(".", 1)[1]).name
        assert task.time_limit and task.time_limit < settings.CELERY_TASK_TIME_LIMIT
        assert task.soft_time_limit and task.soft_time_limit < task.time_limit
