"""HR's compliance register: each evidence source, attestations and their expiry, the
reminder schedule (an injected clock throughout), the command's JSON and exit codes."""

from __future__ import annotations

import datetime
import hashlib
import json

import pytest
from cryptography.fernet import Fernet
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from departments import compliance
from departments.models import (
    Attestation,
    ComplianceReminder,
    Control,
    Evaluation,
    Membership,
    Runbook,
    TrainingRecord,
)
from departments.tasks import evaluate_compliance
from optimizations.models import Finding, GateSignoff, Job, Phase, Run, TargetService
from optimizations.observe import incidents
from optimizations.targets.crypto import encrypt
from portal.demo import load_demo
from portal.models import Notification

# Mid-November 2026: the quarter is 2026-Q4, the month 2026-11.
NOW = timezone.make_aware(datetime.datetime(2026, 11, 15, 12, 0))


def days(n: int) -> datetime.timedelta:
    return datetime.timedelta(days=n)


@pytest.fixture
def make_control(departments):
    def make(source="", recurrence=Control.QUARTERLY, code="hr", **fields):
        fields.setdefault("statement", f"Control {source or 'manual'} {Control.objects.count()}")
        control = Control.objects.create(
            slug=f"c-{Control.objects.count()}-{source or 'manual'}".replace("_", "-"),
            department=departments[code],
            recurrence=recurrence,
            source=source,
            **fields,
        )
        # Created at the start of the quarter, so a manual one is due at its end.
        Control.objects.filter(pk=control.pk).update(created_at=NOW - days(40))
        control.refresh_from_db()
        return control

    return make


def finished_job(target, kind, finished_at, status=Job.SUCCEEDED, verdict="pass", **fields):
    run = Run.objects.create(target=target, mode="performance")
    job = Job.objects.create(run=run, kind=kind, target=target, **fields)
    Job.objects.filter(pk=job.pk).update(status=status, verdict=verdict, finished_at=finished_at)
    job.refresh_from_db()
    return job


def judge(control, now=NOW):
    return compliance.judge(control, now)


# --- periods --------------------------------------------------------------------------


def test_periods_are_calendar_months_quarters_and_years():
    assert compliance.period_of(Control.MONTHLY, NOW).label == "2026-11"
    quarter = compliance.period_of(Control.QUARTERLY, NOW)
    assert (quarter.label, quarter.start, quarter.end) == (
        "2026-Q4",
        datetime.date(2026, 10, 1),
        datetime.date(2026, 12, 31),
    )
    assert compliance.period_of(Control.YEARLY, NOW).label == "2026"
    assert compliance.parse_period("2026-Q4") == quarter
    assert compliance.parse_period("2026-02").end == datetime.date(2026, 2, 28)
    with pytest.raises(ValueError, match="not a period"):
        compliance.parse_period("2026-Q5")


def test_a_month_later_keeps_the_day_or_takes_the_months_last():
    moment = timezone.make_aware(datetime.datetime(2026, 11, 30, 9, 0))
    assert compliance.add_months(moment, 3).date() == datetime.date(2027, 2, 28)
    assert compliance.add_months(NOW, 12).date() == datetime.date(2027, 11, 15)


# --- scan coverage --------------------------------------------------------------------


def test_scan_coverage_passes_with_a_scan_of_every_target_in_the_period(make_control, target):
    TargetService.objects.filter(pk=target.pk).update(
        database_url_encrypted=encrypt("postgresql://kaizen@127.0.0.1/orders")
    )
    job = finished_job(target, "db_scan", NOW - days(3), verdict="fail")
    result = judge(make_control("db_scan_coverage"))
    assert result.status == "pass"
    assert result.evidence[0]["url"] == job.get_absolute_url()
    assert "1 of 1 targets" in result.reason


def test_scan_coverage_fails_for_a_target_whose_scan_is_older_than_the_period_or_failed(
    make_control, target
):
    finished_job(target, "security_scan", NOW - days(60))  # last quarter
    finished_job(target, "security_scan", NOW - days(1), status=Job.FAILED, verdict="error")
    control = make_control("security_scan_coverage", recurrence=Control.MONTHLY)
    result = judge(control)
    assert result.status == "fail"
    # The label in English (the API's), and its phrase for each reader's language.
    assert result.evidence == [
        {
            "label": "Orders API: none in 2026-11",
            "url": target.get_absolute_url(),
            "ok": False,
            "phrase": {
                "msgid": "%(target)s: none in %(period)s",
                "params": {"target": "Orders API", "period": "2026-11"},
            },
        }
    ]


