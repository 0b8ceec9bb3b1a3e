"""``manage.py optimize`` and ``fastapi-sqlalchemy-optimize``: start, follow, exit 0/1/2/3.

Every kind is the fake analyzer here, and ``--wait``'s pause between two polls
runs what was queued, in-process, as a worker would: the command sees the jobs
go from queued to their end without a broker or a clock.
"""

import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from optimizations import cli
from optimizations.analyzers.base import MeasurementData
from optimizations.jobs import engine, kinds, landing, lease, runner
from optimizations.management.commands import optimize
from optimizations.models import Finding, Job, Run, TargetService
from portal.models import AuditEvent
from tests.conftest import need
from tests.optimizations import fake_analyzer

# The runner writes progress from a second thread, on its own connection.
pytestmark = pytest.mark.django_db(transaction=True)

PERFORMANCE_KINDS = ["probe", "code_scan", "db_scan", "benchmark"]


@pytest.fixture(autouse=True)
def fake_kinds(monkeypatch):
    """Every kind runs the fake analyzer; ``fail=verdict`` makes its verdict fail."""
    for name, kind in list(kinds.KINDS.items()):
        fake = dataclasses.replace(kind, module=fake_analyzer.__name__, needs=("base_url",))
        monkeypatch.setitem(kinds.KINDS, name, fake)
    original = fake_analyzer.run

    def run(target, params, ctx):
        if not all(isinstance(check, list) for check in params["checks"] or []):
            params = {**params, "checks": None}  # a mode's real check names (db_scan's)
        result = original(target, params, ctx)
        result.measurements.append(MeasurementData("http.latency.p95", 12.5, "ms"))
        if params["fail"] == "verdict":
            result.verdict = "fail"
        if params["fail"] == "incomplete":
            result.verdict = "incomplete"
            result.verdict_reason = "db.avg_query_time: pg_stat_statements is not available"
        return result

    monkeypatch.setattr(fake_analyzer, "run", run)
    # No target answers here: the health check and cool-down before a load have their
    # own tests (tests/analyzers/test_cooldown.py, test_lifecycle.py).
    monkeypatch.setattr(lease, "cool_down", lambda job, spec, ctx: None)


@pytest.fixture
def queue(monkeypatch, broker_up):
    """What the engine sends to the broker, in order."""
    sent = []

    def enqueue(job):
        sent.append(job.pk)
        Job.objects.filter(pk=job.pk).update(enqueued_at=timezone.now())
        return True

    monkeypatch.setattr(landing, "enqueue", enqueue)
    return sent


@pytest.fixture
def worker(queue, monkeypatch):
    """Each pause of --wait runs the queued jobs (and those they release)."""
    pauses = []

    def pause():
        pauses.append(len(queue))
        while queue:
            runner.execute(queue.pop(0), "test-worker")

    monkeypatch.setattr(optimize, "pause", pause)
    return pauses


class Terminal(io.StringIO):
    def isatty(self):
        return True


def optimize_cmd(*args, stdout=None):
    out, err = stdout or io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exit:
        call_command("optimize", *args, stdout=out, stderr=err)
    return exit.value.code, out.getvalue(), err.getvalue()


def test_without_wait_it_queues_the_run_prints_it_and_exits_0(target, qa_engineer, queue):
    code, out, _ = optimize_cmd("performance", "--target", target.slug, "--user", "aiko")
    run = Run.objects.get()
    assert code == 0
    assert (run.mode, run.trigger, run.triggered_by) == ("performance", "cli", qa_engineer)
    assert f"Run #{run.pk} queued: performance --target orders-api, as aiko" in out
    assert f"/runs/{run.pk}/" in out
    jobs = list(run.jobs.order_by("pk"))
    assert [job.kind for job in jobs] == PERFORMANCE_KINDS
    for job in jobs:
        assert f"job #{job.pk}" in out and f"/jobs/{job.pk}/" in out
    # Only the probe goes to the queue at once; the others wait for it.
    assert queue == [jobs[0].pk]
    event = AuditEvent.objects.get(action="job.trigger")
    assert event.actor == qa_engineer and "Command line" in event.summary


def test_wait_follows_the_jobs_and_exits_0_when_all_succeeded_and_passed(
    target, qa_engineer, worker
):
    code, out, _ = optimize_cmd("performance", "--target", target.slug, "--user", "aiko", "--wait")
    run = Run.objects.get()
    assert code == 0
    assert {job.status for job in run.jobs.all()} == {Job.SUCCEEDED}
    assert worker[0] == 1  # the first pause found the probe queued, and ran it and the rest
    probe = run.jobs.get(kind="probe")
    # Without a terminal: one line per change, as a CI log wants it.
    assert f"job #{probe.pk} probe: queued 0%" in out
    assert f"job #{probe.pk} probe: succeeded verdict pass" in out
    assert f"Run #{run.pk} — performance --target orders-api — succeeded, verdict pass" in out
    assert "http.latency.p95 12.5 ms" in out
    assert out.rstrip().endswith("Exit 0: pass — every job ran and passed.")


