"""A target's continuous sources and burn-rate alert rules."""

from django.urls import path

from optimizations.observe import alert_views

urlpatterns = [
    path("targets/<slug:slug>/alerts/", alert_views.target_alerts, name="target_alerts"),
    path(
        "targets/<slug:slug>/alerts/sources/",
        alert_views.target_alert_sources,
        name="target_alert_sources",
    ),
    path(
        "targets/<slug:slug>/alerts/rules/",
        alert_views.target_alert_rules,
        name="target_alert_rules",
    ),
]