def test_scan_coverage_is_incomplete_for_a_target_that_cannot_have_the_scan(make_control, target):
    # No database URL (the SQLite demo): the DB scan cannot exist yet — never a pass.
    result = judge(make_control("db_scan_coverage"))
    assert result.status == "incomplete"
    assert "no database URL" in result.reason
    assert "target's settings page" in result.evidence[0]["label"]


def test_scan_coverage_fails_over_incomplete_when_another_target_lacks_its_scan(
    make_control, target, departments
):
    other = TargetService.objects.create(
        name="Billing API",
        slug="billing",
        base_url="http://127.0.0.1:8200",
        owner_department=departments["dev"],
        source_location="/srv/billing",
    )
    result = judge(make_control("code_scan_coverage"))
    assert result.status == "fail"
    assert {entry["ok"] for entry in result.evidence} == {False, None}
    finished_job(other, "code_scan", NOW - days(2))
    assert judge(make_control("code_scan_coverage")).status == "incomplete"


# --- old findings ---------------------------------------------------------------------


def _finding(target, severity, age_days, status=Finding.OPEN, reason="", rule="FSA101"):
    seen = NOW - days(age_days)
    return Finding.objects.create(
        target=target,
        source="code",
        rule_id=rule,
        category="performance",
        title="N+1",
        severity=severity,
        fingerprint=hashlib.sha256(f"{rule}{severity}{age_days}".encode()).hexdigest(),
        first_seen_at=seen,
        last_seen_at=seen,
        status=status,
        status_reason=reason,
    )


def test_a_high_finding_open_31_days_fails_with_its_link(make_control, target):
    old = _finding(target, "high", 31)
    _finding(target, "critical", 29, rule="FSA102")  # young enough
    _finding(target, "medium", 90, rule="FSA103")  # not severe enough
    result = judge(make_control("old_findings", parameters={"days": 30}))
    assert result.status == "fail"
    assert [entry["url"] for entry in result.evidence if entry["ok"] is False] == [
        old.get_absolute_url()
    ]


def test_an_old_finding_with_an_accepted_risk_reason_passes(make_control, target):
    _finding(target, "critical", 45, status=Finding.ACCEPTED, reason="Behind the VPN only")
    result = judge(make_control("old_findings"))
    assert result.status == "pass"
    assert "Behind the VPN only" in result.evidence[0]["label"]


# --- runbooks, training -----------------------------------------------------------------


def test_runbook_reviews_fail_for_a_runbook_past_its_review_date(make_control, make_runbook):
    late = make_runbook("Pool exhaustion")
    make_runbook("Slow queries")
    Runbook.objects.filter(pk=late.pk).update(next_review_date=NOW.date() - days(1))
    Runbook.objects.exclude(pk=late.pk).update(next_review_date=NOW.date() + days(30))
    result = judge(make_control("runbook_reviews"))
    assert result.status == "fail"
    assert result.evidence[0]["url"] == late.get_absolute_url()
    Runbook.objects.filter(pk=late.pk).update(next_review_date=NOW.date())
    assert judge(make_control("runbook_reviews")).status == "pass"


def test_runbook_reviews_are_incomplete_with_no_published_runbook(make_control):
    result = judge(make_control("runbook_reviews"))
    assert result.status == "incomplete"
    assert "publish one" in result.reason


def test_training_fails_for_an_engineers_overdue_or_expired_record(
    make_control, make_module, dev_engineer, qa_engineer, hr_editor
):
    module = make_module()
    control = make_control("training_current")
    record = TrainingRecord.objects.create(
        module=module, user=dev_engineer, due_date=NOW.date() + days(5)
    )
    # An HR editor's overdue record is not an engineer's.
    TrainingRecord.objects.create(
        module=module, user=hr_editor, due_date=NOW.date(), state=TrainingRecord.OVERDUE
    )
    assert judge(control).status == "pass"
    TrainingRecord.objects.filter(pk=record.pk).update(state=TrainingRecord.OVERDUE)
    assert judge(control).status == "fail"
    TrainingRecord.objects.filter(pk=record.pk).update(
        state=TrainingRecord.COMPLETED, completed_at=NOW - days(400), expires_at=NOW - days(35)
    )
    result = judge(control)
    assert result.status == "fail"
    assert "devon: Load testing safely — expired" in result.evidence[0]["label"]
    TrainingRecord.objects.filter(pk=record.pk).update(expires_at=NOW + days(30))
    assert judge(control).status == "pass"


