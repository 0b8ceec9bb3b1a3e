"""The stack report: versions of Python, FastAPI, Starlette, SQLAlchemy, Pydantic, the
database driver and PostgreSQL, each with its support status from ``eol.json``.

This is what the organisation's yearly stack review reads. Versions come from
lock files when there are any (what actually runs), else from the constraint's
lower bound (the oldest version the project allows), and the report says which.
"""

from __future__ import annotations

import json
import re
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, TypedDict

from .project import Dependency, normalise_name

EOL_TABLE = Path(__file__).with_name("eol.json")
DRIVERS = ("asyncpg", "psycopg", "psycopg2", "psycopg2-binary", "aiosqlite", "pymysql", "aiomysql")
ENDING_SOON_DAYS = 365


@cache
def eol_table() -> dict[str, Any]:
    products: dict[str, Any] = json.loads(EOL_TABLE.read_text(encoding="utf-8"))["products"]
    return products


def _version_from(dep: Dependency) -> tuple[str, str]:
    """(version, basis) for a dependency."""
    if dep.locked:
        return dep.locked, f"locked in {dep.source}" if dep.source else "locked"
    match = re.search(r"(?:>=|==|~=|\^|>)\s*([\d][\w.]*)", dep.spec)
    if match:
        return match.group(1), f"lowest allowed by {dep.spec!r} ({dep.source})"
    match = re.match(r"\s*([\d][\w.]*)", dep.spec)
    if match:
        return match.group(1), dep.source
    return "", f"unpinned ({dep.source})" if dep.source else "unpinned"


class SupportStatus(TypedDict, total=False):
    """A version's support: ``status`` always (supported, ending-soon, end-of-life,
    maintenance, latest-only or unknown), the rest when the table knows it."""

    status: str
    cycle: str
    eol: str  # ISO date
    source: str
    note: str


def support_status(product: str, version: str, today: date) -> SupportStatus:
    """Status of ``version`` of ``product``: supported, ending-soon, end-of-life,
    maintenance, latest-only or unknown, with the end-of-life date when known."""
    info = eol_table().get(product)
    if info is None or not version:
        return {"status": "unknown"}
    if info.get("policy") == "latest-only":
        return {"status": "latest-only", "note": info.get("note", ""), "source": info["source"]}
    parts = re.findall(r"\d+", version)
    if not parts:
        return {"status": "unknown"}
    cycle = parts[0] if info.get("match") == "major" else ".".join(parts[:2])
    for entry in info["cycles"]:
        if entry["cycle"] != cycle:
            continue
        result: SupportStatus = {"cycle": cycle, "source": info["source"]}
        if "eol" in entry:
            eol = date.fromisoformat(entry["eol"])
            result["eol"] = entry["eol"]
            if today > eol:
                result["status"] = "end-of-life"
            elif (eol - today).days <= ENDING_SOON_DAYS:
                result["status"] = "ending-soon"
            else:
                result["status"] = "supported"
        else:
            result["status"] = entry.get("status", "unknown")
        if entry.get("note"):
            result["note"] = entry["note"]
        return result
    known = [entry["cycle"] for entry in info["cycles"]]
    older = _key(cycle) < _key(known[0])
    return {
        "cycle": cycle,
        "status": "end-of-life" if older else "unknown",
        "source": info["source"],
        "note": "older than any cycle in the table" if older else "newer than the table knows",
    }


def _key(cycle: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", cycle))


def postgres_version(config_texts: dict[str, str], given: str = "") -> tuple[str, str]:
    if given:
        return given, "the latest DB scan"
    for path, text in sorted(config_texts.items()):
        match = re.search(r"image:\s*['\"]?(?:[\w./-]+/)?postgres(?:ql)?:(\d+(?:\.\d+)?)", text)
        if match:
            return match.group(1), f"image in {path}"
    return "", ""


def stack_report(
    deps: dict[str, Dependency],
    config_texts: dict[str, str],
    *,
    postgres: str = "",
    today: date | None = None,
) -> dict[str, Any]:
    """Components of the stack with version, where it came from, and support status."""
    today = today or date.today()
    components = []
    wanted = [
        ("python", "python"),
        ("fastapi", "fastapi"),
        ("starlette", "starlette"),
        ("sqlalchemy", "sqlalchemy"),
        ("sqlmodel", None),
        ("pydantic", "pydantic"),
    ]
    for name, product in wanted:
        dep = deps.get(normalise_name(name))
        if dep is None:
            continue
        version, basis = _version_from(dep)
        entry = {"name": eol_table().get(product or "", {}).get("label", name), "version": version}
        entry["basis"] = basis
        entry.update(support_status(product, version, today) if product else {"status": "unknown"})
        components.append(entry)
    for name in DRIVERS:
        dep = deps.get(name)
        if dep is None:
            continue
        version, basis = _version_from(dep)
        product = "psycopg2" if name.startswith("psycopg2") else name
        entry = {"name": f"driver: {name}", "version": version, "basis": basis}
        entry.update(support_status(product, version, today))
        components.append(entry)
    version, basis = postgres_version(config_texts, postgres)
    if version:
        entry = {"name": "PostgreSQL", "version": version, "basis": basis}
        entry.update(support_status("postgresql", version, today))
        components.append(entry)
    return {
        "as_of": today.isoformat(),
        "components": components,
        "end_of_life": [c["name"] for c in components if c.get("status") == "end-of-life"],
    }
