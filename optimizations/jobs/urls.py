"""The jobs pages' URLs (names are global: templates reverse them by name)."""

from django.urls import path

from optimizations.jobs import views as jobs

urlpatterns = [
    path("targets/<slug:slug>/runs/", jobs.run_start, name="run_start"),
    path("targets/<slug:slug>/jobs/<slug:kind>/", jobs.job_params, name="job_params"),
    path("targets/<slug:slug>/jobs/<slug:kind>/start/", jobs.job_start, name="job_start"),
    path("runs/<int:pk>/", jobs.run_detail, name="run_detail"),
    path("runs/<int:pk>/live/", jobs.run_live, name="run_live"),
    path("runs/<int:pk>/cancel/", jobs.run_cancel, name="run_cancel"),
    path("runs/<int:pk>/rerun/", jobs.run_rerun, name="run_rerun"),
    path("runs/<int:pk>/baseline/", jobs.run_pin_baseline, name="run_pin_baseline"),
    path("jobs/", jobs.job_list, name="job_list"),
    path("jobs/<int:pk>/", jobs.job_detail, name="job_detail"),
    path("jobs/<int:pk>/live/", jobs.job_live, name="job_live"),
    path("jobs/<int:pk>/log/", jobs.job_log, name="job_log"),
    path("jobs/<int:pk>/log.txt", jobs.job_log_download, name="job_log_download"),
    path("jobs/<int:pk>/files/<str:name>", jobs.job_artifact, name="job_artifact"),
    path("jobs/<int:pk>/cancel/", jobs.job_cancel, name="job_cancel"),
    path("jobs/<int:pk>/rerun/", jobs.job_rerun, name="job_rerun"),
]
