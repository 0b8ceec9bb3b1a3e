"""JSON and SARIF 2.1.0 exports of a code scan.

SARIF is what GitHub code scanning and IDEs read: one run, the rules that
fired (ours and ruff's) with their help links, results with a region, the
code snippet and our fingerprint as ``partialFingerprints`` so GitHub tracks
the same finding across commits as Kaizen does. Parse failures are tool
notifications of the invocation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base import SEVERITIES, AnalysisResult, FindingData, is_at_least
from .since import compare

if TYPE_CHECKING:
    from .since import Earlier

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "kaizen-codescan"
# SARIF's three levels over the one severity order: high and worse are errors.
LEVELS = {
    name: "error" if is_at_least(name, "high") else "warning" if name == "medium" else "note"
    for name in SEVERITIES
}
# GitHub sorts security results by this CVSS-like number on the rule.
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}


def finding_dict(finding: FindingData) -> dict[str, Any]:
    return {
        "rule_id": finding.rule_id,
        "title": finding.title,
        "severity": finding.severity,
        "category": finding.category,
        "location": finding.location,
        "evidence": finding.evidence,
        "fix_hint": finding.fix_hint,
        "doc_url": finding.doc_url,
        "key": finding.key,
        "fingerprint": finding.fingerprint("code"),
    }


def to_json(result: AnalysisResult, indent: int | None = 2) -> str:
    """The whole result as JSON: summary, findings (with fingerprints) and check outcomes."""
    document = {
        "tool": TOOL_NAME,
        "summary": result.summary,
        "verdict": result.verdict,
        "findings": [finding_dict(f) for f in result.findings],
        "checks": [
            {"check_id": c.check_id, "status": c.status, "detail": c.detail} for c in result.checks
        ],
    }
    return json.dumps(document, indent=indent, sort_keys=False, default=str)


def _split_location(location: str) -> tuple[str, int]:
    path, _, line = location.rpartition(":")
    if not path or not line.isdigit():
        return location, 1
    return path, int(line)


def to_sarif(result: AnalysisResult, earlier: Earlier | None = None) -> dict[str, Any]:
    """A SARIF 2.1.0 log (as a dict; ``json.dumps`` it to write a .sarif file).

    With ``earlier`` (a ``since.Earlier``) each result carries its ``baselineState``
    (new, unchanged, updated) and the earlier findings now gone are added as ``absent``.
    """
    states, absent = compare(result, earlier) if earlier is not None else ({}, [])
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for finding in result.findings:
        if finding.rule_id not in rules:
            rules[finding.rule_id] = _rule_descriptor(finding)
        path, line = _split_location(finding.location)
        region: dict[str, Any] = {"startLine": line}
        column = finding.evidence.get("column")
        if isinstance(column, int) and column > 0:
            region["startColumn"] = column
        excerpt = finding.evidence.get("excerpt")
        if excerpt:
            region["snippet"] = {"text": excerpt}
        message = finding.title
        detail = finding.evidence.get("detail")
        if detail:
            message = f"{finding.title}: {detail}"
        results.append(
            {
                "ruleId": finding.rule_id,
                "ruleIndex": list(rules).index(finding.rule_id),
                "level": LEVELS[finding.severity],
                "message": {"text": message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": path, "uriBaseId": "%SRCROOT%"},
                            "region": region,
                        }
                    }
                ],
                "partialFingerprints": {"kaizen/v1": finding.fingerprint("code")},
                "properties": {"severity": finding.severity, "category": finding.category},
                **_suppressions(finding),
                **(
                    {"baselineState": states[finding.fingerprint("code")]}
                    if earlier is not None
                    else {}
                ),
            }
        )
    for gone in absent:
        path, line = _split_location(gone.get("location", ""))
        results.append(
            {
                "ruleId": gone.get("rule_id") or "unknown",
                "level": LEVELS.get(str(gone.get("severity")), "note"),
                "message": {"text": f"{gone.get('title') or gone.get('rule_id')} (gone)"},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": path, "uriBaseId": "%SRCROOT%"},
                            "region": {"startLine": line},
                        }
                    }
                ],
                "partialFingerprints": {"kaizen/v1": gone["fingerprint"]},
                "baselineState": "absent",
            }
        )
    summary = result.summary
    notifications = [
        {
            "level": "warning",
            "message": {"text": f"{failure['path']}: could not be parsed ({failure['error']})"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": failure["path"], "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": max(1, int(failure.get("line") or 1))},
                    }
                }
            ],
        }
        for failure in summary.get("parse_failures", [])
    ]
    root = summary.get("root", "")
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": summary.get("version", "1"),
                "rules": list(rules.values()),
            }
        },
        "invocations": [
            {
                "executionSuccessful": True,
                "toolExecutionNotifications": notifications,
            }
        ],
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    if root:
        run["originalUriBaseIds"] = {"%SRCROOT%": {"uri": Path(root).resolve().as_uri() + "/"}}
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def _suppressions(finding: FindingData) -> dict[str, Any]:
    """A `# kaizen: ignore[...] -- reason` comment as SARIF's in-source suppression."""
    suppressed = finding.evidence.get("suppressed")
    if not suppressed:
        return {}
    return {
        "suppressions": [
            {
                "kind": "inSource",
                "status": "accepted",
                "justification": suppressed.get("reason", ""),
            }
        ]
    }


def _rule_descriptor(finding: FindingData) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "tags": [finding.category],
        "precision": "high" if finding.rule_id.startswith("FSA") else "medium",
    }
    if finding.category == "security":
        properties["security-severity"] = SECURITY_SEVERITY[finding.severity]
        properties["tags"].append("security")
    descriptor: dict[str, Any] = {
        "id": finding.rule_id,
        "name": finding.evidence.get("rule_name") or finding.rule_id,
        "shortDescription": {"text": finding.evidence.get("rule_title") or finding.title},
        "defaultConfiguration": {"level": LEVELS[finding.severity]},
        "properties": properties,
    }
    if finding.doc_url:
        descriptor["helpUri"] = finding.doc_url
    why = finding.evidence.get("why")
    if why:
        descriptor["fullDescription"] = {"text": why}
        descriptor["help"] = {"text": f"{why}\n\nFix: {finding.fix_hint}"}
    return descriptor
