"""``manage.py codescan <path>``: the code scan for a terminal, a pre-commit hook or CI.

Exit status, the scan's verdict (optimizations.jobs.verdicts): 0 pass — no finding at
or above ``--fail-on``; 1 fail — one is; 2 error — the scan itself could not run;
3 incomplete — no Python file was found to check, or a check it was asked for could not
run (``--audit-deps`` without a reachable advisory source or pinned versions). A
finding suppressed in the code (with its reason) is listed as suppressed and fails
nothing. With ``--new-since N`` (code scan
#N of the portal, or the JSON/SARIF report file of an earlier run) only the findings
new since then are listed and judged — how a big code base adopts the scan.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from optimizations.analyzers.base import SEVERITIES, SEVERITY_RANK, AnalysisError, LocalContext
from optimizations.analyzers.codescan import scan_path, to_json, to_sarif
from optimizations.analyzers.codescan.since import (
    NEW,
    UNCHANGED,
    UPDATED,
    Earlier,
    compare,
    load_report,
)
from optimizations.analyzers.codescan.since import counts as since_counts
from optimizations.jobs.codescans import earlier_scan


class Command(BaseCommand):
    help = (
        "Scan a FastAPI + SQLAlchemy source tree with Kaizen's code-scan rules and ruff. "
        "Exit codes: 0 pass (no finding at or above --fail-on), 1 fail, 2 error (the scan "
        "could not run), 3 incomplete (no Python file found to check)."
    )
    requires_system_checks = []  # a CI pipeline may run this without a configured portal

    def add_arguments(self, parser):
        parser.add_argument("path", help="directory (or git URL on an allowed host) to scan")
        parser.add_argument("--format", choices=("text", "json", "sarif"), default="text")
        parser.add_argument("--fail-on", choices=SEVERITIES, default="high")
        parser.add_argument("--output", help="write the report to this file instead of stdout")
        parser.add_argument("--no-ruff", action="store_true", help="skip ruff's rules")
        parser.add_argument("--rules", default="", help="rule ids or prefixes, comma-separated")
        parser.add_argument("--include-tests", action="store_true")
        parser.add_argument(
            "--new-since",
            default="",
            help="judge only findings new since code scan #N of the portal, or since the "
            "JSON/SARIF report file of an earlier run",
        )
        parser.add_argument(
            "--audit-deps",
            action="store_true",
            help="look up the pinned dependencies' published vulnerabilities (pip-audit, PyPI)",
        )

    def handle(self, *args, **options):
        params = {
            "ruff": not options["no_ruff"],
            "rules": options["rules"],
            "include_tests": options["include_tests"],
            "audit_dependencies": options["audit_deps"],
        }
        earlier = self._earlier(options["new_since"]) if options["new_since"] else None
        try:
            result = scan_path(options["path"], LocalContext(), **params)
        except (AnalysisError, ValueError) as exc:
            self.stderr.write(f"codescan: {exc}")
            sys.exit(2)
        except Exception as exc:  # the scan could not run: exit 2, not 1
            self.stderr.write(f"codescan: the scan failed: {type(exc).__name__}: {exc}")
            sys.exit(2)
        states = compare(result, earlier)[0] if earlier is not None else {}
        report = self._render(result, options["format"], earlier)
        if options["output"]:
            try:
                Path(options["output"]).write_text(report, encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"cannot write {options['output']}: {exc}") from exc
        else:
            self.stdout.write(report)
        threshold = SEVERITY_RANK[options["fail_on"]]
        if any(
            SEVERITY_RANK[f.severity] >= threshold
            for f in result.findings
            if not f.evidence.get("suppressed")
            and states.get(f.fingerprint("code"), NEW) in (NEW, UPDATED)
        ):
            sys.exit(1)
        if not result.summary.get("files_scanned"):
            where = options["path"]
            self.stderr.write(f"codescan: incomplete — no Python file found under {where}")
            sys.exit(3)
        if result.verdict == "incomplete":
            # a check it was asked for could not run (the dependency audit): never a pass
            self.stderr.write(f"codescan: incomplete — {result.verdict_reason}")
            sys.exit(3)

    def _earlier(self, value: str) -> Earlier:
        """Code scan #N of the portal, or an earlier run's report file."""
        try:
            if value.isdigit():
                return earlier_scan(value)
            path = Path(value)
            return load_report(path.read_text(encoding="utf-8"), path.name)
        except (OSError, ValueError) as exc:
            self.stderr.write(f"codescan: --new-since {value}: {exc}")
            sys.exit(2)
        except Exception as exc:  # no portal database to read scan #N from
            self.stderr.write(
                f"codescan: --new-since {value}: the portal's scans cannot be read "
                f"({type(exc).__name__}: {exc}); pass an earlier report file instead"
            )
            sys.exit(2)

    def _render(self, result, kind: str, earlier: Earlier | None = None) -> str:
        if kind == "json":
            if earlier is None:
                return to_json(result)
            document = json.loads(to_json(result))
            states, absent = compare(result, earlier)
            for finding in document["findings"]:
                finding["state"] = states[finding["fingerprint"]]
            document["new_since"] = {
                "scan": earlier.label,
                "counts": since_counts(states, absent),
                "gone": absent,
            }
            return json.dumps(document, indent=2, default=str)
        if kind == "sarif":
            return json.dumps(to_sarif(result, earlier), indent=2)
        lines = []
        states, absent = compare(result, earlier) if earlier is not None else ({}, [])
        for finding in result.findings:
            ev = finding.evidence
            state = states.get(finding.fingerprint("code"), NEW)
            if state == UNCHANGED:
                continue
            mark = f" ({state} since {earlier.label})" if earlier is not None else ""
            lines.append(
                f"{finding.location}: {finding.rule_id} [{finding.severity}] {finding.title}{mark}"
            )
            if ev.get("suppressed"):
                lines.append(f"    suppressed: {ev['suppressed'].get('reason', '')}")
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
        if summary.get("suppressed"):
            lines.append(f"{summary['suppressed']} suppressed in the code (listed, judged by none)")
        if earlier is not None:
            tally = since_counts(states, absent)
            lines.append(
                f"since {earlier.label}: {tally['new']} new, {tally['updated']} updated, "
                f"{tally['unchanged']} unchanged (not listed), {tally['absent']} gone"
            )
        for failure in summary["parse_failures"]:
            lines.append(f"not parsed: {failure['path']}:{failure['line']}: {failure['error']}")
        return "\n".join(lines)
