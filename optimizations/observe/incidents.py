"""Incidents people can run: every change in a ``do_*`` function, audited, on the timeline.

Alerts open and resolve incidents through ``open_from_alert`` / ``resolve_from_alert``
(the minute check, the burn-rate rules, Prometheus' Alertmanager), idempotent per open
(target, source, key). People acknowledge, assign, escalate, add notes, link a runbook
and run its steps, resolve, and write the postmortem; the maintenance sweep escalates
what nobody acknowledged within KAIZEN_INCIDENT_ESCALATE_MINUTES to the department's
managers. Each change is an IncidentEvent written here, never by a signal.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from departments.models import Runbook
from optimizations.models import (
    Incident,
    IncidentEvent,
    Initiative,
    Phase,
    Postmortem,
    PostmortemAction,
    TargetService,
)
from optimizations.observe import channels
from optimizations.work.actions import do_create_task
from portal import hooks
from portal.audit import record
from portal.notify import Text

POSTMORTEM_TEMPLATE = "postmortem"


def _event(incident, kind, now, actor=None, text="", **data) -> IncidentEvent:
    return IncidentEvent.objects.create(
        incident=incident,
        kind=kind,
        at=now,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        text=text,
        data=data,
    )


def _audit(actor, action, incident, summary, **changes) -> None:
    record(actor, action, incident, summary, target=incident.target, changes=changes or None)


def open_from_alert(
    target: TargetService,
    source: str,
    key: str,
    summary: str,
    severity: str = "high",
    *,
    kind: str = Incident.ALERT,
    slo_key: str = "",
    started_at: datetime.datetime | None = None,
    labels: dict | None = None,
    now: datetime.datetime | None = None,
) -> Incident:
    """The open incident for (target, source, key), opened now if there is none (and the
    responders told). Calling it again while it is open returns the same incident."""
    now = now or timezone.now()
    existing = _open(target, source, key)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            incident = Incident.objects.create(
                target=target,
                kind=kind,
                slo_key=slo_key,
                source=source,
                key=key,
                severity=severity,
                started_at=started_at or now,
                detail=summary,
                notified=True,
            )
    except IntegrityError:  # another worker opened it a moment ago: that one stands
        found = _open(target, source, key)
        if found is None:
            raise
        return found
    _event(
        incident,
        IncidentEvent.OPENED,
        now,
        text=summary,
        source=source,
        key=key,
        severity=severity,
        labels=labels or {},
    )
    _audit(None, "incident.open", incident, f"{source} alert {key} opened: {summary}"[:300])
    deliveries = channels.send(
        incident,
        "incident.opened",
        Text(gettext_noop("Kaizen: %(summary)s"), summary=summary),
        _body(incident),
        now=now,
    )
    _notified(incident, deliveries, now)
    return incident


def resolve_from_alert(
    target: TargetService, source: str, key: str, *, now: datetime.datetime | None = None
) -> Incident | None:
    """Close the open incident of (target, source, key) because its alert cleared; None
    when there is none (already resolved, or never opened)."""
    now = now or timezone.now()
    incident = _open(target, source, key)
    if incident is None:
        return None
    _resolve(None, incident, now, f"The {source} alert {key} cleared.")
    return incident


def _open(target, source, key) -> Incident | None:
    return (
        Incident.objects.filter(target=target, source=source, key=key, ended_at__isnull=True)
        .select_related("target__owner_department")
        .first()
    )


def _body(incident: Incident) -> Text:
    when = timezone.localtime(incident.started_at).strftime("%Y-%m-%d %H:%M")
    facts = {
        "detail": incident.detail,
        "when": when,
        "severity": incident.severity,
        "source": incident.source,
    }
    if incident.ended_at:
        return Text(
            gettext_noop(
                "%(detail)s\nSince %(when)s, ended %(end)s. Severity %(severity)s, "
                "source %(source)s."
            ),
            end=f"{timezone.localtime(incident.ended_at):%H:%M}",
            **facts,
        )
    return Text(
        gettext_noop("%(detail)s\nSince %(when)s. Severity %(severity)s, source %(source)s."),
        **facts,
    )


def _notified(incident, deliveries, now) -> None:
    if deliveries:
        counts: dict[str, int] = {}
        for delivery in deliveries:
            counts[delivery.channel] = counts.get(delivery.channel, 0) + 1
        _event(
            incident,
            IncidentEvent.NOTIFIED,
            now,
            text=", ".join(f"{channel} ×{count}" for channel, count in sorted(counts.items())),
            **counts,
        )


def _resolve(actor, incident: Incident, now, text: str) -> None:
    Incident.objects.filter(pk=incident.pk).update(ended_at=now)
    incident.ended_at = now
    _event(incident, IncidentEvent.RESOLVED, now, actor, text)
    _audit(actor, "incident.resolve", incident, f"resolved incident #{incident.pk}: {text}"[:300])
    target = incident.target
    deliveries = channels.send(
        incident,
        "incident.resolved",
        Text(
            gettext_noop("Kaizen: %(target)s recovered (%(kind)s)"),
            target=target.name,
            kind=incident.get_kind_display(),
        ),
        _body(incident),
        now=now,
    )
    _notified(incident, deliveries, now)


# --- what people do ---------------------------------------------------------------


@transaction.atomic
def do_acknowledge(actor, incident: Incident, now=None) -> bool:
    """Someone is on it. False when it was acknowledged already or is over."""
    now = now or timezone.now()
    changed = Incident.objects.filter(
        pk=incident.pk, acknowledged_at__isnull=True, ended_at__isnull=True
    ).update(acknowledged_at=now, acknowledged_by=actor)
    if not changed:
        return False
    incident.acknowledged_at, incident.acknowledged_by = now, actor
    _event(incident, IncidentEvent.ACKNOWLEDGED, now, actor)
    _audit(actor, "incident.acknowledge", incident, f"acknowledged incident #{incident.pk}")
    return True


@transaction.atomic
def do_assign(actor, incident: Incident, assignee, now=None) -> bool:
    """Hand it to ``assignee`` (who hears of it in the inbox and by email)."""
    now = now or timezone.now()
    if incident.assignee_id == getattr(assignee, "pk", None):
        return False
    before = incident.assignee.username if incident.assignee else ""
    incident.assignee = assignee
    incident.save(update_fields=["assignee"])
    _event(incident, IncidentEvent.ASSIGNED, now, actor, assignee.username, user=assignee.pk)
    _audit(
        actor,
        "incident.assign",
        incident,
        f"assigned incident #{incident.pk} to {assignee.username}",
        assignee=[before, assignee.username],
    )
    channels.send(
        incident,
        "incident.assigned",
        Text(
            gettext_noop("Kaizen: incident #%(pk)s on %(target)s is yours"),
            pk=incident.pk,
            target=incident.target.name,
        ),
        _body(incident),
        people=[assignee],
        channels=(channels.Delivery.INBOX, channels.Delivery.EMAIL),
        now=now,
    )
    return True


@transaction.atomic
def do_escalate(actor, incident: Incident, now=None, reason: str = "") -> bool:
    """Tell the department's managers on every channel. False when it is over already."""
    now = now or timezone.now()
    if incident.ended_at is not None:
        return False
    Incident.objects.filter(pk=incident.pk).update(escalated_at=now)
    incident.escalated_at = now
    managers = channels.department_managers(incident)
    text = reason or "Escalated to the department's managers."
    _event(
        incident,
        IncidentEvent.ESCALATED,
        now,
        actor,
        text,
        managers=[person.username for person in managers],
    )
    _audit(actor, "incident.escalate", incident, f"escalated incident #{incident.pk}: {text}")
    channels.send(
        incident,
        "incident.escalated",
        Text(gettext_noop("Kaizen: escalated — %(detail)s"), detail=incident.detail[:150]),
        Text(gettext_noop("%(why)s\n%(body)s"), why=text, body=_body(incident)),
        people=managers,
        channels=(channels.Delivery.INBOX, channels.Delivery.EMAIL, channels.Delivery.WEBHOOK),
        now=now,
    )
    return True


