"""The status page: workers from their own heartbeat rows, the broker in a panel loaded after."""

from __future__ import annotations

import datetime
import re

import kombu.utils.functional
import pytest
from django.utils import timezone

from optimizations.jobs import engine, housekeeping
from portal import workerbeat
from portal.models import WorkerBeat
from tests.conftest import need, reachable
from tests.optimizations.workers import Worker, broker_settings, use_broker, wait_for

HTMX = {"HTTP_HX_REQUEST": "true"}


def beat_row(name, queues, *, ago, stopped=False):
    at = timezone.now() - datetime.timedelta(seconds=ago)
    return WorkerBeat.objects.create(
        name=name,
        queues=queues,
        pid=4242,
        concurrency=2,
        started_at=at - datetime.timedelta(hours=1),
        at=at,
        stopped_at=at if stopped else None,
    )


def worker_rows(page: str) -> dict[str, str]:
    """{worker name: its state class} from the Workers table."""
    return {
        name: state
        for state, name in re.findall(r'class="worker-(\w+)"><td><code>([^<]+)</code>', page)
    }


def broker_panel(page: str) -> str:
    return page[
        page.index('id="status-broker"') : page.index(
            "</section>", page.index('id="status-broker"')
        )
    ]


@pytest.fixture
def no_broker_asked(monkeypatch):
    """The page proper must not ask the broker (its panel does, after the page is shown)."""

    def asked(timeout):
        raise AssertionError("the status page asked the broker")

    monkeypatch.setattr("portal.status.broker_reachable", asked)
    monkeypatch.setattr("portal.status.queue_lengths", asked)


def test_workers_read_alive_gone_or_stopped_from_their_heartbeats(
    login, viewer, settings, no_broker_asked
):
    settings.KAIZEN_TICK_SECONDS = 10
    silent = workerbeat.silent_after()
    assert silent == 30
    beat_row("analysis@a", ["analysis"], ago=silent - 10)
    beat_row("benchmark@b", ["benchmark"], ago=silent + 10)  # killed: no stop written
    beat_row("maintenance@c", ["maintenance"], ago=5, stopped=True)
    beat_row("analysis@old", ["analysis"], ago=2 * 24 * 3600)  # gone for days: not shown
    page = login(viewer).get("/status/").content.decode()
    assert worker_rows(page) == {
        "analysis@a": "alive",
        "benchmark@b": "silent",
        "maintenance@c": "stopped",
    }
    assert "gone (silent)" in page and "stopped" in page
    # The rule is stated on the page, in the figures it applies.
    assert "every 10 s while it runs" in page and "more than 30 s" in page
    assert re.search(r'<div class="figure">1</div><div class="caption">workers alive', page)
    # Only silent or stopped workers serve these queues: said, not hidden.
    assert "No worker alive serves benchmark, maintenance" in page


def test_no_heartbeat_reads_as_no_worker_never_as_ok(login, viewer, no_broker_asked):
    page = login(viewer).get("/status/").content.decode()
    assert worker_rows(page) == {}
    assert "No worker has written a heartbeat in the last day." in page
    assert "No worker alive serves analysis, benchmark, maintenance" in page
    assert re.search(r'<div class="stat alert"><div class="figure">0</div>', page)


def test_the_page_shows_the_broker_as_being_checked_and_loads_its_panel(
    login, viewer, no_broker_asked
):
    page = login(viewer).get("/status/").content.decode()
    panel = broker_panel(page)
    assert 'hx-get="/status/broker/"' in panel and 'hx-trigger="load"' in panel
    assert 'href="/status/broker/"' in panel  # a real link without JavaScript
    assert "checking…" in panel
    assert "badge good" not in panel and "badge bad" not in panel


def test_the_broker_panel_says_down_for_a_stopped_redis(login, viewer):
    # Nothing listens on port 1 of the loopback: a stopped Redis, really asked.
    with use_broker("redis://127.0.0.1:1/0", {"socket_connect_timeout": 1}):
        response = login(viewer).get("/status/broker/", **HTMX)
    assert response.status_code == 200
    fragment = response.content.decode()
    assert "<html" not in fragment and fragment.lstrip().startswith(
        '<section class="panel" id="status-broker"'
    )
    assert "hx-get" not in fragment  # answered: it does not load itself again
    assert '<span class="badge bad">down</span>' in fragment
    assert "The broker cannot be reached: OperationalError" in fragment
    assert "unknown while the broker is down" in fragment
    assert "HX-Request" in response["Vary"]


def test_a_stopped_redis_reads_as_down_without_kombus_two_second_pause(monkeypatch):
    slept = []
    monkeypatch.setattr(kombu.utils.functional, "sleep", slept.append)
    with use_broker("redis://127.0.0.1:1/0", {"socket_connect_timeout": 1}):
        problem = engine.broker_reachable(timeout=1.0)
    assert problem and "OperationalError" in problem
    assert not [seconds for seconds in slept if seconds > 0], slept


