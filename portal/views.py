"""The dashboard, the audit list and the user's own settings."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.core.paginator import Paginator
from django.db.models import Count, Q, Sum
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import get_language_from_request, gettext_lazy, gettext_noop
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from departments.actions import do_set_time_zone
from departments.models import Department, Profile
from optimizations.models import Initiative, Phase, PhaseTask
from optimizations.work.plan import attach_phases
from portal import access, demo_target
from portal.audit import record
from portal.demo import DEMO_TARGET_SLUG
from portal.http import HtmxHttpRequest
from portal.i18n import Phrase
from portal.language import SESSION_KEY, do_set_language, stored_language
from portal.models import AuditEvent, Notification
from portal.status import broker_facts, snapshot


@require_GET
def dashboard(request):
    today = timezone.localdate()
    initiatives = list(
        Initiative.objects.filter(status=Initiative.ACTIVE)
        .select_related("target", "owner")
        .order_by("target_date", "-created_at")[:20]
    )
    attach_phases(initiatives)
    open_tasks = PhaseTask.objects.filter(status__in=PhaseTask.OPEN_STATUSES).exclude(
        phase__initiative__status__in=(Initiative.DONE, Initiative.ARCHIVED)
    )
    my_tasks = (
        open_tasks.filter(assignee=request.user)
        .select_related("phase__initiative", "department")
        .order_by("due_date", "pk")[:20]
    )
    by_department = {
        row["department"]: row
        for row in open_tasks.values("department").annotate(
            count=Count("pk"),
            blocked=Count("pk", filter=Q(status=PhaseTask.BLOCKED)),
            overdue=Count("pk", filter=Q(due_date__lt=today)),
            hours=Sum("estimate_hours"),
        )
    }
    departments = list(Department.objects.all())
    for department in departments:
        row = by_department.get(department.pk, {})
        department.open_count = row.get("count", 0)
        department.blocked_count = row.get("blocked", 0)
        department.overdue_count = row.get("overdue", 0)
        department.open_hours = row.get("hours") or 0
    overdue_tasks = (
        open_tasks.filter(due_date__lt=today)
        .select_related("phase__initiative", "department", "assignee")
        .order_by("due_date")[:20]
    )
    overdue_phases = (
        Phase.objects.filter(
            planned_end__lt=today,
            status__in=(Phase.NOT_STARTED, Phase.ACTIVE),
            initiative__status=Initiative.ACTIVE,
        )
        .select_related("initiative", "lead_department")
        .order_by("planned_end")[:20]
    )
    context = {
        "initiatives": initiatives,
        "my_tasks": my_tasks,
        "departments": departments,
        "overdue_tasks": overdue_tasks,
        "overdue_phases": overdue_phases,
        "today": today,
        "can_create": access.can_manage_initiatives(request.user),
    }
    return render(request, "portal/dashboard.html", context)


@require_GET
@vary_on_headers("HX-Request")
def audit_list(request: HtmxHttpRequest) -> HttpResponse:
    access.require(access.can_view_audit(request.user))
    events = AuditEvent.objects.select_related("actor", "initiative", "target")
    query = request.GET.get("q", "").strip()
    action = request.GET.get("action", "").strip()
    if query:
        events = events.filter(
            Q(summary__icontains=query)
            | Q(object_repr__icontains=query)
            | Q(actor__username__icontains=query)
        )
    if action:
        events = events.filter(action__startswith=action)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    template = "portal/audit_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    actions = [
        "initiative",
        "phase",
        "task",
        "target",
        "membership",
        "job",
        "finding",
        "schedule",
        "token",
        "runbook",
        "training",
    ]
    return render(
        request, template, {"page": page, "q": query, "action": action, "actions": actions}
    )


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(label=gettext_lazy("Time zone"), choices=[])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [
            (name, name) for name in sorted(zoneinfo.available_timezones())
        ]


class LanguageForm(forms.Form):
    language = forms.ChoiceField(
        label=gettext_lazy("Language"),
        required=False,
        choices=[("", gettext_lazy("The browser's language")), *settings.LANGUAGES],
    )


@require_http_methods(["GET", "POST"])
def profile(request):
    current = Profile.objects.filter(user=request.user).values_list("time_zone", flat=True).first()
    tz_form = TimeZoneForm(initial={"time_zone": current or "UTC"})
    language_form = LanguageForm(initial={"language": stored_language(request.user)})
    password_form = PasswordChangeForm(request.user)
    if request.method == "POST" and request.POST.get("form") == "time_zone":
        tz_form = TimeZoneForm(request.POST)
        if tz_form.is_valid():
            do_set_time_zone(request.user, tz_form.cleaned_data["time_zone"])
            request.session["time_zone"] = tz_form.cleaned_data["time_zone"]
            messages.success(request, _("Time zone saved."))
            return redirect("profile")
    elif request.method == "POST" and request.POST.get("form") == "password":
        password_form = PasswordChangeForm(request.user, request.POST)
        if password_form.is_valid():
            user = password_form.save()
            update_session_auth_hash(request, user)
            messages.success(request, _("Password changed."))
            return redirect("profile")
    return render(
        request,
        "portal/profile.html",
        {
            "tz_form": tz_form,
            "language_form": language_form,
            "password_form": password_form,
            "roles": access.roles_of(request.user),
        },
    )


@require_POST
def set_language(request):
    """Save the user's language (under their name menu); it applies from this response on."""
    form = LanguageForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose one of the languages offered."))
        return redirect("profile")
    code = form.cleaned_data["language"]
    do_set_language(request.user, code)
    request.session[SESSION_KEY] = code
    translation.activate(code or get_language_from_request(request))
    messages.success(request, _("Language saved."))
    return redirect("profile")


