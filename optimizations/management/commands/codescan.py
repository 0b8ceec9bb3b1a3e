"""``manage.py codescan <path>``: the code scan for a terminal, a pre-commit hook or CI.

Exit status: 0 when no finding is at or above ``--fail-on``, 1 when one is,
2 when the scan itself could not run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from optimizations.analyzers.base import SEVERITIES, SEVERITY_RANK, AnalysisError, LocalContext
from optimizations.analyzers.codescan import scan_path, to_json, to_sarif


class Command(BaseCommand):
    help = "Scan a FastAPI + SQLAlchemy source tree with Kaizen's code-scan rules and ruff."
    requires_system_checks = []  # a CI pipeline may run this without a configured portal

    def add_arguments(self, parser):
        parser.add_argument("path", help="directory (or git URL on an allowed host) to scan")
        parser.add_argument("--format", choices=("text", "json", "sarif"), default="text")
        parser.add_argument("--fail-on", choices=SEVERITIES, default="high")
        parser.add_argument("--output", help="write the report to this file instead of stdout")
        parser.add_argument("--no-ruff", action="store_true", help="skip ruff's rules")
        parser.add_argument("--rules", default="", help="rule ids or prefixes, comma-separated")
        parser.add_argument("--include-tests", action="store_true")

    def handle(self, *args, **options):
        params = {
            "ruff": not options["no_ruff"],
            "rules": options["rules"],
            "include_tests": options["include_tests"],
        }
        try:
            result = scan_path(options["path"], LocalContext(), **params)
        except (AnalysisError, ValueError) as exc:
            self.stderr.write(f"codescan: {exc}")
            sys.exit(2)
        except Exception as exc:  # the scan could not run: exit 2, not 1
            self.stderr.write(f"codescan: the scan failed: {type(exc).__name__}: {exc}")
            sys.exit(2)
        report = self._render(result, options["format"])
        if options["output"]:
            try:
                Path(options["output"]).write_text(report, encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"cannot write {options['output']}: {exc}") from exc
        else:
            self.stdout.write(report)
        threshold = SEVERITY_RANK[options["fail_on"]]
        if any(SEVERITY_RANK[f.severity] >= threshold for f in result.findings):
            sys.exit(1)

    def _render(self, result, kind: str) -> str:
        if kind == "json":
            return to_json(result)
        if kind == "sarif":
            return json.dumps(to_sarif(result), indent=2)
        lines = []
        for finding in result.findings:
            ev = finding.evidence
            lines.append(
                f"{finding.location}: {finding.rule_id} [{finding.severity}] {finding.title}"
            )
            if ev.get("detail") and ev["detail"] != finding.title:
                lines.append(f"    {ev['detail']}")
            for excerpt_line in (ev.get("excerpt") or "").splitlines()[:3]:
                lines.append(f"    | {excerpt_line}")
            if finding.fix_hint:
                lines.append(f"    fix: {finding.fix_hint}")
        summary = result.summary
        counts = ", ".join(f"{n} {s}" for s, n in summary["counts"]["by_severity"].items())
        lines.append(
            f"{summary['counts']['total']} finding(s) ({counts or 'none'}) in "
            f"{summary['files_scanned']} files, {summary['lines']} lines, "
            f"{summary['duration_s']:.2f} s"
        )
        for failure in summary["parse_failures"]:
            lines.append(f"not parsed: {failure['path']}:{failure['line']}: {failure['error']}")
        return "\n".join(lines)
