"""Code scan: FastAPI/SQLAlchemy-aware rules (FSA001–FSA502) plus ruff, over a source tree,
and (``audit_dependencies``) the pinned dependencies' published vulnerabilities (DEP001).

``run(target, params, ctx)`` follows the analyzer contract of ``base.py``. It
loads the tree (a local directory, or a git URL on an allow-listed host,
cloned into a cache), builds the project index (models, routes, dependencies,
call graph) and the request taint, runs the selected FSA rules and ruff's
FAST/ASYNC/S/B rules, and returns findings with a stable ``key``, one
CheckOutcome per rule that ran, the summary (counts, files, lines, duration,
stack report, parse failures) and measurements. ``to_json`` and ``to_sarif``
export the result. A finding silenced by ``# kaizen: ignore[RULE] -- reason`` is kept,
marked suppressed with its reason, and judges nothing; without a reason the comment
suppresses nothing and is itself reported (FSA002).
"""

from __future__ import annotations

import ast
import re
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from ..base import (
    CHECK_FAILED,
    CHECK_PASSED,
    CHECK_UNKNOWN,
    SEVERITY_RANK,
    AnalysisError,
    AnalysisResult,
    CheckOutcome,
    Context,
    FindingData,
    LocalContext,
    MeasurementData,
    Param,
    TargetSpec,
    validate_params,
)
from ..netguard import HostNotAllowed, check_url
from ..secrets import mask_credentials
from . import advisories, project
from .index import Index
from .ruff import FIX as RUFF_FIX
from .ruff import run_ruff, severity_of
from .rules import RULES, Hit
from .rules.checks import load_checks
from .rules.common import Scan
from .sarif import to_json, to_sarif
from .stack import stack_report
from .taint import Taint

__all__ = ["PARAMS", "RULES", "run", "scan_path", "to_json", "to_sarif"]

VERSION = "1"
FOCI = ("fastapi", "sqlalchemy", "async", "security", "correctness", "performance", "architecture")
RUFF_TAGS = {
    "FAST": {"fastapi", "correctness"},
    "ASYNC": {"async", "performance"},
    "S": {"security"},
    "B": {"correctness"},
}
# A ruff diagnostic on a line one of our rules already reports says the same thing less well.
SUPERSEDED_BY = {
    "S608": {"FSA402"},
    "S105": {"FSA405"},
    "S106": {"FSA405"},
    "S107": {"FSA405"},
    "ASYNC210": {"FSA104", "FSA304"},
    "ASYNC212": {"FSA104"},
    "ASYNC220": {"FSA104"},
    "ASYNC221": {"FSA104"},
    "ASYNC222": {"FSA104"},
    "ASYNC230": {"FSA104"},
    "ASYNC251": {"FSA104"},
}

PARAMS = [
    Param(
        "source",
        "str",
        "",
        label="Source",
        help="Local directory or git URL to scan; empty uses the target's source path.",
    ),
    Param("git_ref", "str", "", label="Git ref", help="Branch or tag to clone (default: HEAD)."),
    Param(
        "focus",
        "list",
        [],
        label="Focus",
        choices=FOCI,
        help="Run only the rules with these tags; empty runs every rule.",
    ),
    Param(
        "rules",
        "list",
        [],
        label="Rules",
        help="Rule ids or prefixes to run (FSA1, FSA402, ASYNC); empty runs every rule.",
    ),
    Param("ruff", "bool", True, label="Run ruff", help="Merge ruff's FAST/ASYNC/S/B rules."),
    Param(
        "include_tests",
        "bool",
        False,
        label="Include tests",
        help="Scan test files and directories too.",
    ),
    Param("exclude", "list", [], label="Exclude", help="Extra glob patterns of paths to skip."),
    Param("max_files", "int", 20000, label="Max files", min=1, max=500000),
    Param(
        "workers",
        "int",
        0,
        label="Worker processes",
        min=0,
        max=4096,
        help="Server processes per deployment, for pool sizing (0: read the deployment files).",
    ),
    Param(
        "max_connections",
        "int",
        0,
        label="max_connections",
        min=0,
        max=100000,
        help="PostgreSQL max_connections from the DB scan (0: PostgreSQL's default, 100).",
    ),
    Param(
        "pooler",
        "choice",
        "auto",
        label="Connection pooler",
        choices=("auto", "none", "session", "transaction"),
        help="PgBouncer in front of PostgreSQL; auto reads the deployment files.",
    ),
    Param(
        "postgres_version",
        "str",
        "",
        label="PostgreSQL version",
        help="server_version from the latest DB scan, for the stack report.",
    ),
    Param(
        "audit_dependencies",
        "bool",
        False,
        label="Audit dependencies",
        help="Look up the pinned dependencies' published vulnerabilities (pip-audit, PyPI's "
        "advisory data); runs when the security rules are in scope.",
    ),
    Param(
        "advisory_url",
        "str",
        advisories.PYPI_JSON,
        label="Advisory source",
        help="PyPI JSON API base URL pip-audit reads (a mirror may stand in for pypi.org).",
    ),
    Param("timeout", "int", 600, label="Timeout (s)", min=10, max=7200),
    Param("cache_dir", "str", "", label="Clone cache", help="Where git URLs are cloned."),
]


