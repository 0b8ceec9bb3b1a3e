"""The embedded file-system broker survives torn and corrupt messages and writes atomically."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path

import pytest
from kombu import Connection
from kombu.exceptions import ChannelError
from kombu.transport import filesystem as stock_filesystem

from portal import broker
from portal.celery import app
from portal.models import ServiceBeat
from tests.optimizations.workers import Worker, broker_settings, use_broker, wait_for

QUEUE = "analysis"


@pytest.fixture
def folders(tmp_path) -> dict[str, Path]:
    # kombu's virtual transports keep exchanges and bindings in one process-wide
    # BrokerState: another test's broker (another folder) must not route our messages.
    broker.Transport.global_state.clear()
    paths = {name: tmp_path / "broker" / name for name in ("queue", "processed", "control")}
    for path in paths.values():
        path.mkdir(parents=True)
    return paths


def options(folders) -> dict:
    return {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "store_processed": False,
    }


def connect(folders) -> Connection:
    # The alias is what portal/celery.py installs for filesystem:// URLs.
    connection = Connection("filesystem://", transport_options=options(folders))
    assert isinstance(connection.transport, broker.Transport)
    return connection


def message_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def torn_message(folders, name="0000001_torn.analysis.msg", content=None) -> Path:
    """A message file cut off half-way, as a writer killed mid-write leaves it."""
    whole = json.dumps({"body": "eyJ4IjogMX0=", "properties": {"delivery_tag": "x"}})
    path = folders["queue"] / name
    path.write_bytes(content if content is not None else whole[: len(whole) // 2].encode())
    old = time.time() - 60
    os.utime(path, (old, old))
    return path


def test_a_torn_message_is_set_aside_and_the_next_ones_are_delivered(folders, caplog):
    with connect(folders) as connection:
        queue = connection.SimpleQueue(QUEUE)
        queue.put({"n": 1})
        torn_message(folders)  # sorts first: the reader meets it before the good ones
        queue.put({"n": 2})
        caplog.set_level(logging.ERROR, logger="portal.broker")
        received = []
        for _ in range(2):
            message = queue.get(timeout=2)
            received.append(message.payload["n"])
            message.ack()
        queue.close()
    assert received == [1, 2]
    corrupt = folders["queue"].parent / "corrupt"
    assert message_files(corrupt) == [
        "0000001_torn.analysis.msg",
        "0000001_torn.analysis.msg.reason",
    ]
    assert "JSONDecodeError" in (corrupt / "0000001_torn.analysis.msg.reason").read_text()
    assert message_files(folders["queue"]) == []
    assert any("torn or corrupt" in r.getMessage() for r in caplog.records)
    count, newest = broker.corrupt_messages(folders["queue"].parent)
    assert count == 1
    assert newest[0].queue == QUEUE and "JSONDecodeError" in newest[0].reason


def test_the_stock_reader_would_have_crashed_on_the_same_file(folders):
    """The failure this transport fixes (so the test above can fail)."""
    connection = Connection(
        transport=stock_filesystem.Transport, transport_options=options(folders)
    )
    torn_message(folders)
    with connection, pytest.raises(ValueError):
        connection.default_channel._get(QUEUE)


@pytest.mark.parametrize(
    "content",
    [b"", b"[]", b'{"body": "x"}', b"\xff\xfe not utf-8", b'{"body": "x", "properties": {}'],
    ids=["empty", "not-an-object", "no-properties", "bytes", "unterminated"],
)
def test_anything_but_a_whole_envelope_is_set_aside(folders, content):
    torn_message(folders, content=content)
    with connect(folders) as connection, pytest.raises(broker.Empty):
        connection.default_channel._get(QUEUE)
    assert broker.corrupt_messages(folders["queue"].parent)[0] == 1
    assert message_files(folders["queue"]) == []


def test_a_fresh_empty_file_is_left_for_its_writer(folders):
    """A stock kombu writer creates the file before it takes its lock."""
    path = folders["queue"] / "0000001_fresh.analysis.msg"
    path.write_bytes(b"")
    with connect(folders) as connection, pytest.raises(broker.Empty):
        connection.default_channel._get(QUEUE)
    assert path.exists()
    assert broker.corrupt_messages(folders["queue"].parent)[0] == 0


def test_a_message_still_locked_by_its_writer_is_read_only_once_it_is_whole(folders):
    envelope = {"body": "e30=", "properties": {"delivery_tag": "a"}, "headers": {}}
    data = json.dumps(envelope).encode()
    path = folders["queue"] / f"0000001_{uuid.uuid4()}.{QUEUE}.msg"
    writer = open(path, "wb", buffering=0)  # noqa: SIM115 - closed below
    fcntl.flock(writer.fileno(), fcntl.LOCK_EX)
    writer.write(data[:10])
    with connect(folders) as connection:
        channel = connection.default_channel
        with pytest.raises(broker.Empty):
            channel._get(QUEUE)
        assert path.exists()
        writer.write(data[10:])
        fcntl.flock(writer.fileno(), fcntl.LOCK_UN)
        writer.close()
        assert channel._get(QUEUE) == envelope
    assert broker.corrupt_messages(folders["queue"].parent)[0] == 0


def test_the_writer_renames_a_whole_file_into_place(folders, monkeypatch):
    renamed = []
    real_rename = os.rename

    def watching_rename(source, destination):
        # At the moment a message gets its final name, its file is already whole.
        if destination.endswith(".msg") and os.path.dirname(destination) == str(folders["queue"]):
            renamed.append(json.loads(Path(source).read_bytes()))
        return real_rename(source, destination)

    monkeypatch.setattr(broker.os, "rename", watching_rename)
    with connect(folders) as connection:
        connection.default_channel._put(QUEUE, {"body": "x" * 100_000, "properties": {}})
    assert len(renamed) == 1 and len(renamed[0]["body"]) == 100_000
    assert [name.endswith(f".{QUEUE}.msg") for name in message_files(folders["queue"])] == [True]


def test_a_writer_that_fails_half_way_leaves_nothing_a_reader_could_take(folders, monkeypatch):
    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(broker.os, "fsync", full_disk)
    with connect(folders) as connection, pytest.raises(ChannelError):
        connection.default_channel._put(QUEUE, {"body": "x", "properties": {}})
    assert message_files(folders["queue"]) == []


def test_a_temporary_file_its_writer_left_behind_is_cleaned_up_later(folders):
    fresh = folders["queue"] / ".1_a.analysis.msg.tmp"
    stale = folders["queue"] / ".2_b.analysis.msg.tmp"
    fresh.write_bytes(b'{"bo')
    stale.write_bytes(b'{"bo')
    old = time.time() - broker.STALE_TEMPORARY_SECONDS - 60
    os.utime(stale, (old, old))
    with connect(folders) as connection, pytest.raises(broker.Empty):
        connection.default_channel._get(QUEUE)
    assert fresh.exists() and not stale.exists()
    assert broker.corrupt_messages(folders["queue"].parent)[0] == 0


def test_concurrent_readers_deliver_each_message_once(folders):
    with connect(folders) as connection:
        channel = connection.default_channel
        for n in range(60):
            channel._put(QUEUE, {"body": str(n), "properties": {}})
    got: list[str] = []
    lock = threading.Lock()

    def drain():
        with connect(folders) as connection:
            channel = connection.default_channel
            while True:
                try:
                    message = channel._get(QUEUE)
                except broker.Empty:
                    return
                with lock:
                    got.append(message["body"])

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got, key=int) == [str(n) for n in range(60)]
    assert broker.corrupt_messages(folders["queue"].parent)[0] == 0


def test_the_status_page_lists_messages_set_aside(login, viewer, settings, tmp_path, monkeypatch):
    # The page's other panels ask the broker and the workers; none runs here.
    monkeypatch.setattr("portal.status.broker_reachable", lambda timeout: None)
    monkeypatch.setattr("portal.status.workers", lambda timeout=1.0: None)
    monkeypatch.setattr("portal.status.queue_lengths", dict)
    settings.BROKER_DIR = tmp_path / "broker"
    settings.CELERY_BROKER_URL = "filesystem://localhost/"
    corrupt = settings.BROKER_DIR / "corrupt"
    corrupt.mkdir(parents=True)
    (corrupt / "0000001_x.benchmark.msg").write_bytes(b'{"bo')
    (corrupt / "0000001_x.benchmark.msg.reason").write_text("JSONDecodeError: Unterminated")
    response = login(viewer).get("/status/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="broker-corrupt"' in page
    assert "0000001_x.benchmark.msg" in page and "JSONDecodeError: Unterminated" in page


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_survives_a_torn_message_and_runs_the_next_task(tmp_path):
    url, transport_options = broker_settings("filesystem", tmp_path)
    queue_folder = Path(transport_options["data_folder_in"])
    # Beat's tick goes to the maintenance queue; a torn message waits there first.
    (queue_folder / f"0000001_{uuid.uuid4()}.maintenance.msg").write_bytes(b'{"body": "ey')
    worker = Worker(url, tmp_path, queue="maintenance")
    try:
        worker.wait_ready()
        with use_broker(url, transport_options):
            app.send_task("optimizations.tasks.tick")
            wait_for(
                lambda: ServiceBeat.objects.filter(name="beat").exists(),
                60,
                "the tick sent after the torn message to run",
            )
        assert worker.alive()
        assert broker.corrupt_messages(tmp_path / "broker")[0] == 1
        assert "torn or corrupt" in worker.output()
    finally:
        worker.stop()


def test_a_binding_made_while_another_worker_creates_the_exchange_table_succeeds(folders):
    """Two workers starting at once: the first has created the exchange table but not yet
    written it (stock kombu creates with "wb", then locks); the second must bind, not die
    on the empty file."""
    (folders["control"] / "celery.pidbox.exchange").write_bytes(b"")
    with connect(folders) as connection:
        channel = connection.default_channel
        channel._queue_bind("celery.pidbox", "", "", "worker-1.pidbox")
        channel._queue_bind("celery.pidbox", "", "", "worker-2.pidbox")
        channel._queue_bind("celery.pidbox", "", "", "worker-1.pidbox")  # once only
        assert sorted(q.queue for q in channel.get_table("celery.pidbox")) == [
            "worker-1.pidbox",
            "worker-2.pidbox",
        ]


def test_the_stock_binding_would_have_died_on_the_same_empty_table(folders):
    """The failure the binding above fixes (so that test can fail)."""
    (folders["control"] / "celery.pidbox.exchange").write_bytes(b"")
    connection = Connection(
        transport=stock_filesystem.Transport, transport_options=options(folders)
    )
    with connection, pytest.raises(ValueError):
        connection.default_channel._queue_bind("celery.pidbox", "", "", "worker-1.pidbox")
