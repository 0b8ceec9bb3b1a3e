"""Git clones reach only the checked address: no redirects, no second name lookup, no
credential prompt or helper.

A tiny HTTP server on 127.0.0.2 (on the test allow-list) stands in for a git
host; it answers every request itself, so a clone fails — what matters is
which requests reached which server.
"""

import pytest

from optimizations.analyzers import netguard
from optimizations.analyzers.base import AnalysisError
from optimizations.analyzers.codescan.project import resolve_source
from tests.analyzers.netguard_servers import ALLOWED, REFUSED, Recorder

ALLOW = ("127.0.0.2/32",)
REFS = "/org/repo.git/info/refs?service=git-upload-pack"


@pytest.fixture
def git_host():
    server = Recorder(ALLOWED)
    yield server
    server.close()


@pytest.fixture
def elsewhere():
    server = Recorder(REFUSED)
    yield server
    server.close()


def clone(url: str, tmp_path) -> None:
    resolve_source(url, allowed_hosts=ALLOW, cache_dir=str(tmp_path), timeout=30)


def test_git_connects_to_the_checked_address_not_to_a_second_lookup(
    git_host, tmp_path, monkeypatch
):
    # Kaizen's check resolves the name to 127.0.0.2; git itself could not resolve it at all.
    real = netguard.resolve
    monkeypatch.setattr(
        netguard,
        "resolve",
        lambda host, port=None: [ALLOWED] if host == "git.pinned.test" else real(host, port),
    )
    git_host.routes[REFS] = (404, {}, b"no such repository")
    with pytest.raises(AnalysisError, match="git clone failed"):
        clone(f"http://git.pinned.test:{git_host.port}/org/repo.git", tmp_path)
    first = git_host.seen[0]
    assert first.path == REFS
    assert first.headers["host"] == f"git.pinned.test:{git_host.port}"


def test_git_does_not_follow_a_redirect_to_a_host_off_the_list(git_host, elsewhere, tmp_path):
    git_host.redirect(REFS, f"{elsewhere.url}{REFS}")
    with pytest.raises(AnalysisError, match="git clone failed"):
        clone(f"{git_host.url}/org/repo.git", tmp_path)
    assert git_host.seen and elsewhere.seen == []


def test_git_asks_nobody_for_credentials(git_host, tmp_path, monkeypatch):
    # A credential helper in the worker's own git configuration is not consulted.
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[credential]\n\thelper = store\n")
    (home / ".git-credentials").write_text(f"http://me:st0red-s3cret@{ALLOWED}:{git_host.port}\n")
    monkeypatch.setenv("HOME", str(home))
    git_host.routes[REFS] = (
        401,
        {"WWW-Authenticate": 'Basic realm="git"'},
        b"",
    )
    with pytest.raises(AnalysisError, match="git clone failed"):
        clone(f"{git_host.url}/org/repo.git", tmp_path / "cache")
    assert all("authorization" not in seen.headers for seen in git_host.seen)


def test_a_git_url_off_the_list_is_refused_before_git_runs(elsewhere, tmp_path):
    with pytest.raises(AnalysisError, match="not in KAIZEN_ALLOWED_TARGET_HOSTS"):
        clone(f"{elsewhere.url}/org/repo.git", tmp_path)
    assert elsewhere.seen == []