def escalate_overdue(now=None) -> int:
    """The maintenance sweep: open incidents nobody acknowledged within
    KAIZEN_INCIDENT_ESCALATE_MINUTES go to the department's managers, once."""
    now = now or timezone.now()
    minutes = settings.KAIZEN_INCIDENT_ESCALATE_MINUTES
    overdue = Incident.objects.filter(
        ended_at__isnull=True,
        acknowledged_at__isnull=True,
        escalated_at__isnull=True,
        started_at__lte=now - datetime.timedelta(minutes=minutes),
    ).select_related("target__owner_department")
    count = 0
    for incident in overdue:
        count += do_escalate(
            None, incident, now, f"Nobody acknowledged it within {minutes} minutes."
        )
    return count


@transaction.atomic
def do_add_note(actor, incident: Incident, text: str, now=None) -> IncidentEvent:
    now = now or timezone.now()
    event = _event(incident, IncidentEvent.NOTE, now, actor, text)
    _audit(actor, "incident.note", incident, f"noted on incident #{incident.pk}")
    return event


@transaction.atomic
def do_link_runbook(actor, incident: Incident, runbook: Runbook, now=None) -> None:
    now = now or timezone.now()
    incident.runbook = runbook
    incident.save(update_fields=["runbook"])
    _event(incident, IncidentEvent.RUNBOOK, now, actor, runbook.title, slug=runbook.slug)
    _audit(actor, "incident.runbook", incident, f"linked runbook “{runbook}” to #{incident.pk}")


