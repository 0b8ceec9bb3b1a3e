"""Departments, who belongs to them and in which role."""

from django.conf import settings
from django.db import models


class Department(models.Model):
    """One of the four departments: development, QA, strategy, HR/operations."""

    DEV = "dev"
    QA = "qa"
    STRATEGY = "strategy"
    HR = "hr"
    CODES = [
        (DEV, "Development"),
        (QA, "Quality assurance"),
        (STRATEGY, "Strategy"),
        (HR, "HR / operations"),
    ]
    # Departments whose engineers register targets and trigger analyses.
    ENGINEERING = (DEV, QA, STRATEGY)

    code = models.SlugField(max_length=20, unique=True, choices=CODES)
    name = models.CharField(max_length=80)
    mission = models.TextField(blank=True)
    # One responsibility per line, as DESIGN.md lists them.
    responsibilities = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self):
        return self.name

    def responsibility_list(self):
        return [line.strip() for line in self.responsibilities.splitlines() if line.strip()]


class Membership(models.Model):
    """A user's role in one department; a user may belong to several."""

    MANAGER = "manager"
    ENGINEER = "engineer"
    EDITOR = "editor"
    VIEWER = "viewer"
    ROLES = [
        (MANAGER, "Manager"),
        (ENGINEER, "Engineer"),
        (EDITOR, "Editor"),
        (VIEWER, "Viewer"),
    ]

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="members")
    role = models.CharField(max_length=20, choices=ROLES)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "department"], name="one_role_per_department")
        ]
        ordering = ["department__position", "user__username"]

    def __str__(self):
        return f"{self.user} — {self.get_role_display()} of {self.department}"


class Profile(models.Model):
    """Per-user preferences kept beside Django's User."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    time_zone = models.CharField(max_length=64, default="UTC")

    def __str__(self):
        return f"Profile of {self.user}"
