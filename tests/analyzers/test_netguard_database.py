"""Database URLs are read with libpq's own rules, and every host libpq would use is checked.

The allow-list is 127.0.0.2/32: a listener on 127.0.0.2 may be reached, one on
127.0.0.1 never. A bare TCP listener is enough: a PostgreSQL client that gets
as far as connecting to it has already bypassed the check.
"""

import os

import pytest

from optimizations.analyzers import netguard
from optimizations.analyzers.base import AnalysisError
from optimizations.analyzers.dbscan.connect import (
    check_database_url,
    clear_libpq_environment,
    describe_database_url,
    open_session,
)
from tests.analyzers.netguard_servers import ALLOWED, REFUSED, Listener

ALLOW = ("127.0.0.2/32",)


@pytest.fixture
def allowed():
    listener = Listener(ALLOWED)
    yield listener
    listener.close()


@pytest.fixture
def refused():
    listener = Listener(REFUSED)
    yield listener
    listener.close()


def refused_to_connect(url: str, listener: Listener, match: str) -> None:
    with pytest.raises(AnalysisError, match=match):
        open_session(url, ALLOW, connect_timeout=2)
    listener.close()  # joins the accept loop: every connection that arrived is counted
    assert listener.connections == 0


def test_a_host_in_the_query_string_is_checked(allowed, refused):
    url = f"postgresql://u:pw@{ALLOWED}:{allowed.port}/db?host={REFUSED}&port={refused.port}"
    refused_to_connect(url, refused, r"127\.0\.0\.1 .*not in KAIZEN_ALLOWED_TARGET_HOSTS")


def test_a_hostaddr_in_the_query_string_is_checked(refused):
    url = f"postgresql://u:pw@{ALLOWED}:{refused.port}/db?hostaddr={REFUSED}"
    refused_to_connect(url, refused, r"address 127\.0\.0\.1 is not in")


def test_every_host_of_a_list_is_checked(allowed, refused):
    url = f"postgresql://u:pw@{ALLOWED}:{allowed.port},{REFUSED}:{refused.port}/db"
    with pytest.raises(AnalysisError, match=r"127\.0\.0\.1"):
        check_database_url(url, ALLOW)


def test_a_socket_path_needs_an_explicit_unix_entry(tmp_path):
    for url in (
        f"postgresql://u:pw@{ALLOWED}/db?host={tmp_path}",
        "postgresql://u:pw@%2Ftmp/db",
        f"postgresql://u:pw@{ALLOWED}/db?host=@abstract",
        "postgresql:///db",  # no host at all: libpq's default socket
    ):
        with pytest.raises(AnalysisError, match="unix:"):
            check_database_url(url, ALLOW)
    params = check_database_url(f"postgresql://u@/db?host={tmp_path}", (f"unix:{tmp_path}",))
    assert params["host"] == str(tmp_path) and "hostaddr" not in params


@pytest.mark.parametrize(
    "option",
    [
        "service=prod",
        "servicefile=/tmp/x",
        "passfile=/tmp/pgpass",
        "sslkeylogfile=/tmp/keys",
        "gssdelegation=1",
        "oauth_issuer=https://192.0.2.1/",
    ],
)
def test_options_that_read_files_on_the_worker_are_refused(option):
    name = option.split("=")[0]
    # Refused by name; a libpq too old to know servicefile refuses it as an unknown option.
    with pytest.raises(AnalysisError, match=f"sets {name}=, which Kaizen refuses|option '{name}'"):
        check_database_url(f"postgresql://u@{ALLOWED}/db?{option}", ALLOW)


def test_the_connection_goes_to_the_checked_address(allowed, monkeypatch):
    # A name that would resolve elsewhere on a second lookup: libpq never looks it up.
    answers = iter([[ALLOWED], [REFUSED]])
    monkeypatch.setattr(netguard, "resolve", lambda host, port=None: next(answers))
    url = f"postgresql://u:pw@db.pinned.test:{allowed.port}/db"
    params = check_database_url(url, ALLOW)
    assert params["hostaddr"] == ALLOWED and params["host"] == "db.pinned.test"


def test_every_checked_address_of_a_name_is_an_entry_libpq_may_try(monkeypatch):
    monkeypatch.setattr(netguard, "resolve", lambda host, port=None: ["127.0.0.3", ALLOWED])
    params = check_database_url("postgresql://u@db.twice.test:6543/db", ("127.0.0.0/8",))
    assert params["host"] == "db.twice.test,db.twice.test"
    assert params["hostaddr"] == "127.0.0.3,127.0.0.2"
    assert params["port"] == "6543,6543"


def test_an_allowed_host_is_reached_with_hostaddr(allowed):
    with pytest.raises(AnalysisError, match=r"PostgreSQL at 127\.0\.0\.2"):
        open_session(f"postgresql://u:pw@{ALLOWED}:{allowed.port}/db", ALLOW, connect_timeout=2)
    allowed.close()
    assert allowed.connections >= 1  # it got as far as the allowed server


def test_libpq_environment_variables_are_cleared(monkeypatch):
    monkeypatch.setenv("PGHOST", REFUSED)
    monkeypatch.setenv("PGSERVICE", "prod")
    clear_libpq_environment()
    assert "PGHOST" not in os.environ and "PGSERVICE" not in os.environ


def test_errors_never_repeat_the_url_or_its_password():
    for url in (
        "postgresql://u:hunter2secret@[::1/db",
        "postgresql://u:hunter2secret@h/db?bogus=1",
        "postgresql://u:p%zzhunter2secret@h/db",
        f"postgresql://u:pw@{ALLOWED}:notaport/db?password=hunter2secret",
    ):
        with pytest.raises(AnalysisError) as caught:
            check_database_url(url, ALLOW)
        assert "hunter2secret" not in str(caught.value)


def test_a_database_url_is_described_without_password_or_options():
    shown = describe_database_url(
        "postgresql+asyncpg://app:s3cret@db.example:6543/shop?password=s3cret2&sslmode=require"
    )
    assert shown == "postgresql+asyncpg://app@db.example:6543/shop"
    assert describe_database_url("postgresql://app@/shop?host=/var/run/postgresql") == (
        "postgresql://app@/var/run/postgresql/shop"
    )
    assert "hunter2" not in describe_database_url("postgresql://u:hunter2@[::1/db")
