"""Target settings: credentials encrypted and never shown, the host allow-list, thresholds."""

import pytest
from django.urls import reverse

from optimizations.models import TargetService
from optimizations.targets import slo
from optimizations.targets.crypto import CredentialUnreadable, encrypt
from portal.models import AuditEvent

SECRET_URL = "postgresql://shop:s3cr3t-pa55@127.0.0.1:5432/shop"


def form_data(target, **changes):
    data = {
        "name": target.name,
        "slug": target.slug,
        "base_url": target.base_url,
        "owner_department": target.owner_department_id,
        "environment": target.environment,
        "health_path": target.health_path,
        "openapi_path": target.openapi_path,
        "metrics_path": target.metrics_path,
        "source_location": target.source_location,
        "auth_header_name": target.auth_header_name,
        "max_rate": target.max_rate,
        "max_duration": target.max_duration,
        **{f"slo_{key}": value for key, value in target.thresholds().items()},
    }
    data.update(changes)
    return data


def test_a_database_url_is_stored_encrypted_and_never_shown(login, target, dev_engineer):
    client = login(dev_engineer)
    client.post(
        reverse("target_edit", args=[target.slug]), form_data(target, database_url=SECRET_URL)
    )
    target.refresh_from_db()
    assert "s3cr3t" not in target.database_url_encrypted
    assert target.database_url == SECRET_URL
    for url in (target.get_absolute_url(), reverse("target_edit", args=[target.slug])):
        page = client.get(url).content.decode()
        assert "s3cr3t" not in page
        assert "postgresql://shop@127.0.0.1:5432/shop" in page
    event = AuditEvent.objects.get(action="target.credentials")
    assert "s3cr3t" not in str(event.changes) and "s3cr3t" not in event.summary


def test_leaving_a_credential_blank_keeps_it_and_clearing_forgets_it(login, target, dev_engineer):
    client = login(dev_engineer)
    url = reverse("target_edit", args=[target.slug])
    client.post(
        url,
        form_data(
            target,
            database_url=SECRET_URL,
            auth_header_name="Authorization",
            auth_header_value="Bearer abcdef123456",
        ),
    )
    target.refresh_from_db()
    client.post(url, form_data(target, description="changed"))
    target.refresh_from_db()
    assert target.database_url == SECRET_URL and target.auth_header_value == "Bearer abcdef123456"
    client.post(url, form_data(target, clear_database_url="on"))
    target.refresh_from_db()
    assert target.database_url_encrypted == ""


