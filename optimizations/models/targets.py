"""Target services: what Kaizen analyses, and how far it may push them."""

from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from departments.models import Department
from optimizations.targets import slo
from optimizations.targets.crypto import CredentialUnreadable, decrypt, mask_url


class TargetService(models.Model):
    """A FastAPI + SQLAlchemy + PostgreSQL service that Kaizen analyses."""

    ENVIRONMENTS = [
        ("production", _("Production")),
        ("staging", _("Staging")),
        ("development", _("Development")),
        ("demo", _("Demo")),
    ]

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    base_url = models.URLField(
        max_length=300, help_text=_("Where its HTTP API answers, e.g. http://127.0.0.1:8100")
    )
    owner_department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="targets"
    )
    environment = models.CharField(max_length=20, choices=ENVIRONMENTS, default="staging")
    description = models.TextField(blank=True)
    health_path = models.CharField(max_length=200, default="/health")
    openapi_path = models.CharField(max_length=200, default="/openapi.json")
    metrics_path = models.CharField(
        max_length=200, default="/metrics", blank=True, help_text=_("Prometheus text format")
    )
    # Credentials, encrypted with KAIZEN_ENCRYPTION_KEY (optimizations.targets.crypto);
    # never rendered back in full, never logged.
    auth_header_name = models.CharField(max_length=100, blank=True)
    auth_header_value_encrypted = models.TextField(blank=True)
    database_url_encrypted = models.TextField(blank=True)
    source_location = models.CharField(
        max_length=500,
        blank=True,
        help_text=_("A directory on the workers' machines, or a git URL on an allowed host"),
    )
    # SLO thresholds that differ from DESIGN.md's defaults (optimizations.targets.slo).
    slo = models.JSONField(default=dict, blank=True)
    # Off by default: only a target marked so (a staging deployment, the demo) may have data
    # created, changed and cancelled through its API (the integrity probes, write-path load).
    allows_writes = models.BooleanField(
        default=False,
        verbose_name=_("Allows writes"),
        help_text=_(
            "Kaizen may create, change and cancel data through its API (integrity "
            "probes, write-path load tests). Only for a staging or demo deployment."
        ),
    )
    max_rate = models.PositiveIntegerField(
        default=2000, help_text=_("Most requests per second Kaizen may send to it")
    )
    max_duration = models.PositiveIntegerField(
        default=600, help_text=_("Longest load test, in seconds")
    )
    expected_rps = models.PositiveIntegerField(
        null=True,
        blank=True,
        verbose_name=_("Expected peak load"),
        help_text=_(
            "Requests per second at the busiest hour: the rate load and endurance tests "
            "offer by default (stress tests start at a quarter of it)."
        ),
    )
    # Its traces come in over OTLP/HTTP with this token (optimizations.targets.traces):
    # only the SHA-256 is kept, and the first characters to tell tokens apart.
    otlp_token_hash = models.CharField(max_length=64, blank=True)
    otlp_token_prefix = models.CharField(max_length=16, blank=True)
    baseline_run = models.ForeignKey(
        "Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("target_detail", args=[self.slug])

    def thresholds(self) -> dict[str, float]:
        return slo.merged(self.slo)

    @property
    def database_url(self) -> str:
        return decrypt(self.database_url_encrypted)

    @property
    def auth_header_value(self) -> str:
        return decrypt(self.auth_header_value_encrypted)

    def database_url_masked(self) -> str:
        try:
            return mask_url(self.database_url)
        except CredentialUnreadable:
            return "(unreadable: enter it again)"