def _selected_rules(
    params: Mapping[str, Any],
) -> tuple[set[str], Callable[[str, set[str]], bool]]:
    focus, prefixes = set(params["focus"]), [p.upper() for p in params["rules"]]

    def wanted(rule_id: str, tags: set[str]) -> bool:
        if prefixes and not any(rule_id.startswith(p) for p in prefixes):
            return False
        return not focus or bool(focus & tags)

    ours = {r.id for r in RULES.values() if wanted(r.id, set(r.tags))}
    return ours, wanted


def _ruff_tags(code: str) -> set[str]:
    for family in sorted(RUFF_TAGS, key=len, reverse=True):
        if code.startswith(family):
            return RUFF_TAGS[family]
    return set()


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()[:240]


class _Findings:
    """Turns hits and ruff diagnostics into FindingData with stable keys."""

    def __init__(self, index: Index, by_rel: dict[str, project.SourceFile], root: Path):
        self.index = index
        self.by_rel = by_rel
        self.root = root
        self.findings: list[FindingData] = []
        self.suppressed = 0
        self.unjustified: list[tuple[str, int, str, str]] = []  # in non-Python files
        self._keys: Counter[tuple[str, str]] = Counter()
        self._places: set[tuple[str, str, int, int]] = set()

    def _key(self, rule_id: str, rel: str, func_qual: str, excerpt: str) -> str:
        base = f"{rel}::{func_qual or '<module>'}::{_normalise(excerpt)}"
        self._keys[(rule_id, base)] += 1
        count = self._keys[(rule_id, base)]
        return base if count == 1 else f"{base}#{count}"

    def _excerpt(self, source: project.SourceFile, line: int, end: int) -> str:
        end = max(line, min(end, line + 4))
        # Masked as FSA405's own text is: an excerpt must not show the password it reports.
        excerpt = textwrap.dedent("\n".join(source.lines[line - 1 : end])).strip("\n")
        return mask_credentials(excerpt)

    def add_hit(self, hit: Hit) -> None:
        rule = RULES[hit.rule_id]
        source = hit.file
        line: int = getattr(hit.node, "lineno", 1)
        end: int = getattr(hit.node, "end_lineno", line) or line
        column: int = getattr(hit.node, "col_offset", 0) + 1
        place = (hit.rule_id, source.rel, line, column)
        if place in self._places:
            # a second reason for the same finding (FSA205 can have several)
            for finding in self.findings:
                ev = finding.evidence
                if (
                    finding.rule_id == hit.rule_id
                    and finding.location == f"{source.rel}:{line}"
                    and hit.detail
                    and hit.detail not in ev.get("detail", "")
                ):
                    ev["detail"] = f"{ev.get('detail', '')}; {hit.detail}".strip("; ")
            return
        self._places.add(place)
        suppression = source.suppression(hit.rule_id, line)
        segment = ast.get_source_segment(source.text, hit.node) or source.line(line)
        func_qual = hit.func.qual if hit.func is not None else ""
        evidence = {
            "excerpt": self._excerpt(source, line, end),
            "line": line,
            "end_line": end,
            "column": column,
            "function": func_qual,
            "detail": hit.detail,
            "why": rule.why,
            "rule_title": rule.title,
            **hit.evidence,
        }
        self._mark(evidence, suppression)
        self.findings.append(
            FindingData(
                rule_id=hit.rule_id,
                title=rule.title,
                severity=hit.severity or rule.severity,
                category=rule.category,
                location=f"{source.rel}:{line}",
                evidence=evidence,
                fix_hint=rule.fix,
                doc_url=rule.doc_url,
                key=self._key(hit.rule_id, source.rel, func_qual, segment),
            )
        )

    def _mark(self, evidence: dict[str, Any], suppression: dict[str, str] | None) -> None:
        """A suppressed finding is kept and shown as suppressed, with its reason."""
        if suppression is not None:
            evidence["suppressed"] = suppression
            self.suppressed += 1

    def suppressed_dependency(self, location: str) -> dict[str, str] | None:
        """A `# kaizen: ignore[DEP001] -- reason` on the requirement's line."""
        rel, _, line = location.rpartition(":")
        path = self.root / rel
        if not line.isdigit() or not path.is_file():
            return None
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        number = int(line)
        if not 0 < number <= len(lines):
            return None
        by_line, _whole, unjustified = project._suppressions(lines[number - 1])
        if unjustified:
            self.unjustified.append((rel, number, lines[number - 1], unjustified[0][1]))
        rules = by_line.get(1, {})
        reason = rules.get("DEP001") or rules.get("*")
        return {"scope": "line", "reason": reason} if reason else None

    def add_unjustified(self, rel: str, line: int, text: str, comment: str) -> None:
        rule = RULES["FSA002"]
        self.findings.append(
            FindingData(
                rule_id="FSA002",
                title=rule.title,
                severity=rule.severity,
                category=rule.category,
                location=f"{rel}:{line}",
                evidence={
                    "excerpt": mask_credentials(text.strip()),
                    "line": line,
                    "detail": f"`{comment}` gives no reason: it suppresses nothing",
                    "why": rule.why,
                    "rule_title": rule.title,
                },
                fix_hint=rule.fix,
                doc_url=rule.doc_url,
                key=self._key("FSA002", rel, "", text),
            )
        )

    def add_parse_failure(self, source: project.SourceFile) -> None:
        rule = RULES["FSA001"]
        line = max(1, source.error_line)
        suppression = source.suppression("FSA001", line)
        evidence = {
            "excerpt": mask_credentials(source.line(line).strip()),
            "line": line,
            "detail": source.error,
            "why": rule.why,
            "rule_title": rule.title,
        }
        self._mark(evidence, suppression)
        self.findings.append(
            FindingData(
                rule_id="FSA001",
                title=rule.title,
                severity=rule.severity,
                category=rule.category,
                location=f"{source.rel}:{line}",
                evidence=evidence,
                fix_hint=rule.fix,
                doc_url=rule.doc_url,
                key=f"{source.rel}::<file>::parse",
            )
        )

    def add_ruff(
        self, diagnostic: dict[str, Any], root: Path, rules: dict[str, dict[str, str]]
    ) -> None:
        code = diagnostic["code"]
        try:
            rel = Path(diagnostic["filename"]).resolve().relative_to(root).as_posix()
        except ValueError:
            rel = diagnostic["filename"]
        line = int(diagnostic.get("location", {}).get("row") or 1)
        end = int(diagnostic.get("end_location", {}).get("row") or line)
        source = self.by_rel.get(rel)
        suppression = source.suppression(code, line) if source is not None else None
        covering = SUPERSEDED_BY.get(code, set())
        for finding in self.findings:
            ev = finding.evidence
            if (
                finding.rule_id in covering
                and finding.location.rsplit(":", 1)[0] == rel
                and ev.get("line", 0) <= line <= ev.get("end_line", ev.get("line", 0))
            ):
                ev.setdefault("also_reported_by", []).append(code)
                return
        severity, category = severity_of(code)
        func = self.index.enclosing_function(source, line) if source and source.tree else None
        excerpt = self._excerpt(source, line, end) if source else ""
        info = rules.get(code, {})
        url = diagnostic.get("url") or info.get("url", "")
        message = diagnostic.get("message", "")
        marked: dict[str, Any] = {}
        self._mark(marked, suppression)
        self.findings.append(
            FindingData(
                rule_id=code,
                title=message or info.get("summary", code),
                severity=severity,
                category=category,
                location=f"{rel}:{line}",
                evidence={
                    "excerpt": excerpt,
                    "line": line,
                    "end_line": end,
                    "column": int(diagnostic.get("location", {}).get("column") or 1),
                    "function": func.qual if func else "",
                    "detail": message,
                    "why": f"ruff {code} ({diagnostic.get('name') or info.get('name', '')}): "
                    f"{message}",
                    "rule_title": info.get("summary") or message,
                    "rule_name": diagnostic.get("name") or info.get("name", ""),
                    "linter": "ruff",
                    **marked,
                },
                fix_hint=RUFF_FIX.get(code, f"See ruff's documentation of {code}: {url}"),
                doc_url=url,
                key=self._key(
                    code,
                    rel,
                    func.qual if func else "",
                    excerpt.splitlines()[0] if excerpt else message,
                ),
            )
        )


