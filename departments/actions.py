"""Writes to people and memberships, runbooks and training — each one audited."""

from __future__ import annotations

import datetime
import hashlib
from collections import defaultdict

from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext_noop

from departments.models import (
    Department,
    Membership,
    Profile,
    QuizAttempt,
    Runbook,
    RunbookRevision,
    RunbookStepRun,
    Topic,
    TrainingAssignment,
    TrainingGate,
    TrainingModule,
    TrainingRecord,
)
from departments.quiz import parse as parse_quiz
from departments.quiz import score as score_quiz
from departments.runbook_templates import TEMPLATES
from optimizations.jobs import engine
from optimizations.models import Finding, TargetService
from optimizations.work import findings
from portal.audit import describe_changes, record
from portal.i18n import Phrase
from portal.notify import Text, notify


@transaction.atomic
def do_add_person(actor, *, username, first_name, last_name, email, password, department, role):
    """Create a user with a first membership."""
    user = get_user_model().objects.create_user(
        username=username,
        first_name=first_name,
        last_name=last_name,
        email=email,
        password=password,
    )
    Profile.objects.create(user=user)
    membership = Membership.objects.create(user=user, department=department, role=role)
    record(
        actor,
        "membership.create",
        membership,
        Phrase(
            gettext_noop("added %(user)s to %(department)s as %(role)s"),
            user=user.username,
            department=department.name,
            role=dict(Membership.ROLES)[membership.role],
        ),
        changes={"role": [None, role]},
    )
    return user


@transaction.atomic
def do_set_membership(actor, user, department, role) -> Membership:
    """Give ``user`` ``role`` in ``department``, creating or changing the membership."""
    membership = Membership.objects.filter(user=user, department=department).first()
    old = membership.role if membership else None
    if membership is None:
        membership = Membership.objects.create(user=user, department=department, role=role)
    elif membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    if old != role:
        record(
            actor,
            "membership.role" if old else "membership.create",
            membership,
            Phrase(
                gettext_noop("%(user)s is now %(role)s of %(department)s (was %(old)s)")
                if old
                else gettext_noop("%(user)s is now %(role)s of %(department)s"),
                user=user.username,
                role=dict(Membership.ROLES)[membership.role],
                department=department.name,
                old=dict(Membership.ROLES).get(old, old) if old else "",
            ),
            changes={"role": [old, role]},
        )
    return membership


@transaction.atomic
def do_remove_membership(actor, membership: Membership) -> None:
    record(
        actor,
        "membership.delete",
        membership,
        Phrase(
            gettext_noop("removed %(user)s from %(department)s"),
            user=membership.user.username,
            department=membership.department.name,
        ),
        changes={"role": [membership.role, None]},
    )
    membership.delete()


def do_set_time_zone(user, time_zone: str) -> None:
    Profile.objects.update_or_create(user=user, defaults={"time_zone": time_zone})


# --- runbooks -------------------------------------------------------------------

RUNBOOK_SETTINGS = (
    "owner_department",
    "owner",
    "status",
    "topics",
    "targets",
    "phases",
    "next_review_date",
    "review_interval_days",
)


def unique_slug(model, title: str, *, max_length: int = 80) -> str:
    base = slugify(title)[: max_length - 4].strip("-") or model._meta.model_name
    slug, n = base, 2
    while model.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _settings_snapshot(runbook: Runbook) -> dict:
    return {
        "owner_department": runbook.owner_department.name,
        "owner": runbook.owner.username if runbook.owner is not None else None,
        "status": runbook.status,
        "topics": ", ".join(sorted(t.name for t in runbook.topics.all())) or None,
        "targets": ", ".join(sorted(t.name for t in runbook.targets.all())) or None,
        "phases": ", ".join(str(n) for n in sorted(runbook.phases)) or None,
        "next_review_date": runbook.next_review_date,
        "review_interval_days": runbook.review_interval_days,
    }


def _next_number(runbook: Runbook) -> int:
    # The runbook row is locked by the caller, so two saves cannot pick one number.
    last = runbook.revisions.order_by("-number").values_list("number", flat=True).first()
    return (last or 0) + 1


def _lock(runbook: Runbook) -> Runbook:
    """Lock the runbook's row for the rest of the transaction (no-op on SQLite, which
    serialises writers anyway); revision numbers are picked under this lock."""
    Runbook.objects.select_for_update().filter(pk=runbook.pk).first()
    return runbook


