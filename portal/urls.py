from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from optimizations.api import api
from portal import metrics, tokens, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="portal/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("me/", views.profile, name="profile"),
    path("me/language/", views.set_language, name="set_language"),
    path("me/tokens/", tokens.token_list, name="token_list"),
    path("me/tokens/<int:pk>/revoke/", tokens.token_revoke, name="token_revoke"),
    path("api/", api.urls),
    path("audit/", views.audit_list, name="audit_list"),
    path("status/", views.status, name="status"),
    path("status/broker/", views.status_broker, name="status_broker"),
    path("metrics", metrics.metrics, name="kaizen_metrics"),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/read/", views.inbox_read, name="inbox_read"),
    path("demo/target/mode/", views.demo_target_mode, name="demo_target_mode"),
    path("", include("optimizations.urls")),
    path("", include("departments.urls")),
    path("admin/", admin.site.urls),
]