def run(target: TargetSpec, params: Mapping[str, Any], ctx: Context) -> AnalysisResult:
    """Scan the target's source tree; see the module docstring."""
    params = validate_params(PARAMS, dict(params or {}))
    started = time.monotonic()
    source_ref = params["source"] or target.source_path
    if not source_ref:
        raise AnalysisError(
            "no source to scan: set the target's source location or the scan's source parameter"
        )
    ctx.progress(1, "locating the source tree")
    root, commit = project.resolve_source(
        source_ref,
        allowed_hosts=target.allowed_hosts,
        cache_dir=params["cache_dir"],
        git_ref=params["git_ref"],
        timeout=params["timeout"],
        log=ctx.log,
    )
    ctx.check_cancel()
    paths, excluded = project.discover(
        root,
        include_tests=params["include_tests"],
        exclude=params["exclude"],
        max_files=params["max_files"],
    )
    ctx.log(f"{len(paths)} Python files to scan under {root}")
    files: list[project.SourceFile] = []
    for number, path in enumerate(paths, start=1):
        if number % 50 == 0:
            ctx.check_cancel()
            ctx.progress(5 + 35 * number / max(1, len(paths)), f"parsing {number}/{len(paths)}")
        source = project.load_file(root, path)
        if source is None:
            excluded["templates"] += 1
        else:
            files.append(source)
    deps = project.read_dependencies(root)
    config_texts = project.read_config_texts(root)
    ctx.progress(42, "indexing models, routes and calls")
    index = Index(files, deps)
    taint = Taint(index)
    ctx.check_cancel()
    scan = Scan(
        index,
        taint,
        options={k: params[k] for k in ("workers", "max_connections", "pooler")},
        config_texts=config_texts,
        migration_text=project.read_migration_texts(root),
    )
    ours, wanted = _selected_rules(params)
    checks = load_checks()
    by_rel = {f.rel: f for f in files}
    collector = _Findings(index, by_rel, root)
    outcomes: list[CheckOutcome] = []
    failed_checks: dict[str, str] = {}
    rule_ids = sorted(r for r in ours if r in checks)
    for number, rule_id in enumerate(rule_ids, start=1):
        ctx.check_cancel()
        ctx.progress(45 + 35 * number / max(1, len(rule_ids)), f"rule {rule_id}")
        try:
            for hit in checks[rule_id](scan):
                collector.add_hit(hit)
        except Exception as exc:  # one broken rule must not sink the scan
            failed_checks[rule_id] = f"{type(exc).__name__}: {exc}"
            ctx.log(f"rule {rule_id} failed: {failed_checks[rule_id]}", "error")
    unparsed = [f for f in files if f.tree is None]
    if "FSA001" in ours:
        for source in unparsed:
            collector.add_parse_failure(source)
    if "FSA002" in ours:
        for source in files:
            for line, comment in source.unjustified:
                collector.add_unjustified(source.rel, line, source.line(line), comment)
    ruff_summary: dict[str, Any] = {"ran": False}
    ruff_rules: dict[str, dict[str, str]] = {}
    if params["ruff"]:
        ctx.progress(82, "running ruff")
        ruff_run = run_ruff(
            root,
            [f.rel for f in files],
            timeout=params["timeout"],
            check_cancel=ctx.check_cancel,
        )
        ruff_summary = {
            "ran": ruff_run.ran,
            "version": ruff_run.version,
            "duration_s": round(ruff_run.duration, 3),
            "error": ruff_run.error,
        }
        if ruff_run.ran:
            ruff_rules = {c: i for c, i in ruff_run.rules.items() if wanted(c, _ruff_tags(c))}
            for diagnostic in ruff_run.diagnostics:
                if diagnostic["code"] in ruff_rules:
                    collector.add_ruff(diagnostic, root, ruff_rules)
        else:
            ctx.log(f"ruff did not run: {ruff_run.error}", "warning")
            outcomes.append(CheckOutcome("ruff", CHECK_UNKNOWN, ruff_run.error))
    dependency_audit: dict[str, Any] = {"ran": False}
    if params["audit_dependencies"] and wanted(advisories.RULE_ID, {"security"}):
        ctx.progress(90, "auditing dependencies")
        dependency_audit = _audit_dependencies(
            root, deps, params, ctx, collector, outcomes, target.allowed_hosts
        )
    findings = collector.findings
    # Suppressed findings are kept (shown as suppressed, with their reason) but judge nothing.
    active = [f for f in findings if not f.evidence.get("suppressed")]
    fired = Counter(f.rule_id for f in active)
    unparsed_note = (
        f"; {len(unparsed)} file(s) could not be parsed, their findings are unknown"
        if unparsed
        else ""
    )
    for rule_id in sorted(ours):
        if rule_id in failed_checks:
            outcomes.append(CheckOutcome(rule_id, CHECK_UNKNOWN, failed_checks[rule_id]))
        elif rule_id in scan.notes and not fired[rule_id]:
            status, detail = scan.notes[rule_id]
            outcomes.append(CheckOutcome(rule_id, status, detail))
        elif rule_id in checks or rule_id == "FSA001":
            status = CHECK_FAILED if fired[rule_id] else CHECK_PASSED
            outcomes.append(
                CheckOutcome(rule_id, status, f"{fired[rule_id]} finding(s){unparsed_note}")
            )
    for code in sorted(ruff_rules):
        status = CHECK_FAILED if fired[code] else CHECK_PASSED
        outcomes.append(CheckOutcome(code, status, f"{fired[code]} finding(s){unparsed_note}"))
    findings.sort(
        key=lambda f: (-SEVERITY_RANK[f.severity], f.location.rsplit(":", 1)[0], _line(f))
    )
    duration = time.monotonic() - started
    lines = sum(len(f.lines) for f in files)
    stack = stack_report(
        deps, config_texts, postgres=params["postgres_version"], today=date.today()
    )
    summary: dict[str, Any] = {
        "version": VERSION,
        "root": str(root),
        "source": source_ref,
        "commit": commit,
        "files_scanned": len(files),
        "files_parsed": len(files) - len(unparsed),
        "lines": lines,
        "duration_s": round(duration, 3),
        "lines_per_second": round(lines / duration) if duration > 0 else None,
        "files_excluded": dict(sorted(excluded.items())),
        "parse_failures": [
            {"path": f.rel, "line": f.error_line, "error": f.error} for f in unparsed
        ],
        "unparsed_paths": [f.rel for f in unparsed],
        "parsed_with_newer_syntax": [
            {"path": f.rel, "rewrites": f.compat} for f in files if f.compat
        ],
        "counts": {
            "total": len(active),
            "by_rule": dict(sorted(fired.items())),
            "by_severity": dict(
                sorted(
                    Counter(f.severity for f in active).items(),
                    key=lambda item: -SEVERITY_RANK[item[0]],
                )
            ),
        },
        "suppressed": collector.suppressed,
        "rules_run": sorted(ours) + sorted(ruff_rules),
        "rules_failed": failed_checks,
        "routes": len(index.routes),
        "models": sum(1 for c in index.classes.values() if c.is_model),
        "ruff": ruff_summary,
        "dependency_audit": dependency_audit,
        "stack": stack,
    }
    measurements = [
        MeasurementData("codescan.files", len(files), "files"),
        MeasurementData("codescan.lines", lines, "lines"),
        MeasurementData("codescan.duration", round(duration, 3), "s"),
        MeasurementData("codescan.findings", len(active), "findings"),
    ]
    for severity, count in summary["counts"]["by_severity"].items():
        measurements.append(
            MeasurementData("codescan.findings", count, "findings", {"severity": severity})
        )
    worst = max((SEVERITY_RANK[f.severity] for f in active), default=-1)
    verdict, reason = ("fail" if worst >= SEVERITY_RANK["high"] else "pass"), ""
    if verdict == "pass" and dependency_audit.get("status") == CHECK_UNKNOWN:
        # asked for, and could not be done: never pass
        verdict = "incomplete"
        reason = f"dependency audit: {next(c.detail for c in outcomes if c.check_id == 'DEP001')}"
    ctx.progress(100, "done")
    result = AnalysisResult(
        summary=summary,
        findings=findings,
        measurements=measurements,
        checks=outcomes,
        verdict=verdict,
    )
    result.verdict_reason = reason
    return result


