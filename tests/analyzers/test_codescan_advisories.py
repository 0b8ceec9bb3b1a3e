"""Dependency vulnerability inspection: pip-audit's PyPI service over the recorded
responses of tests/analyzers/fixtures/pypi_advisories.json, served on loopback."""

import pytest

from optimizations.analyzers.codescan import advisories, scan_path, to_sarif
from optimizations.analyzers.codescan.project import read_dependencies
from optimizations.jobs import modes

from .advisory_server import closed_port, recorded_pypi

APP = "from fastapi import FastAPI\n\napp = FastAPI()\n"


def project(tmp_path, requirements: str):
    (tmp_path / "requirements.txt").write_text(requirements)
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


def audit_scan(path, base_url, **params):
    return scan_path(
        path,
        ruff=False,
        audit_dependencies=True,
        advisory_url=base_url,
        cache_dir=str(path / ".kaizen-cache"),
        **params,
    )


def check(result, check_id="DEP001"):
    (outcome,) = [c for c in result.checks if c.check_id == check_id]
    return outcome


def test_pinned_dependencies_with_advisories_become_findings(tmp_path):
    path = project(
        tmp_path,
        "fastapi==0.115.6\nstarlette==0.36.1  # the one FastAPI pulled in\njinja2==3.1.2\n",
    )
    with recorded_pypi() as (base_url, seen):
        result = audit_scan(path, base_url)
    assert sorted(seen) == [
        "/pypi/fastapi/0.115.6/json",
        "/pypi/jinja2/3.1.2/json",
        "/pypi/starlette/0.36.1/json",
    ]
    found = {f.evidence["advisory_id"]: f for f in result.findings if f.rule_id == "DEP001"}
    # the withdrawn advisory is not reported; pip-audit names each by its CVE, with the
    # registry's own id among the aliases
    assert set(found) == {"CVE-2024-24762", "CVE-2024-22195"}
    starlette = found["CVE-2024-24762"]
    assert starlette.location == "requirements.txt:2"
    assert starlette.severity == "high"
    assert starlette.category == "security"
    assert starlette.evidence["package"] == "starlette"
    assert starlette.evidence["installed"] == "0.36.1"
    assert starlette.evidence["aliases"] == ["GHSA-93gm-qmq6-w238"]
    assert starlette.evidence["fixed_in"] == ["0.36.2"]
    assert "Upgrade starlette to 0.36.2" in starlette.fix_hint
    assert starlette.doc_url == "https://github.com/advisories/GHSA-93gm-qmq6-w238"
    # a multi-line description becomes one line
    assert "\n" not in found["CVE-2024-22195"].evidence["detail"]
    assert check(result).status == "failed"
    assert result.verdict == "fail"
    assert result.summary["dependency_audit"]["audited"] == 3


def test_fingerprint_is_stable_across_a_version_bump_that_stays_vulnerable(tmp_path):
    prints = []
    for version in ("3.1.1", "3.1.2"):
        (tmp_path / version).mkdir()
        path = project(tmp_path / version, f"jinja2=={version}\n")
        with recorded_pypi() as (base_url, _seen):
            result = audit_scan(path, base_url)
        (finding,) = [f for f in result.findings if f.rule_id == "DEP001"]
        assert finding.key == "requirements.txt::jinja2::CVE-2024-22195"
        prints.append(finding.fingerprint("code"))
    assert prints[0] == prints[1]


def test_clean_pinned_dependencies_pass(tmp_path):
    path = project(tmp_path, "fastapi==0.115.6\nsqlalchemy==2.0.36\n")
    with recorded_pypi() as (base_url, _seen):
        result = audit_scan(path, base_url)
    assert [f for f in result.findings if f.rule_id == "DEP001"] == []
    assert check(result).status == "passed"
    assert result.verdict == "pass"


def test_unreachable_advisory_source_is_incomplete_never_pass(tmp_path):
    path = project(tmp_path, "fastapi==0.115.6\n")
    result = audit_scan(path, f"http://127.0.0.1:{closed_port()}/pypi")
    outcome = check(result)
    assert outcome.status == "unknown"
    assert "could not be read" in outcome.detail
    assert result.verdict == "incomplete"
    assert "dependency audit" in result.verdict_reason


def test_unpinned_dependencies_are_not_counted_as_clean(tmp_path):
    path = project(tmp_path, "fastapi>=0.115\nstarlette==0.36.1\n")
    with recorded_pypi() as (base_url, seen):
        result = audit_scan(path, base_url)
    assert seen == ["/pypi/starlette/0.36.1/json"]
    outcome = check(result)
    # a definite finding fails the check; what could not be checked is still said
    assert outcome.status == "failed"
    assert "fastapi >=0.115" in outcome.detail
    (tmp_path / "clean").mkdir()
    clean = project(tmp_path / "clean", "fastapi>=0.115\n")
    with recorded_pypi() as (base_url, seen):
        unpinned = audit_scan(clean, base_url)
    assert seen == []
    assert check(unpinned).status == "unknown"
    assert "no pinned version" in check(unpinned).detail
    assert unpinned.verdict == "incomplete"