def test_the_broker_panel_counts_the_embedded_brokers_waiting_messages(login, viewer, tmp_path):
    url, options = broker_settings("filesystem", tmp_path)
    with use_broker(url, options):
        fragment = login(viewer).get("/status/broker/", **HTMX).content.decode()
    assert '<span class="badge good">up</span>' in fragment
    assert re.search(r"<code>benchmark</code></td><td class=\"num\">0</td>", fragment)


def test_the_broker_panel_opened_directly_is_the_whole_page_checked(
    login, viewer, monkeypatch, settings
):
    monkeypatch.setattr("portal.status.broker_reachable", lambda timeout: "ConnectionError: no")
    beat_row("analysis@a", ["analysis"], ago=1)
    response = login(viewer).get("/status/broker/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" in page and 'id="status-workers"' in page
    assert worker_rows(page) == {"analysis@a": "alive"}
    panel = broker_panel(page)
    assert "hx-get" not in panel and '<span class="badge bad">down</span>' in panel
    assert "The broker cannot be reached: ConnectionError: no" in panel


def test_the_page_and_its_panel_in_japanese(login, viewer, monkeypatch):
    monkeypatch.setattr("portal.status.broker_reachable", lambda timeout: "ConnectionError: no")
    client = login(viewer)
    beat_row("benchmark@b", ["benchmark"], ago=3600)
    page = client.get("/status/broker/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "稼働中のワーカー" in page and "消失（沈黙）" in page
    assert '<span class="badge bad">停止</span>' in broker_panel(page)
    assert "ハートビートを書き込みます" in page
    fragment = client.get("/status/broker/", HTTP_ACCEPT_LANGUAGE="ja", **HTMX).content.decode()
    assert "ブローカーに接続できません：ConnectionError: no" in fragment


def test_the_page_costs_a_few_queries_however_many_workers(
    login, viewer, no_broker_asked, django_assert_max_num_queries
):
    client = login(viewer)
    client.get("/status/")
    for n in range(20):
        beat_row(f"analysis@{n}", ["analysis"], ago=n)
    with django_assert_max_num_queries(10):
        assert client.get("/status/").status_code == 200


# With Redis the worker's timer is its event loop; with the embedded broker, a thread.
@pytest.mark.parametrize("kind", ["filesystem", "redis"])
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_writes_its_heartbeat_and_its_stop(tmp_path, kind):
    if kind == "redis":
        need(reachable("redis://127.0.0.1:6379"), "Redis is not reachable on 127.0.0.1:6379")
    url, options = broker_settings(kind, tmp_path)
    with use_broker(url, options):
        worker = Worker(url, tmp_path, queue="benchmark", env={"KAIZEN_TICK_SECONDS": "1"})
        try:
            worker.wait_ready()
            row = wait_for(
                lambda: WorkerBeat.objects.filter(name__startswith=worker.name).first(),
                30,
                "the worker's heartbeat row",
            )
            assert row.queues == ["benchmark"] and row.stopped_at is None
            # Beats go on from the worker's timer, not only at start.
            wait_for(
                lambda: WorkerBeat.objects.get(pk=row.pk).at > row.started_at, 30, "a second beat"
            )
        finally:
            worker.stop()
    row.refresh_from_db()
    assert row.stopped_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_reads_as_gone_once_its_beats_are_missed(
    tmp_path, settings, client, django_user_model, monkeypatch
):
    monkeypatch.setattr("portal.status.broker_reachable", lambda timeout: None)
    settings.KAIZEN_TICK_SECONDS = 1
    url, options = broker_settings("filesystem", tmp_path)
    with use_broker(url, options):
        worker = Worker(url, tmp_path, queue="benchmark", env={"KAIZEN_TICK_SECONDS": "1"})
        try:
            worker.wait_ready()
            row = wait_for(
                lambda: WorkerBeat.objects.filter(name__startswith=worker.name).first(),
                30,
                "the worker's heartbeat row",
            )
        finally:
            worker.kill()  # SIGKILL: no word of its stop
            worker.stop()  # (closes its log)
    row.refresh_from_db()
    assert row.stopped_at is None
    user = django_user_model.objects.create_user("watcher", password="pw-status-42")
    client.force_login(user)
    # The clock moves past the silence the page allows (its last beat, that long ago).
    WorkerBeat.objects.filter(pk=row.pk).update(
        at=row.at - datetime.timedelta(seconds=workerbeat.silent_after() + 1)
    )
    assert worker_rows(client.get("/status/").content.decode()) == {row.name: "silent"}


def test_the_purge_forgets_workers_silent_past_the_retention(db, settings):
    settings.KAIZEN_RETENTION_DAYS = 30
    beat_row("analysis@gone-host", ["analysis"], ago=31 * 24 * 3600)
    beat_row("analysis@here", ["analysis"], ago=5)
    beat_row("benchmark@stopped-last-week", ["benchmark"], ago=7 * 24 * 3600, stopped=True)
    assert housekeeping.purge()["workers"] == 1
    assert set(WorkerBeat.objects.values_list("name", flat=True)) == {
        "analysis@here",
        "benchmark@stopped-last-week",
    }
