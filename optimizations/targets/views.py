"""Pages for target services."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Q
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext, gettext_noop
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from optimizations.analyzers import dbscan
from optimizations.jobs import availability, cron, engine, kinds
from optimizations.jobs.forms import RunForm, ScheduleForm
from optimizations.models import Finding, Initiative, Schedule, TargetService
from optimizations.reports import sloboard
from optimizations.targets import slo
from optimizations.targets.crypto import CredentialUnreadable
from optimizations.targets.forms import TargetForm
from optimizations.work import actions
from optimizations.work.plan import attach_phases
from portal import access, demo_target
from portal.audit import record
from portal.i18n import Phrase
from portal.models import AuditEvent


@require_GET
def target_list(request):
    targets = TargetService.objects.select_related("owner_department").annotate(
        initiative_count=Count("initiatives", filter=Q(initiatives__status=Initiative.ACTIVE))
    )
    return render(
        request,
        "optimizations/targets/target_list.html",
        {"targets": targets, "can_edit": access.can_edit_targets(request.user)},
    )


@require_GET
def target_detail(request, slug):
    target = access.get_target_for_user(request, slug)
    initiatives = list(target.initiatives.select_related("owner").order_by("-created_at")[:20])
    attach_phases(initiatives)
    open_counts = dict(
        Finding.objects.filter(target=target, status=Finding.OPEN)
        .values_list("severity")
        .annotate(n=Count("pk"))
    )
    context = {
        "target": target,
        "initiatives": initiatives,
        "events": AuditEvent.objects.filter(target=target).select_related("actor")[:20],
        "can_edit": access.can_edit_targets(request.user),
        "can_manage": access.can_manage_initiatives(request.user),
        "can_trigger": access.can_trigger_jobs(request.user),
        "runs": list(
            target.runs.select_related("triggered_by", "initiative").order_by("-created_at")[:10]
        ),
        "open_findings": [(v, label, open_counts.get(v, 0)) for v, label in Finding.SEVERITIES],
        "open_total": sum(open_counts.values()),
        "run_form": RunForm(),
        "focus_by_mode": [(mode, tags) for mode, tags in Initiative.FOCUS_BY_MODE.items() if tags],
        "kinds": [
            (kind, kind.available(), engine.missing_needs(target, kind))
            for kind in kinds.KINDS.values()
        ],
        "uptime": availability.uptime(target),
        "incidents": list(target.incidents.order_by("-started_at")[:5]),
        "schedules": list(target.schedules.order_by("name")),
        "thresholds": [(t, target.thresholds()[t.key]) for t in slo.THRESHOLDS],
        "slo": sloboard.panel(target),
        "demo_mode": demo_target.mode_of(target),
        "runbooks": list(target.runbooks.exclude(status="archived").order_by("title")[:20]),
    }
    return render(request, "optimizations/targets/target_detail.html", context)


def derived_slug(name: str) -> str:
    """A free slug made from a target's name ("target" when the name has no Latin letters)."""
    base = slugify(name)[:50].strip("-") or "target"
    slug, number = base, 2
    while TargetService.objects.filter(slug=slug).exists():
        slug, number = f"{base}-{number}", number + 1
    return slug


@require_http_methods(["GET", "POST"])
def target_create(request):
    access.require(access.can_edit_targets(request.user))
    data = request.POST.copy() if request.method == "POST" else None
    if data is not None and not data.get("slug") and data.get("name"):
        data["slug"] = derived_slug(data["name"])
    form = TargetForm(data)
    if request.method == "POST" and form.is_valid():
        target = actions.do_create_target(
            request.user,
            credentials=form.credentials(),
            slo=form.thresholds(),
            **form.model_fields(),
        )
        messages.success(request, gettext("Target %(name)s registered.") % {"name": target.name})
        return redirect(target)
    return render(
        request, "optimizations/targets/target_form.html", {"form": form, "creating": True}
    )


@require_http_methods(["GET", "POST"])
def target_edit(request, slug):
    target = access.get_target_for_user(request, slug, write=True)
    form = TargetForm(request.POST or None, instance=target)
    if request.method == "POST" and form.is_valid():
        fresh = TargetService.objects.get(pk=target.pk)
        actions.do_update_target(
            request.user,
            fresh,
            credentials=form.credentials(),
            slo=form.thresholds(),
            **form.model_fields(),
        )
        messages.success(request, gettext("Target saved."))
        return redirect(fresh)
    return render(
        request,
        "optimizations/targets/target_form.html",
        {"form": form, "creating": False, "target": target},
    )


@require_http_methods(["GET", "POST"])
def schedule_create(request, slug):
    target = access.get_target_for_user(request, slug, schedule=True)
    form = ScheduleForm(request.POST or None, target=target, initial={"mode": "performance"})
    if request.method == "POST" and form.is_valid():
        schedule = form.save(commit=False)
        schedule.target, schedule.created_by = target, request.user
        _save_schedule(request.user, schedule, "schedule.create")
        messages.success(request, gettext("Schedule “%(name)s” added.") % {"name": schedule.name})
        return redirect(target)
    return render(
        request, "optimizations/targets/schedule_form.html", {"form": form, "target": target}
    )


@require_http_methods(["GET", "POST"])
def schedule_edit(request, pk):
    schedule = access.get_schedule_for_user(request, pk, write=True)
    form = ScheduleForm(request.POST or None, instance=schedule)
    if request.method == "POST":
        if request.POST.get("delete"):
            record(
                request.user,
                "schedule.delete",
                schedule,
                Phrase(gettext_noop("removed schedule %(name)s"), name=schedule.name),
                target=schedule.target,
            )
            schedule.delete()
            messages.success(request, gettext("Schedule removed."))
            return redirect(schedule.target)
        if form.is_valid():
            _save_schedule(request.user, form.save(commit=False), "schedule.edit")
            messages.success(request, gettext("Schedule saved."))
            return redirect(schedule.target)
    return render(
        request,
        "optimizations/targets/schedule_form.html",
        {"form": form, "target": schedule.target, "schedule": schedule},
    )


def _save_schedule(user, schedule: Schedule, action: str) -> None:
    schedule.next_run_at = cron.next_after(schedule.cron, timezone.localtime())
    schedule.save()
    record(
        user,
        action,
        schedule,
        Phrase(
            gettext_noop("added schedule “%(name)s” (%(cron)s, %(state)s)")
            if action.endswith("create")
            else gettext_noop("edited schedule “%(name)s” (%(cron)s, %(state)s)"),
            name=schedule.name,
            cron=schedule.cron,
            state=Phrase(gettext_noop("on") if schedule.enabled else gettext_noop("paused")),
        ),
        target=schedule.target,
    )


@require_POST
def database_test(request, slug):
    """The "test connection" button: what Kaizen can and cannot see on the target's database."""
    from django.conf import settings

    target = access.get_target_for_user(request, slug, write=True)
    if not target.database_url_encrypted:
        report = {"ok": False, "error": "No database URL is set for this target."}
    else:
        try:
            url = target.database_url
        except CredentialUnreadable as error:
            report = {"ok": False, "error": str(error)}
        else:
            report = dbscan.test_connection(url, tuple(settings.KAIZEN_ALLOWED_TARGET_HOSTS))
    return render(
        request, "optimizations/targets/database_test.html", {"target": target, "report": report}
    )
