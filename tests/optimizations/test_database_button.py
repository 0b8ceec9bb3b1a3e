"""The target page's "test connection" button for its database."""

from django.urls import reverse

from optimizations.targets.crypto import encrypt
from tests.conftest import need, reachable
from tests.optimizations.workers import free_port


def test_a_reachable_server_says_what_kaizen_can_and_cannot_see(login, target, dev_engineer):
    need(reachable("postgres://127.0.0.1:5432"), "PostgreSQL is not reachable on 127.0.0.1:5432")
    target.database_url_encrypted = encrypt("postgresql://postgres@127.0.0.1:5432/postgres")
    target.save()
    body = login(dev_engineer).post(reverse("database_test", args=[target.slug])).content.decode()
    assert "connected" in body and "PostgreSQL 1" in body
    # The machine's own server has no pg_stat_statements preloaded: the page says how to fix it.
    assert "Cannot see" in body and "shared_preload_libraries" in body


def test_a_refused_connection_reads_as_a_sentence(login, target, dev_engineer):
    target.database_url_encrypted = encrypt(f"postgresql://kaizen:pw@127.0.0.1:{free_port()}/shop")
    target.save()
    body = login(dev_engineer).post(reverse("database_test", args=[target.slug])).content.decode()
    assert "message-error" in body and "pw@" not in body


def test_only_people_who_edit_targets_may_test(login, target, viewer):
    assert login(viewer).post(reverse("database_test", args=[target.slug])).status_code == 403
