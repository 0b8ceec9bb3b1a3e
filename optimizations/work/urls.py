"""The work pages' URLs (names are global: templates reverse them by name)."""

from django.urls import path

from optimizations.work.views import findings, plan, work

urlpatterns = [
    path("initiatives/", plan.initiative_list, name="initiative_list"),
    path("initiatives/new/", plan.initiative_create, name="initiative_create"),
    path("initiatives/<int:pk>/", plan.initiative_detail, name="initiative_detail"),
    path("initiatives/<int:pk>/edit/", plan.initiative_edit, name="initiative_edit"),
    path("phases/<int:pk>/status/", plan.phase_status, name="phase_status"),
    path("phases/<int:pk>/tasks/", plan.task_create, name="task_create"),
    path("phases/<int:pk>/gate/", work.phase_gate, name="phase_gate"),
    path("phases/<int:pk>/gate/sign/", work.phase_gate_sign, name="phase_gate_sign"),
    path("initiatives/<int:pk>/findings/", work.initiative_findings, name="initiative_findings"),
    path(
        "initiatives/<int:pk>/findings/bulk/",
        work.initiative_findings_bulk,
        name="initiative_findings_bulk",
    ),
    path("tasks/<int:pk>/", plan.task_update, name="task_update"),
    path("targets/<slug:slug>/findings/", findings.finding_list, name="finding_list"),
    path("findings/<int:pk>/", findings.finding_detail, name="finding_detail"),
    path("findings/<int:pk>/status/", findings.finding_status, name="finding_status"),
]
