"""``manage.py otlp_token <target> --user <name>``: a new OTLP ingestion token for a target.

Prints the token once (Kaizen keeps only its SHA-256) and the endpoint to give the
target's exporter; the previous token of the target stops working. Acts as ``--user``,
who must be allowed to edit targets (portal.access), exactly like the portal.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from optimizations.models import TargetService
from optimizations.targets.traces import do_issue_token
from portal.access import can_edit_targets


class Command(BaseCommand):
    help = "Issue a new OTLP/HTTP ingestion token for a target (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("target", help="the target's slug")
        parser.add_argument("--user", required=True, help="act as this Kaizen user")
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="where Kaizen answers, for the endpoint printed (default %(default)s)",
        )

    def handle(self, *args, **opts):
        user = get_user_model().objects.filter(username=opts["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"There is no active Kaizen user named “{opts['user']}”.")
        if not can_edit_targets(user):
            raise CommandError(
                f"{user.username} may not change targets: only managers and engineers may."
            )
        target = TargetService.objects.filter(slug=opts["target"]).first()
        if target is None:
            raise CommandError(f"There is no target “{opts['target']}”.")
        key = do_issue_token(user, target)
        path = reverse("otlp_traces", args=[target.slug]).removesuffix("/v1/traces")
        endpoint = opts["base_url"].rstrip("/") + path
        self.stdout.write(f"Token for {target.slug} (shown this once): {key}\n")
        self.stdout.write(
            "Give the target's exporter:\n"
            f"  OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}\n"
            f"  OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20{key}\n"
        )
