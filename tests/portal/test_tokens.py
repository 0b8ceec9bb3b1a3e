"""/me/tokens/: list, create (the key shown once), revoke — each creation and revocation audited."""

import pytest

from portal.models import ApiToken, AuditEvent
from portal.tokens import MAX_ACTIVE_TOKENS, do_create_token, hash_key
from tests.conftest import PERSONAS


def test_signed_out_people_are_sent_to_the_login_page(client, db):
    assert client.get("/me/tokens/").status_code == 302


def test_the_settings_page_links_to_the_tokens(client, login, viewer):
    login(viewer)
    assert 'href="/me/tokens/"' in client.get("/me/").content.decode()


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_everyone_signed_in_may_create_a_token(client, login, persona):
    login(persona)
    response = client.post("/me/tokens/", {"name": "my CI"})
    assert response.status_code == 201
    assert ApiToken.objects.get().user == persona


def test_creating_shows_the_key_once_and_stores_only_its_hash(client, login, qa_engineer):
    login(qa_engineer)
    response = client.post("/me/tokens/", {"name": "shop-api CI"})
    page = response.content.decode()
    token = ApiToken.objects.get()
    key = response.context["new_key"]
    assert key.startswith("kz_") and token.key_hash == hash_key(key)
    assert key in page and "shown this once" in page and ">Copy</button>" in page
    assert response["Cache-Control"] == "no-store"
    again = client.get("/me/tokens/").content.decode()
    assert key not in again and token.prefix in again and "shop-api CI" in again
    event = AuditEvent.objects.get(action="token.create")
    assert (event.actor, event.object_id) == (qa_engineer, str(token.pk))
    assert key not in event.summary and token.prefix in event.summary


def test_the_list_shows_only_your_own_tokens_with_their_dates(
    client, login, qa_engineer, dev_engineer
):
    mine, _ = do_create_token(qa_engineer, "mine")
    do_create_token(dev_engineer, "someone else's")
    login(qa_engineer)
    response = client.get("/me/tokens/")
    page = response.content.decode()
    assert [token.name for token in response.context["tokens"]] == ["mine"]
    assert "someone else" not in page
    assert f"token-{mine.pk}" in page and "never" in page and ">active<" in page


def test_a_name_is_required(client, login, qa_engineer):
    login(qa_engineer)
    response = client.post("/me/tokens/", {"name": "  "})
    assert response.status_code == 422
    assert response.context["new_key"] is None and not ApiToken.objects.exists()
    assert "This field is required." in response.content.decode()


def test_active_tokens_are_limited(client, login, qa_engineer):
    for n in range(MAX_ACTIVE_TOKENS):
        do_create_token(qa_engineer, f"t{n}")
    login(qa_engineer)
    response = client.post("/me/tokens/", {"name": "one more"})
    assert response.status_code == 422
    assert "revoke one you no longer use" in response.content.decode()
    assert ApiToken.objects.count() == MAX_ACTIVE_TOKENS


def test_revoking_marks_the_token_and_is_audited_once(client, login, qa_engineer):
    token, _ = do_create_token(qa_engineer, "old laptop")
    login(qa_engineer)
    response = client.post(f"/me/tokens/{token.pk}/revoke/", follow=True)
    token.refresh_from_db()
    assert token.revoked_at is not None
    page = response.content.decode()
    assert "Revoked “old laptop”" in page and "revoked " in page
    assert f'action="/me/tokens/{token.pk}/revoke/"' not in page  # no button for it any more
    client.post(f"/me/tokens/{token.pk}/revoke/")
    events = AuditEvent.objects.filter(action="token.revoke")
    assert events.count() == 1 and events.get().actor == qa_engineer


def test_nobody_revokes_someone_elses_token(client, login, qa_engineer, manager):
    token, _ = do_create_token(qa_engineer, "aiko's")
    login(manager)
    assert client.post(f"/me/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_revoking_needs_a_post(client, login, qa_engineer):
    token, _ = do_create_token(qa_engineer, "t")
    login(qa_engineer)
    assert client.get(f"/me/tokens/{token.pk}/revoke/").status_code == 405


def test_a_created_key_opens_the_api_until_it_is_revoked(client, login, qa_engineer):
    login(qa_engineer)
    key = client.post("/me/tokens/", {"name": "ci"}).context["new_key"]
    token = ApiToken.objects.get()
    client.logout()
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/me", headers=headers).json()["username"] == "aiko"
    login(qa_engineer)
    client.post(f"/me/tokens/{token.pk}/revoke/")
    client.logout()
    assert client.get("/api/me", headers=headers).status_code == 401