# --- incidents, gates -------------------------------------------------------------------


def _incident(target, ended_at, key="down"):
    incident = incidents.open_from_alert(
        target, "test", key, "Orders API is down", "high", now=ended_at - HOUR
    )
    incidents.resolve_from_alert(target, "test", key, now=ended_at)
    incident.refresh_from_db()
    return incident


HOUR = datetime.timedelta(hours=1)


def test_postmortems_are_incomplete_with_no_incident_resolved_in_the_period(make_control):
    result = judge(make_control("postmortems", recurrence=Control.MONTHLY))
    assert result.status == "incomplete"  # nothing seen is never a pass
    assert result.reason == (
        "No incident was resolved in 2026-11: there is no postmortem to judge yet."
    )


def test_postmortems_within_five_working_days_pass_late_or_missing_fail(
    make_control, target, hr_editor
):
    control = make_control("postmortems", recurrence=Control.MONTHLY)
    # Resolved Friday 2026-11-06: five working days end on Friday 2026-11-13.
    friday = timezone.make_aware(datetime.datetime(2026, 11, 6, 10, 0))
    on_time = _incident(target, friday, "a")
    incidents.do_write_postmortem(hr_editor, on_time, "What happened", [], now=friday + days(7))
    result = judge(control)
    assert result.status == "pass", result.reason
    assert result.evidence[0]["ok"] is True
    late = _incident(target, friday, "b")
    incidents.do_write_postmortem(hr_editor, late, "Late", [], now=friday + days(8))
    missing = _incident(target, friday, "c")
    result = judge(control)
    assert result.status == "fail"
    assert result.reason.startswith("2 of 3 incident(s) resolved in 2026-11 had no postmortem")
    assert {entry["url"] for entry in result.evidence if entry["ok"] is False} == {
        late.get_absolute_url(),
        missing.get_absolute_url(),
    }


def test_a_postmortem_not_yet_due_leaves_the_control_incomplete(make_control, target):
    control = make_control("postmortems", recurrence=Control.MONTHLY)
    _incident(target, NOW - days(1))  # resolved Saturday the 14th; due by Friday the 20th
    result = judge(control)
    assert result.status == "incomplete"
    assert "still within their 5 working days" in result.reason
    assert "due by 2026-11-20" in result.evidence[0]["label"]


def _sign_qa_gate(initiative, manager, at):
    phase = Phase.objects.get(initiative=initiative, number=4)
    signoff = GateSignoff.objects.create(phase=phase, signed_by=manager)
    GateSignoff.objects.filter(pk=signoff.pk).update(signed_at=at)
    return phase


def test_a_qa_gate_without_a_load_test_before_it_fails(make_control, initiative, manager, target):
    control = make_control("load_test_before_qa_gate", code="qa")
    type(initiative).objects.filter(pk=initiative.pk).update(start_date=NOW.date() - days(30))
    finished_job(target, "benchmark", NOW - days(31))  # before the initiative: not its evidence
    assert judge(control).status == "incomplete"  # no gate this quarter: nothing to judge
    _sign_qa_gate(initiative, manager, NOW - days(2))
    finished_job(target, "benchmark", NOW - days(1))  # after the gate: no evidence
    result = judge(control)
    assert result.status == "fail"
    assert result.evidence[0]["url"] == initiative.get_absolute_url()
    job = finished_job(target, "benchmark", NOW - days(3))
    result = judge(control)
    assert result.status == "pass"
    assert result.evidence[0]["url"] == job.get_absolute_url()


# --- secrets, allow-lists ---------------------------------------------------------------


def test_a_secret_saved_under_an_older_key_fails(make_control, target, departments, settings):
    TargetService.objects.filter(pk=target.pk).update(
        database_url_encrypted=encrypt("postgresql://kaizen@127.0.0.1/orders")
    )
    control = make_control("secrets_decrypt", code="strategy")
    assert judge(control).status == "pass"
    settings.KAIZEN_ENCRYPTION_KEY = Fernet.generate_key().decode()  # the key was rotated
    other = TargetService.objects.create(
        name="Billing API",
        slug="billing",
        base_url="http://127.0.0.1:8200",
        owner_department=departments["dev"],
        auth_header_value_encrypted=encrypt("Bearer new"),
    )
    result = judge(control)
    assert result.status == "fail"
    assert result.evidence[0] == {
        "label": "Orders API: database URL does not decrypt",
        "url": target.get_absolute_url(),
        "ok": False,
        "phrase": {
            "msgid": "%(target)s: %(secret)s does not decrypt",
            "params": {"target": "Orders API", "secret": {"msgid": "database URL"}},
        },
    }
    assert {
        "label": "Billing API: auth header decrypts",
        "url": other.get_absolute_url(),
        "ok": True,
        "phrase": {
            "msgid": "%(target)s: %(secret)s decrypts",
            "params": {"target": "Billing API", "secret": {"msgid": "auth header"}},
        },
    } in result.evidence