def _add_accepted(actor, runbook, *, title, body, note, copy_of=None) -> RunbookRevision:
    revision = RunbookRevision.objects.create(
        runbook=runbook,
        number=_next_number(runbook),
        title=title,
        body=body,
        note=note,
        state=RunbookRevision.ACCEPTED,
        author=actor,
        copy_of=copy_of,
    )
    runbook.title = title
    runbook.current_revision = revision
    runbook.save(update_fields=["title", "current_revision", "updated_at"])
    return revision


@transaction.atomic
def do_create_runbook(
    actor,
    *,
    title,
    body,
    owner_department,
    note="",
    owner=None,
    status=Runbook.DRAFT,
    topics=(),
    targets=(),
    phases=(),
    next_review_date=None,
    review_interval_days=180,
    template_key="",
) -> Runbook:
    """Create a runbook and its first revision."""
    if status == Runbook.PUBLISHED and next_review_date is None:
        next_review_date = timezone.localdate() + datetime.timedelta(days=review_interval_days)
    runbook = Runbook.objects.create(
        title=title,
        slug=unique_slug(Runbook, title),
        owner_department=owner_department,
        owner=owner,
        status=status,
        phases=sorted({int(n) for n in phases}),
        next_review_date=next_review_date,
        review_interval_days=review_interval_days,
        template_key=template_key,
        created_by=actor,
    )
    runbook.topics.set(topics)
    runbook.targets.set(targets)
    _add_accepted(actor, runbook, title=title, body=body, note=note or "Created")
    if status == Runbook.PUBLISHED and targets:
        sync_runbook_findings(targets)
    record(
        actor,
        "runbook.create",
        runbook,
        Phrase(
            gettext_noop("created runbook “%(title)s” from the %(template)s template")
            if template_key
            else gettext_noop("created runbook “%(title)s”"),
            title=title,
            template=template_key or "",
        ),
    )
    return runbook


@transaction.atomic
def do_save_runbook(actor, runbook: Runbook, *, title, body, note="") -> RunbookRevision | None:
    """HR saves new text: a new accepted revision, or None when nothing changed."""
    _lock(runbook)
    current = runbook.current_revision
    if current is not None and current.title == title and current.body == body:
        return None
    revision = _add_accepted(actor, runbook, title=title, body=body, note=note)
    record(
        actor,
        "runbook.edit",
        runbook,
        Phrase(
            gettext_noop("saved revision %(number)s of “%(title)s”: %(note)s")
            if note
            else gettext_noop("saved revision %(number)s of “%(title)s”"),
            number=revision.number,
            title=title,
            note=note or "",
        ),
    )
    return revision


@transaction.atomic
def do_update_runbook_settings(actor, runbook: Runbook, **fields) -> dict:
    """Owner, status, tags and review dates; audited as a list of what changed."""
    before = _settings_snapshot(runbook)
    targets_before = list(runbook.targets.all())
    for name in ("topics", "targets"):
        if name in fields:
            getattr(runbook, name).set(fields.pop(name))
    if "phases" in fields:
        fields["phases"] = sorted({int(n) for n in fields["phases"]})
    for name, value in fields.items():
        setattr(runbook, name, value)
    if runbook.status == Runbook.PUBLISHED and runbook.next_review_date is None:
        runbook.next_review_date = timezone.localdate() + datetime.timedelta(
            days=runbook.review_interval_days
        )
    runbook.save()
    changes = describe_changes(before, _settings_snapshot(runbook))
    if {"status", "topics", "targets"} & set(changes):
        sync_runbook_findings({*targets_before, *runbook.targets.all()})
    if changes:
        record(
            actor,
            "runbook.settings",
            runbook,
            Phrase(
                gettext_noop("changed %(fields)s of “%(title)s”"),
                fields=", ".join(name.replace("_", " ") for name in changes),
                title=str(runbook),
            ),
            changes=changes,
        )
    return changes


