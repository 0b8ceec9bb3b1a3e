"""A first start that cannot half-fail: taken ports, the tour's runs on any start, --postgres."""

import os
import socket
import subprocess
import sys
import textwrap

import pytest

from examples import pgcluster
from optimizations.jobs import engine, landing
from optimizations.models import Job, Run, TargetService
from portal import demo_target, launcher
from portal.demo import (
    DEMO_TARGET_SLUG,
    baseline_pending,
    load_demo,
    start_baseline,
    tour_runs,
)

# --- ports -------------------------------------------------------------------


def _listening() -> socket.socket:
    """A socket that holds a free loopback port (listening, never answering)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def _free_run(length: int) -> int:
    """The first of ``length`` consecutive free loopback ports."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            start = probe.getsockname()[1]
        if start + length < 65535 and all(
            launcher.port_free("127.0.0.1", p) for p in range(start, start + length)
        ):
            return start
    raise AssertionError("no run of free ports")


def test_a_taken_demo_port_moves_to_a_free_one_and_says_so():
    start = _free_run(6)
    occupied = socket.socket()
    occupied.bind(("127.0.0.1", start + 3))
    occupied.listen()
    try:
        web, demo, fixed, notes = launcher.choose_ports("127.0.0.1", start, start + 3)
    finally:
        occupied.close()
    assert web == start
    assert demo == start + 4  # the next free one
    assert fixed == start + 5
    assert notes == [
        f"port {start + 3} is taken; the demo target runs on {start + 4} "
        f"(choose one with --demo-port N)"
    ]


def test_the_three_ports_never_collide_and_a_taken_web_port_is_named():
    start = _free_run(5)
    occupied = socket.socket()
    occupied.bind(("127.0.0.1", start))
    occupied.listen()
    try:
        # The web server binds after the check: the demo target must not take its port.
        web, demo, fixed, notes = launcher.choose_ports("127.0.0.1", start, start + 1)
    finally:
        occupied.close()
    assert web == start + 1
    assert demo == start + 2
    assert fixed == start + 3
    assert notes[0] == (
        f"port {start} is taken; the portal runs on {start + 1} (choose one with --port N)"
    )
    assert notes[1].startswith(f"port {start + 1} is taken; the demo target runs on {start + 2}")
    assert len(notes) == 2  # the twin got the port after the demo target's


def test_no_free_port_is_an_error_not_a_loop(monkeypatch):
    monkeypatch.setattr(launcher, "port_free", lambda host, port: False)
    with pytest.raises(launcher.NoFreePort, match="no free port between 8100 and 8199"):
        launcher.choose_port("127.0.0.1", 8100)


def test_address_in_use_is_recognised_in_what_servers_print():
    uvicorn = (
        "ERROR:    [Errno 98] error while attempting to bind on address "
        "('127.0.0.1', 8100): address already in use"
    )
    assert launcher.address_in_use(uvicorn)
    assert launcher.address_in_use("OSError: [Errno 98] Address already in use")
    assert not launcher.address_in_use("sqlite3.OperationalError: no such table: product")


def test_serves_port_tells_our_listener_from_someone_elses():
    sock = _listening()
    other = _listening()
    try:
        port = sock.getsockname()[1]
        assert launcher.serves_port(os.getpid(), port) is True
        # A port nobody listens on is not ours either.
        other_port = other.getsockname()[1]
        other.close()
        assert launcher.serves_port(os.getpid(), other_port) is False
    finally:
        sock.close()


