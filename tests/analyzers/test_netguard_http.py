"""Every outbound HTTP request holds the allow-list: on the resolved address, at every
redirect hop, and credentials never follow a change of host.

The allow-list here is 127.0.0.2/32: a server on 127.0.0.2 is allowed, one on
127.0.0.1 (loopback, yet not on the list) must never see a request.
"""

import pytest

from optimizations.analyzers import netguard, safehttp
from optimizations.analyzers.base import AnalysisError, LocalContext, TargetSpec
from optimizations.analyzers.dbscan.pool import MetricsWatcher
from optimizations.analyzers.loadgen.memory import MemorySampler
from optimizations.analyzers.loadgen.modes import wait_until_ready
from optimizations.analyzers.loadgen.scenario import fetch_json
from optimizations.analyzers.netguard import HostNotAllowed
from optimizations.analyzers.probe import Client
from tests.analyzers.netguard_servers import ALLOWED, REFUSED, Recorder

ALLOW = ("127.0.0.2/32",)
TOKEN = "Bearer kz-secret-token-7781"


@pytest.fixture
def allowed_server():
    server = Recorder(ALLOWED)
    yield server
    server.close()


@pytest.fixture
def refused_server():
    server = Recorder(REFUSED)
    yield server
    server.close()


@pytest.fixture
def second_allowed_server():
    server = Recorder(ALLOWED)
    yield server
    server.close()


def target(url: str) -> TargetSpec:
    return TargetSpec(
        name="t", base_url=url, auth_header=("Authorization", TOKEN), allowed_hosts=ALLOW
    )


def test_a_redirect_off_the_list_is_refused_and_nothing_reaches_that_host(
    allowed_server, refused_server
):
    allowed_server.redirect("/health", f"{refused_server.url}/steal")
    with pytest.raises(HostNotAllowed, match=r"127\.0\.0\.1.*KAIZEN_ALLOWED_TARGET_HOSTS"):
        Client(target(allowed_server.url), timeout=2).get("/health")
    assert [seen.path for seen in allowed_server.seen] == ["/health"]
    assert refused_server.seen == []


def test_the_probe_follows_a_redirect_on_the_list_without_the_auth_header(
    allowed_server, second_allowed_server
):
    allowed_server.redirect("/health", f"{second_allowed_server.url}/elsewhere")
    answer = Client(target(allowed_server.url), timeout=2).get("/health")
    assert answer.status == 200
    assert allowed_server.seen[0].headers["authorization"] == TOKEN
    (moved,) = second_allowed_server.seen
    assert moved.path == "/elsewhere"
    assert "authorization" not in moved.headers
    assert moved.headers["user-agent"].startswith("Kaizen-probe")


def test_a_redirect_on_the_same_origin_keeps_the_credentials(allowed_server):
    allowed_server.redirect("/health", "/health/")
    answer = Client(target(allowed_server.url), timeout=2).get("/health")
    assert answer.status == 200
    assert [seen.headers.get("authorization") for seen in allowed_server.seen] == [TOKEN, TOKEN]


def test_a_custom_auth_header_and_cookies_are_dropped_on_a_change_of_port(
    allowed_server, second_allowed_server
):
    allowed_server.redirect("/", f"{second_allowed_server.url}/", status=307)
    answer = safehttp.fetch(
        f"{allowed_server.url}/",
        allowed=ALLOW,
        headers={"X-Api-Key": "k-123456", "Cookie": "session=abc", "Accept": "text/plain"},
        secret_headers=("x-api-key",),
    )
    assert answer.credentials_dropped
    assert answer.redirects == [f"{second_allowed_server.url}/"]
    headers = second_allowed_server.seen[0].headers
    assert "x-api-key" not in headers and "cookie" not in headers
    assert headers["accept"] == "text/plain"


def test_once_dropped_credentials_do_not_come_back_on_a_hop_home(
    allowed_server, second_allowed_server
):
    allowed_server.redirect("/", f"{second_allowed_server.url}/bounce")
    second_allowed_server.redirect("/bounce", f"{allowed_server.url}/home")
    safehttp.fetch(f"{allowed_server.url}/", allowed=ALLOW, headers={"Authorization": TOKEN})
    assert [s.headers.get("authorization") for s in allowed_server.seen] == [TOKEN, None]


def test_redirects_are_bounded(allowed_server):
    allowed_server.redirect("/loop", "/loop")
    with pytest.raises(safehttp.RedirectError, match="more than 5 redirects"):
        safehttp.fetch(f"{allowed_server.url}/loop", allowed=ALLOW)
    assert len(allowed_server.seen) == 6


def test_a_redirect_to_another_scheme_is_refused(allowed_server):
    allowed_server.redirect("/", "file:///etc/passwd")
    with pytest.raises(HostNotAllowed, match="only http and https"):
        safehttp.fetch(f"{allowed_server.url}/", allowed=ALLOW)