@transaction.atomic
def do_propose_runbook_edit(actor, runbook: Runbook, *, title, body, note="") -> RunbookRevision:
    """An engineer's change, kept as a proposal until HR approves or rejects it."""
    _lock(runbook)
    revision = RunbookRevision.objects.create(
        runbook=runbook,
        number=_next_number(runbook),
        title=title,
        body=body,
        note=note,
        state=RunbookRevision.PROPOSED,
        author=actor,
        based_on=runbook.current_revision,
    )
    record(
        actor,
        "runbook.propose",
        runbook,
        Phrase(
            gettext_noop("proposed revision %(number)s of “%(title)s”: %(note)s")
            if note
            else gettext_noop("proposed revision %(number)s of “%(title)s”"),
            number=revision.number,
            title=str(runbook),
            note=note or "",
        ),
    )
    if runbook.owner_id and runbook.owner != actor:
        notify_after_commit(
            [runbook.owner],
            f"Kaizen: a change to “{runbook}” waits for your review",
            f"{_name(actor)} proposed a change to the runbook “{runbook}”"
            + (f": {note}" if note else "."),
            revision.get_absolute_url(),
        )
    return revision


def _refuse_unless_proposed(revision: RunbookRevision) -> None:
    if revision.state != RunbookRevision.PROPOSED:
        raise ValueError(f"revision {revision.number} is not waiting for review")


@transaction.atomic
def do_approve_revision(actor, proposal: RunbookRevision, note="") -> RunbookRevision:
    """Accept a proposal: its text becomes a new current revision, in order."""
    runbook = _lock(proposal.runbook)
    proposal = RunbookRevision.objects.select_for_update().get(pk=proposal.pk)
    _refuse_unless_proposed(proposal)
    accepted = _add_accepted(
        proposal.author,
        runbook,
        title=proposal.title,
        body=proposal.body,
        note=proposal.note or f"Proposal r{proposal.number}",
        copy_of=proposal,
    )
    accepted.reviewed_by, accepted.reviewed_at = actor, timezone.now()
    accepted.review_note = note
    accepted.save(update_fields=["reviewed_by", "reviewed_at", "review_note"])
    proposal.state = RunbookRevision.APPROVED
    proposal.reviewed_by, proposal.reviewed_at, proposal.review_note = (
        actor,
        accepted.reviewed_at,
        note,
    )
    proposal.save(update_fields=["state", "reviewed_by", "reviewed_at", "review_note"])
    record(
        actor,
        "runbook.approve",
        runbook,
        Phrase(
            gettext_noop(
                "approved %(author)s’s proposal r%(proposal)s of “%(title)s” as revision %(number)s"
            ),
            author=_name(proposal.author),
            proposal=proposal.number,
            title=str(runbook),
            number=accepted.number,
        ),
    )
    return accepted


@transaction.atomic
def do_reject_revision(actor, proposal: RunbookRevision, note="") -> None:
    proposal = RunbookRevision.objects.select_for_update().get(pk=proposal.pk)
    _refuse_unless_proposed(proposal)
    proposal.state = RunbookRevision.REJECTED
    proposal.reviewed_by, proposal.reviewed_at, proposal.review_note = (
        actor,
        timezone.now(),
        note,
    )
    proposal.save(update_fields=["state", "reviewed_by", "reviewed_at", "review_note"])
    record(
        actor,
        "runbook.reject",
        proposal.runbook,
        Phrase(
            gettext_noop("rejected %(author)s’s proposal r%(proposal)s of “%(title)s”: %(note)s")
            if note
            else gettext_noop("rejected %(author)s’s proposal r%(proposal)s of “%(title)s”"),
            author=_name(proposal.author),
            proposal=proposal.number,
            title=str(proposal.runbook),
            note=note or "",
        ),
    )


@transaction.atomic
def do_restore_revision(actor, revision: RunbookRevision) -> RunbookRevision:
    """Make an old revision current again by adding a copy of it: nothing is lost."""
    if revision.state != RunbookRevision.ACCEPTED:
        raise ValueError("only saved revisions can be restored; proposals are approved")
    runbook = _lock(revision.runbook)
    restored = _add_accepted(
        actor,
        runbook,
        title=revision.title,
        body=revision.body,
        note=f"Restored revision {revision.number}",
        copy_of=revision,
    )
    record(
        actor,
        "runbook.restore",
        runbook,
        Phrase(
            gettext_noop("restored revision %(number)s of “%(title)s” as revision %(new)s"),
            number=revision.number,
            title=str(runbook),
            new=restored.number,
        ),
    )
    return restored


