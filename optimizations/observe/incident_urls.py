"""The observe room's URLs: incidents, deliveries and webhooks, the Alertmanager receiver."""

from django.urls import path

from optimizations.observe import incident_views as observe

urlpatterns = [
    path("incidents/", observe.incident_list, name="incident_list"),
    path("incidents/<int:pk>/", observe.incident_detail, name="incident_detail"),
    path(
        "incidents/<int:pk>/acknowledge/",
        observe.incident_acknowledge,
        name="incident_acknowledge",
    ),
    path("incidents/<int:pk>/assign/", observe.incident_assign, name="incident_assign"),
    path("incidents/<int:pk>/escalate/", observe.incident_escalate, name="incident_escalate"),
    path("incidents/<int:pk>/note/", observe.incident_note, name="incident_note"),
    path("incidents/<int:pk>/runbook/", observe.incident_runbook, name="incident_runbook"),
    path("incidents/<int:pk>/resolve/", observe.incident_resolve, name="incident_resolve"),
    path("incidents/<int:pk>/postmortem/", observe.incident_postmortem, name="incident_postmortem"),
    path(
        "incidents/<int:pk>/follow-ups/<int:action_pk>/",
        observe.incident_follow_up,
        name="incident_follow_up",
    ),
    path("deliveries/", observe.delivery_log, name="delivery_log"),
    path("webhooks/new/", observe.webhook_new, name="webhook_new"),
    path("webhooks/<int:pk>/toggle/", observe.webhook_toggle, name="webhook_toggle"),
    path("alerts/alertmanager/", observe.alertmanager_receiver, name="alertmanager_receiver"),
]