@pytest.fixture
def demo(departments, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    assert load_demo("pw-demo-123456", "http://127.0.0.1:8100")
    return tmp_path


def test_the_chosen_ports_become_the_registered_targets_urls(demo):
    start = _free_run(4)
    occupied = socket.socket()
    occupied.bind(("127.0.0.1", start + 1))
    occupied.listen()
    try:
        _, demo_port, fixed_port, _ = launcher.choose_ports("127.0.0.1", start, start + 1)
    finally:
        occupied.close()
    state = demo_target.DemoState(var_dir=str(demo), port=demo_port, fixed_port=fixed_port)
    demo_target.register(state)
    target = TargetService.objects.get(slug=DEMO_TARGET_SLUG)
    twin = TargetService.objects.get(slug=demo_target.FIXED_SLUG)
    assert target.base_url == f"http://127.0.0.1:{start + 2}"
    assert twin.base_url == f"http://127.0.0.1:{start + 3}"


FAKE_TARGET = textwrap.dedent(
    """
    import http.server, sys

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
    """
)


def test_a_port_taken_after_the_check_moves_the_target_and_its_registration(
    demo, tmp_path, monkeypatch
):
    script = tmp_path / "fake_target.py"
    script.write_text(FAKE_TARGET)
    monkeypatch.setattr(
        launcher,
        "demo_command",
        lambda state, name: [sys.executable, str(script), str(launcher.demo_port_of(state, name))],
    )
    start = _free_run(4)
    # Another program took the demo port after the launcher chose it: it listens
    # and never answers, so "something answers on the port" would not do either.
    thief = socket.socket()
    thief.bind(("127.0.0.1", start))
    thief.listen()
    state = demo_target.DemoState(var_dir=str(tmp_path), port=start, fixed_port=start + 2)
    demo_target.save_state(state)
    supervisor = launcher.Supervisor(
        tmp_path, tmp_path / "processes.json", optional=launcher.DEMO_PROCESSES
    )
    try:
        for name in launcher.DEMO_PROCESSES:
            supervisor.start(name, launcher.demo_command(state, name))
        problems = launcher.await_demo_targets(supervisor, state, avoid={start + 3}, timeout=30)
    finally:
        supervisor.stop_all()
        thief.close()
    assert problems == {"demo-target": "", "demo-target-fixed": ""}
    assert state.port == start + 1  # the next free one, not the twin's nor the avoided one
    assert state.fixed_port == start + 2
    assert demo_target.reload_state(tmp_path).port == start + 1
    target = TargetService.objects.get(slug=DEMO_TARGET_SLUG)
    assert target.base_url == f"http://127.0.0.1:{start + 1}"
    assert supervisor.relocations == {"demo-target": 1}


def test_an_optional_process_that_keeps_exiting_is_given_up_alone(tmp_path, monkeypatch):
    supervisor = launcher.Supervisor(tmp_path, tmp_path / "processes.json", optional={"demo"})
    supervisor.start("demo", [sys.executable, "-c", "raise SystemExit(3)"])
    supervisor.start("web", [sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for _ in range(launcher.RESTART_LIMIT + 1):
            supervisor.procs["demo"].wait(30)
            assert supervisor.check() is None  # the portal is not stopped for the demo
        assert "demo" not in supervisor.procs
        assert "keeps exiting (code 3)" in supervisor.given_up["demo"]
        assert supervisor.procs["web"].poll() is None
    finally:
        supervisor.stop_all()


# --- the tour's runs on any start where they never finished -------------------


@pytest.fixture
def broker(monkeypatch):
    sent = []
    monkeypatch.setattr(engine, "broker_reachable", lambda timeout=2.0: None)
    monkeypatch.setattr(landing, "enqueue", lambda job: sent.append(job.kind) or True)
    return sent


def _end(runs, status, succeeded_kinds=()):
    """End the runs' jobs as ``status`` (those of ``succeeded_kinds`` as succeeded)."""
    for run in runs:
        run.jobs.update(status=status)
        run.jobs.filter(kind__in=succeeded_kinds).update(status=Job.SUCCEEDED)
        Run.objects.filter(pk=run.pk).update(status=status)


def test_what_started_and_runs_is_not_started_again(demo, broker):
    first = start_baseline()
    assert len(first) == 3 and all(run is not None for _, run, _ in first)
    assert start_baseline() == []  # all under way
    assert Run.objects.count() == 3
    assert tour_runs() == [run for _, run, _ in first]


def test_a_half_failed_first_start_gets_its_baseline_on_the_next(demo, broker):
    started = [run for _, run, _ in start_baseline()]
    baseline_set = started[0]
    # The first start half-failed: every job errored (the demo target was not up).
    _end(started, Job.FAILED)
    assert baseline_pending()
    again = start_baseline()
    assert [(task.title, refusal) for task, _, refusal in again] == [
        ("Analyze performance", ""),
        ("Analyze performance", ""),
        ("Find bottlenecks", ""),
    ]
    new_set = again[0][1]
    assert new_set.pk != baseline_set.pk and new_set.mode == "custom"
    new_set.target.refresh_from_db()
    assert new_set.target.baseline_run_id == new_set.pk  # the new set is the pinned baseline
    assert Run.objects.count() == 6


def test_a_finished_tour_is_not_run_again(demo, broker):
    started = [run for _, run, _ in start_baseline()]
    baseline_set, *runs = started
    _end([baseline_set], Job.SUCCEEDED)
    # A run with one failed job but a succeeded probe did run: it is not repeated.
    _end(runs, Job.FAILED, succeeded_kinds=("probe",))
    assert not baseline_pending()
    assert start_baseline() == []


def test_a_short_baseline_set_is_measured_again_but_finished_runs_are_not(demo, broker):
    started = [run for _, run, _ in start_baseline()]
    baseline_set, *runs = started
    _end(runs, Job.SUCCEEDED)
    # Two of five load tests succeeded: too few for the comparison rule.
    _end([baseline_set], Job.FAILED)
    for job in baseline_set.jobs.order_by("pk")[:2]:
        Job.objects.filter(pk=job.pk).update(status=Job.SUCCEEDED)
    again = start_baseline()
    assert [run.mode for _, run, _ in again] == ["custom"]


def test_a_baseline_someone_pinned_is_left_alone(demo, broker):
    target = TargetService.objects.get(slug=DEMO_TARGET_SLUG)
    chosen = Run.objects.create(target=target, mode="custom", status=Job.SUCCEEDED)
    TargetService.objects.filter(pk=target.pk).update(baseline_run=chosen)
    started = start_baseline()
    assert [run.mode for _, run, _ in started] == ["performance", "strategy"]


def test_a_cancelled_tour_run_counts_as_a_decision(demo, broker):
    started = [run for _, run, _ in start_baseline()]
    baseline_set, *runs = started
    _end([baseline_set], Job.SUCCEEDED)
    _end(runs, Job.CANCELLED)
    assert start_baseline() == []


# --- --postgres with whichever PostgreSQL is installed ------------------------


def _install(root, share, *majors, hypopg=()):
    for major in majors:
        bindir = root / str(major) / "bin"
        bindir.mkdir(parents=True)
        (bindir / "initdb").write_text("")
        (bindir / "pg_ctl").write_text("")
    for major in hypopg:
        ext = share / str(major) / "extension"
        ext.mkdir(parents=True)
        (ext / "hypopg.control").write_text("")


@pytest.fixture
def fake_pg(tmp_path, monkeypatch):
    root, share = tmp_path / "lib", tmp_path / "share"
    root.mkdir()
    share.mkdir()
    monkeypatch.setattr(pgcluster, "PG_ROOT", root)
    monkeypatch.setattr(pgcluster, "SHARE_ROOT", share)
    monkeypatch.delenv("KAIZEN_PG_BIN", raising=False)
    return root, share


def test_debian_13_uses_postgresql_17_and_its_hypopg(fake_pg):
    root, share = fake_pg
    _install(root, share, 17, hypopg=(17,))
    assert pgcluster.installed_majors() == [17]
    assert pgcluster.server_bin_dir() == root / "17" / "bin"
    assert pgcluster.hypopg_available(17)
    assert launcher.postgres_check() == ("", "PostgreSQL 17 with HypoPG")


def test_the_newest_major_with_hypopg_wins_and_old_majors_are_ignored(fake_pg):
    root, share = fake_pg
    _install(root, share, 14, 15, 16, 18, hypopg=(14, 16))
    (root / "common" / "bin").mkdir(parents=True)
    assert pgcluster.installed_majors() == [18, 16, 15]
    assert pgcluster.choose_major() == 16
    share_16 = share / "16"
    for path in sorted(share_16.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    assert pgcluster.choose_major() == 18  # none has HypoPG: the newest
    problem, note = launcher.postgres_check()
    assert problem == ""
    assert "PostgreSQL 18 without HypoPG" in note and "postgresql-18-hypopg" in note


def test_an_existing_cluster_keeps_its_major_or_says_why_not(fake_pg, tmp_path):
    root, share = fake_pg
    _install(root, share, 15, 17, hypopg=(17,))
    datadir = tmp_path / "pg"
    datadir.mkdir()
    (datadir / "PG_VERSION").write_text("15\n")
    assert pgcluster.server_bin_dir(datadir) == root / "15" / "bin"
    (datadir / "PG_VERSION").write_text("13\n")
    with pytest.raises(pgcluster.ClusterError, match=r"created by PostgreSQL 13.*remove that"):
        pgcluster.server_bin_dir(datadir)


def test_no_postgresql_is_a_clear_message_naming_the_packages(fake_pg, settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    assert pgcluster.server_bin_dir() is None
    with pytest.raises(pgcluster.ClusterError) as error:
        pgcluster._bin("initdb")
    assert "apt install postgresql postgresql-17-hypopg" in str(error.value)
    assert launcher.main(["--postgres", "--port", "1"]) == 1
    out = capsys.readouterr().out
    assert "needs PostgreSQL 15 or newer, and none is installed" in out
    assert "Debian 13:     sudo apt install postgresql postgresql-17-hypopg" in out
    assert "Ubuntu 24.04:  sudo apt install postgresql postgresql-16-hypopg" in out
    assert "Traceback" not in out


def test_prepare_keeps_the_launchers_ports_instead_of_moving_silently(tmp_path):
    # The launcher chose the ports; a port taken since is the launcher's to handle (it
    # moves the target and says so). prepare must not move it quietly onto the twin's.
    demo_target.save_state(demo_target.DemoState(var_dir=str(tmp_path), seeded=["sqlite"]))
    taken = _listening()
    try:
        port = taken.getsockname()[1]
        state = demo_target.prepare(
            tmp_path, use_postgres=False, port=port, fixed_port=port + 7, say=print
        )
    finally:
        taken.close()
    assert (state.port, state.fixed_port) == (port, port + 7)
    assert demo_target.reload_state(tmp_path).port == port


def test_a_demo_target_that_fails_otherwise_is_reported_not_moved(demo, tmp_path, monkeypatch):
    broken = [sys.executable, "-c", "import sys; print('no such table: product'); sys.exit(2)"]
    monkeypatch.setattr(launcher, "demo_command", lambda state, name: broken)
    start = _free_run(2)
    state = demo_target.DemoState(var_dir=str(tmp_path), port=start, fixed_port=start + 1)
    supervisor = launcher.Supervisor(tmp_path, tmp_path / "processes.json")
    supervisor.start("demo-target", broken)
    supervisor.start("demo-target-fixed", broken)
    try:
        problems = launcher.await_demo_targets(supervisor, state, timeout=30)
    finally:
        supervisor.stop_all()
    assert problems["demo-target"].startswith("exited with code 2 (var/log/demo-target.log)")
    assert problems["demo-target"].endswith("no such table: product")
    assert supervisor.relocations == {}
    assert state.port == start


def test_another_program_answering_on_the_web_port_is_not_our_portal(tmp_path):
    script = tmp_path / "fake_target.py"
    script.write_text(FAKE_TARGET)
    start = _free_run(2)
    other = subprocess.Popen([sys.executable, str(script), str(start)])
    ours_fails = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(2); raise SystemExit(1)"]
    )
    ours = subprocess.Popen([sys.executable, str(script), str(start + 1)])
    try:
        url = f"http://127.0.0.1:{start}/"
        assert launcher.wait_for_http(url + "health", 30, other)  # it does answer
        assert launcher.web_ready(url, ours_fails, start, timeout=30) is False
        assert launcher.web_ready(f"http://127.0.0.1:{start + 1}/", ours, start + 1, timeout=30)
    finally:
        for proc in (other, ours_fails, ours):
            proc.kill()
            proc.wait()
