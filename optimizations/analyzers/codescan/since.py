"""What is new since an earlier code scan: by fingerprint, against that scan's report.

The earlier scan is read from its JSON export (``to_json``) or its SARIF log
(``partialFingerprints["kaizen/v1"]``): the portal keeps both per job, and CI
keeps the file of its last run. Each finding of the current scan is *new*
(absent from the earlier one), *unchanged*, or *updated* (same fingerprint, but
its severity, title or line moved); findings of the earlier scan that are gone
are *absent*. The words are SARIF's ``baselineState`` values; pages and the CLI
say "new since scan #N" (in Kaizen "baseline" means the pinned benchmark).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..base import AnalysisResult

NEW, UNCHANGED, UPDATED, ABSENT = "new", "unchanged", "updated", "absent"


@dataclass
class Earlier:
    """The findings of an earlier scan, by fingerprint (what a comparison needs of them)."""

    label: str  # "scan #42" or a file name
    findings: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_report(text: str, label: str) -> Earlier:
    """An earlier scan from its JSON export or SARIF log; ValueError when it is neither."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{label} is not JSON: {exc}") from None
    earlier = Earlier(label)
    if isinstance(document, dict) and isinstance(document.get("findings"), list):
        for finding in document["findings"]:
            print_ = finding.get("fingerprint")
            if print_:
                earlier.findings[print_] = {
                    "rule_id": finding.get("rule_id", ""),
                    "severity": finding.get("severity", ""),
                    "title": finding.get("title", ""),
                    "location": finding.get("location", ""),
                    "suppressed": bool((finding.get("evidence") or {}).get("suppressed")),
                }
        return earlier
    if isinstance(document, dict) and isinstance(document.get("runs"), list):
        for run in document["runs"]:
            for result in run.get("results", []):
                print_ = (result.get("partialFingerprints") or {}).get("kaizen/v1")
                if not print_ or result.get("baselineState") == ABSENT:
                    continue
                region = (
                    (result.get("locations") or [{}])[0]
                    .get("physicalLocation", {})
                    .get("region", {})
                )
                uri = (
                    (result.get("locations") or [{}])[0]
                    .get("physicalLocation", {})
                    .get("artifactLocation", {})
                    .get("uri", "")
                )
                properties = result.get("properties") or {}
                earlier.findings[print_] = {
                    "rule_id": result.get("ruleId", ""),
                    "severity": properties.get("severity", ""),
                    "title": (result.get("message") or {}).get("text", "").split(": ", 1)[0],
                    "location": f"{uri}:{region.get('startLine', 1)}",
                    "suppressed": bool(result.get("suppressions")),
                }
        return earlier
    raise ValueError(f"{label} is neither a Kaizen code-scan JSON report nor a SARIF log")


def compare(
    result: AnalysisResult, earlier: Earlier
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """(state by fingerprint of the current findings, the earlier findings now absent)."""
    states: dict[str, str] = {}
    for finding in result.findings:
        print_ = finding.fingerprint("code")
        before = earlier.findings.get(print_)
        if before is None:
            states[print_] = NEW
        elif (before.get("severity"), before.get("location"), before.get("title")) != (
            finding.severity,
            finding.location,
            finding.title,
        ):
            states[print_] = UPDATED
        else:
            states[print_] = UNCHANGED
    absent = [
        {"fingerprint": print_, **data}
        for print_, data in earlier.findings.items()
        if print_ not in states
    ]
    return states, absent


def counts(states: dict[str, str], absent: list[dict[str, Any]]) -> dict[str, int]:
    tally = {NEW: 0, UNCHANGED: 0, UPDATED: 0, ABSENT: len(absent)}
    for state in states.values():
        tally[state] += 1
    return tally


def mark_sarif(log: dict[str, Any], earlier: Earlier) -> dict[str, Any]:
    """A stored SARIF log with each result's ``baselineState`` against ``earlier`` (read
    from that scan's SARIF log too, so both sides are extracted alike) and the earlier
    results now gone added as ``absent``."""
    current = load_report(json.dumps(log), "this scan").findings
    for run in log.get("runs", []):
        kept = []
        for result in run.get("results", []):
            if result.get("baselineState") == ABSENT:
                continue  # a log marked before: mark it again from scratch
            print_ = (result.get("partialFingerprints") or {}).get("kaizen/v1")
            if isinstance(print_, str):
                before, now = earlier.findings.get(print_), current.get(print_)
            else:  # no Kaizen fingerprint (another tool's result): new
                before, now = None, None
            if before is None:
                result["baselineState"] = NEW
            elif _same(before, now):
                result["baselineState"] = UNCHANGED
            else:
                result["baselineState"] = UPDATED
            kept.append(result)
        for print_, gone in earlier.findings.items():
            if print_ in current:
                continue
            path, _, line = gone.get("location", "").rpartition(":")
            kept.append(
                {
                    "ruleId": gone.get("rule_id") or "unknown",
                    "message": {"text": f"{gone.get('title') or gone.get('rule_id')} (gone)"},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": path, "uriBaseId": "%SRCROOT%"},
                                "region": {"startLine": int(line) if line.isdigit() else 1},
                            }
                        }
                    ],
                    "partialFingerprints": {"kaizen/v1": print_},
                    "baselineState": ABSENT,
                }
            )
        run["results"] = kept
    return log


def _same(before: dict[str, Any], now: dict[str, Any] | None) -> bool:
    keys = ("severity", "location", "title")
    return now is not None and all(before.get(k) == now.get(k) for k in keys)
