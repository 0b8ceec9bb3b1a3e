"""``manage.py observability status [--json] [--target SLUG]``: continuous observation per
target — the sources configured, traces received, Prometheus answers stored, the error
budgets left this month and the burn-rate alerts firing, as the pages show them (budgets
and alerts as the latest minute's evaluation left them).

``manage.py observability evaluate`` reads Prometheus and judges the rules once now (what
the maintenance queue does every minute), for a machine without Celery beat.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from optimizations.models import TargetService
from optimizations.observe import alerting, panel, sources


class Command(BaseCommand):
    help = "Continuous observation per target: sources, traces, Prometheus, budgets, alerts."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        status = sub.add_parser("status", help="what each target's observation shows now")
        status.add_argument("--json", action="store_true", help="print JSON")
        status.add_argument("--target", help="only this target (its slug)")
        evaluate = sub.add_parser(
            "evaluate", help="read Prometheus and judge the alert rules once, now"
        )
        evaluate.add_argument("--target", help="only this target (its slug)")

    def handle(self, *args, **opts):
        targets = TargetService.objects.order_by("slug")
        if opts.get("target"):
            targets = targets.filter(slug=opts["target"])
            if not targets.exists():
                raise CommandError(f"There is no target “{opts['target']}”.")
        if opts["action"] == "evaluate":
            for target in targets:
                read = sources.read_target(sources.settings_of(target))
                judged = alerting.evaluate_target(target)
                firing = [key for key, entry in judged.items() if entry["verdict"] == "fail"]
                self.stdout.write(
                    f"{target.slug}: {read['read']} Prometheus answer(s) stored"
                    + "".join(f"\n  ! {error}" for error in read["errors"])
                    + f"; {len(firing)} alert(s) firing"
                    + "".join(f"\n  firing: {key}" for key in firing)
                )
            return
        report = [panel.status(target) for target in targets]
        if opts["json"]:
            self.stdout.write(json.dumps({"targets": report}, indent=2))
            return
        for entry in report:
            self.stdout.write(self._text(entry))

    @staticmethod
    def _text(entry: dict) -> str:
        lines = [
            f"{entry['target']}: sources {', '.join(entry['sources']) or 'none'}",
            f"  traces received: {entry['traces_received']}",
            f"  Prometheus answers stored: {entry['prometheus_series_read']}"
            + (f" from {entry['prometheus_url']}" if entry["prometheus_url"] else ""),
        ]
        if entry["prometheus_error"]:
            lines.append(f"  Prometheus: {entry['prometheus_error']}")
        if not entry["budgets"]:
            lines.append("  budgets: not judged yet (Celery beat judges them every minute)")
        for budget in entry["budgets"]:
            left = (
                "incomplete: no events"
                if budget["remaining_pct"] is None
                else f"{budget['remaining_pct']} % left ({budget['verdict']})"
            )
            source = f", from {budget['source']}" if budget["source"] else ""
            lines.append(f"  budget {budget['objective']}: {left}{source}")
        for alert in entry["open_alerts"]:
            lines.append(f"  FIRING {alert['slo']} · {alert['rule']}: {alert['reason']}")
        return "\n".join(lines)
