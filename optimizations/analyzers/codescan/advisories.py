"""Published vulnerabilities of the target's dependencies, read with pip-audit.

The versions come from what the project pins: lock files (uv.lock, poetry.lock,
pdm.lock, Pipfile.lock), ``==`` pins in requirements*.txt, read by
``project.read_dependencies``. Each pinned package is looked up with pip-audit's
PyPI service, which reads the ``vulnerabilities`` field of PyPI's JSON API (the
PyPA advisory database, with its CVE/GHSA aliases and fixed versions).

What could not be checked is said, never counted as clean: a dependency with a
range and no locked version is *unpinned* (its installed version is unknown),
a package PyPI does not know is *skipped*, and when the advisory source cannot
be reached the audit is *unreachable* — the check is then unknown
(incomplete), not passed.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .project import Dependency

if TYPE_CHECKING:  # imported where used: pip-audit is slow to import
    import requests
    from pip_audit._service import PyPIService

PYPI_JSON = "https://pypi.org/pypi"
RULE_ID = "DEP001"
TITLE = "Dependency with a published vulnerability"
DOC_URL = "https://docs.pypi.org/api/json/#known-vulnerabilities"
WHY = (
    "The version the project pins has a published advisory in the PyPA advisory database "
    "(served by PyPI's JSON API): the vulnerable code ships with every deployment until the "
    "dependency is upgraded."
)
# PyPI's advisory entries carry no score; a known, published vulnerability in a shipped
# dependency is rated high so that the QA gate ("no open high security finding") sees it.
SEVERITY = "high"


@dataclass
class Advisory:
    """One advisory that applies to one pinned dependency."""

    package: str
    installed: str
    advisory_id: str
    aliases: list[str]
    fixed_in: list[str]
    summary: str
    declared_in: str


@dataclass
class AuditResult:
    """What the audit found, and what it could not check (with why)."""

    advisories: list[Advisory] = field(default_factory=list)
    audited: list[str] = field(default_factory=list)  # "name==version"
    unpinned: list[str] = field(default_factory=list)  # "name spec (source)"
    skipped: list[str] = field(default_factory=list)  # "name==version: reason"
    error: str = ""  # the advisory source could not be used

    @property
    def complete(self) -> bool:
        return not self.error and not self.unpinned and not self.skipped


class _RebasedSession:
    """pip-audit's session with PyPI's base URL replaced (a mirror, or a test's recording)."""

    def __init__(self, session: requests.Session, base_url: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        if url.startswith(PYPI_JSON):
            url = self._base + url[len(PYPI_JSON) :]
        return self._session.get(url, **kwargs)


def _service(base_url: str, timeout: float, cache_dir: str) -> PyPIService:
    from pip_audit._service import PyPIService

    cache = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "kaizen-pip-audit"
    service = PyPIService(cache_dir=cache, timeout=timeout)
    if base_url.rstrip("/") != PYPI_JSON:
        service.session = _RebasedSession(service.session, base_url)
    return service


def audit(
    deps: dict[str, Dependency],
    *,
    base_url: str = PYPI_JSON,
    timeout: float = 15,
    cache_dir: str = "",
    check_cancel: Callable[[], None] = lambda: None,
    service: PyPIService | None = None,
) -> AuditResult:
    """Look up every pinned dependency in the advisory source; see the module docstring."""
    import requests
    from packaging.version import InvalidVersion, Version
    from pip_audit._service import ResolvedDependency, ServiceError
    from pip_audit._service.interface import ConnectionError as AuditConnectionError

    result = AuditResult()
    pinned: list[tuple[Dependency, Version]] = []
    for name in sorted(deps):
        dep = deps[name]
        if name == "python":
            continue
        if not dep.locked:
            result.unpinned.append(f"{name} {dep.spec or '(any version)'} ({dep.source or '?'})")
            continue
        try:
            pinned.append((dep, Version(dep.locked)))
        except InvalidVersion:
            result.skipped.append(f"{name}=={dep.locked}: not a valid version")
    if not pinned:
        return result
    try:
        service = service or _service(base_url, timeout, cache_dir)
    except Exception as exc:  # a broken install of pip-audit is an unknown, too
        result.error = f"pip-audit could not start: {type(exc).__name__}: {exc}"
        return result
    for dep, version in pinned:
        check_cancel()
        try:
            spec, vulns = service.query(ResolvedDependency(name=dep.name, version=version))
        except (requests.RequestException, AuditConnectionError, ServiceError, OSError) as exc:
            result.error = (
                f"the advisory source {base_url} could not be read ({type(exc).__name__}: "
                f"{str(exc)[:200]}); {len(result.audited)} of {len(pinned)} pinned "
                "dependencies were checked"
            )
            return result
        if spec.is_skipped():
            result.skipped.append(f"{dep.name}=={dep.locked}: {spec.skip_reason}")
            continue
        result.audited.append(f"{dep.name}=={dep.locked}")
        for vuln in vulns:
            result.advisories.append(
                Advisory(
                    package=dep.name,
                    installed=dep.locked,
                    advisory_id=vuln.id,
                    aliases=sorted(vuln.aliases),
                    fixed_in=[str(v) for v in vuln.fix_versions],
                    summary=vuln.description[:500],
                    declared_in=dep.source,
                )
            )
    return result


def declared_line(root: Path, relative: str, package: str) -> int:
    """The line of ``relative`` that names ``package`` (1 when it cannot be found)."""
    path = root / relative
    if not relative or not path.is_file():
        return 1
    spelled = "[-_.]+".join(re.escape(part) for part in re.split(r"[-_.]+", package))
    pattern = re.compile(rf"""(^|["'\s]){spelled}(["'\s=<>~!\[;@,]|$)""", re.IGNORECASE)
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.search(line):
            return number
    return 1


def fix_hint(advisory: Advisory) -> str:
    if advisory.fixed_in:
        newer = [v for v in advisory.fixed_in if _after(v, advisory.installed)]
        target = newer[0] if newer else advisory.fixed_in[-1]
        return (
            f"Upgrade {advisory.package} to {target} or later (fixed in "
            f"{', '.join(advisory.fixed_in)}), then update the lock file."
        )
    return (
        f"No fixed version of {advisory.package} is published: read the advisory for a "
        "workaround, or replace the package."
    )


def _after(candidate: str, installed: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(candidate) > Version(installed)
    except InvalidVersion:
        return False


def advisory_url(advisory: Advisory) -> str:
    """The advisory's page: GitHub's for a GHSA id, else OSV's (which knows PYSEC and CVE)."""
    ids = [advisory.advisory_id, *advisory.aliases]
    ghsa = next((i for i in ids if i.startswith("GHSA-")), None)
    if ghsa:
        return f"https://github.com/advisories/{ghsa}"
    return f"https://osv.dev/vulnerability/{advisory.advisory_id}"