def test_package_unknown_to_pypi_is_skipped_and_said(tmp_path):
    path = project(tmp_path, "fastapi==0.115.6\nour-internal-lib==1.2.0\n")
    with recorded_pypi() as (base_url, _seen):
        result = audit_scan(path, base_url)
    outcome = check(result)
    assert outcome.status == "unknown"
    assert "our-internal-lib==1.2.0" in outcome.detail


def test_lock_files_give_the_installed_versions(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "svc"\nversion = "1"\ndependencies = ["fastapi>=0.115"]\n'
    )
    (tmp_path / "uv.lock").write_text(
        'version = 1\n\n[[package]]\nname = "fastapi"\nversion = "0.115.6"\n\n'
        '[[package]]\nname = "starlette"\nversion = "0.36.1"\n'
    )
    (tmp_path / "app.py").write_text(APP)
    with recorded_pypi() as (base_url, _seen):
        result = audit_scan(tmp_path, base_url)
    (finding,) = [f for f in result.findings if f.rule_id == "DEP001"]
    assert finding.location == "uv.lock:8"
    assert check(result).status == "failed"


def test_reasoned_suppression_on_the_requirement_keeps_it_shown_as_suppressed(tmp_path):
    path = project(
        tmp_path,
        "jinja2==3.1.2  # kaizen: ignore[DEP001] -- xmlattr is never used with user keys\n"
        "starlette==0.36.1  # kaizen: ignore[DEP001]\n",
    )
    with recorded_pypi() as (base_url, _seen):
        result = audit_scan(path, base_url)
    by_package = {f.evidence["package"]: f for f in result.findings if f.rule_id == "DEP001"}
    assert by_package["jinja2"].evidence["suppressed"]["reason"].startswith("xmlattr")
    assert "suppressed" not in by_package["starlette"].evidence
    assert [f.location for f in result.findings if f.rule_id == "FSA002"] == ["requirements.txt:2"]
    sarif = to_sarif(result)["runs"][0]["results"]
    jinja = next(r for r in sarif if "jinja2" in r["message"]["text"])
    assert jinja["suppressions"][0]["kind"] == "inSource"


def test_audit_runs_only_when_asked_and_security_rules_are_in_scope(tmp_path):
    path = project(tmp_path, "starlette==0.36.1\n")
    with recorded_pypi() as (base_url, seen):
        off = scan_path(path, ruff=False, advisory_url=base_url)
        performance = audit_scan(path, base_url, focus=["performance"])
    assert seen == []
    assert off.summary["dependency_audit"] == {"ran": False}
    assert "DEP001" not in {c.check_id for c in performance.checks}


def test_uvicorn_extras_are_read_for_the_server_rule(tmp_path):
    (tmp_path / "requirements.txt").write_text("uvicorn[standard]>=0.30\nfastapi\n")
    deps = read_dependencies(tmp_path)
    assert deps["uvicorn"].extras == {"standard"}


@pytest.mark.parametrize(
    ("installed", "fixed", "hint"),
    [
        ("1.0", ["0.9.1", "1.2", "2.0"], "Upgrade pkg to 1.2 or later"),
        ("1.0", [], "No fixed version of pkg is published"),
    ],
)
def test_fix_hint_names_the_first_fixed_version_above_the_installed_one(installed, fixed, hint):
    advisory = advisories.Advisory("pkg", installed, "PYSEC-1", [], fixed, "", "requirements.txt")
    assert advisories.fix_hint(advisory).startswith(hint)


def test_runs_with_security_in_scope_audit_the_dependencies():
    def code_scans(mode, focus=()):
        return [job.params for job in modes.plan(mode, focus) if job.kind == "code_scan"]

    assert code_scans("quality", ["security"]) == [
        {"focus": ["security"], "audit_dependencies": True}
    ]
    assert code_scans("quality")[0]["audit_dependencies"] is True
    assert code_scans("comprehensive") == [{"audit_dependencies": True}]
    assert all("audit_dependencies" not in p for p in code_scans("performance"))


def test_an_advisory_source_off_the_allow_list_is_refused_and_incomplete(tmp_path):
    path = project(tmp_path, "fastapi==0.115.6\n")
    with recorded_pypi() as (base_url, seen):
        result = audit_scan(path, base_url.replace("127.0.0.1", "192.0.2.10"))
    assert seen == []
    outcome = check(result)
    assert outcome.status == "unknown" and "not allowed" in outcome.detail
    assert result.verdict == "incomplete"