def _audit_dependencies(
    root: Path,
    deps: dict[str, project.Dependency],
    params: Mapping[str, Any],
    ctx: Context,
    collector: _Findings,
    outcomes: list[CheckOutcome],
    allowed_hosts: Sequence[str],
) -> dict[str, Any]:
    """pip-audit over the pinned dependencies: findings, one check outcome, a summary."""
    source = params["advisory_url"].rstrip("/")
    try:
        # PyPI itself is the registry Kaizen reads; a stand-in (a mirror) must be allowed
        # like any host a job connects to.
        if source != advisories.PYPI_JSON:
            check_url(source, allowed_hosts)
    except HostNotAllowed as exc:
        audit = advisories.AuditResult(error=f"the advisory source is not allowed: {exc}")
    else:
        audit = advisories.audit(
            deps,
            base_url=source,
            timeout=min(30, params["timeout"]),
            cache_dir=str(Path(params["cache_dir"]) / "advisories") if params["cache_dir"] else "",
            check_cancel=ctx.check_cancel,
        )
    for advisory in audit.advisories:
        line = advisories.declared_line(root, advisory.declared_in, advisory.package)
        location = f"{advisory.declared_in or 'dependencies'}:{line}"
        suppression = collector.suppressed_dependency(location)
        collector.suppressed += 1 if suppression else 0
        ids = ", ".join([advisory.advisory_id, *advisory.aliases])
        collector.findings.append(
            FindingData(
                rule_id=advisories.RULE_ID,
                title=f"{advisory.package} {advisory.installed}: {advisory.advisory_id}",
                severity=advisories.SEVERITY,
                category="security",
                location=location,
                evidence={
                    "excerpt": f"{advisory.package}=={advisory.installed}",
                    "line": line,
                    "package": advisory.package,
                    "installed": advisory.installed,
                    "advisory_id": advisory.advisory_id,
                    "aliases": advisory.aliases,
                    "fixed_in": advisory.fixed_in,
                    "detail": f"{ids}: {advisory.summary}",
                    "why": advisories.WHY,
                    "rule_title": advisories.TITLE,
                    "severity_basis": "PyPI publishes no score; a published vulnerability of a "
                    "shipped dependency is rated high",
                    "source": params["advisory_url"],
                    **({"suppressed": suppression} if suppression else {}),
                },
                fix_hint=advisories.fix_hint(advisory),
                doc_url=advisories.advisory_url(advisory),
                key=f"{advisory.declared_in}::{advisory.package}::{advisory.advisory_id}",
            )
        )
    if "FSA002" in _selected_rules(params)[0]:
        for rel, line, text, comment in collector.unjustified:
            collector.add_unjustified(rel, line, text, comment)
    unchecked = []
    if audit.unpinned:
        listed = ", ".join(audit.unpinned[:5]) + (", …" if len(audit.unpinned) > 5 else "")
        unchecked.append(
            f"{len(audit.unpinned)} dependencies have no pinned version ({listed}): commit a "
            "lock file (uv lock, poetry lock, pip-compile) or pin with == so the installed "
            "versions can be audited"
        )
    if audit.skipped:
        unchecked.append(f"not on PyPI, not audited: {', '.join(audit.skipped[:5])}")
    summary = f"{len(audit.advisories)} advisory(ies) in {len(audit.audited)} audited package(s)"
    if audit.advisories:
        status, detail = CHECK_FAILED, "; ".join([summary, audit.error, *unchecked]).strip("; ")
    elif audit.error:
        status, detail = CHECK_UNKNOWN, audit.error
    elif unchecked or not audit.audited:
        status = CHECK_UNKNOWN
        detail = "; ".join(unchecked) or "the project declares no dependencies to audit"
    else:
        status, detail = CHECK_PASSED, summary
    if audit.error:
        ctx.log(f"dependency audit incomplete: {audit.error}", "warning")
    outcomes.append(CheckOutcome(advisories.RULE_ID, status, detail))
    return {
        "ran": True,
        "source": params["advisory_url"],
        "audited": len(audit.audited),
        "advisories": len(audit.advisories),
        "unpinned": audit.unpinned,
        "skipped": audit.skipped,
        "error": audit.error,
        "status": status,
    }


def _line(finding: FindingData) -> int:
    tail = finding.location.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def scan_path(path: str | Path, ctx: Context | None = None, **params: Any) -> AnalysisResult:
    """Scan a local directory: the CLI's, the tests' and the benchmark's entry point."""
    target = TargetSpec(name=Path(path).name or "source", source_path=str(path))
    return run(target, params, ctx or LocalContext())