def test_a_host_outside_the_allow_list_is_refused_with_the_way_to_allow_it(
    login, target, dev_engineer
):
    response = login(dev_engineer).post(
        reverse("target_edit", args=[target.slug]),
        form_data(target, base_url="http://10.1.2.3:8000"),
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "not in KAIZEN_ALLOWED_TARGET_HOSTS" in body
    target.refresh_from_db()
    assert target.base_url == "http://127.0.0.1:8100"


def test_a_database_on_another_host_is_refused_too(login, target, dev_engineer):
    bad = "postgresql://u:p@192.0.2.10:5432/db"
    response = login(dev_engineer).post(
        reverse("target_edit", args=[target.slug]), form_data(target, database_url=bad)
    )
    assert "not in KAIZEN_ALLOWED_TARGET_HOSTS" in response.content.decode()


def test_a_source_location_must_exist_or_be_an_allowed_git_url(
    login, target, dev_engineer, tmp_path
):
    client = login(dev_engineer)
    url = reverse("target_edit", args=[target.slug])
    response = client.post(url, form_data(target, source_location="/no/such/dir"))
    assert "is not a directory" in response.content.decode()
    response = client.post(url, form_data(target, source_location="https://192.0.2.1/org/repo.git"))
    assert "not in KAIZEN_ALLOWED_TARGET_HOSTS" in response.content.decode()
    client.post(url, form_data(target, source_location=str(tmp_path)))
    target.refresh_from_db()
    assert target.source_location == str(tmp_path)


def test_thresholds_keep_only_what_differs_from_the_defaults(login, target, dev_engineer):
    login(dev_engineer).post(
        reverse("target_edit", args=[target.slug]), form_data(target, slo_api_avg_ms=80)
    )
    target.refresh_from_db()
    assert target.slo == {"api_avg_ms": 80.0}
    assert target.thresholds()["api_avg_ms"] == 80.0
    assert target.thresholds()["p99_ms"] == slo.defaults()["p99_ms"] == 500


def test_a_changed_encryption_key_reads_as_a_clear_message(target, settings):
    target.database_url_encrypted = encrypt(SECRET_URL)
    target.save()
    settings.KAIZEN_ENCRYPTION_KEY = "q3X2b3nO8rT0rV9J0Yl6k4C1pQm9JX0dHc1sVb2zWfA="
    fresh = TargetService.objects.get(pk=target.pk)
    with pytest.raises(CredentialUnreadable, match="Enter the credential again"):
        _ = fresh.database_url
    assert fresh.database_url_masked() == "(unreadable: enter it again)"


QUERY_SECRET_URL = "postgresql://shop@127.0.0.1:5432/shop?password=qu3ry-s3cret&sslmode=prefer"


def test_a_password_in_the_query_string_is_shown_to_nobody(
    login, target, dev_engineer, viewer, manager
):
    login(dev_engineer).post(
        reverse("target_edit", args=[target.slug]),
        form_data(target, database_url=QUERY_SECRET_URL),
    )
    target.refresh_from_db()
    assert target.database_url == QUERY_SECRET_URL
    for person in (viewer, manager, dev_engineer):
        page = login(person).get(target.get_absolute_url()).content.decode()
        assert "qu3ry-s3cret" not in page and "sslmode" not in page
        assert "postgresql://shop@127.0.0.1:5432/shop" in page
    edit = login(dev_engineer).get(reverse("target_edit", args=[target.slug])).content.decode()
    assert "qu3ry-s3cret" not in edit and "sslmode" not in edit


@pytest.mark.parametrize(
    "bad",
    [
        "postgresql://u:f0rm-s3cret@192.0.2.10:5432/db",  # host off the list
        "postgresql://u:f0rm-s3cret@127.0.0.1/db?host=192.0.2.10",  # host in the query
        "postgresql://u:f0rm-s3cret@[::1/db",  # libpq cannot parse it
        "postgresql://u@127.0.0.1/db?password=f0rm-s3cret&service=prod",  # service refused
        "mysql://u:f0rm-s3cret@127.0.0.1/db",
    ],
)
def test_a_refused_database_url_is_not_echoed_back(login, target, dev_engineer, bad):
    response = login(dev_engineer).post(
        reverse("target_edit", args=[target.slug]), form_data(target, database_url=bad)
    )
    body = response.content.decode()
    assert response.status_code == 200 and 'class="errorlist' in body
    assert "f0rm-s3cret" not in body


def test_credentials_in_a_base_url_or_git_url_are_refused_without_echo(login, target, dev_engineer):
    client = login(dev_engineer)
    url = reverse("target_edit", args=[target.slug])
    body = client.post(
        url, form_data(target, source_location="https://me:t0ken-s3cret@127.0.0.1/org/r.git")
    ).content.decode()
    assert "Put no password or token in the git URL" in body and "t0ken-s3cret" not in body
    response = client.post(url, form_data(target, base_url="http://me:pw-s3cret@127.0.0.1:8100"))
    assert "Put no credentials in the base URL" in response.content.decode()
    target.refresh_from_db()
    assert "s3cret" not in target.base_url + target.source_location


def test_the_auth_header_mask_shows_no_character_of_it(login, target, dev_engineer):
    client = login(dev_engineer)
    url = reverse("target_edit", args=[target.slug])
    client.post(
        url,
        form_data(target, auth_header_name="Authorization", auth_header_value="Bearer zq-token-98"),
    )
    page = client.get(url).content.decode()
    assert "Stored: •••• (set)" in page
    for piece in ("Bear", "zq", "98", "token"):
        assert piece not in page.split("Stored: ", 1)[1].split(".", 1)[0]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Orders API", "orders-api-2"),
        ("Café Payments", "cafe-payments"),
        ("受注システム", "target"),
    ],
)
def test_a_new_targets_short_name_is_made_from_its_name(client, manager, target, name, slug):
    # The fixture's target already holds "orders-api": the new one gets the next free name.
    client.force_login(manager)
    data = form_data(target, name=name, slug="", base_url="http://127.0.0.1:8200")
    response = client.post(reverse("target_create"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert TargetService.objects.filter(name=name).latest("pk").slug == slug


@pytest.mark.django_db
def test_the_register_form_explains_itself_in_plain_words(client, manager):
    client.force_login(manager)
    page = client.get(reverse("target_create")).content.decode()
    assert "Made from the name when left empty" in page and 'data-slug-from="id_name"' in page
    for jargon in ("leave blank to keep", "Leave blank to keep", "DESIGN.md"):
        assert jargon not in page