@require_GET
def status(request):
    """Kaizen's own status from its rows at once; the broker panel loads after (below)."""
    return render(request, "portal/status.html", {"s": snapshot()})


@require_GET
@vary_on_headers("HX-Request")
def status_broker(request: HtmxHttpRequest) -> HttpResponse:
    """The status page's broker panel: reachable or not, and the waiting messages.

    Loaded by the page once it is shown, so a broker that does not answer costs this
    panel its timeout, never the page. Opened directly, the whole status page with
    the broker checked in place."""
    if request.htmx and not request.htmx.boosted:
        return render(request, "portal/status.html#broker_panel", {"s": broker_facts()})
    return render(request, "portal/status.html", {"s": snapshot() | broker_facts()})


@require_GET
def inbox(request):
    notes = Paginator(Notification.objects.filter(user=request.user), 30).get_page(
        request.GET.get("page")
    )
    return render(request, "portal/inbox.html", {"page": notes})


@require_POST
def inbox_read(request):
    """Mark one notification (``pk``) or all of them read."""
    notes = Notification.objects.filter(user=request.user, read_at__isnull=True)
    if request.POST.get("pk", "").isdigit():
        notes = notes.filter(pk=int(request.POST["pk"]))
    notes.update(read_at=timezone.now())
    return redirect("inbox")


@require_POST
def demo_target_mode(request):
    """Switch the demo target between slow and fast mode (what `manage.py demo_target` does).

    The running launcher sees the state file change and restarts the target
    in the new mode within a second; the next run measures it.
    """
    from pathlib import Path

    from django.conf import settings

    target = access.get_target_for_user(request, DEMO_TARGET_SLUG, write=True)
    mode = request.POST.get("mode", "")
    state = demo_target.reload_state(Path(settings.VAR_DIR))
    if mode not in demo_target.MODES:
        messages.error(request, _("Choose slow or fast mode."))
    elif not state.database_url:
        messages.error(
            request, _("The demo target is not set up here: start Kaizen with ./kaizen up.")
        )
    elif mode == state.mode:
        messages.info(request, _("The demo target already runs in %(mode)s mode.") % {"mode": mode})
    else:
        old, state.mode = state.mode, mode
        demo_target.save_state(state)
        record(
            request.user,
            "target.demo_mode",
            target,
            Phrase(
                gettext_noop("switched the demo target from %(old)s to %(new)s mode"),
                old=old,
                new=mode,
            ),
            changes={"mode": [old, mode]},
            target=target,
        )
        messages.success(
            request,
            _(
                "The demo target restarts in %(mode)s mode within a few seconds. Run the "
                "analysis again to measure it: tasks whose findings are gone close themselves."
            )
            % {"mode": mode},
        )
    return redirect(target)
