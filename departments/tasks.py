"""Periodic work of HR: training states over time, and runbook coverage findings.

``update_training_states`` and ``departments.actions.sync_runbook_findings``
are plain functions (tests call them with a chosen ``now``);
``refresh_training_states`` and ``refresh_runbook_findings`` are the Celery
tasks beat runs — daily is enough. All are idempotent: a second call in a
row changes nothing.
"""

from __future__ import annotations

import datetime

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from departments import compliance
from departments.actions import (
    GRACE_DAYS,
    materialise,
    notify_after_commit,
    sync_runbook_findings,
)
from departments.models import TrainingAssignment, TrainingModule, TrainingRecord


@transaction.atomic
def update_training_states(now=None) -> dict[str, int]:
    """Move training records along with time; returns how many changed, by reason.

    - open records whose due date has passed become *overdue*;
    - completions past their module's recertification period expire: the record
      is kept as history and a new one is assigned, due in ``GRACE_DAYS``;
    - people who joined an active assignment's department or role since it was
      made get their record.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    # One UPDATE: the state and its timestamp change together, only for rows
    # still open and late, so a rerun (or a race with a person completing) is harmless.
    overdue = TrainingRecord.objects.filter(
        current=True,
        state__in=(TrainingRecord.ASSIGNED, TrainingRecord.IN_PROGRESS),
        due_date__lt=today,
    ).update(state=TrainingRecord.OVERDUE, overdue_at=now)

    recertified = 0
    expired = (
        TrainingRecord.objects.select_for_update(of=("self",))
        .filter(current=True, state=TrainingRecord.COMPLETED, expires_at__lte=now)
        .select_related("module", "user")
    )
    for old in expired:
        # Retire the old record first: one current record per person and module.
        TrainingRecord.objects.filter(pk=old.pk).update(current=False)
        renewal = TrainingRecord.objects.create(
            module=old.module,
            user_id=old.user_id,
            assignment_id=old.assignment_id,
            due_date=today + datetime.timedelta(days=GRACE_DAYS),
            assigned_at=now,
            recertification_of=old,
        )
        notify_after_commit(
            [old.user],
            f"Kaizen: time to recertify — “{old.module}” by {renewal.due_date:%Y-%m-%d}",
            f"Your completion of “{old.module}” from {old.completed_at:%Y-%m-%d} has expired. "
            f"Take it again by {renewal.due_date:%Y-%m-%d}.",
            old.module.get_absolute_url(),
        )
        recertified += 1

    joined = 0
    for assignment in TrainingAssignment.objects.filter(
        active=True, user__isnull=True, module__status=TrainingModule.PUBLISHED
    ).select_related("module"):
        joined += materialise(assignment, now)
    return {"overdue": overdue, "recertified": recertified, "joined": joined}


@shared_task(name="departments.tasks.refresh_training_states")
def refresh_training_states() -> dict[str, int]:
    """Beat: mark overdue training, re-assign expired completions, catch up new members."""
    return update_training_states()


@shared_task(name="departments.tasks.refresh_runbook_findings")
def refresh_runbook_findings() -> dict[str, int]:
    """Beat: a Finding for HR per target and standard runbook that is missing (new targets
    included), fixed once the runbook is published."""
    return sync_runbook_findings()


@shared_task(name="departments.tasks.evaluate_compliance")
def evaluate_compliance() -> dict[str, dict[str, int]]:
    """Beat: judge every active compliance control, then send due and overdue reminders."""
    now = timezone.now()
    return {
        "statuses": compliance.evaluate_all(now),
        "reminders": compliance.send_reminders(now),
    }