def test_a_failed_verdict_exits_1(target, qa_engineer, worker):
    code, out, _ = optimize_cmd(
        "performance",
        *("--target", target.slug, "--user", "aiko", "--wait"),
        *("--param", "benchmark.fail=verdict"),
    )
    assert code == 1
    assert Run.objects.get().verdict == "fail"
    assert "Exit 1: fail — a verdict failed." in out


def test_a_failed_job_exits_2_and_says_why(target, qa_engineer, worker):
    code, out, _ = optimize_cmd(
        "performance",
        *("--target", target.slug, "--user", "aiko", "--wait"),
        *("--param", "code_scan.fail=analysis", "--param", "benchmark.fail=verdict"),
    )
    assert code == 2  # a job that failed outweighs a failed verdict
    assert "error: The target said no." in out
    assert "Exit 2: error — a job could not do its work or was cancelled." in out


def test_an_incomplete_verdict_exits_3_and_names_what_is_missing(target, qa_engineer, worker):
    code, out, _ = optimize_cmd(
        "performance",
        *("--target", target.slug, "--user", "aiko", "--wait", "--focus", "sqlalchemy"),
        *("--param", "db_scan.fail=incomplete"),
    )
    run = Run.objects.get()
    assert {job.kind for job in run.jobs.all()} == {"probe", "code_scan", "db_scan"}
    assert code == 3 and run.verdict == "incomplete"  # never pass
    assert "incomplete: db.avg_query_time: pg_stat_statements is not available" in out
    assert "Exit 3: incomplete" in out
    code, out, _ = optimize_cmd(
        "performance",
        *("--target", target.slug, "--user", "aiko", "--wait", "--focus", "sqlalchemy"),
        *("--param", "db_scan.fail=incomplete", "--json"),
    )
    document = json.loads(out)
    assert (code, document["exit_code"], document["verdicts"]["run"]) == (3, 3, "incomplete")
    [reason] = document["verdicts"]["reasons"]
    assert "incomplete — db.avg_query_time: pg_stat_statements is not available" in reason


