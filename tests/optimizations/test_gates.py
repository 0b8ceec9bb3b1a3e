"""Phase gates: evidence per phase, sign-off, override with a reason."""

import pytest
from django.urls import reverse
from django.utils import timezone

from optimizations.models import Finding, GateSignoff, Job, Phase, Run
from optimizations.work import gates
from portal.models import AuditEvent
from tests.conftest import PERSONAS

NOW = timezone.now()


def succeeded(target, kind, run=None, **summary):
    run = run or Run.objects.create(
        target=target, mode="performance", status="succeeded", finished_at=NOW
    )
    return Job.objects.create(
        run=run, target=target, kind=kind, status=Job.SUCCEEDED, summary=summary, finished_at=NOW
    )


def load_set(target, runs=5, run=None):
    """A benchmark set: one run of ``runs`` succeeded load tests (10 s at 20 req/s)."""
    run = run or Run.objects.create(
        target=target, mode="custom", status="succeeded", finished_at=NOW
    )
    params = {"mode": "load", "rate": 20.0, "duration": 10.0}
    for _ in range(runs):
        Job.objects.create(
            run=run,
            target=target,
            kind="benchmark",
            status=Job.SUCCEEDED,
            params=params,
            started_at=NOW,
            finished_at=NOW,
            summary={"mode": "load"},
        )
    return run


def finding(target, rule, severity="high", source="code", category="performance"):
    return Finding.objects.create(
        target=target,
        source=source,
        rule_id=rule,
        severity=severity,
        category=category,
        title=f"{rule} problem",
        location="app/items.py:42",
        fingerprint=rule,
        first_seen_at=NOW,
        last_seen_at=NOW,
    )


def phase(initiative, number):
    return initiative.phases.get(number=number)


def by_key(checks):
    return {check.key: check for check in checks}


def test_phase_one_names_the_missing_baseline_and_snapshot(initiative):
    checks = by_key(gates.evaluate(phase(initiative, 1)))
    assert checks["baseline_benchmark"].ok is False
    assert "no load benchmark has succeeded" in checks["baseline_benchmark"].detail
    assert "start a baseline set" in checks["baseline_benchmark"].detail
    assert checks["db_snapshot"].ok is False
    assert "the target has no database URL" in checks["db_snapshot"].detail
    assert not gates.passes(list(checks.values()))


def test_phase_one_passes_with_a_baseline_set_and_a_db_scan(initiative, target):
    run = load_set(target)
    succeeded(target, "db_scan")
    checks = gates.evaluate(phase(initiative, 1))
    assert gates.passes(checks)
    check = by_key(checks)["baseline_benchmark"]
    assert check.detail == (
        f"Baseline: run #{run.pk} (5 × load, 20 req/s, 10 s), the first load set in the initiative"
    )
    assert check.url == run.get_absolute_url()


def test_a_single_load_test_is_not_a_baseline_set(initiative, target):
    run = load_set(target, runs=1)
    check = by_key(gates.evaluate(phase(initiative, 1)))["baseline_benchmark"]
    assert check.ok is False
    assert f"run #{run.pk} (1 × load" in check.detail and "fewer than 5 runs" in check.detail


def test_the_pinned_baseline_is_the_baseline_and_a_stress_test_never_is(initiative, target):
    stress = Run.objects.create(target=target, mode="custom", status="succeeded")
    Job.objects.create(
        run=stress,
        target=target,
        kind="benchmark",
        status=Job.SUCCEEDED,
        started_at=NOW,
        params={"mode": "stress"},
        summary={"mode": "stress"},
    )
    load_set(target)
    pinned = load_set(target)
    target.baseline_run = pinned
    target.save()
    detail = by_key(gates.evaluate(phase(initiative, 1)))["baseline_benchmark"].detail
    assert detail.startswith(f"Baseline: run #{pinned.pk} (5 × load") and detail.endswith("pinned")


def test_phase_two_is_blocked_by_open_high_performance_findings_only(initiative, target):
    finding(target, "sec.cors", source="security", category="security")
    finding(target, "FSA999", severity="medium")
    assert gates.passes(gates.evaluate(phase(initiative, 2)))
    blocker = finding(target, "FSA101")
    (check,) = gates.evaluate(phase(initiative, 2))
    assert check.ok is False and "FSA101 (app/items.py:42)" in check.detail
    Finding.objects.filter(pk=blocker.pk).update(status=Finding.FIXED)
    assert gates.passes(gates.evaluate(phase(initiative, 2)))


def test_phase_four_needs_slos_on_a_benchmark_and_no_high_security_finding(initiative, target):
    checks = by_key(gates.evaluate(phase(initiative, 4)))
    assert checks["slos"].ok is None and "no benchmark yet" in checks["slos"].detail
    assert checks["no_severe_security"].ok is True
    finding(target, "sec.cors", source="security", category="security")
    checks = by_key(gates.evaluate(phase(initiative, 4)))
    assert checks["no_severe_security"].ok is False