@transaction.atomic
def do_mark_runbook_reviewed(actor, runbook: Runbook) -> None:
    """The owner checked the runbook: clear the flag and set the next review date."""
    before = runbook.next_review_date
    runbook.review_needed = False
    runbook.review_reason = ""
    runbook.last_reviewed_at = timezone.now()
    runbook.next_review_date = timezone.localdate() + datetime.timedelta(
        days=runbook.review_interval_days
    )
    runbook.save(
        update_fields=[
            "review_needed",
            "review_reason",
            "last_reviewed_at",
            "next_review_date",
            "updated_at",
        ]
    )
    record(
        actor,
        "runbook.reviewed",
        runbook,
        Phrase(
            gettext_noop("reviewed “%(title)s”; next review %(date)s"),
            title=str(runbook),
            date=str(runbook.next_review_date),
        ),
        changes=describe_changes(
            {"next_review_date": before}, {"next_review_date": runbook.next_review_date}
        ),
    )


def create_postmortem_runbook(actor) -> Runbook:
    """The runbook every postmortem starts from, made from HR's "postmortem" template and
    published (the hook ``postmortem_template_needed``: a postmortem was begun without one)."""
    existing = (
        Runbook.objects.filter(template_key="postmortem").exclude(status=Runbook.ARCHIVED).first()
    )
    if existing is not None:
        return existing
    template = TEMPLATES["postmortem"]
    title, body = template.fill("every service")
    return do_create_runbook(
        actor if getattr(actor, "is_authenticated", False) else None,
        title=title,
        body=body,
        owner_department=Department.objects.get(code=Department.HR),
        status=Runbook.PUBLISHED,
        topics=Topic.objects.filter(slug__in=template.topics),
        template_key=template.key,
        note="Created for the first postmortem",
    )


def do_run_runbook_step(actor, runbook: Runbook, step, target) -> RunbookStepRun:
    """Start the job a runbook's ``kaizen-run`` step describes, and keep it in the
    runbook's run history. The jobs engine checks the kind, the parameters and the
    target, and raises ``CannotStart`` with a reason for a person."""
    run = engine.start_job(actor, target, step.kind, dict(step.params), trigger="runbook")
    step_run = RunbookStepRun.objects.create(
        runbook=runbook,
        revision=runbook.current_revision,
        step_index=step.index,
        label=step.label[:200],
        run=run,
        triggered_by=actor,
    )
    record(
        actor,
        "runbook.step",
        runbook,
        Phrase(
            gettext_noop(
                "ran step %(step)s of “%(title)s” (%(label)s): run #%(run)s on %(target)s"
            ),
            step=step.index,
            title=str(runbook),
            label=step.label,
            run=run.pk,
            target=target.name,
        ),
        target=target,
    )
    return step_run


# Finishing these phases changes how a service runs (code and queries in 2,
# infrastructure in 3), so its runbooks may no longer be right.
REVIEW_AFTER_PHASES = (2, 3)


def flag_runbooks_for_review(initiative, phase, actor) -> list[Runbook]:
    """Flag the runbooks of the initiative's target "review needed" and tell their owners.

    Registered as the ``phase_done`` hook (departments/apps.py), which
    ``optimizations.work.actions.do_set_phase_status`` calls when a phase becomes
    done; does nothing for phases other than 2 and 3. Runbooks already flagged
    keep their first reason and are not mailed again.
    """
    if phase.number not in REVIEW_AFTER_PHASES:
        return []
    target = initiative.target
    runbooks = list(
        Runbook.objects.filter(targets=target, review_needed=False)
        .exclude(status=Runbook.ARCHIVED)
        .select_related("owner")
    )
    if not runbooks:
        return []
    reason = (
        f"Phase {phase.number} ({phase.name}) of “{initiative.title}” finished on "
        f"{timezone.localdate():%Y-%m-%d}: {target.name} changed."
    )[:300]
    now = timezone.now()
    Runbook.objects.filter(pk__in=[r.pk for r in runbooks]).update(
        review_needed=True, review_reason=reason, updated_at=now
    )
    by_owner: dict[int, list[Runbook]] = {}
    for runbook in runbooks:
        runbook.review_needed, runbook.review_reason = True, reason
        record(
            actor,
            "runbook.review_needed",
            runbook,
            Phrase(
                gettext_noop("flagged “%(title)s” for review: %(reason)s"),
                title=str(runbook),
                reason=reason,
            ),
            initiative=initiative,
            target=target,
        )
        if runbook.owner_id:
            by_owner.setdefault(runbook.owner_id, []).append(runbook)
    for owned in by_owner.values():
        lines = "\n".join(f"- {r.title}: {r.get_absolute_url()}" for r in owned)
        notify_after_commit(
            [owned[0].owner],
            Text(
                gettext_noop("Kaizen: %(count)s runbook to review for %(target)s")
                if len(owned) == 1
                else gettext_noop("Kaizen: %(count)s runbooks to review for %(target)s"),
                count=len(owned),
                target=target.name,
            ),
            Text(
                gettext_noop(
                    "%(reason)s\n\nRunbooks you own that may need changes:\n%(lines)s\n\n"
                    "Open each one, update it if needed, and press “Mark reviewed”."
                ),
                reason=reason,
                lines=lines,
            ),
            reverse("runbook_reviews"),
        )
    return runbooks


