from django.urls import path

from departments import views

urlpatterns = [
    path("departments/", views.department_list, name="department_list"),
    path("departments/<slug:code>/", views.department_detail, name="department_detail"),
    path("people/", views.people, name="people"),
    path("people/new/", views.person_add, name="person_add"),
    path("people/memberships/", views.membership_set, name="membership_set"),
    path("people/memberships/<int:pk>/remove/", views.membership_remove, name="membership_remove"),
]