def do_record_step_run(actor, incident: Incident, step_run, now=None) -> IncidentEvent:
    """departments' runbook page ran a step for this incident: put it on the timeline."""
    now = now or timezone.now()
    return _event(
        incident,
        IncidentEvent.STEP_RUN,
        now,
        actor,
        f"{step_run.runbook.title}: step {step_run.step_index} ({step_run.label})",
        run=step_run.run_id,
        runbook=step_run.runbook.slug,
    )


@transaction.atomic
def do_resolve(actor, incident: Incident, now=None, note: str = "") -> bool:
    """A person closes it (the alert may not have cleared on its own)."""
    now = now or timezone.now()
    incident = Incident.objects.select_for_update().select_related("target").get(pk=incident.pk)
    if incident.ended_at is not None:
        return False
    _resolve(actor, incident, now, note or "Resolved by hand.")
    return True


# --- the postmortem ---------------------------------------------------------------


def postmortem_template(actor, incident: Incident) -> str:
    """The text a postmortem starts from: HR's runbook made from the "postmortem" template
    (created through departments' hook if absent), filled in for ``incident``."""
    runbook = _template_runbook()
    if runbook is None:
        hooks.call("postmortem_template_needed", actor)
        runbook = _template_runbook()
    text = runbook.current_revision.body if runbook and runbook.current_revision else ""
    started = timezone.localtime(incident.started_at).strftime("%Y-%m-%d %H:%M")
    ended = (
        timezone.localtime(incident.ended_at).strftime("%Y-%m-%d %H:%M")
        if incident.ended_at
        else "—"
    )
    return (
        text.replace("{target}", incident.target.name)
        .replace("{incident}", f"#{incident.pk}: {incident.detail}")
        .replace("{started}", started)
        .replace("{ended}", ended)
    )


def _template_runbook() -> Runbook | None:
    return (
        Runbook.objects.filter(template_key=POSTMORTEM_TEMPLATE)
        .exclude(status=Runbook.ARCHIVED)
        .select_related("current_revision")
        .order_by("pk")
        .first()
    )


def open_initiative(target: TargetService) -> Initiative | None:
    return Initiative.objects.filter(target=target, status=Initiative.ACTIVE).order_by("pk").first()


def _phase_for_tasks(initiative: Initiative) -> Phase | None:
    phases = initiative.phases.order_by("number")
    return (
        phases.filter(status=Phase.ACTIVE).first()
        or phases.exclude(status=Phase.DONE).first()
        or phases.last()
    )


@transaction.atomic
def do_write_postmortem(
    actor, incident: Incident, body: str, action_items: list[str], now=None
) -> Postmortem:
    """Write (or rewrite) the postmortem. New action items become tasks of the target's
    open initiative (in its active phase, for the target's owning department), or
    follow-ups kept on the incident when none is open."""
    now = now or timezone.now()
    postmortem, created = Postmortem.objects.update_or_create(
        incident=incident, defaults={"body": body, "author": actor, "written_at": now}
    )
    known = set(postmortem.actions.values_list("text", flat=True))
    initiative = open_initiative(incident.target)
    phase = _phase_for_tasks(initiative) if initiative else None
    tasks, follow_ups = 0, 0
    for text in dict.fromkeys(line.strip()[:200] for line in action_items if line.strip()):
        if text in known:
            continue
        task = None
        if phase is not None:
            task = do_create_task(
                actor,
                phase,
                title=text,
                description=f"From the postmortem of incident #{incident.pk}: {incident.detail}",
                department=incident.target.owner_department,
            )
            tasks += 1
        else:
            follow_ups += 1
        PostmortemAction.objects.create(postmortem=postmortem, text=text, task=task)
    where = (
        f"{tasks} task(s) in “{initiative}”"
        if phase is not None
        else f"{follow_ups} follow-up(s) on the incident (no open initiative)"
    )
    _event(
        incident,
        IncidentEvent.POSTMORTEM,
        now,
        actor,
        ("Postmortem written" if created else "Postmortem revised") + f"; {where}.",
        tasks=tasks,
        follow_ups=follow_ups,
    )
    _audit(actor, "incident.postmortem", incident, f"postmortem of incident #{incident.pk}")
    return postmortem


@transaction.atomic
def do_set_follow_up(actor, action: PostmortemAction, done: bool) -> None:
    action.done = done
    action.save(update_fields=["done"])
    incident = action.postmortem.incident
    _audit(actor, "incident.follow_up", incident, f"follow-up “{action.text}”: done={done}")
