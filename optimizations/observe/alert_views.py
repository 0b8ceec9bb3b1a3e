"""A target's continuous sources and burn-rate alert rules: read by everyone signed in,
changed by those who edit targets (managers and engineers), every change audited."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from optimizations.observe import alert_forms, alerting, panel, sources
from portal import access
from portal.http import HtmxHttpRequest
from portal.models import AuditEvent

HISTORY = 30


def _context(request, target, *, sources_form=None, rules_formset=None) -> dict:
    observe = sources.settings_of(target)
    defaults = sources.defaults(target)
    if sources_form is None:
        initial = {"prometheus_url": observe.prometheus_url}
        initial.update({f"query_{key}": value for key, value in observe.queries.items()})
        sources_form = alert_forms.SourcesForm(initial=initial, defaults=defaults)
    if rules_formset is None:
        rules = [{**rule.as_dict(), "route": route} for rule, route in alerting.rules_of(observe)]
        rules_formset = alert_forms.RuleFormSet(
            initial=alert_forms.initial_rules(rules), prefix="rules"
        )
    return {
        "target": target,
        "observe": observe,
        "status": panel.board(target),
        "defaults": defaults,
        "sources_form": sources_form,
        "rules_formset": rules_formset,
        "using_defaults": not observe.rules,
        "can_edit": access.can_edit_targets(request.user),
        "history": AuditEvent.objects.filter(target=target, action__startswith="alerts.")
        .select_related("actor")
        .order_by("-created_at", "-pk")[:HISTORY],
    }


@require_GET
def target_alerts(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    target = access.get_target_for_user(request, slug)
    return render(request, "optimizations/observe/alerts.html", _context(request, target))


@require_POST
def target_alert_sources(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    target = access.get_target_for_user(request, slug, write=True)
    form = alert_forms.SourcesForm(request.POST, defaults=sources.defaults(target))
    if not form.is_valid():
        context = _context(request, target, sources_form=form)
        return render(request, "optimizations/observe/alerts.html", context, status=400)
    alerting.do_save_sources(
        request.user, target, form.cleaned_data["prometheus_url"], form.queries()
    )
    messages.success(request, _("Sources saved."))
    return redirect("target_alerts", target.slug)


@require_POST
def target_alert_rules(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    target = access.get_target_for_user(request, slug, write=True)
    formset = alert_forms.RuleFormSet(request.POST, prefix="rules")
    if not formset.is_valid():
        context = _context(request, target, rules_formset=formset)
        return render(request, "optimizations/observe/alerts.html", context, status=400)
    assert isinstance(formset, alert_forms.BaseRuleFormSet)
    alerting.do_save_rules(request.user, target, formset.rules())
    messages.success(request, _("Alert rules saved."))
    return redirect("target_alerts", target.slug)
