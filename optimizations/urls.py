"""The optimizations app's URLs: one module per room, included in this order.

targets/new/ must be matched before targets/<slug>/ (both in targets.urls), and no two
rooms share a pattern, so the order of the rooms does not change what matches.
"""

from django.urls import include, path

urlpatterns = [
    path("", include("optimizations.reports.urls")),
    path("", include("optimizations.work.urls")),
    path("", include("optimizations.targets.urls")),
    path("", include("optimizations.jobs.urls")),
    path("", include("optimizations.observe.traces_urls")),
    path("", include("optimizations.observe.incident_urls")),
    path("", include("optimizations.observe.alert_urls")),
]