@pytest.mark.parametrize(
    ("entries", "parameters", "status"),
    [
        (["127.0.0.0/8", "::1", "localhost"], {}, "pass"),  # loopback: this machine only
        (["10.0.0.0/8", "::1"], {}, "fail"),  # /8 is broader than /16
        (["192.168.0.0/16", "10.1.2.3", "::1", "localhost"], {}, "pass"),
        (["10.0.0.0/8"], {"ipv4_prefix": 8}, "pass"),
        (["0.0.0.0/0"], {"ipv4_prefix": 0}, "fail"),  # never everything
        (["fd00::/8"], {}, "fail"),
        (["::/0"], {"ipv6_prefix": 0}, "fail"),
    ],
)
def test_allow_list_entries_broader_than_the_prefix_fail(
    make_control, settings, entries, parameters, status
):
    settings.KAIZEN_ALLOWED_TARGET_HOSTS = entries
    settings.KAIZEN_ALLOWED_NOTIFY_HOSTS = ["127.0.0.1"]
    result = judge(make_control("allow_lists", code="strategy", parameters=parameters))
    assert result.status == status
    assert len(result.evidence) == len(entries) + 1


def test_a_source_that_breaks_is_an_error_not_a_pass(make_control, monkeypatch):
    def broken(control, now, period):
        raise RuntimeError("table is gone")

    label = compliance.SOURCES["allow_lists"][0]
    monkeypatch.setitem(compliance.SOURCES, "allow_lists", (label, broken))
    result = judge(make_control("allow_lists"))
    assert (result.status, result.reason) == (
        "error",
        "The evidence could not be read: RuntimeError: table is gone",
    )


# --- manual controls: attestations, expiry, reminders -----------------------------------


def test_an_attestation_counts_one_recurrence_then_the_control_fails(make_control, hr_editor):
    control = make_control()
    result = judge(control)
    assert result.status == "incomplete"
    assert "due 2027-01-01" in result.reason
    attestation = compliance.do_attest(
        hr_editor, control, comment="Reviewed all memberships", link="https://wiki/x", now=NOW
    )
    assert attestation.expires_at == compliance.add_months(NOW, 3)
    assert judge(control, NOW + days(80)).status == "pass"
    # Attesting stored an evaluation at once.
    assert control.evaluations.get().status == "pass"
    expired = judge(control, attestation.expires_at)
    assert expired.status == "fail"
    assert "it was due 2027-02-15" in expired.reason


def test_a_control_never_attested_fails_once_its_first_period_ends(make_control):
    control = make_control(recurrence=Control.MONTHLY)
    Control.objects.filter(pk=control.pk).update(created_at=NOW - days(5))
    control.refresh_from_db()
    assert judge(control).status == "incomplete"
    assert judge(control, NOW + days(16)).status == "fail"  # December 1st


def test_reminders_go_to_the_owner_before_and_to_managers_and_hr_when_overdue(
    make_control, make_user, hr_editor, departments
):
    owner = make_user("otto", ("qa", Membership.EDITOR))
    make_user("quentin", ("qa", Membership.MANAGER))
    hr_manager = make_user("helen", ("hr", Membership.MANAGER))
    control = make_control(code="qa", owner=owner)
    due = compliance.due_at(control, NOW)
    assert due.date() == datetime.date(2027, 1, 1)

    # Long before the due date: nothing.
    assert compliance.send_reminders(due - days(20)) == {"before": 0, "overdue": 0}
    # Within the 14 days a quarterly control is reminded: the owner, once.
    assert compliance.send_reminders(due - days(14)) == {"before": 1, "overdue": 0}
    assert compliance.send_reminders(due - days(3)) == {"before": 0, "overdue": 0}
    reminder = Notification.objects.get()
    assert (reminder.user, reminder.url) == (owner, control.get_absolute_url())
    assert "by 2027-01-01" in reminder.subject
    assert [message.to for message in mail.outbox] == [["otto@example.com"]]

    # Past it: the department's managers and HR, once.
    assert compliance.send_reminders(due + days(1)) == {"before": 0, "overdue": 1}
    assert compliance.send_reminders(due + days(2)) == {"before": 0, "overdue": 0}
    overdue = Notification.objects.filter(subject__contains="overdue")
    assert sorted(n.user.username for n in overdue) == ["helen", "quentin", "tomas"]
    assert ComplianceReminder.objects.count() == 2

    # An attestation sets the next due date: its own reminders follow it.
    attestation = compliance.do_attest(owner, control, comment="ok", link="https://x", now=due)
    assert compliance.send_reminders(due + days(3)) == {"before": 0, "overdue": 0}
    renewal = attestation.expires_at - days(10)
    assert compliance.send_reminders(renewal) == {"before": 1, "overdue": 0}
    assert hr_manager.notifications.count() == 1