def test_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        call_command("optimize", "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "0 pass, 1 fail, 2 error / cancelled / could not start, 3 incomplete" in text


def test_findings_of_the_run_are_summed_up(target, qa_engineer, worker):
    code, out, _ = optimize_cmd(
        "performance",
        *("--target", target.slug, "--user", "aiko", "--wait"),
        *("--param", 'probe.findings=[["R1", "a.py:1"], ["R2", "b.py:2"]]'),
    )
    assert code == 0
    assert Finding.objects.filter(status=Finding.OPEN).count() == 2
    assert "2 findings" in out
    assert "Open findings from this run: 2 (2 high)" in out


def test_unknown_target_exits_2_naming_the_known_ones(target, qa_engineer, queue):
    code, out, err = optimize_cmd("performance", "--target", "nope", "--user", "aiko")
    assert code == 2 and out == ""
    assert "There is no target service “nope”. Known targets: orders-api." in err
    assert not Run.objects.exists()


def test_unknown_user_exits_2(target, queue):
    code, _, err = optimize_cmd("performance", "--target", target.slug, "--user", "ghost")
    assert code == 2
    assert "There is no Kaizen user named “ghost”" in err
    assert not Run.objects.exists()


def test_a_disabled_user_exits_2(target, qa_engineer, queue):
    qa_engineer.is_active = False
    qa_engineer.save()
    code, _, err = optimize_cmd("performance", "--target", target.slug, "--user", "aiko")
    assert (code, "The account “aiko” is disabled.") == (2, err.strip().removeprefix("optimize: "))


@pytest.mark.parametrize(
    ("persona", "allowed"),
    [
        ("manager", True),
        ("dev_engineer", True),
        ("qa_engineer", True),
        ("strategist", True),
        ("hr_editor", False),
        ("viewer", False),
        ("outsider", False),
    ],
    indirect=["persona"],
)
def test_only_managers_and_engineers_may_start_runs(persona, allowed, target, queue):
    code, _, err = optimize_cmd("performance", "--target", target.slug, "--user", persona.username)
    if allowed:
        assert code == 0 and Run.objects.get().triggered_by == persona
    else:
        assert code == 2 and not Run.objects.exists()
        assert f"{persona.username} may not start analyses" in err


def test_a_viewer_is_refused_with_their_roles(target, viewer, queue):
    code, _, err = optimize_cmd("quality", "--target", target.slug, "--user", "victor")
    assert code == 2
    assert "victor may not start analyses (viewer of strategy)" in err


def test_json_without_wait_is_one_document_of_the_queued_run(target, qa_engineer, queue):
    code, out, _ = optimize_cmd(
        "performance", "--target", target.slug, "--user", "aiko", "--focus", "fastapi", "--json"
    )
    document = json.loads(out)
    run = Run.objects.get()
    assert code == 0
    assert document["ok"] is True and document["exit_code"] == 0 and document["waited"] is False
    assert document["run"]["id"] == run.pk
    assert document["run"]["focus"] == ["fastapi"]
    assert document["run"]["status"] == "queued"
    assert [job["kind"] for job in document["jobs"]] == ["probe", "code_scan", "benchmark"]
    # The probe is queued; the others wait for the job before them.
    assert [job["status"] for job in document["jobs"]] == ["queued", "waiting", "waiting"]


def test_json_with_wait_has_run_jobs_verdicts_and_findings(target, qa_engineer, worker):
    code, out, err = optimize_cmd(
        "performance",
        *("--target", target.slug, "--user", "aiko", "--wait", "--json"),
        *("--param", "benchmark.fail=verdict"),
        *("--param", 'probe.findings=[["R1", "a.py:1"]]'),
    )
    document = json.loads(out)  # stdout is the document and nothing else
    run = Run.objects.get()
    jobs = {job.kind: job for job in run.jobs.all()}
    assert code == 1
    assert set(document) == {
        *("ok", "exit_code", "waited", "followed_to_end"),
        *("run", "jobs", "verdicts", "findings"),
    }
    assert (document["ok"], document["exit_code"], document["waited"]) == (False, 1, True)
    assert document["run"]["status"] == "succeeded" and document["run"]["verdict"] == "fail"
    assert document["run"]["url"] == f"/runs/{run.pk}/"
    assert document["verdicts"] == {
        "run": "fail",
        "jobs": {str(job.pk): job.verdict for job in jobs.values()},
        "reasons": [f"benchmark #{jobs['benchmark'].pk}: fail"],
    }
    assert document["verdicts"]["jobs"][str(jobs["benchmark"].pk)] == "fail"
    probe = next(job for job in document["jobs"] if job["kind"] == "probe")
    assert probe["status"] == "succeeded" and probe["summary"]["seen"] == 1
    assert probe["findings"] == {"reported": 1, "fixed": 0}
    assert {"name": "http.latency.p95", "value": 12.5, "unit": "ms"} in probe["measurements"]
    assert document["findings"] == {
        "open": 1,
        "by_severity": {"high": 1},
        "reported": 1,
        "fixed": 0,
    }
    assert "probe: succeeded" in err  # progress went to stderr


def test_on_a_terminal_it_draws_a_progress_bar_per_job(target, qa_engineer, worker):
    code, out, _ = optimize_cmd(
        "performance",
        *("--target", target.slug, "--user", "aiko", "--wait"),
        stdout=Terminal(),
    )
    run = Run.objects.get()
    assert code == 0
    probe = run.jobs.get(kind="probe")
    assert "\x1b[2K" in out and "\x1b[4F" in out  # lines cleared and redrawn in place
    assert f"#{probe.pk:<5} probe          {'-' * 20}   0%  queued" in out
    assert f"#{probe.pk:<5} probe          {'#' * 20} 100%  succeeded" in out


def test_ctrl_c_with_cancel_on_interrupt_cancels_the_jobs_and_exits_2(
    target, qa_engineer, queue, monkeypatch
):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(optimize, "pause", interrupted)
    code, out, err = optimize_cmd(
        "performance",
        *("--target", target.slug, "--user", "aiko", "--wait", "--cancel-on-interrupt"),
    )
    run = Run.objects.get()
    assert code == 2
    assert {job.status for job in run.jobs.all()} == {Job.CANCELLED}
    assert {job.verdict for job in run.jobs.all()} == {"cancelled"}
    assert f"Cancelling run #{run.pk}" in err
    assert "Exit 2: error — a job could not do its work or was cancelled." in out
    assert AuditEvent.objects.filter(action="job.cancel").count() == 4


@pytest.mark.parametrize(
    ("answer", "statuses"),
    [("y\n", {Job.CANCELLED}), ("\n", {Job.QUEUED, Job.WAITING})],
)
def test_ctrl_c_on_a_terminal_asks_before_cancelling(
    answer, statuses, target, qa_engineer, queue, monkeypatch
):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(optimize, "pause", interrupted)
    monkeypatch.setattr(sys, "stdin", Terminal(answer))
    code, out, err = optimize_cmd(
        "performance", "--target", target.slug, "--user", "aiko", "--wait"
    )
    run = Run.objects.get()
    assert code == 2
    assert "Cancel the run's 4 unfinished jobs? [y/N]" in err
    assert {job.status for job in run.jobs.all()} == statuses
    if Job.QUEUED in statuses:
        assert f"Stopped following run #{run.pk}; it goes on" in err
        assert "Exit 2: the run was not followed to its end." in out


def test_ctrl_c_without_a_terminal_or_the_flag_leaves_the_run_going(
    target, qa_engineer, queue, monkeypatch
):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(optimize, "pause", interrupted)
    code, _, err = optimize_cmd("performance", "--target", target.slug, "--user", "aiko", "--wait")
    assert code == 2
    assert "[y/N]" not in err and "it goes on" in err
    assert not Job.objects.filter(status=Job.CANCELLED).exists()


def test_params_replace_the_planned_ones(target, qa_engineer, queue):
    code, _, _ = optimize_cmd(
        "performance",
        *("--target", target.slug, "--user", "aiko"),
        *("--param", "benchmark.samples=3", "--param", "probe.wait=0.5"),
    )
    jobs = {job.kind: job for job in Run.objects.get().jobs.all()}
    assert code == 0
    assert jobs["benchmark"].params["samples"] == 3
    assert jobs["probe"].params["wait"] == 0.5
    assert jobs["code_scan"].params["samples"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "benchmark.nope=1"], "--param benchmark.nope: unknown parameter of benchmark"),
        (["--param", "bogus.x=1"], "--param bogus: unknown job kind"),
        (["--param", "benchmark.samples=many"], "samples: expected int, got 'many'"),
        (["--param", "benchmark"], "write it as KIND.NAME=VALUE"),
        (["--param", "probe.findings=[oops"], "not JSON"),
        (
            ["--focus", "async", "--param", "benchmark.samples=1"],
            "this run has no benchmark job (it plans code_scan, probe)",
        ),
        (["--focus", "security"], "--focus: focus security does not apply to performance"),
    ],
)
def test_bad_input_exits_2_and_starts_nothing(args, message, target, qa_engineer, queue):
    code, _, err = optimize_cmd("performance", "--target", target.slug, "--user", "aiko", *args)
    assert code == 2
    assert message in err
    assert not Run.objects.exists()


