from django.urls import path

from departments import compliance_views, operations_views, training_views, views

urlpatterns = [
    path("departments/", views.department_list, name="department_list"),
    path("departments/<slug:code>/", views.department_detail, name="department_detail"),
    path("people/", views.people, name="people"),
    path("people/new/", views.person_add, name="person_add"),
    path("people/memberships/", views.membership_set, name="membership_set"),
    path("people/memberships/<int:pk>/remove/", views.membership_remove, name="membership_remove"),
    # Runbooks
    path("runbooks/", views.runbook_list, name="runbook_list"),
    path("runbooks/new/", views.runbook_new, name="runbook_new"),
    path("runbooks/new/write/", views.runbook_create, name="runbook_create"),
    path("runbooks/preview/", views.runbook_preview, name="runbook_preview"),
    path("runbooks/reviews/", views.runbook_reviews, name="runbook_reviews"),
    path("runbooks/coverage/", views.runbook_coverage, name="runbook_coverage"),
    path("runbooks/<slug:slug>/", views.runbook_detail, name="runbook_detail"),
    path("runbooks/<slug:slug>/edit/", views.runbook_edit, name="runbook_edit"),
    path("runbooks/<slug:slug>/history/", views.runbook_history, name="runbook_history"),
    path("runbooks/<slug:slug>/diff/", views.runbook_diff, name="runbook_diff"),
    path("runbooks/<slug:slug>/reviewed/", views.runbook_reviewed, name="runbook_reviewed"),
    path(
        "runbooks/<slug:slug>/steps/<int:index>/run/",
        views.runbook_run_step,
        name="runbook_run_step",
    ),
    path(
        "runbooks/<slug:slug>/revisions/<int:number>/",
        views.runbook_revision,
        name="runbook_revision",
    ),
    path(
        "runbooks/<slug:slug>/revisions/<int:number>/restore/",
        views.runbook_restore,
        name="runbook_restore",
    ),
    path(
        "runbooks/<slug:slug>/revisions/<int:number>/approve/",
        views.runbook_approve,
        name="runbook_approve",
    ),
    path(
        "runbooks/<slug:slug>/revisions/<int:number>/reject/",
        views.runbook_reject,
        name="runbook_reject",
    ),
    # Training
    path("training/", training_views.training_mine, name="training_mine"),
    path("training/dashboard/", training_views.training_dashboard, name="training_dashboard"),
    path("training/modules/", training_views.training_module_list, name="training_module_list"),
    path(
        "training/modules/new/",
        training_views.training_module_create,
        name="training_module_create",
    ),
    path("training/modules/<slug:slug>/", training_views.training_module, name="training_module"),
    path(
        "training/modules/<slug:slug>/edit/",
        training_views.training_module_edit,
        name="training_module_edit",
    ),
    path(
        "training/modules/<slug:slug>/assign/",
        training_views.training_assign,
        name="training_assign",
    ),
    path(
        "training/modules/<slug:slug>/start/", training_views.training_start, name="training_start"
    ),
    path("training/modules/<slug:slug>/take/", training_views.training_take, name="training_take"),
    path(
        "training/modules/<slug:slug>/gates/",
        training_views.training_gate_add,
        name="training_gate_add",
    ),
    path(
        "training/assignments/<int:pk>/withdraw/",
        training_views.training_assignment_withdraw,
        name="training_assignment_withdraw",
    ),
    path(
        "training/gates/<int:pk>/remove/",
        training_views.training_gate_remove,
        name="training_gate_remove",
    ),
    # Compliance
    path("compliance/", compliance_views.compliance_register, name="compliance_register"),
    path("operations/review/", operations_views.operations_review, name="operations_review"),
    path("compliance/evaluate/", compliance_views.compliance_evaluate, name="compliance_evaluate"),
    path("compliance/report/", compliance_views.compliance_report, name="compliance_report"),
    path(
        "compliance/controls/new/",
        compliance_views.compliance_control_new,
        name="compliance_control_new",
    ),
    path(
        "compliance/controls/<slug:slug>/",
        compliance_views.compliance_control,
        name="compliance_control",
    ),
    path(
        "compliance/controls/<slug:slug>/edit/",
        compliance_views.compliance_control_edit,
        name="compliance_control_edit",
    ),
    path(
        "compliance/controls/<slug:slug>/attest/",
        compliance_views.compliance_attest,
        name="compliance_attest",
    ),
    path(
        "compliance/attestations/<int:pk>/attachment/",
        compliance_views.compliance_attachment,
        name="compliance_attachment",
    ),
]
