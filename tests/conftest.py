"""Personas and builders shared by the whole suite.

The personas are the people of DESIGN.md: a manager, a dev engineer, a QA
engineer, a strategist, an HR editor, a viewer, and an outsider who belongs
to no department.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.utils import translation

from departments.defaults import ensure_departments
from departments.models import Department, Membership
from optimizations.jobs import engine
from optimizations.models import TargetService
from optimizations.work.actions import do_create_initiative

PASSWORD = "correct-horse-battery-42"

# Persistent connections would outlive the live server's request threads and
# keep PostgreSQL from dropping the test database at the end.
settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def need(available: bool, reason: str) -> None:
    """Skip with a visible reason on a newcomer's machine; fail in CI, where nothing may skip."""
    if available:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI=true: nothing may be skipped)")
    pytest.skip(reason)


def reachable(url: str, timeout: float = 1.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port), timeout):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _test_settings(settings):
    # Hashing passwords the production way costs a quarter second per persona.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Pages render in tests without collectstatic having built a manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # ROI, portfolio and SLO figures are cached under row ids, which repeat
    # between tests on SQLite: no test may see another's figures.
    from django.core.cache import cache

    cache.clear()
    # Django keeps the last activated language on the thread after a request; a test
    # that renders or names things outside a request must not inherit the previous
    # test's Japanese.
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()
    cache.clear()


@pytest.fixture
def broker_up(monkeypatch):
    """The broker answers the engine's reachability check (what a test then enqueues is
    up to it: most record or run the jobs themselves)."""
    monkeypatch.setattr(engine, "broker_reachable", lambda timeout=2.0: None)


@pytest.fixture
def departments(db):
    # A transactional test flushes what the data migration created; put it back.
    ensure_departments(Department)
    return {d.code: d for d in Department.objects.all()}


@pytest.fixture
def make_user(db, departments, django_user_model):
    def make(username, *memberships, **fields):
        user = django_user_model.objects.create_user(
            username=username, password=PASSWORD, email=f"{username}@example.com", **fields
        )
        for code, role in memberships:
            Membership.objects.create(user=user, department=departments[code], role=role)
        return user

    return make


@pytest.fixture
def manager(make_user):
    return make_user("maria", ("dev", Membership.MANAGER), first_name="Maria")


@pytest.fixture
def dev_engineer(make_user):
    return make_user("devon", ("dev", Membership.ENGINEER))


@pytest.fixture
def qa_engineer(make_user):
    return make_user("aiko", ("qa", Membership.ENGINEER))


@pytest.fixture
def strategist(make_user):
    return make_user("ravi", ("strategy", Membership.ENGINEER))


@pytest.fixture
def hr_editor(make_user):
    return make_user("tomas", ("hr", Membership.EDITOR))


@pytest.fixture
def viewer(make_user):
    return make_user("victor", ("strategy", Membership.VIEWER))


@pytest.fixture
def outsider(make_user):
    return make_user("olga")


PERSONAS = [
    "manager",
    "dev_engineer",
    "qa_engineer",
    "strategist",
    "hr_editor",
    "viewer",
    "outsider",
]


@pytest.fixture
def persona(request):
    """The persona named by indirect parametrization."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def target(db, departments):
    return TargetService.objects.create(
        name="Orders API",
        slug="orders-api",
        base_url="http://127.0.0.1:8100",
        owner_department=departments["dev"],
    )


@pytest.fixture
def make_initiative(db, target, manager):
    def make(title="Speed up orders", **fields):
        fields.setdefault("target", target)
        fields.setdefault("owner", manager)
        fields.setdefault("run_mode", "comprehensive")
        fields.setdefault("focus", [])
        return do_create_initiative(manager, title=title, **fields)

    return make


@pytest.fixture
def initiative(make_initiative):
    return make_initiative()


@pytest.fixture
def login(client):
    def as_user(user):
        client.force_login(user)
        return client

    return as_user