def test_a_control_without_an_owner_reminds_its_departments_editors_and_managers(
    make_control, hr_editor, make_user
):
    make_user("helen", ("hr", Membership.MANAGER))
    make_user("hviewer", ("hr", Membership.VIEWER))
    control = make_control()
    compliance.send_reminders(compliance.due_at(control, NOW) - days(1))
    assert sorted(n.user.username for n in Notification.objects.all()) == ["helen", "tomas"]


def test_automatic_controls_send_no_reminders(make_control):
    make_control("postmortems")
    assert compliance.send_reminders(NOW + days(400)) == {"before": 0, "overdue": 0}


# --- storing, the register, the report, the command --------------------------------------


def test_every_evaluation_is_kept_and_the_register_shows_the_newest(make_control, target):
    control = make_control("code_scan_coverage", recurrence=Control.MONTHLY)
    manual = make_control()
    compliance.evaluate_all(NOW - days(20))
    compliance.evaluate_all(NOW)
    assert control.evaluations.count() == 2
    rows = {row.control.slug: row for row in compliance.register()}
    assert rows[control.slug].evaluation.evaluated_at == NOW
    assert rows[control.slug].evaluation.period == "2026-11"
    assert rows[manual.slug].status == "incomplete"
    # October's report reads October's evaluation.
    october = {
        row.control.slug: row for row in compliance.report(compliance.parse_period("2026-10"))
    }
    assert october[control.slug].evaluation.period == "2026-10"
    september = compliance.report(compliance.parse_period("2026-09"))
    assert {row.status for row in september} == {"incomplete"}
    assert september[0].reason == "Not evaluated in 2026-09: nothing shows its status then."


def test_the_default_register_is_seeded_once_and_keeps_hrs_edits(departments):
    assert compliance.ensure_default_register() == len(compliance.DEFAULT_REGISTER)
    assert 10 <= Control.objects.count() <= 14
    assert {c.source for c in Control.objects.all()} - {""} == set(compliance.SOURCES)
    Control.objects.filter(slug="access-review").update(statement="Edited by HR")
    assert compliance.ensure_default_register() == 0
    assert Control.objects.get(slug="access-review").statement == "Edited by HR"


def _status(*args):
    out = __import__("io").StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("compliance", "status", *args, stdout=out)
    return exit_.value.code, out.getvalue()


def test_compliance_status_json_lists_what_the_register_shows_and_exits_like_the_others(
    make_control, target, hr_editor, settings
):
    settings.KAIZEN_ALLOWED_TARGET_HOSTS = ["127.0.0.1"]
    settings.KAIZEN_ALLOWED_NOTIFY_HOSTS = ["127.0.0.1"]
    allow = make_control("allow_lists")
    compliance.evaluate(allow, NOW)
    code, out = _status("--json")
    data = json.loads(out)
    assert (code, data["status"]) == (0, "pass")
    assert data["controls"][0]["control"] == allow.slug
    assert data["controls"][0]["evidence"][0] == {
        "label": "KAIZEN_ALLOWED_TARGET_HOSTS: 127.0.0.1 (loopback: this machine only)",
        "url": "",
        "ok": True,
    }

    scans = make_control("code_scan_coverage")  # not evaluated yet
    code, out = _status("--json")
    assert (code, json.loads(out)["status"]) == (3, "incomplete")

    finished_job(target, "code_scan", NOW)
    TargetService.objects.filter(pk=target.pk).update(source_location="/srv/orders")
    compliance.evaluate(scans, NOW - days(60))  # none in that quarter
    code, out = _status()
    assert code == 1
    assert f"fail       {scans.slug}: 0 of 1 targets had one in 2026-Q3" in out

    Evaluation.objects.create(
        control=scans,
        period="2026-Q4",
        period_start=datetime.date(2026, 10, 1),
        period_end=datetime.date(2026, 12, 31),
        status="error",
        reason="broken",
        evaluated_at=NOW,
    )
    assert _status("--json")[0] == 2
    rows = compliance.register()
    assert [row.as_json() for row in rows] == json.loads(_status("--json")[1])["controls"]


