"""``manage.py compliance``: HR's compliance register from a terminal.

``compliance status [--json] [--evaluate]`` lists every active control with its
newest status and evidence links — the figures of the register page — and exits
like the other commands that judge (optimizations.jobs.verdicts): 0 pass, 1 fail,
2 error, 3 incomplete (a control whose evidence cannot exist yet, or one not
attested yet; the reason says what is missing). ``compliance evaluate`` judges
every control now (what the schedule does each hour); ``compliance seed`` adds
the default register's missing controls.
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand

from departments import compliance


class Command(BaseCommand):
    help = f"HR's compliance register: status, evaluate, seed. {compliance.STATUS_EXIT_HELP}"

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="command", required=True)
        status = commands.add_parser("status", help="each control's newest status and evidence")
        status.add_argument("--json", action="store_true", help="print JSON")
        status.add_argument(
            "--evaluate", action="store_true", help="judge every control first (as the schedule)"
        )
        commands.add_parser("evaluate", help="judge every active control now")
        commands.add_parser("seed", help="add the default register's missing controls")

    def handle(self, *args, command, **options):
        if command == "seed":
            created = compliance.ensure_default_register()
            self.stdout.write(f"{created} control(s) added to the register.")
            return
        if command == "evaluate" or options.get("evaluate"):
            counts = compliance.evaluate_all()
            if command == "evaluate":
                self.stdout.write(
                    ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
                    or "no active controls"
                )
                return
        rows = compliance.register()
        if options["json"]:
            self.stdout.write(
                json.dumps(compliance.summary_json(rows), indent=2, ensure_ascii=False)
            )
        else:
            for row in rows:
                self.stdout.write(f"{row.status:<10} {row.control.slug}: {row.reason}")
                for entry in row.evidence:
                    mark = {True: "✓", False: "✗"}.get(entry["ok"], "·")
                    link = f"  {entry['url']}" if entry["url"] else ""
                    self.stdout.write(f"    {mark} {entry['label']}{link}")
            self.stdout.write(f"overall: {compliance.overall(rows)}")
        sys.exit(compliance.status_exit_code(rows))
