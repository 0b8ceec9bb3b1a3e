from django.urls import path

from optimizations import views

urlpatterns = [
    path("initiatives/", views.initiative_list, name="initiative_list"),
    path("initiatives/new/", views.initiative_create, name="initiative_create"),
    path("initiatives/<int:pk>/", views.initiative_detail, name="initiative_detail"),
    path("initiatives/<int:pk>/edit/", views.initiative_edit, name="initiative_edit"),
    path("phases/<int:pk>/status/", views.phase_status, name="phase_status"),
    path("phases/<int:pk>/tasks/", views.task_create, name="task_create"),
    path("tasks/<int:pk>/", views.task_update, name="task_update"),
    path("targets/", views.target_list, name="target_list"),
    path("targets/new/", views.target_create, name="target_create"),
    path("targets/<slug:slug>/", views.target_detail, name="target_detail"),
    path("targets/<slug:slug>/edit/", views.target_edit, name="target_edit"),
]
