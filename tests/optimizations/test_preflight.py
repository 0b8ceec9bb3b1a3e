"""One preflight for starting jobs (optimizations.jobs.preflight): the engine asks it once,
and the target page, the JSON API, the command line and a runbook step show the same
refusal in the same words."""

import dataclasses
import html
import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from departments import actions
from departments.models import Runbook, TrainingGate, TrainingModule
from optimizations.jobs import engine, kinds, landing, preflight, refusals
from optimizations.models import Job, Run, TargetLease, TargetService
from portal.access import training_gate_refusal
from portal.tokens import do_create_token
from tests.departments.conftest import QUIZ
from tests.optimizations import fake_analyzer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fake_kinds(monkeypatch, broker_up):
    """Every kind is the fake analyzer (needing a base URL); nothing reaches a broker."""
    for name, kind in list(kinds.KINDS.items()):
        fake = dataclasses.replace(kind, module=fake_analyzer.__name__, needs=("base_url",))
        monkeypatch.setitem(kinds.KINDS, name, fake)
    sent = []
    monkeypatch.setattr(landing, "enqueue", lambda job: sent.append(job.pk) or True)
    return sent


@pytest.fixture
def gated(target, hr_editor, departments):
    """A training gate on the target's load tests, which nobody has passed."""
    module = actions.do_create_module(
        hr_editor,
        title="Load testing safely",
        content="Read the runbook, then answer.",
        quiz=QUIZ,
        pass_mark=80,
        status=TrainingModule.PUBLISHED,
        owner_department=departments["hr"],
    )
    TrainingGate.objects.create(target=target, module=module)
    return module


@pytest.fixture
def other_target(departments):
    return TargetService.objects.create(
        name="Other",
        slug="other",
        base_url="http://127.0.0.1:9",
        owner_department=departments["qa"],
    )


# --- the same refusal from every entry point ----------------------------------------------


