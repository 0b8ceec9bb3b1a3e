"""A throwaway PostgreSQL cluster (15 or newer) with pg_stat_statements preloaded.

Used by ``./kaizen up --postgres`` and by the DB-scan tests. No Django here.

    python -m examples.pgcluster start|stop|status --dir var/pg --port 5544

The cluster is small (a few MB of shared buffers, commits not waiting for the
WAL flush: it holds nothing worth keeping), listens on 127.0.0.1 and on a Unix
socket inside its data directory, and gets a database with
``pg_stat_statements``, ``pg_trgm`` and, when Debian's ``postgresql-NN-hypopg``
is installed, ``hypopg``.

Whichever PostgreSQL major (15 or newer) Debian/Ubuntu installed under
/usr/lib/postgresql is used: the one an existing data directory was created
with, else the newest that has HypoPG, else the newest (``KAIZEN_PG_BIN``
names a bin directory instead).

``initdb`` and ``pg_ctl`` refuse to run as root, so as root they run as the
``postgres`` user, which then owns the data directory.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

PG_ROOT = Path("/usr/lib/postgresql")  # Debian/Ubuntu: <major>/bin/initdb
SHARE_ROOT = Path("/usr/share/postgresql")  # <major>/extension/hypopg.control
MIN_MAJOR = 15
INSTALL_HINT = (
    "Install PostgreSQL and its HypoPG extension (index advice), then start again:\n"
    "  Debian 13:     sudo apt install postgresql postgresql-17-hypopg\n"
    "  Ubuntu 24.04:  sudo apt install postgresql postgresql-16-hypopg\n"
    "(or point KAIZEN_PG_BIN at the bin directory of a PostgreSQL 15 or newer)"
)
DEFAULT_DB = "kaizen_target"
# Loopback only; the superuser may connect without a password (like the
# machine's main server), every other role needs its password (scram).
HBA = """\
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
host all postgres ::1/128 trust
host all all ::1/128 scram-sha-256
"""
SETTINGS = """
# --- Kaizen throwaway cluster ---
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{datadir}'
max_connections = 40
shared_buffers = 16MB
work_mem = 4MB
maintenance_work_mem = 16MB
max_wal_size = 128MB
min_wal_size = 32MB
# Durable enough to look like a real server to the scan (fsync on), fast
# enough for tests: commits do not wait for the WAL flush.
synchronous_commit = off
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
pg_stat_statements.max = 5000
compute_query_id = on
track_io_timing = on
log_min_messages = warning
logging_collector = off
"""


class ClusterError(RuntimeError):
    """The cluster could not be created, started or stopped; the message says why."""


def installed_majors(root: Path | None = None) -> list[int]:
    """PostgreSQL majors (15 or newer) with server binaries under ``root``, newest first."""
    root = PG_ROOT if root is None else Path(root)
    majors = []
    for bindir in root.glob("*/bin"):
        name = bindir.parent.name
        if name.isdigit() and int(name) >= MIN_MAJOR and (bindir / "initdb").exists():
            majors.append(int(name))
    return sorted(majors, reverse=True)


def hypopg_available(major: int | None = None, share_root: Path | None = None) -> bool:
    """Whether HypoPG is installed for ``major`` (by default the major in use)."""
    if major is None:
        major = server_major()
        if major is None:
            return False
    share_root = SHARE_ROOT if share_root is None else Path(share_root)
    return (share_root / str(major) / "extension" / "hypopg.control").exists()


def datadir_major(datadir: str | os.PathLike | None) -> int | None:
    """The major an existing data directory was created with (its PG_VERSION), or None."""
    if datadir is None:
        return None
    try:
        text = (Path(datadir) / "PG_VERSION").read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def choose_major(
    root: Path | None = None,
    share_root: Path | None = None,
    datadir: str | os.PathLike | None = None,
) -> int | None:
    """The major to run: the data directory's, else the newest with HypoPG, else the newest.

    None when no PostgreSQL 15 or newer is installed; ClusterError when the data
    directory was made by a major that is no longer installed.
    """
    majors = installed_majors(root)
    existing = datadir_major(datadir)
    if existing is not None:
        if existing in majors:
            return existing
        raise ClusterError(
            f"{datadir} was created by PostgreSQL {existing}, which is not installed "
            f"(installed: {', '.join(map(str, majors)) or 'none'}). It holds only throwaway "
            f"data: remove that directory and start again."
        )
    with_hypopg = [major for major in majors if hypopg_available(major, share_root)]
    candidates = with_hypopg or majors
    return candidates[0] if candidates else None


def _override_major(bindir: Path) -> int | None:
    if bindir.parent.name.isdigit():
        return int(bindir.parent.name)
    proc = subprocess.run(
        [str(bindir / "initdb"), "--version"], capture_output=True, text=True, check=False
    )
    match = re.search(r"(\d+)(?:\.\d+)?", proc.stdout)
    return int(match.group(1)) if match else None


def server_major(datadir: str | os.PathLike | None = None) -> int | None:
    """The major of the server binaries in use, or None when none is installed."""
    override = os.environ.get("KAIZEN_PG_BIN")
    if override and (Path(override) / "initdb").exists():
        return _override_major(Path(override))
    return choose_major(datadir=datadir)


def server_bin_dir(datadir: str | os.PathLike | None = None) -> Path | None:
    """Where the PostgreSQL server binaries to use are, or None when none is installed."""
    override = os.environ.get("KAIZEN_PG_BIN")
    if override and (Path(override) / "initdb").exists():
        return Path(override)
    major = choose_major(datadir=datadir)
    return None if major is None else PG_ROOT / str(major) / "bin"


def _as_owner(argv: list[str]) -> list[str]:
    # initdb/pg_ctl refuse root; run them as postgres then.
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", "postgres", "--", *argv]
        return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(argv)]
    return argv


def _run(argv: list[str], what: str, timeout: float = 120) -> str:
    proc = subprocess.run(
        _as_owner(argv), capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise ClusterError(
            f"{what} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout}"
        )
    return proc.stdout


def _bin(name: str, datadir: str | os.PathLike | None = None) -> str:
    bindir = server_bin_dir(datadir)
    if bindir is None:
        raise ClusterError(
            f"No PostgreSQL {MIN_MAJOR} or newer is installed (looked in {PG_ROOT}/*/bin).\n"
            + INSTALL_HINT
        )
    return str(bindir / name)


def _chown_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def is_running(datadir: str | os.PathLike) -> bool:
    datadir = Path(datadir).resolve()
    if not (datadir / "PG_VERSION").exists():
        return False
    proc = subprocess.run(
        _as_owner([_bin("pg_ctl", datadir), "status", "-D", str(datadir)]),
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0


def dsn_for(port: int, dbname: str = DEFAULT_DB, user: str = "postgres") -> str:
    return f"postgresql://{user}@127.0.0.1:{port}/{dbname}"


def _init(datadir: Path, port: int) -> None:
    datadir.mkdir(parents=True, exist_ok=True)
    datadir.chmod(0o700)
    _chown_to_postgres(datadir)
    _run(
        [
            _bin("initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        "initdb",
    )
    conf = datadir / "postgresql.conf"
    with conf.open("a") as fh:
        fh.write(SETTINGS.format(port=port, datadir=datadir))
    (datadir / "pg_hba.conf").write_text(HBA)
    for name in ("postgresql.conf", "pg_hba.conf"):
        _chown_to_postgres(datadir / name)


def _set_port(datadir: Path, port: int) -> None:
    # A later start on another port: the last setting in the file wins.
    conf = datadir / "postgresql.conf"
    text = conf.read_text()
    if f"\nport = {port}\n" not in text.rsplit("# --- Kaizen throwaway cluster ---", 1)[-1]:
        with conf.open("a") as fh:
            fh.write(f"port = {port}\n")


def _wait_ready(port: int, timeout: float = 30) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(dsn_for(port, "postgres"), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"the cluster on port {port} did not accept connections"
                ) from None
            time.sleep(0.2)


def _prepare_database(port: int, dbname: str, major: int | None = None) -> None:
    import psycopg

    with psycopg.connect(dsn_for(port, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{dbname}"')
    with psycopg.connect(dsn_for(port, dbname), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        if hypopg_available(major):
            conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")


def ensure_cluster(datadir: str | os.PathLike, port: int, dbname: str = DEFAULT_DB) -> str:
    """Create (if needed) and start the cluster; return the superuser DSN of ``dbname``."""
    datadir = Path(datadir).resolve()
    if not (datadir / "PG_VERSION").exists():
        _init(datadir, port)
    if not is_running(datadir):
        _set_port(datadir, port)
        log = datadir / "server.log"
        _run(
            [
                _bin("pg_ctl", datadir),
                "start",
                "-D",
                str(datadir),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
            ],
            f"pg_ctl start (see {log})",
        )
    _wait_ready(port)
    _prepare_database(port, dbname, server_major(datadir))
    return dsn_for(port, dbname)


def stop_cluster(datadir: str | os.PathLike) -> bool:
    """Stop the cluster if it runs; True when it was running."""
    datadir = Path(datadir).resolve()
    if not is_running(datadir):
        return False
    _run(
        [_bin("pg_ctl", datadir), "stop", "-D", str(datadir), "-m", "fast", "-w", "-t", "60"],
        "pg_ctl stop",
    )
    return True


def remove_cluster(datadir: str | os.PathLike) -> None:
    """Stop the cluster and delete its directory."""
    stop_cluster(datadir)
    shutil.rmtree(datadir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.pgcluster", description=__doc__)
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--dir", default="var/pg", help="data directory (default var/pg)")
    parser.add_argument("--port", type=int, default=5544)
    parser.add_argument(
        "--db", default=DEFAULT_DB, help=f"database to create (default {DEFAULT_DB})"
    )
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            print(ensure_cluster(args.dir, args.port, args.db))
        elif args.action == "stop":
            print("stopped" if stop_cluster(args.dir) else "not running")
        else:
            running = is_running(args.dir)
            print("running" if running else "not running")
            return 0 if running else 3
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