def _name(user) -> str:
    if user is None:
        return "somebody"
    return user.get_full_name() or user.username


def notify_after_commit(users, subject, body, url: str = "") -> None:
    """Inbox entry and email (portal.notify) once the change is committed: a change that
    rolls back tells nobody, and a mail relay that is down never fails the change."""
    users = list(users)
    transaction.on_commit(lambda: notify(users, subject, body, url))


# --- training -------------------------------------------------------------------

MODULE_FIELDS = (
    "title",
    "summary",
    "content",
    "quiz",
    "pass_mark",
    "recertify_after_days",
    "status",
    "owner_department",
)
# A recertification, and a late joiner whose assignment's date has passed, get this long.
GRACE_DAYS = 14


@transaction.atomic
def do_create_module(actor, *, runbooks=(), **fields) -> TrainingModule:
    module = TrainingModule.objects.create(
        slug=unique_slug(TrainingModule, fields["title"]), created_by=actor, **fields
    )
    module.runbooks.set(runbooks)
    record(
        actor,
        "training.module.create",
        module,
        Phrase(gettext_noop("created training module “%(title)s”"), title=str(module)),
    )
    return module


@transaction.atomic
def do_update_module(actor, module: TrainingModule, *, runbooks=None, **fields) -> dict:
    before = {name: getattr(module, name) for name in MODULE_FIELDS}
    before["runbooks"] = ", ".join(sorted(r.title for r in module.runbooks.all())) or None
    for name, value in fields.items():
        setattr(module, name, value)
    module.save()
    if runbooks is not None:
        module.runbooks.set(runbooks)
    after = {name: getattr(module, name) for name in MODULE_FIELDS}
    after["runbooks"] = ", ".join(sorted(r.title for r in module.runbooks.all())) or None
    changes = describe_changes(before, after)
    # Long texts are named, not copied into the audit trail.
    for name in ("content", "quiz"):
        if name in changes:
            changes[name] = ["…", "changed"]
    if changes:
        record(
            actor,
            "training.module.edit",
            module,
            Phrase(
                gettext_noop("edited %(fields)s of “%(title)s”"),
                fields=", ".join(n.replace("_", " ") for n in changes),
                title=str(module),
            ),
            changes=changes,
        )
    return changes


