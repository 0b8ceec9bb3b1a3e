"""``manage.py optimize quality --focus integrity`` on the demo shop and its fixed twin:
the real integrity probes through the runner — the three planted integrity bugs (and the
ignored Idempotency-Key) on the slow shop, none on the twin; findings routed to QA and
counted by the phase-4 gate; the demo data reseeded after the job; refused on a target that
allows no writes.

The shops run under real uvicorn on their own SQLite files (tests/shop_api/conftest.py);
``--wait``'s pauses run the queued jobs in-process, as a worker would."""

import io
import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from optimizations.jobs import kinds, landing, lease, modes, runner
from optimizations.management.commands import optimize
from optimizations.models import Finding, Job
from optimizations.work import actions, gates, routing
from portal import demo_target
from portal.demo import DEMO_TARGET_SLUG
from tests.shop_api.conftest import API_KEY, ITEMS, Databases, start_shop

pytestmark = pytest.mark.django_db(transaction=True)

PLANTED = {
    "integrity.lost_update",
    "integrity.bulk_atomicity",
    "integrity.unique_race",
    "integrity.idempotency",
}


@pytest.fixture
def shops(tmp_path):
    databases = Databases(tmp_path)
    started = {}
    try:
        for mode in ("slow", "fast"):
            shop = started[mode] = start_shop(mode, "sqlite", databases.new("sqlite"))
            # As the demo serves it: without the failing routes the shop tests add (the
            # run's probe job would report their 500s).
            shop.app.router.routes[:] = [
                route
                for route in shop.app.router.routes
                if not getattr(route, "path", "").startswith("/test/")
            ]
            shop.app.openapi_schema = None
        yield started
    finally:
        for shop in started.values():
            shop.stop()


@pytest.fixture
def demo(shops, departments, make_user, settings, tmp_path, monkeypatch):
    """The demo's people and targets as ./kaizen up registers them, and its state file."""
    settings.VAR_DIR = tmp_path
    state = demo_target.DemoState(
        var_dir=str(tmp_path),
        database_url=shops["slow"].database_url,
        fixed_database_url=shops["fast"].database_url,
        api_key=API_KEY,
    )
    demo_target.save_state(state)
    make_user("qa.engineer", ("qa", "engineer"))
    common = {"owner_department": departments["dev"], "environment": "demo"}
    slow = actions.do_create_target(
        None,
        name="Shop API (demo)",
        slug=DEMO_TARGET_SLUG,
        base_url=str(shops["slow"].client.base_url).rstrip("/"),
        allows_writes=True,
        **common,
    )
    fixed = actions.do_create_target(
        None,
        name="Shop API (demo, fixed)",
        slug=demo_target.FIXED_SLUG,
        base_url=str(shops["fast"].client.base_url).rstrip("/"),
        allows_writes=True,
        auth_header_name="X-API-Key",
        credentials={"auth_header_value": API_KEY},
        **common,
    )
    # The cool-down before a load (health checks, a pause) has its own tests.
    monkeypatch.setattr(lease, "cool_down", lambda job, spec, ctx: None)
    return {"slow": slow, "fast": fixed}


@pytest.fixture
def inline_worker(monkeypatch, broker_up):
    """What the engine queues runs at --wait's next pause, in this process."""
    queue = []

    def enqueue(job):
        queue.append(job.pk)
        Job.objects.filter(pk=job.pk).update(enqueued_at=timezone.now())
        return True

    monkeypatch.setattr(landing, "enqueue", enqueue)

    def pause():
        while queue:
            runner.execute(queue.pop(0), "test-worker")

    monkeypatch.setattr(optimize, "pause", pause)


def optimize_cmd(*args):
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exit:
        call_command("optimize", *args, stdout=out, stderr=err)
    return exit.value.code, out.getvalue(), err.getvalue()


def integrity_on(slug):
    return optimize_cmd(
        "quality", "--focus", "integrity", "--target", slug, "--user", "qa.engineer", "--wait",
        "--json",
    )  # fmt: skip


def test_quality_focus_integrity_finds_the_planted_bugs_on_the_slow_shop(
    demo, shops, inline_worker
):
    code, out, _ = integrity_on(DEMO_TARGET_SLUG)

    document = json.loads(out)
    assert code == 1 and document["run"]["verdict"] == "fail"
    assert [job["kind"] for job in document["jobs"]] == ["probe", "integrity"]
    found = Finding.objects.filter(target=demo["slow"], source="integrity")
    assert {f.rule_id for f in found} == PLANTED
    assert {routing.route(f).department for f in found} == {routing.QA.department}
    assert {routing.route(f).phase for f in found} == {4}
    job = Job.objects.get(run__target=demo["slow"], kind="integrity")
    log = " ".join(job.logs.values_list("message", flat=True))
    assert "demo shop: data back to the seeded" in log
    assert len(shops["slow"].get("/items/export").text.splitlines()) == ITEMS


def test_and_none_on_the_fixed_twin(demo, shops, inline_worker):
    code, out, _ = integrity_on(demo_target.FIXED_SLUG)

    document = json.loads(out)
    assert code == 0, out
    assert document["run"]["verdict"] == "pass"
    assert not Finding.objects.filter(target=demo["fast"], source="integrity").exists()
    assert len(shops["fast"].get("/items/export").text.splitlines()) == ITEMS


def test_the_phase_four_gate_counts_integrity_findings(demo, inline_worker, make_initiative):
    initiative = make_initiative(target=demo["slow"])
    qa_phase = initiative.phases.get(number=4)
    before = {c.key: c for c in gates.evaluate(qa_phase)}
    integrity_on(DEMO_TARGET_SLUG)
    after = {c.key: c for c in gates.evaluate(qa_phase)}

    assert before["integrity"].ok is None and "no integrity probe yet" in before["integrity"].detail
    assert after["integrity"].ok is False
    assert "integrity.lost_update (PATCH /items/{item_id}/stock)" in after["integrity"].detail
    # Integrity findings have their own check, not the security one.
    assert after["no_severe_security"].ok is True


def test_a_target_that_allows_no_writes_is_refused_with_the_reason(demo, inline_worker):
    demo["fast"].allows_writes = False
    demo["fast"].save()

    code, out, _ = integrity_on(demo_target.FIXED_SLUG)

    assert code == 2
    assert "does not allow writes" in json.loads(out)["error"]
    assert not Job.objects.filter(kind="integrity").exists()


def test_comprehensive_and_quality_plan_integrity_only_where_writes_are_allowed():
    def kinds(mode, **options):
        return [job.kind for job in modes.plan(mode, **options)]

    assert "integrity" not in kinds("comprehensive")
    assert "integrity" in kinds("comprehensive", allows_writes=True)
    assert "integrity" not in kinds("quality")
    assert "integrity" in kinds("quality", allows_writes=True)
    assert kinds("quality", focus=["integrity"]) == ["probe", "integrity"]


def test_reseed_hook_leaves_other_targets_alone(demo, target):
    messages = []
    demo_target.reseed_after_writes(target, messages.append)

    assert messages == []


def test_the_demo_is_reseeded_after_any_job_that_wrote():
    integrity, benchmark, probe = (kinds.get(name) for name in ("integrity", "benchmark", "probe"))

    assert runner.wrote(integrity, {})
    assert runner.wrote(benchmark, {"allow_writes": True})  # a write-path load test
    assert not runner.wrote(benchmark, {"allow_writes": False})
    assert not runner.wrote(probe, {})
