"""The security scan's page says what fuzzing did: its failures and that it kept to safe
methods on a target that does not allow writes."""

import pytest

from optimizations.models import Job, Run
from tests.analyzers.securityscan_servers import Problems
from tests.analyzers.test_securityscan_checks import run_on


@pytest.mark.django_db
def test_the_scan_page_shows_the_fuzzing_figures(login, qa_engineer, target):
    result, _ = run_on(Problems(crash_on_bad_cursor=True), ["sec.fuzzing", "sec.negative_testing"])
    run = Run.objects.create(target=target, mode="custom")
    job = Job.objects.create(
        run=run,
        kind="security_scan",
        target=target,
        params={},
        status=Job.SUCCEEDED,
        summary=result.summary,
        verdict=result.verdict,
    )
    html = login(qa_engineer).get(job.get_absolute_url()).content.decode()
    fuzzing = result.summary["fuzzing"]
    assert f"5xx answers to {fuzzing['cases']} generated requests" in html
    assert "check failures in fuzzing (schemathesis)" in html
    assert "Fuzzing sent safe methods only (1 write operations left out" in html