def materialise(assignment: TrainingAssignment, now=None) -> int:
    """Give each person of the assignment's audience a record, unless they have a current
    one for the module already (open, or a completion that still counts). Idempotent:
    the partial unique constraint holds one current record per person and module."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    due = assignment.due_date
    if due < today:  # somebody joined the audience after the date
        due = today + datetime.timedelta(days=GRACE_DAYS)
    has_current = TrainingRecord.objects.filter(module=assignment.module, current=True).values(
        "user_id"
    )
    new = [
        TrainingRecord(
            module=assignment.module,
            user=user,
            assignment=assignment,
            due_date=due,
            assigned_at=now,
        )
        for user in assignment.audience_users().exclude(pk__in=has_current)
    ]
    TrainingRecord.objects.bulk_create(new)
    return len(new)


@transaction.atomic
def do_assign_training(
    actor, module: TrainingModule, *, due_date, user=None, department=None, role="", note=""
) -> tuple[TrainingAssignment, int]:
    """Assign ``module`` to a person, a department, a role, or a role in a department."""
    if user is None and department is None and not role:
        raise ValueError("an assignment needs a person, a department or a role")
    assignment = TrainingAssignment.objects.create(
        module=module,
        user=user,
        department=department,
        role=role,
        due_date=due_date,
        note=note,
        assigned_by=actor,
    )
    count = materialise(assignment)
    notify_after_commit(
        [r.user for r in assignment.records.select_related("user")],
        f"Kaizen: training to take — “{module}” by {due_date:%Y-%m-%d}",
        f"{_name(actor)} assigned you the training module “{module}”, due {due_date:%Y-%m-%d}."
        + (f" {note}" if note else ""),
        module.get_absolute_url(),
    )
    record(
        actor,
        "training.assign",
        assignment,
        Phrase(
            gettext_noop("assigned “%(title)s” to %(audience)s by %(date)s (1 person)")
            if count == 1
            else gettext_noop(
                "assigned “%(title)s” to %(audience)s by %(date)s (%(count)s people)"
            ),
            title=str(module),
            audience=assignment.audience(),
            date=str(due_date),
            count=count,
        ),
    )
    return assignment, count


@transaction.atomic
def do_withdraw_assignment(actor, assignment: TrainingAssignment) -> int:
    """Stop an assignment: its people's unfinished records go; completions stay."""
    assignment.active = False
    assignment.save(update_fields=["active"])
    removed, _ = (
        TrainingRecord.objects.filter(assignment=assignment, current=True)
        .exclude(state=TrainingRecord.COMPLETED)
        .delete()
    )
    record(
        actor,
        "training.withdraw",
        assignment,
        Phrase(
            gettext_noop("withdrew “%(title)s” from %(audience)s"),
            title=str(assignment.module),
            audience=assignment.audience(),
        ),
    )
    return removed


@transaction.atomic
def do_start_training(user, module: TrainingModule) -> TrainingRecord:
    """The person starts ``module``: their record moves to in progress (stamped once).

    Anybody may take a published module unasked (to pass a training gate, say):
    without a current record they get one of their own, due in ``GRACE_DAYS``.
    """
    now = timezone.now()
    training = (
        TrainingRecord.objects.select_for_update()
        .filter(user=user, module=module, current=True)
        .first()
    )
    if training is None:
        training = TrainingRecord.objects.create(
            module=module,
            user=user,
            due_date=timezone.localdate(now) + datetime.timedelta(days=GRACE_DAYS),
            assigned_at=now,
        )
        record(
            user,
            "training.enrol",
            training,
            Phrase(gettext_noop("started “%(title)s” unassigned"), title=str(module)),
        )
    if training.start(now):
        training.save(update_fields=["state", "started_at"])
    return training


@transaction.atomic
def do_submit_quiz(user, training: TrainingRecord, answers: dict[int, set[int]]):
    """Score a quiz submission; a pass completes the training with the result as evidence."""
    training = (
        TrainingRecord.objects.select_for_update().select_related("module").get(pk=training.pk)
    )
    if not training.current or training.state == TrainingRecord.COMPLETED:
        raise TrainingRecord.IllegalTransition("this training is already completed")
    module = training.module
    result = score_quiz(parse_quiz(module.quiz), answers, module.pass_mark)
    now = timezone.now()
    training.start(now)
    attempt = QuizAttempt.objects.create(
        record=training,
        answers={str(k): sorted(v) for k, v in answers.items()},
        correct=result.correct,
        total=result.total,
        score=result.percent,
        passed=result.passed,
    )
    if result.passed:
        training.complete(
            now,
            evidence=f"Quiz passed: {result.correct} of {result.total} right ({result.percent} %, "
            f"pass mark {module.pass_mark} %), attempt #{attempt.pk}.",
            score=result.percent,
        )
        record(
            user,
            "training.complete",
            training,
            Phrase(
                gettext_noop("completed “%(title)s” (%(percent)s %%)"),
                title=str(module),
                percent=result.percent,
            ),
        )
    training.save()
    return attempt, result


@transaction.atomic
def do_complete_training(user, training: TrainingRecord, evidence: str) -> None:
    """Complete a module without a quiz, in the person's own words."""
    training = (
        TrainingRecord.objects.select_for_update().select_related("module").get(pk=training.pk)
    )
    if training.module.has_quiz():
        raise TrainingRecord.IllegalTransition("this module is completed by passing its quiz")
    training.complete(timezone.now(), evidence=evidence)
    training.save()
    record(
        user,
        "training.complete",
        training,
        Phrase(gettext_noop("completed “%(title)s”"), title=str(training.module)),
    )


