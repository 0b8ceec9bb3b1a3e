"""The reports pages' URLs (names are global: templates reverse them by name)."""

from django.urls import path

from optimizations.reports.views import compare, exports, report, slo
from optimizations.reports.views import portfolio as portfolio_views
from optimizations.reports.views import roi as roi_views

urlpatterns = [
    path("portfolio/", portfolio_views.portfolio_page, name="portfolio"),
    path(
        "portfolio/initiatives/<int:pk>/burndown/",
        portfolio_views.initiative_burndown,
        name="initiative_burndown",
    ),
    path("portfolio/changes/", portfolio_views.portfolio_changes, name="portfolio_changes"),
    path("portfolio/incidents/", portfolio_views.portfolio_incidents, name="portfolio_incidents"),
    path(
        "portfolio/targets/<slug:slug>/slo/",
        portfolio_views.target_slo_counts,
        name="portfolio_target_slo",
    ),
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
    path("initiatives/<int:pk>/report/", report.initiative_report, name="initiative_report"),
    path("targets/<slug:slug>/slo/", slo.target_slo, name="target_slo"),
    path("compare/", compare.compare, name="compare"),
    path("compare/start/", compare.comparison_start, name="comparison_start"),
    path("compare/baseline-set/", compare.baseline_set_start, name="baseline_set_start"),
    # Streamed CSV / JSON exports (optimizations.reports.views.exports); fmt is csv or json.
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
