"""Running ruff for the rules it already covers, and mapping its JSON to our findings.

Ruff runs as a subprocess on exactly the files our scan kept (so the same
exclusions apply), isolated from the target's own configuration, with the
newest target version so that it parses 3.14 syntax, and with FastAPI's
parameter functions declared immutable so that B008 stays quiet on
``Depends()``/``Query()`` defaults. Its rule ids are kept as they are
(``ASYNC210``, ``S608``...).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

SELECT = ("FAST", "ASYNC", "S", "B")
# Noise on application code, or already said better by one of our rules.
IGNORE = (
    "S101",  # assert
    "S104",  # binding to all interfaces: what a container does
    "S110",
    "S112",
    "S311",  # random for non-crypto use
    "S404",
    "S603",
    "S607",
    "B007",
    "B009",
    "B010",
    "B905",
)
IMMUTABLE_CALLS = [
    f"fastapi.{name}"
    for name in ("Depends", "Query", "Path", "Body", "Header", "Security", "Cookie", "Form", "File")
] + [f"fastapi.params.{name}" for name in ("Depends", "Query", "Path", "Body", "Header")]
CHUNK = 400  # files per ruff invocation, to stay far below the command-line limit

# Severity and category of the ruff rules that matter here; the rest take their family's.
SEVERITY = {
    "ASYNC210": ("high", "performance"),
    "ASYNC212": ("high", "performance"),
    "ASYNC220": ("medium", "performance"),
    "ASYNC221": ("medium", "performance"),
    "ASYNC222": ("medium", "performance"),
    "ASYNC230": ("medium", "performance"),
    "ASYNC240": ("low", "performance"),
    "ASYNC250": ("medium", "performance"),
    "ASYNC251": ("high", "performance"),
    "S105": ("high", "security"),
    "S106": ("high", "security"),
    "S107": ("high", "security"),
    "S608": ("medium", "security"),
    "S113": ("medium", "reliability"),
    "S102": ("high", "security"),
    "S307": ("high", "security"),
    "S501": ("high", "security"),
    "S506": ("high", "security"),
    "S602": ("high", "security"),
    "S301": ("medium", "security"),
    "S324": ("medium", "security"),
    "FAST001": ("info", "correctness"),
    "FAST002": ("info", "correctness"),
    "FAST003": ("medium", "correctness"),
    "B006": ("medium", "correctness"),
    "B008": ("medium", "correctness"),
    "B023": ("medium", "correctness"),
    "B904": ("low", "correctness"),
}
FAMILY = {
    "FAST": ("low", "correctness"),
    "ASYNC": ("medium", "performance"),
    "S": ("medium", "security"),
    "B": ("low", "correctness"),
}
FIX = {
    "S608": "Use bound parameters instead of building SQL from strings.",
    "S113": "Pass `timeout=` to every HTTP call.",
    "S105": "Read secrets from the environment or a secret store.",
    "S106": "Read secrets from the environment or a secret store.",
    "S107": "Read secrets from the environment or a secret store.",
    "B006": "Default to None and create the mutable value inside the function.",
    "B008": "Move the call out of the default (module-level constant or a dependency).",
    "B904": "Raise with `from err` (or `from None`) inside `except`.",
    "FAST002": "Use `Annotated[T, Depends(...)]` for dependencies.",
    "FAST003": "Declare the path parameter in the function signature.",
}


@dataclass
class RuffResult:
    """What ruff said: its diagnostics, the rules it ran, and whether it ran at all."""

    ran: bool
    version: str = ""
    diagnostics: list[dict[str, Any]] = field(default_factory=list)  # ruff's JSON output
    rules: dict[str, dict[str, str]] = field(default_factory=dict)  # code → {name, url, summary}
    duration: float = 0.0
    error: str = ""


def ruff_binary() -> str | None:
    """The ruff next to the running Python (the project's venv) or on PATH."""
    beside = Path(sys.executable).with_name("ruff")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("ruff")


def severity_of(code: str) -> tuple[str, str]:
    if code in SEVERITY:
        return SEVERITY[code]
    for family in sorted(FAMILY, key=len, reverse=True):
        if code.startswith(family):
            return FAMILY[family]
    return ("low", "correctness")


def selected(code: str, select: Sequence[str] = SELECT, ignore: Sequence[str] = IGNORE) -> bool:
    prefixes = [p for p in select if code.startswith(p)]
    if not prefixes:
        return False
    # ruff's own precedence: a more specific prefix wins
    longest_select = max(len(p) for p in prefixes)
    ignored = [p for p in ignore if code.startswith(p)]
    return not ignored or max(len(p) for p in ignored) < longest_select


@cache
def rule_table(binary: str) -> dict[str, dict[str, str]]:
    """Stable ruff rules we enable, with their name and documentation link."""
    done = subprocess.run(
        [binary, "rule", "--all", "--output-format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    rules: dict[str, dict[str, str]] = {}
    for rule in json.loads(done.stdout or "[]"):
        code = rule.get("code") or ""
        if not code or "Stable" not in (rule.get("status") or {}) or rule.get("preview"):
            continue
        if selected(code):
            rules[code] = {
                "name": rule.get("name", ""),
                "summary": rule.get("summary", ""),
                "url": f"https://docs.astral.sh/ruff/rules/{rule.get('name', '')}/",
            }
    return rules


def run_ruff(
    root: Path,
    files: list[str],
    *,
    timeout: float = 300,
    check_cancel: Callable[[], None] | None = None,
) -> RuffResult:
    """Run ruff on ``files`` (paths relative to ``root``) and collect its diagnostics."""
    binary = ruff_binary()
    if binary is None:
        return RuffResult(False, error="ruff is not installed on the worker")
    started = time.monotonic()
    try:
        version = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.strip()
        rules = rule_table(binary)
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        return RuffResult(False, error=f"ruff could not list its rules: {exc}")
    command = [
        binary,
        "check",
        "--isolated",
        "--no-cache",
        "--exit-zero",
        "--output-format",
        "json",
        "--target-version",
        "py314",
        "--select",
        ",".join(SELECT),
        "--ignore",
        ",".join(IGNORE),
        "--config",
        f"lint.flake8-bugbear.extend-immutable-calls = {json.dumps(IMMUTABLE_CALLS)}",
    ]
    diagnostics: list[dict[str, Any]] = []
    for start in range(0, len(files), CHUNK):
        if check_cancel:
            check_cancel()
        remaining = timeout - (time.monotonic() - started)
        if remaining <= 0:
            return RuffResult(False, version, error=f"ruff took longer than {timeout:g} s")
        try:
            done = subprocess.run(
                [*command, "--", *files[start : start + CHUNK]],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=remaining,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return RuffResult(False, version, error=f"ruff took longer than {timeout:g} s")
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return RuffResult(False, version, error=f"ruff failed: {last}")
        try:
            diagnostics += json.loads(done.stdout or "[]")
        except json.JSONDecodeError:
            return RuffResult(False, version, error="ruff printed something that is not JSON")
    # Syntax errors have no code: our parser reports those files itself.
    diagnostics = [d for d in diagnostics if d.get("code")]
    return RuffResult(True, version, diagnostics, rules, time.monotonic() - started)