def test_attestation_rows_are_never_changed_by_expiry(make_control, hr_editor):
    control = make_control()
    compliance.do_attest(hr_editor, control, comment="ok", link="https://x", now=NOW)
    compliance.evaluate(control, NOW + days(200))
    assert Attestation.objects.count() == 1
    assert control.evaluations.order_by("-evaluated_at").first().status == "fail"


def test_the_demo_comes_with_the_default_register(departments, topics):
    assert load_demo("correct-horse-battery-42", "http://127.0.0.1:8100")
    assert Control.objects.count() == len(compliance.DEFAULT_REGISTER)
    Control.objects.filter(slug="incident-drill").delete()
    assert not load_demo("correct-horse-battery-42", "http://127.0.0.1:8100")
    assert Control.objects.filter(slug="incident-drill").exists()  # a demo from before


def test_changes_list_the_controls_whose_status_moved_since_the_previous_period(
    make_control, hr_editor
):
    attested = make_control()
    steady = make_control("postmortems")
    new = make_control("allow_lists")  # the default allow-lists: loopback only
    q3 = compliance.parse_period("2026-Q3")
    assert q3.previous().label == "2026-Q2"
    assert compliance.parse_period("2026-01").previous().label == "2025-12"
    compliance.evaluate(attested, NOW - days(60))  # Q3: incomplete (not attested yet)
    compliance.evaluate(steady, NOW - days(60))
    compliance.do_attest(hr_editor, attested, comment="ok", link="https://x", now=NOW)
    compliance.evaluate(steady, NOW)
    compliance.evaluate(new, NOW)
    found = {c.control.slug: (c.before, c.after) for c in compliance.changes(q3.previous())}
    assert found == {}
    found = {
        c.control.slug: (c.before, c.after)
        for c in compliance.changes(compliance.parse_period("2026-Q4"))
    }
    assert found == {attested.slug: ("incomplete", "pass"), new.slug: ("—", "pass")}


def test_the_schedule_confirms_an_unchanged_judgement_and_keeps_each_change(
    make_control, make_runbook, hr_editor, settings
):
    control = make_control("runbook_reviews")
    runbook = make_runbook("Pool exhaustion")
    Runbook.objects.filter(pk=runbook.pk).update(next_review_date=NOW.date() + days(10))
    first = compliance.evaluate(control, NOW)
    again = compliance.evaluate(control, NOW + days(1))
    assert (again.pk, again.confirmed_at) == (first.pk, NOW + days(1))
    assert control.evaluations.get().checked_at == NOW + days(1)
    # The review date passes: a new judgement, kept beside the old one.
    changed = compliance.evaluate(control, NOW + days(11))
    assert (changed.status, control.evaluations.count()) == ("fail", 2)
    # A person asking keeps a row of its own.
    assert compliance.evaluate(control, NOW + days(11), actor=hr_editor).pk != changed.pk
    # The next quarter starts a new row even with the same findings.
    assert compliance.evaluate(control, NOW + days(60)).period == "2027-Q1"
    assert control.evaluations.count() == 4

    # The beat's task: on the maintenance queue, judges and reminds.
    entry = settings.CELERY_BEAT_SCHEDULE["kaizen-compliance"]
    assert entry["task"] == evaluate_compliance.name == "departments.tasks.evaluate_compliance"
    assert settings.CELERY_TASK_ROUTES[entry["task"]] == {"queue": "maintenance"}
    outcome = evaluate_compliance()
    assert outcome["statuses"] == {"fail": 1}
    assert outcome["reminders"] == {"before": 0, "overdue": 0}


def test_controls_with_nothing_to_judge_are_incomplete_never_pass(make_control):
    # No training assigned, no secret stored: nothing seen is not evidence of compliance.
    training = judge(make_control("training_current", code="hr"))
    secrets = judge(make_control("secrets_decrypt", code="strategy"))
    assert (training.status, secrets.status) == ("incomplete", "incomplete")
    assert "No training is assigned" in training.reason
    assert "No secrets are stored" in secrets.reason