def test_broker_down_exits_2_with_the_engines_reason(target, qa_engineer, queue, monkeypatch):
    monkeypatch.setattr(engine, "broker_reachable", lambda timeout=2.0: "Connection refused")
    code, out, err = optimize_cmd(
        "performance", "--target", target.slug, "--user", "aiko", "--json"
    )
    assert code == 2
    assert "The job queue (Celery broker) cannot be reached" in err
    assert json.loads(out)["ok"] is False
    assert not Run.objects.exists()


def test_initiative_links_the_run_when_it_is_the_targets(
    target, qa_engineer, queue, make_initiative, departments
):
    initiative = make_initiative()
    code, _, _ = optimize_cmd(
        "strategy",
        *("--target", target.slug, "--user", "aiko", "--initiative", str(initiative.pk)),
    )
    assert code == 0 and Run.objects.get().initiative == initiative
    other = TargetService.objects.create(
        name="Other",
        slug="other",
        base_url="http://127.0.0.1:9",
        owner_department=departments["dev"],
    )
    code, _, err = optimize_cmd(
        "strategy", "--target", other.slug, "--user", "aiko", "--initiative", str(initiative.pk)
    )
    assert code == 2 and f"initiative #{initiative.pk} is about another target" in err
    code, _, err = optimize_cmd(
        "strategy", "--target", other.slug, "--user", "aiko", "--initiative", "999"
    )
    assert code == 2 and "--initiative: No initiative #999." in err


def test_the_console_script_runs_the_command(target, qa_engineer, worker, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(
            [
                *("fastapi-sqlalchemy-optimize", "strategy", "--target", target.slug),
                *("--user", "aiko", "--wait", "--focus", "scaling"),
            ]
        )
    out, err = capsys.readouterr()
    assert exit.value.code == 0, err
    assert "Run #" in out and "strategy --focus scaling --target orders-api" in out
    assert "Exit 0" in out


def test_the_console_script_is_installed_and_works_from_any_directory(tmp_path):
    script = Path(sys.executable).parent / "fastapi-sqlalchemy-optimize"
    need(script.exists(), "the console script is installed with `pip install -e .`")
    done = subprocess.run(
        [str(script), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: fastapi-sqlalchemy-optimize")
    assert "--cancel-on-interrupt" in done.stdout