@transaction.atomic
def do_set_training_gate(actor, target, module: TrainingModule, job_kind=TrainingGate.BENCHMARK):
    gate, created = TrainingGate.objects.get_or_create(
        target=target, module=module, job_kind=job_kind, defaults={"created_by": actor}
    )
    if created:
        record(
            actor,
            "training.gate.set",
            gate,
            Phrase(
                gettext_noop("%(jobs)s on %(target)s now need “%(title)s”"),
                jobs=dict(TrainingGate.JOB_KINDS).get(gate.job_kind, gate.job_kind),
                target=target.name,
                title=str(module),
            ),
            target=target,
        )
    return gate


@transaction.atomic
def do_remove_training_gate(actor, gate: TrainingGate) -> None:
    record(
        actor,
        "training.gate.remove",
        gate,
        Phrase(
            gettext_noop("%(jobs)s on %(target)s no longer need “%(title)s”"),
            jobs=dict(TrainingGate.JOB_KINDS).get(gate.job_kind, gate.job_kind),
            target=gate.target.name,
            title=str(gate.module),
        ),
        target=gate.target,
    )
    gate.delete()


# --- coverage findings ------------------------------------------------------------

COVERAGE_RULE = "runbook.missing"
COVERAGE_CATEGORY = "operations"  # HR's: runbooks, training, incident response


def _coverage_fingerprint(topic_slug: str) -> str:
    # The same identity the analyzers' findings use (source, rule, key).
    identity = "\x1f".join(("runbook", COVERAGE_RULE, topic_slug))
    return hashlib.sha256(identity.encode()).hexdigest()[:40]


@transaction.atomic
def sync_runbook_findings(targets=None, now=None) -> dict[str, int]:
    """Keep one Finding per target and standard topic without a published runbook.

    A gap opens a finding (source "runbook") for HR; a runbook published for it
    fixes the finding; archiving it again reopens it. Findings a person triaged
    (accepted, won't fix, false positive) are left as they are. Idempotent: the
    write functions call it for the targets they touch, the periodic task for all.
    """
    now = now or timezone.now()
    targets = list(targets) if targets is not None else list(TargetService.objects.all())
    topics = list(Topic.objects.filter(standard=True))
    covering = defaultdict(list)
    for target_id, topic_id, title in Runbook.objects.filter(
        status=Runbook.PUBLISHED, targets__in=targets, topics__in=topics
    ).values_list("targets", "topics", "title"):
        covering[(target_id, topic_id)].append(title)
    prints = {_coverage_fingerprint(topic.slug): topic for topic in topics}
    existing = {
        (f.target_id, f.fingerprint): f
        for f in Finding.objects.filter(target__in=targets, fingerprint__in=list(prints))
    }
    counts = {"opened": 0, "fixed": 0, "reopened": 0}
    for target in targets:
        for fingerprint, topic in prints.items():
            finding = existing.get((target.pk, fingerprint))
            titles = covering[(target.pk, topic.pk)]
            if titles:
                # The coverage check ran and sees a published runbook: the findings
                # service fixes the finding (the one owner of status changes).
                if finding is not None:
                    counts["fixed"] += findings.fix_by_check(
                        [finding], f"Published runbook: {titles[0]}.", now=now
                    )
                continue
            create_url = (
                reverse("runbook_create")
                + f"?template={_TEMPLATE_BY_TOPIC.get(topic.slug, '')}"
                + f"&topic={topic.slug}&target={target.slug}"
            )
            if finding is None:
                Finding.objects.create(
                    target=target,
                    source="runbook",
                    rule_id=COVERAGE_RULE,
                    severity="medium",
                    category=COVERAGE_CATEGORY,
                    title=f"No published {topic.name.lower()} runbook for {target.name}",
                    location=f"runbooks: {topic.slug}",
                    evidence={"check": "runbook.coverage", "topic": topic.slug},
                    fix_hint=f"HR writes and publishes a {topic.name.lower()} runbook tagged "
                    f"with {target.name}: {create_url}",
                    fingerprint=fingerprint,
                    first_seen_at=now,
                    last_seen_at=now,
                )
                counts["opened"] += 1
            elif findings.reopen(finding, "No published runbook covers it any more.", now=now):
                fields = ["status", "fixed_at", "fixed_in_job", "last_seen_at", "status_reason"]
                finding.save(update_fields=fields)
                counts["reopened"] += 1
    return counts


_TEMPLATE_BY_TOPIC = {
    topic: template.key for template in TEMPLATES.values() for topic in template.topics
}