def test_phase_three_names_what_the_capacity_model_lacks(initiative):
    checks = by_key(gates.evaluate(phase(initiative, 3)))
    assert checks["capacity"].ok is None
    assert "stress" in checks["capacity"].detail
    assert checks["monitoring"].ok is None and "no probe" in checks["monitoring"].detail


def test_signing_a_complete_gate_finishes_the_phase_and_starts_the_next(
    initiative, target, manager
):
    load_set(target)
    succeeded(target, "db_scan")
    first = phase(initiative, 1)
    signoff = gates.do_sign_gate(manager, first, comment="Baseline looks sane")
    assert (signoff.override, signoff.comment) == (False, "Baseline looks sane")
    assert [c["ok"] for c in signoff.evidence] == [True, True]
    assert phase(initiative, 1).status == Phase.DONE
    assert phase(initiative, 2).status == Phase.ACTIVE
    assert AuditEvent.objects.filter(action="phase.gate", summary__contains="signed off").exists()


def test_an_incomplete_gate_needs_an_override_reason(initiative, manager):
    first = phase(initiative, 1)
    with pytest.raises(gates.GateRefused, match="Baseline benchmark set: no load benchmark"):
        gates.do_sign_gate(manager, first)
    assert phase(initiative, 1).status != Phase.DONE
    assert not GateSignoff.objects.exists()
    signoff = gates.do_sign_gate(manager, first, override_reason="SQLite demo: no DB to scan")
    assert signoff.override and signoff.override_reason == "SQLite demo: no DB to scan"
    assert phase(initiative, 1).status == Phase.DONE
    event = AuditEvent.objects.get(action="phase.gate")
    assert "overrode the gate (missing: Baseline benchmark set, DB snapshot)" in event.summary


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_only_managers_sign_gates(request, login, persona, initiative):
    client = login(persona)
    first = phase(initiative, 1)
    response = client.post(
        reverse("phase_gate_sign", args=[first.pk]),
        {"override": "1", "override_reason": "accepted risk"},
    )
    if request.node.callspec.params["persona"] == "manager":
        assert response.status_code == 302
        assert phase(initiative, 1).status == Phase.DONE
    else:
        assert response.status_code == 403
        assert phase(initiative, 1).status != Phase.DONE


def test_the_gate_fragment_explains_a_refusal(login, manager, initiative):
    client = login(manager)
    first = phase(initiative, 1)
    fragment = client.get(
        reverse("phase_gate", args=[first.pk]), headers={"HX-Request": "true"}
    ).content.decode()
    assert "evidence missing" in fragment and "Override" in fragment
    response = client.post(
        reverse("phase_gate_sign", args=[first.pk]), {"override": "1"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    assert "To pass it anyway, give a reason for the override." in response.content.decode()
    response = client.post(
        reverse("phase_gate_sign", args=[first.pk]),
        {"override": "1", "override_reason": "the demo has no database"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and response["HX-Refresh"] == "true"
    fragment = client.get(
        reverse("phase_gate", args=[first.pk]), headers={"HX-Request": "true"}
    ).content.decode()
    assert "Overridden by" in fragment and "the demo has no database" in fragment


def test_a_phase_is_not_finished_from_the_status_menu(login, manager, initiative):
    client = login(manager)
    first = phase(initiative, 1)
    response = client.post(reverse("phase_status", args=[first.pk]), {"status": "done"})
    assert response.status_code == 400
    assert phase(initiative, 1).status != Phase.DONE


def test_the_report_shows_gates_work_and_exports(login, viewer, initiative, target, manager):
    succeeded(target, "benchmark")
    gates.do_sign_gate(manager, phase(initiative, 1), override_reason="no database on the demo")
    response = login(viewer).get(reverse("initiative_report", args=[initiative.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Overridden by" in page and "no database on the demo" in page
    assert "Print or save as PDF" in page
    assert reverse("initiative_runs_export", args=[initiative.pk, "csv"]) in page


def test_the_board_loads_gates_roi_and_burndown_after_itself(login, viewer, initiative):
    client = login(viewer)
    page = client.get(reverse("initiative_detail", args=[initiative.pk])).content.decode()
    for name in ("initiative_roi_panel", "initiative_burndown"):
        assert f'hx-get="{reverse(name, args=[initiative.pk])}"' in page
    first = phase(initiative, 1)
    assert f'hx-get="{reverse("phase_gate", args=[first.pk])}"' in page
    panel = client.get(
        reverse("initiative_roi_panel", args=[initiative.pk]), HTTP_HX_REQUEST="true"
    )
    assert panel.status_code == 200
    assert f'id="roi-panel-{initiative.pk}"' in panel.content.decode()
    assert "not measured yet" in panel.content.decode()
