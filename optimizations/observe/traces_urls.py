"""The Traces pages' URLs (issue 16); names are global."""

from django.urls import path

from optimizations.observe import traces_views as views

urlpatterns = [
    path("targets/<slug:slug>/traces/", views.target_traces, name="target_traces"),
    path("targets/<slug:slug>/traces/token/", views.otlp_token_issue, name="otlp_token_issue"),
    path(
        "targets/<slug:slug>/traces/<str:trace_id>/",
        views.trace_waterfall,
        name="trace_waterfall",
    ),
]
