"""Adopting the code scan on a big code base: suppressions with reasons stored and shown
as suppressed (never fixed), "new since scan #N" on the findings page and in the CLI."""

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from optimizations.jobs import runner
from optimizations.models import Finding, Job, Run

# The runner writes progress from a second thread, on its own connection.
pytestmark = pytest.mark.django_db(transaction=True)

MODELS = """from sqlalchemy import Column, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import declarative_base

Base = declarative_base()


class Order(Base):
    __tablename__ = "orders"
    id = Column(Integer, primary_key=True)
"""
REASON = "read through the legacy gateway that renames it"
METADATA = "    metadata = Column(JSONB)\n"
SUPPRESSED = f"    metadata = Column(JSONB)  # kaizen: ignore[FSA110] -- {REASON}\n"
EXTRA = """

class Event(Base):
    __tablename__ = "events"
    id = Column(Integer, primary_key=True)
    metadata = Column(JSONB)
"""


@pytest.fixture
def scan_source(target, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    target.source_location = str(source)
    target.save()

    def scan(models: str) -> Job:
        (source / "models.py").write_text(models)
        run = Run.objects.create(target=target, mode="custom")
        job = Job.objects.create(run=run, kind="code_scan", target=target, params={"ruff": False})
        assert runner.execute(job.pk, "w") == "succeeded"
        job.refresh_from_db()
        return job

    return scan


def test_suppressed_finding_is_kept_as_suppressed_with_its_reason(scan_source, target):
    scan_source(MODELS + METADATA)
    finding = Finding.objects.get(target=target, rule_id="FSA110")
    assert finding.status == Finding.OPEN
    job = scan_source(MODELS + SUPPRESSED)
    finding.refresh_from_db()
    assert finding.status == Finding.SUPPRESSED
    assert finding.status_reason == f"Suppressed in code: {REASON}"
    assert finding.fixed_at is None and finding.last_job_id == job.pk
    assert job.verdict == "pass"  # a suppressed high finding judges nothing
    # the comment removed: open again, and said why
    scan_source(MODELS + METADATA)
    finding.refresh_from_db()
    assert finding.status == Finding.OPEN
    assert "suppression comment was gone" in finding.status_reason
    # suppressed, then the code itself gone: fixed
    scan_source(MODELS + SUPPRESSED)
    scan_source(MODELS)
    finding.refresh_from_db()
    assert finding.status == Finding.FIXED


def test_a_persons_triage_stands_over_a_suppression(scan_source, target):
    scan_source(MODELS + METADATA)
    Finding.objects.filter(rule_id="FSA110").update(
        status=Finding.FALSE_POSITIVE, status_reason="the column is renamed in the mapper"
    )
    scan_source(MODELS + SUPPRESSED)
    finding = Finding.objects.get(rule_id="FSA110")
    assert finding.status == Finding.FALSE_POSITIVE


def test_pages_show_the_suppression_and_its_reason(scan_source, target, login, qa_engineer):
    scan_source(MODELS + SUPPRESSED)
    finding = Finding.objects.get(rule_id="FSA110")
    client = login(qa_engineer)
    listed = client.get(f"/targets/{target.slug}/findings/?status=suppressed").content.decode()
    assert "Suppressed in code" in listed and REASON in listed
    page = client.get(finding.get_absolute_url()).content.decode()
    assert "Suppressed in code" in page and REASON in page and "never counted as fixed" in page
    # a person cannot set "suppressed" by hand: it comes from the code only
    refused = client.post(
        f"/findings/{finding.pk}/status/",
        {"status": "suppressed", "reason": "x"},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 422
    finding.refresh_from_db()
    assert finding.status_changed_by is None


def test_findings_page_lists_what_is_new_since_a_scan(scan_source, target, login, qa_engineer):
    first = scan_source(MODELS + METADATA)
    second = scan_source(MODELS + METADATA + EXTRA)
    client = login(qa_engineer)
    url = f"/targets/{target.slug}/findings/?status=open"
    everything = client.get(url).content.decode()
    assert everything.count("FSA110") == 2
    assert f"code scan #{first.pk}" in everything  # offered in the chooser
    new = client.get(f"{url}&new_since={first.pk}").content.decode()
    assert new.count("<code>FSA110</code>") == 1 and "models.py:17" in new
    assert f"Code findings that code scan #{first.pk} did not report" in new
    assert "baseline" not in new.lower()
    none_new = client.get(f"{url}&new_since={second.pk}").content.decode()
    assert "<code>FSA110</code>" not in none_new
    wrong = client.get(f"{url}&new_since=999999").content.decode()
    assert "is not a code scan of this target" in wrong


def test_cli_judges_only_what_is_new_since_an_earlier_report(tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    (source / "models.py").write_text(MODELS + METADATA)
    report = tmp_path / "earlier.json"
    call_command(
        "codescan",
        str(source),
        "--no-ruff",
        "--format",
        "json",
        "--output",
        str(report),
        "--fail-on",
        "critical",
    )
    # the old finding alone: nothing new, exit 0 although it is high
    call_command("codescan", str(source), "--no-ruff", "--new-since", str(report))
    out = capsys.readouterr().out
    assert "since earlier.json: 0 new, 0 updated, 1 unchanged (not listed), 0 gone" in out
    (source / "models.py").write_text(MODELS + METADATA + EXTRA)
    with pytest.raises(SystemExit) as exit_:
        call_command("codescan", str(source), "--no-ruff", "--new-since", str(report))
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert "models.py:17: FSA110" in out and "(new since earlier.json)" in out
    assert "models.py:12: FSA110" not in out
    sarif_path = tmp_path / "now.sarif"
    with pytest.raises(SystemExit):
        call_command(
            "codescan",
            str(source),
            "--no-ruff",
            "--new-since",
            str(report),
            "--format",
            "sarif",
            "--output",
            str(sarif_path),
        )
    states = sorted(
        r["baselineState"] for r in json.loads(sarif_path.read_text())["runs"][0]["results"]
    )
    assert states == ["new", "unchanged"]


def test_cli_new_since_a_portal_scan(scan_source, target, capsys):
    first = scan_source(MODELS + METADATA)
    source = Path(target.source_location)
    call_command("codescan", str(source), "--no-ruff", "--new-since", str(first.pk))
    assert f"since scan #{first.pk}: 0 new" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        call_command("codescan", str(source), "--no-ruff", "--new-since", "999999")
    assert exit_.value.code == 2


def test_cli_lists_a_suppressed_finding_and_does_not_fail_on_it(tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    (source / "models.py").write_text(MODELS + SUPPRESSED)
    call_command("codescan", str(source), "--no-ruff")  # high, but suppressed: exit 0
    out = capsys.readouterr().out
    assert f"suppressed: {REASON}" in out
    assert "1 suppressed in the code" in out


def test_job_page_says_what_the_dependency_audit_could_not_check(
    target, tmp_path, login, qa_engineer
):
    source = tmp_path / "deps"
    source.mkdir()
    (source / "requirements.txt").write_text("fastapi>=0.115\n")
    (source / "app.py").write_text("from fastapi import FastAPI\n\napp = FastAPI()\n")
    target.source_location = str(source)
    target.save()
    run = Run.objects.create(target=target, mode="custom")
    job = Job.objects.create(
        run=run,
        kind="code_scan",
        target=target,
        params={"ruff": False, "audit_dependencies": True},
    )
    assert runner.execute(job.pk, "w") == "succeeded"
    job.refresh_from_db()
    assert job.verdict == "incomplete"
    page = login(qa_engineer).get(job.get_absolute_url()).content.decode()
    assert "Dependency advisories" in page and "no pinned version" in page


def test_stored_sarif_downloads_marked_new_since_a_scan(scan_source, target, login, qa_engineer):
    first = scan_source(MODELS + METADATA)
    second = scan_source(MODELS + METADATA + EXTRA)
    client = login(qa_engineer)
    listed = client.get(
        f"/targets/{target.slug}/findings/?status=open&new_since={first.pk}"
    ).content.decode()
    url = f"/jobs/{second.pk}/files/kaizen-code_scan-{second.pk}.sarif?new_since={first.pk}"
    assert url.replace("&", "&amp;") in listed or url in listed

    def states(address):
        results = json.loads(client.get(address).content)["runs"][0]["results"]
        return sorted((r["ruleId"], r.get("baselineState")) for r in results)

    assert states(url) == [("FSA110", "new"), ("FSA110", "unchanged")]
    assert states(url.split("?")[0]) == [("FSA110", None), ("FSA110", None)]
    third = scan_source(MODELS)
    gone = f"/jobs/{third.pk}/files/kaizen-code_scan-{third.pk}.sarif?new_since={second.pk}"
    assert states(gone) == [("FSA110", "absent"), ("FSA110", "absent")]
    assert client.get(url.replace(f"={first.pk}", "=999999")).status_code == 404


def test_cli_exits_3_when_the_dependency_audit_could_not_run(tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    (source / "requirements.txt").write_text("fastapi>=0.115\n")
    (source / "app.py").write_text("from fastapi import FastAPI\n\napp = FastAPI()\n")
    with pytest.raises(SystemExit) as exit_:
        call_command("codescan", str(source), "--no-ruff", "--audit-deps")
    assert exit_.value.code == 3
    assert "no pinned version" in capsys.readouterr().err
