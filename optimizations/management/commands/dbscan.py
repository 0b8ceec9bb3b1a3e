"""``manage.py dbscan <database-url>``: the DB scan from a DBA's terminal or a CI job.

Exit status, the scan's verdict (optimizations.jobs.verdicts): 0 pass; 1 fail (an SLO
broken or a high-severity finding); 2 error — the scan could not run (connection
refused, wrong password, host not allowed...) or was cancelled; 3 incomplete — a
check the verdict needs could not run (no pg_stat_statements, no statement in
the window…), with what is missing and how to enable it.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict

from django.core.management.base import BaseCommand

from optimizations.analyzers import dbscan, slo
from optimizations.analyzers.base import (
    SEVERITY_RANK,
    AnalysisError,
    Cancelled,
    LocalContext,
    TargetSpec,
)
from optimizations.analyzers.netguard import DEFAULT_ALLOWED
from optimizations.jobs import verdicts


class Command(BaseCommand):
    help = "Scan a PostgreSQL database read-only. " + verdicts.EXIT_HELP

    def add_arguments(self, parser):
        parser.add_argument("database_url", help="postgresql://user:password@host:port/dbname")
        parser.add_argument("--json", action="store_true", help="print the full result as JSON")
        parser.add_argument(
            "--window", type=int, default=30, help="analysis window (s); 0: cumulative"
        )
        parser.add_argument(
            "--metrics-url", default="", help="the target's Prometheus /metrics URL"
        )
        parser.add_argument(
            "--slo",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="an SLO or threshold other than the default, in the table's units "
            "(ms, %%): " + ", ".join(t.key for t in slo.THRESHOLDS if "db_scan" in t.judged_by),
        )
        parser.add_argument(
            "--allow-host",
            action="append",
            default=[],
            help="also allow this host or network "
            "(default: KAIZEN_ALLOWED_TARGET_HOSTS or loopback)",
        )

    def handle(self, *args, **opts):
        allowed = [h for h in os.environ.get("KAIZEN_ALLOWED_TARGET_HOSTS", "").split(",") if h]
        allowed = tuple(allowed or DEFAULT_ALLOWED) + tuple(opts["allow_host"])
        try:
            overrides = _slo_overrides(opts["slo"])
        except ValueError as exc:
            self.stderr.write(f"error: {exc}")
            sys.exit(verdicts.EXIT_ERROR)
        target = TargetSpec(
            name="cli",
            database_url=opts["database_url"],
            allowed_hosts=allowed,
            thresholds=slo.merged(overrides),
        )
        params = {"window": opts["window"], "metrics_url": opts["metrics_url"]}
        echo = None if opts["json"] else (lambda line: self.stderr.write(line))
        ctx = LocalContext(echo=echo)
        if not opts["json"] and opts["window"]:
            self.stderr.write(
                f"Scanning {dbscan.safe_url(opts['database_url'])} ({opts['window']}s window)…"
            )
        try:
            result = dbscan.run(target, params, ctx)
        except (AnalysisError, Cancelled) as exc:
            verdict = verdicts.CANCELLED if isinstance(exc, Cancelled) else verdicts.ERROR
            if opts["json"]:
                self.stdout.write(json.dumps({"ok": False, "verdict": verdict, "error": str(exc)}))
            else:
                self.stderr.write(f"error: {exc}")
            sys.exit(verdicts.exit_code(verdict))
        verdict = result.verdict or verdicts.INCOMPLETE
        if opts["json"]:
            payload = {"ok": True, **asdict(result), "verdict": verdict}
            for finding, data in zip(result.findings, payload["findings"], strict=True):
                data["fingerprint"] = finding.fingerprint("db")
            self.stdout.write(json.dumps(payload, default=str, indent=2))
        else:
            self._print(result)
            why = f" — {result.verdict_reason}" if result.verdict_reason else ""
            self.stdout.write(f"Verdict: {verdict}{why}")
        sys.exit(verdicts.exit_code(verdict))

    def _print(self, result):
        out = self.stdout.write
        s = result.summary
        out(f"{s.get('database')} — PostgreSQL {s.get('server_version')} as {s.get('role')}")
        for check in result.checks:
            out(f"  {check.status:8} {check.check_id:24} {check.detail}")
        order = sorted(result.findings, key=lambda f: -SEVERITY_RANK[f.severity])
        if order:
            out("")
        for finding in order:
            out(f"[{finding.severity}] {finding.title}")
            if finding.fix_hint:
                out(f"    fix: {finding.fix_hint}")
        scan = s.get("scan", {})
        out("")
        out(
            f"{len(result.findings)} finding(s); scan took {scan.get('seconds')}s, "
            f"{scan.get('statements')} statements on the target"
        )


def _slo_overrides(pairs: list[str]) -> dict[str, float]:
    """``["db_avg_ms=20", …]`` → ``{"db_avg_ms": 20.0}``; unknown keys are an error."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or key not in slo.BY_KEY:
            raise ValueError(f"--slo {pair!r}: give KEY=VALUE with a key of the SLO table")
        try:
            overrides[key] = float(value)
        except ValueError:
            raise ValueError(f"--slo {pair!r}: {value!r} is not a number") from None
    return overrides
