"""A target's database password appears on no page, in no API answer and in no job log.

A DB scan of a target whose URL carries its password twice (after the user
name and as ``?password=``) is run for real against a listener that is not
PostgreSQL: the job fails to connect, and everything a viewer or an engineer
can read about it — the job's JSON, its log, its page, the target's page and
the "test connection" answer — is searched for the password.
"""

import pytest
from django.urls import reverse

from optimizations.jobs import runner
from optimizations.models import Job, Run
from optimizations.targets.crypto import encrypt
from portal.tokens import do_create_token
from tests.analyzers.netguard_servers import Listener

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "pa55-in-the-query"


@pytest.fixture
def listener():
    server = Listener("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def secret_target(target, listener):
    target.database_url_encrypted = encrypt(
        f"postgresql://shop:{SECRET}@127.0.0.1:{listener.port}/shop?password={SECRET}"
    )
    target.save()
    return target


def test_a_failed_db_scan_shows_the_password_nowhere(
    client, login, secret_target, viewer, dev_engineer
):
    run = Run.objects.create(target=secret_target, mode="custom")
    job = Job.objects.create(run=run, kind="db_scan", target=secret_target, params={})
    runner.execute(job.pk, "test-worker")
    job.refresh_from_db()
    assert job.status == Job.FAILED
    assert "Could not connect to PostgreSQL at 127.0.0.1" in job.error
    for person in (viewer, dev_engineer):
        _, key = do_create_token(person, "tests")
        headers = {"Authorization": f"Bearer {key}"}
        for url in (f"/api/jobs/{job.pk}", f"/api/jobs/{job.pk}/log"):
            response = client.get(url, headers=headers)
            assert response.status_code == 200, url
            assert SECRET not in response.content.decode()
        session = login(person)
        for url in (job.get_absolute_url(), secret_target.get_absolute_url()):
            page = session.get(url).content.decode()
            assert SECRET not in page
    answer = login(dev_engineer).post(reverse("database_test", args=[secret_target.slug]))
    assert answer.status_code == 200 and SECRET not in answer.content.decode()