def test_every_entry_point_says_the_same_training_refusal(
    gated, target, qa_engineer, hr_editor, departments, client
):
    said = training_gate_refusal(qa_engineer, target, "benchmark")
    assert said and "Load testing safely" in said

    # The target page's "Run analysis".
    client.force_login(qa_engineer)
    response = client.post(
        reverse("run_start", args=[target.slug]), {"mode": "performance"}, follow=True
    )
    assert said in [str(message) for message in response.context["messages"]]

    # The JSON API (409: nothing was wrong with what was sent; the target asks for training).
    _, key = do_create_token(qa_engineer, "tests")
    response = client.post(
        "/api/runs",
        {"target": target.slug, "mode": "performance"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 409 and response.json()["detail"] == said

    # The command line.
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit:
        call_command(
            "optimize", "performance", "--target", target.slug, "--user", "aiko", stderr=err
        )
    assert exit.value.code == 2 and err.getvalue().strip() == f"optimize: {said}"

    # A runbook's kaizen-run step.
    runbook = actions.do_create_runbook(
        hr_editor,
        title="Load test the orders API",
        body=f"```kaizen-run kind=benchmark target={target.slug}\n```",
        owner_department=departments["hr"],
        owner=hr_editor,
        status=Runbook.PUBLISHED,
        topics=[],
    )
    response = client.post(
        reverse("runbook_run_step", args=[runbook.slug, 1]), headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    assert html.escape(said) in response.content.decode()

    assert not Run.objects.exists()


def test_the_target_page_says_why_it_refuses_another_targets_initiative(
    login, qa_engineer, make_initiative, other_target
):
    """It used to drop the initiative silently and start an unlinked run; the API and the
    command line refused it. Now all three refuse it, saying why."""
    initiative = make_initiative()
    response = login(qa_engineer).post(
        reverse("run_start", args=[other_target.slug]),
        {"mode": "strategy", "initiative": initiative.pk},
        follow=True,
    )
    said = f"initiative #{initiative.pk} is about another target, not other"
    assert said in [str(message) for message in response.context["messages"]]
    assert not Run.objects.exists()


def test_the_target_page_files_a_task_run_under_its_phase_and_initiative(
    login, qa_engineer, make_initiative, target
):
    initiative = make_initiative()
    phase = initiative.phases.order_by("number").first()
    task = phase.tasks.create(title="Measure", department=phase.initiative.target.owner_department)
    login(qa_engineer).post(
        reverse("run_start", args=[target.slug]), {"mode": "strategy", "task": task.pk}
    )
    run = Run.objects.get()
    assert (run.initiative, run.phase, run.task) == (initiative, phase, task)


# --- the engine asks once ---------------------------------------------------------------


def test_the_engine_asks_the_preflight_once_per_start(target, qa_engineer, monkeypatch):
    asked = []
    original = preflight.check

    def check(*args, **kwargs):
        asked.append(kwargs.get("specs"))
        return original(*args, **kwargs)

    monkeypatch.setattr(preflight, "check", check)
    run = engine.start_run(qa_engineer, target, "quality", ["testing"])
    engine.start_job(qa_engineer, target, "probe", {"samples": 1})
    engine.rerun(qa_engineer, run)
    engine.start_set(qa_engineer, target)
    assert len(asked) == 4


def test_a_refusal_carries_its_reasons_with_codes_and_fields(target, qa_engineer):
    with pytest.raises(engine.CannotStart) as refused:
        engine.start_run(
            qa_engineer,
            target,
            "performance",
            ["security"],
            initiative=99999,
        )
    codes = {(reason.code, reason.field) for reason in refused.value.reasons}
    assert codes == {
        (refusals.LINK_UNKNOWN, ("initiative",)),
        (refusals.FOCUS, ("focus",)),
    }
    assert "No initiative #99999." in str(refused.value)
    answer = preflight.check(qa_engineer, target, "quality", initiative=str(2**64))
    assert answer.message == f"No initiative #{2**64}."
    assert "focus security does not apply to performance" in str(refused.value)


# --- what is said but not refused ---------------------------------------------------------


def test_a_load_test_waits_for_the_targets_lease_and_is_not_refused(target, qa_engineer):
    holder_run = Run.objects.create(target=target, mode="custom")
    holder = Job.objects.create(run=holder_run, target=target, kind="benchmark", status=Job.RUNNING)
    TargetLease.objects.create(target=target, holder=holder)
    answer = preflight.check(qa_engineer, target, specs=[("benchmark", {})])
    assert answer.ok
    assert answer.waits == [
        f"The {kinds.get('benchmark').label} waits for job #{holder.pk} (benchmark), which is "
        "loading Orders API now; it starts when that one ends."
    ]
    run = engine.start_job(qa_engineer, target, "benchmark", {})
    assert run.jobs.get().status == Job.WAITING


def test_what_the_target_lacks_skips_the_kind_and_says_how_to_enable_it(
    target, qa_engineer, monkeypatch
):
    scan = dataclasses.replace(kinds.KINDS["db_scan"], needs=("database_url",))
    monkeypatch.setitem(kinds.KINDS, "db_scan", scan)
    answer = preflight.check(qa_engineer, target, "performance", ["sqlalchemy"])
    assert answer.ok
    assert {
        "kind": "db_scan",
        "why": "the target lacks a database URL (set it on the target's settings page)",
    } in answer.skipped
    assert "db_scan" not in [kind.name for kind, _ in answer.jobs]


def test_a_host_off_the_allow_list_skips_what_would_reach_it(departments, qa_engineer, settings):
    settings.KAIZEN_ALLOWED_TARGET_HOSTS = ["127.0.0.0/8"]
    far = TargetService.objects.create(
        name="Far", slug="far", base_url="http://10.1.2.3:8000", owner_department=departments["qa"]
    )
    answer = preflight.check(qa_engineer, far, specs=[("probe", {})])
    assert [r.code for r in answer.reasons] == [refusals.NOTHING_TO_RUN]
    assert "10.1.2.3 resolves to 10.1.2.3, which is not in KAIZEN_ALLOWED_TARGET_HOSTS" in (
        answer.message
    )
    assert "Add the host or its network there to allow it." in answer.message


def test_the_start_limit_is_a_reason_with_a_time_to_retry(target, qa_engineer, settings):
    settings.KAIZEN_TARGET_START_RATE = 1
    engine.start_job(qa_engineer, target, "probe", {})
    answer = preflight.check(qa_engineer, target, specs=[("probe", {})])
    assert [r.code for r in answer.reasons] == [refusals.LIMIT]
    assert answer.retry_after and answer.retry_after >= 1
    assert isinstance(answer.refusal(), refusals.TooManyStarts)
    # A page that only shows whether a step could run does not count starts.
    assert preflight.check(qa_engineer, target, specs=[("probe", {})], with_limits=False).ok


def test_a_comparison_asks_the_preflight_for_each_side_and_names_the_side(
    target, qa_engineer, departments
):
    bare = TargetService.objects.create(
        name="Bare", slug="bare", base_url="", owner_department=departments["qa"]
    )
    with pytest.raises(engine.CannotStart) as refused:
        engine.start_comparison(qa_engineer, target, bare, {"samples": 1})
    assert str(refused.value) == (
        "Bare: No job of this run can start (benchmark: the target lacks a base URL)."
    )
    with pytest.raises(engine.CannotStart) as refused:
        engine.start_comparison(qa_engineer, target, bare, {"speed": 5})
    assert "unknown parameter of benchmark" in str(refused.value)
    assert [r.field for r in refused.value.reasons] == [("params", "benchmark", "speed")]
    assert not Run.objects.exists()


def test_the_single_job_form_says_the_refusal_and_the_wait_before_the_button(
    gated, target, qa_engineer, login
):
    said = training_gate_refusal(qa_engineer, target, "benchmark")
    client = login(qa_engineer)
    form = client.get(reverse("job_params", args=[target.slug, "benchmark"]))
    assert form.context["refusal"] == said
    assert "disabled>Start" in form.content.decode()

    holder = Job.objects.create(
        run=Run.objects.create(target=target, mode="custom"),
        target=target,
        kind="benchmark",
        status=Job.RUNNING,
    )
    TargetLease.objects.create(target=target, holder=holder)
    form = client.get(reverse("job_params", args=[target.slug, "probe"]))
    assert form.context["refusal"] == "" and form.context["waits"] == []
    TrainingGate.objects.all().delete()  # trained now: the load test only waits
    form = client.get(reverse("job_params", args=[target.slug, "benchmark"]))
    assert form.context["refusal"] == ""
    assert form.context["waits"] == [
        f"The {kinds.get('benchmark').label} waits for job #{holder.pk} (benchmark), which is "
        "loading Orders API now; it starts when that one ends."
    ]


def test_every_entry_point_says_the_same_role_refusal(
    target, viewer, hr_editor, departments, client
):
    said = "victor may not start analyses (viewer of strategy): only managers and engineers of "
    said += "dev, QA or strategy may."

    _, key = do_create_token(viewer, "tests")
    response = client.post(
        "/api/runs",
        {"target": target.slug, "mode": "performance"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 403 and response.json()["detail"] == said

    err = io.StringIO()
    with pytest.raises(SystemExit):
        call_command(
            "optimize", "performance", "--target", target.slug, "--user", "victor", stderr=err
        )
    assert err.getvalue().strip() == f"optimize: {said}"

    runbook = actions.do_create_runbook(
        hr_editor,
        title="Probe the orders API",
        body=f"```kaizen-run kind=probe target={target.slug}\n```",
        owner_department=departments["hr"],
        owner=hr_editor,
        status=Runbook.PUBLISHED,
        topics=[],
    )
    client.force_login(viewer)
    assert html.escape(said) in client.get(runbook.get_absolute_url()).content.decode()
    assert not Run.objects.exists()
