"""``manage.py dbscan <database-url>``: the DB scan from a DBA's terminal or a CI job.

Exit status: 0 when no high-severity finding, 1 when one is present, 2 when the
scan could not run (connection refused, wrong password, host not allowed...).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict

from django.core.management.base import BaseCommand

from optimizations.analyzers import dbscan
from optimizations.analyzers.base import (
    SEVERITY_RANK,
    AnalysisError,
    Cancelled,
    LocalContext,
    TargetSpec,
)
from optimizations.analyzers.netguard import DEFAULT_ALLOWED


class Command(BaseCommand):
    help = "Scan a PostgreSQL database read-only; exit 1 on a high-severity finding, 2 on failure."

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
            "--allow-host",
            action="append",
            default=[],
            help="also allow this host or network "
            "(default: KAIZEN_ALLOWED_TARGET_HOSTS or loopback)",
        )

    def handle(self, *args, **opts):
        allowed = [h for h in os.environ.get("KAIZEN_ALLOWED_TARGET_HOSTS", "").split(",") if h]
        allowed = tuple(allowed or DEFAULT_ALLOWED) + tuple(opts["allow_host"])
        target = TargetSpec(name="cli", database_url=opts["database_url"], allowed_hosts=allowed)
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
            if opts["json"]:
                self.stdout.write(json.dumps({"ok": False, "error": str(exc)}))
            else:
                self.stderr.write(f"error: {exc}")
            sys.exit(2)
        high = any(SEVERITY_RANK[f.severity] >= SEVERITY_RANK["high"] for f in result.findings)
        if opts["json"]:
            payload = {"ok": True, **asdict(result)}
            for finding, data in zip(result.findings, payload["findings"], strict=True):
                data["fingerprint"] = finding.fingerprint("db")
            self.stdout.write(json.dumps(payload, default=str, indent=2))
        else:
            self._print(result)
        sys.exit(1 if high else 0)

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