def test_the_connection_goes_to_the_checked_address_with_the_original_host_header(
    allowed_server, monkeypatch
):
    # The name is resolved once, by the check; the socket goes to that address.
    real = netguard.resolve
    monkeypatch.setattr(
        netguard,
        "resolve",
        lambda host, port=None: [ALLOWED] if host == "api.pinned.test" else real(host, port),
    )
    answer = safehttp.fetch(f"http://api.pinned.test:{allowed_server.port}/x", allowed=ALLOW)
    assert answer.status == 200
    assert allowed_server.seen[0].headers["host"] == f"api.pinned.test:{allowed_server.port}"


def test_a_name_resolving_off_the_list_is_refused_before_connecting(monkeypatch, refused_server):
    monkeypatch.setattr(netguard, "resolve", lambda host, port=None: [REFUSED])
    with pytest.raises(HostNotAllowed, match=r"resolves to 127\.0\.0\.1"):
        safehttp.fetch(f"http://rebound.test:{refused_server.port}/", allowed=ALLOW)
    assert refused_server.seen == []


def test_the_probe_reports_an_unreachable_host_readably():
    with pytest.raises(AnalysisError, match="refused"):
        Client(target("http://127.0.0.2:9"), timeout=2).get("/")


def test_the_db_scans_metrics_sampler_does_not_follow_a_redirect_off_the_list(
    allowed_server, refused_server
):
    allowed_server.redirect("/metrics", f"{refused_server.url}/metrics")
    watcher = MetricsWatcher(f"{allowed_server.url}/metrics", ALLOW)
    watcher.scrape()
    assert watcher.samples == []
    assert "127.0.0.1" in watcher.error
    assert refused_server.seen == []


def test_the_db_scans_metrics_sampler_reads_an_allowed_target(allowed_server):
    allowed_server.routes["/metrics"] = (200, {}, b"db_pool_size 5\ndb_pool_checked_out 2\n")
    watcher = MetricsWatcher(f"{allowed_server.url}/metrics", ALLOW)
    watcher.scrape()
    assert watcher.samples[0].use_pct == 40.0


def test_the_endurance_memory_reader_does_not_follow_a_redirect_off_the_list(
    allowed_server, refused_server
):
    allowed_server.redirect("/metrics", f"{refused_server.url}/metrics")
    logged = []
    sampler = MemorySampler(
        target(allowed_server.url),
        addresses=[ALLOWED],
        port=allowed_server.port,
        source="metrics",
        log=lambda *args: logged.append(args),
    )
    assert sampler.source == ""  # no reading: the memory cannot be followed
    assert refused_server.seen == []
    assert allowed_server.seen[0].headers["authorization"] == TOKEN


def test_the_load_tests_readiness_wait_does_not_follow_a_redirect_off_the_list(
    allowed_server, refused_server
):
    allowed_server.redirect("/health", f"{refused_server.url}/health")
    with pytest.raises(HostNotAllowed, match=r"127\.0\.0\.1"):
        wait_until_ready(target(allowed_server.url), {"timeout": 2}, LocalContext(), wait=1)
    assert refused_server.seen == []


def test_the_load_tests_openapi_reader_checks_every_hop(allowed_server, refused_server):
    allowed_server.routes["/real.json"] = (200, {}, b'{"paths": {}}')
    allowed_server.redirect("/openapi.json", "/real.json", status=307)
    headers = {"Authorization": TOKEN}
    assert fetch_json(f"{allowed_server.url}/openapi.json", allowed=ALLOW, headers=headers) == {
        "paths": {}
    }
    allowed_server.redirect("/openapi.json", f"{refused_server.url}/openapi.json")
    with pytest.raises(HostNotAllowed):
        fetch_json(f"{allowed_server.url}/openapi.json", allowed=ALLOW, headers=headers)
    assert refused_server.seen == []


class Stop(Exception):
    pass


def test_a_cancel_stops_a_request_to_a_silent_server_and_shuts_its_socket():
    import socket
    import threading

    server = socket.socket()
    server.bind((ALLOWED, 0))
    server.listen(1)
    closed = threading.Event()

    def silent():
        conn, _ = server.accept()
        conn.recv(65536)  # the request; never answered
        if conn.recv(1) == b"":  # EOF: the client shut its socket
            closed.set()
        conn.close()

    threading.Thread(target=silent, daemon=True).start()
    polls = []

    def cancel():
        polls.append(1)
        if len(polls) >= 3:
            raise Stop

    try:
        with pytest.raises(Stop):
            # Without the cancel this would wait the full minute.
            safehttp.fetch(
                f"http://{ALLOWED}:{server.getsockname()[1]}/",
                allowed=ALLOW,
                timeout=60,
                cancel=cancel,
            )
        assert closed.wait(10)
    finally:
        server.close()


def test_a_cancellable_fetch_answers_like_a_plain_one(allowed_server):
    answer = safehttp.fetch(f"{allowed_server.url}/", allowed=ALLOW, cancel=lambda: None)
    assert (answer.status, answer.body) == (200, b"ok")
    allowed_server.redirect("/", f"http://{REFUSED}:9/")
    with pytest.raises(HostNotAllowed):
        safehttp.fetch(f"{allowed_server.url}/", allowed=ALLOW, cancel=lambda: None)
