"""The targets pages' URLs (names are global: templates reverse them by name)."""

from django.urls import path

from optimizations.targets import traces
from optimizations.targets import views as targets

urlpatterns = [
    path("targets/", targets.target_list, name="target_list"),
    path("targets/new/", targets.target_create, name="target_create"),
    path("targets/<slug:slug>/", targets.target_detail, name="target_detail"),
    path("targets/<slug:slug>/edit/", targets.target_edit, name="target_edit"),
    path("targets/<slug:slug>/database/test/", targets.database_test, name="database_test"),
    path("targets/<slug:slug>/schedules/new/", targets.schedule_create, name="schedule_create"),
    path("schedules/<int:pk>/edit/", targets.schedule_edit, name="schedule_edit"),
    # OTLP/HTTP's own path shape: exporters append /v1/traces to the endpoint they are given.
    path("otlp/<slug:slug>/v1/traces", traces.otlp_traces, name="otlp_traces"),
]
