from django.urls import path

from optimizations.views import compare, exports, findings, jobs, plan, report, slo, targets, work
from optimizations.views import portfolio as portfolio_views
from optimizations.views import roi as roi_views

urlpatterns = [
    path("portfolio/", portfolio_views.portfolio_page, name="portfolio"),
    path(
        "portfolio/initiatives/<int:pk>/burndown/",
        portfolio_views.initiative_burndown,
        name="initiative_burndown",
    ),
    path("portfolio/changes/", portfolio_views.portfolio_changes, name="portfolio_changes"),
    path(
        "portfolio/targets/<slug:slug>/slo/",
        portfolio_views.target_slo_counts,
        name="portfolio_target_slo",
    ),
    path("initiatives/", plan.initiative_list, name="initiative_list"),
    path("initiatives/new/", plan.initiative_create, name="initiative_create"),
    path("initiatives/<int:pk>/", plan.initiative_detail, name="initiative_detail"),
    path("initiatives/<int:pk>/roi/", roi_views.initiative_roi, name="initiative_roi"),
    path(
        "initiatives/<int:pk>/roi/panel/",
        roi_views.initiative_roi_panel,
        name="initiative_roi_panel",
    ),
    path(
        "initiatives/<int:pk>/roi.json", roi_views.initiative_roi_json, name="initiative_roi_json"
    ),
    path("initiatives/<int:pk>/roi.csv", roi_views.initiative_roi_csv, name="initiative_roi_csv"),
    path("initiatives/<int:pk>/edit/", plan.initiative_edit, name="initiative_edit"),
    path("phases/<int:pk>/status/", plan.phase_status, name="phase_status"),
    path("phases/<int:pk>/tasks/", plan.task_create, name="task_create"),
    path("phases/<int:pk>/gate/", work.phase_gate, name="phase_gate"),
    path("phases/<int:pk>/gate/sign/", work.phase_gate_sign, name="phase_gate_sign"),
    path("initiatives/<int:pk>/findings/", work.initiative_findings, name="initiative_findings"),
    path("initiatives/<int:pk>/report/", report.initiative_report, name="initiative_report"),
    path(
        "initiatives/<int:pk>/findings/bulk/",
        work.initiative_findings_bulk,
        name="initiative_findings_bulk",
    ),
    path("tasks/<int:pk>/", plan.task_update, name="task_update"),
    path("targets/", targets.target_list, name="target_list"),
    path("targets/new/", targets.target_create, name="target_create"),
    path("targets/<slug:slug>/", targets.target_detail, name="target_detail"),
    path("targets/<slug:slug>/edit/", targets.target_edit, name="target_edit"),
    path("targets/<slug:slug>/slo/", slo.target_slo, name="target_slo"),
    path("targets/<slug:slug>/runs/", jobs.run_start, name="run_start"),
    path("targets/<slug:slug>/database/test/", targets.database_test, name="database_test"),
    path("targets/<slug:slug>/jobs/<slug:kind>/", jobs.job_params, name="job_params"),
    path("targets/<slug:slug>/jobs/<slug:kind>/start/", jobs.job_start, name="job_start"),
    path("targets/<slug:slug>/schedules/new/", targets.schedule_create, name="schedule_create"),
    path("schedules/<int:pk>/edit/", targets.schedule_edit, name="schedule_edit"),
    path("targets/<slug:slug>/findings/", findings.finding_list, name="finding_list"),
    path("findings/<int:pk>/", findings.finding_detail, name="finding_detail"),
    path("findings/<int:pk>/status/", findings.finding_status, name="finding_status"),
    path("runs/<int:pk>/", jobs.run_detail, name="run_detail"),
    path("runs/<int:pk>/live/", jobs.run_live, name="run_live"),
    path("runs/<int:pk>/cancel/", jobs.run_cancel, name="run_cancel"),
    path("runs/<int:pk>/rerun/", jobs.run_rerun, name="run_rerun"),
    path("compare/", compare.compare, name="compare"),
    path("compare/start/", compare.comparison_start, name="comparison_start"),
    path("compare/baseline-set/", compare.baseline_set_start, name="baseline_set_start"),
    path("runs/<int:pk>/baseline/", jobs.run_pin_baseline, name="run_pin_baseline"),
    path("jobs/", jobs.job_list, name="job_list"),
    path("jobs/<int:pk>/", jobs.job_detail, name="job_detail"),
    path("jobs/<int:pk>/live/", jobs.job_live, name="job_live"),
    path("jobs/<int:pk>/log/", jobs.job_log, name="job_log"),
    path("jobs/<int:pk>/log.txt", jobs.job_log_download, name="job_log_download"),
    path("jobs/<int:pk>/files/<str:name>", jobs.job_artifact, name="job_artifact"),
    path("jobs/<int:pk>/cancel/", jobs.job_cancel, name="job_cancel"),
    path("jobs/<int:pk>/rerun/", jobs.job_rerun, name="job_rerun"),
    # Streamed CSV / JSON exports (optimizations.views.exports); fmt is csv or json.
    path(
        "targets/<slug:slug>/findings.<str:fmt>",
        exports.target_findings,
        name="target_findings_export",
    ),
    path("targets/<slug:slug>/runs.<str:fmt>", exports.target_runs, name="target_runs_export"),
    path(
        "initiatives/<int:pk>/findings.<str:fmt>",
        exports.initiative_findings,
        name="initiative_findings_export",
    ),
    path(
        "initiatives/<int:pk>/runs.<str:fmt>",
        exports.initiative_runs,
        name="initiative_runs_export",
    ),
]
