"""In a real browser: an HR editor attests a manual control, evaluates the register and
exports the auditor's report (printable HTML, CSV, JSON)."""

import csv
import io
import json

import pytest

from departments import compliance
from departments.models import Attestation, Control
from tests.browser.test_runbooks import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_hr_attests_a_control_and_exports_the_period_report(
    browser_page, live_server, departments, hr_editor, target, tmp_path
):
    compliance.ensure_default_register()
    control = Control.objects.get(slug="access-review")
    page = browser_page
    sign_in(page, live_server, hr_editor)

    page.click("nav >> text=Compliance")
    page.wait_for_selector("#control-access-review")
    page.click(f"#control-access-review >> text={control.statement}")
    page.fill("#id_comment", "Every department's members and roles reviewed with its manager")
    page.fill("#id_link", "https://wiki.example/access-review-q4")
    evidence = tmp_path / "access-review.txt"
    evidence.write_text("signed review minutes")
    page.set_input_files("#id_attachment", str(evidence))
    page.click("button:has-text('Attest')")
    # htmx swaps the attestation section in place.
    page.wait_for_selector("#control-access-review-attest >> text=Attested by")
    attestation = Attestation.objects.get()
    assert (attestation.person, bytes(attestation.attachment)) == (
        hr_editor,
        b"signed review minutes",
    )
    assert page.is_visible(f"#attestation-{attestation.pk} >> text=access-review.txt")

    page.click("text=Register")
    page.click("button:has-text('Evaluate now')")
    page.wait_for_selector(".message-success")
    assert "pass" in page.text_content("#control-access-review")
    assert "incomplete" in page.text_content("#control-db-scan-each-quarter")

    page.click("text=Auditor's report")
    page.wait_for_selector("#report-access-review")
    period = compliance.period_of(Control.QUARTERLY, attestation.attested_at).label
    assert period in page.text_content("h1")
    # It prints without the navigation and the buttons.
    assert page.is_visible(".topbar") and page.is_visible("#export-csv")
    page.emulate_media(media="print")
    assert not page.is_visible(".topbar")
    assert not page.is_visible("#export-csv")
    page.emulate_media(media="screen")

    with page.expect_download() as download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    by_slug = {row["control"]: row for row in rows}
    assert by_slug["access-review"]["status"] == "pass"
    assert "https://wiki.example/access-review-q4" in by_slug["access-review"]["evidence"]
    assert by_slug["db-scan-each-quarter"]["status"] == "incomplete"

    with page.expect_download() as download:
        page.click("#export-json")
    data = json.loads(download.value.path().read_text())
    assert data["period"] == period
    assert data["attestations"][0]["comment"].startswith("Every department's members")
