"""The compliance pages: everyone reads; HR edits the register; the owning department's
editors and managers attest (viewers never); the auditor's report in HTML, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from departments import compliance
from departments.models import Attestation, Control, Evaluation, Membership
from portal.models import AuditEvent
from tests.conftest import PERSONAS


@pytest.fixture
def register(departments):
    compliance.ensure_default_register()
    return {control.slug: control for control in Control.objects.all()}


@pytest.fixture
def everyone(request):
    return {name: request.getfixturevalue(name) for name in PERSONAS}


def _attest_data(**extra):
    return {"comment": "Reviewed every membership", "link": "https://wiki.example/review", **extra}


def _write_requests(register):
    """(name, method, url, data, personas allowed) for every compliance write view."""
    hr_control = register["access-review"]  # manual, owned by HR
    dev_control = Control.objects.create(
        slug="dev-manual",
        statement="Dev attests",
        department=hr_control.department.__class__.objects.get(code="dev"),
    )
    return [
        ("control_new", "post", reverse("compliance_control_new"), {}, {"hr_editor"}),
        (
            "control_edit",
            "post",
            reverse("compliance_control_edit", args=[hr_control.slug]),
            {},
            {"hr_editor"},
        ),
        ("evaluate", "post", reverse("compliance_evaluate"), {}, {"hr_editor"}),
        (
            "attest_hr",
            "post",
            reverse("compliance_attest", args=[hr_control.slug]),
            _attest_data(),
            {"hr_editor"},
        ),
        (
            "attest_dev",
            "post",
            reverse("compliance_attest", args=[dev_control.slug]),
            _attest_data(),
            {"manager"},
        ),
    ]


def test_every_compliance_write_view_refuses_whoever_its_role_does_not_allow(
    client, everyone, register
):
    for name, method, url, data, allowed in _write_requests(register):
        for persona, user in everyone.items():
            client.force_login(user)
            response = getattr(client, method)(url, data)
            if persona in allowed:
                assert response.status_code != 403, f"{persona} was refused {name}"
            else:
                assert response.status_code == 403, f"{persona} was allowed {name}"


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_everyone_signed_in_reads_the_register_a_control_and_the_report(
    client, persona, register, django_assert_max_num_queries
):
    compliance.evaluate_all()
    client.force_login(persona)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("compliance_register"))
    assert response.status_code == 200
    assert 'id="control-access-review"' in response.text
    for url in (
        register["access-review"].get_absolute_url(),
        register["db-scan-each-quarter"].get_absolute_url(),
        reverse("compliance_report"),
    ):
        with django_assert_max_num_queries(16):
            assert client.get(url).status_code == 200


def test_anonymous_visitors_go_to_login(client, register):
    response = client.get(reverse("compliance_register"))
    assert response.status_code == 302
    assert "/login" in response["Location"]


def test_a_viewer_sees_no_attest_form_and_hr_does(client, register, viewer, hr_editor):
    url = register["access-review"].get_absolute_url()
    client.force_login(viewer)
    assert "compliance_attest" not in client.get(url).text
    assert 'name="comment"' not in client.get(url).text
    client.force_login(hr_editor)
    assert 'name="comment"' in client.get(url).text


def test_hr_attests_with_a_file_and_everyone_can_download_it(client, register, hr_editor, viewer):
    control = register["access-review"]
    client.force_login(hr_editor)
    upload = SimpleUploadedFile("review.pdf", b"%PDF-1.4 review", content_type="application/pdf")
    response = client.post(
        reverse("compliance_attest", args=[control.slug]),
        {"comment": "Quarterly review done", "attachment": upload},
    )
    assert response.status_code == 302
    attestation = Attestation.objects.get()
    assert (attestation.person, attestation.attachment_name) == (hr_editor, "review.pdf")
    assert control.evaluations.get().status == "pass"
    assert AuditEvent.objects.filter(action="compliance.attest").exists()
    client.force_login(viewer)
    download = client.get(reverse("compliance_attachment", args=[attestation.pk]))
    assert download.content == b"%PDF-1.4 review"
    assert download["Content-Disposition"] == 'attachment; filename="review.pdf"'
    assert download["X-Content-Type-Options"] == "nosniff"


def test_an_attestation_needs_a_link_or_a_file(client, register, hr_editor):
    client.force_login(hr_editor)
    response = client.post(
        reverse("compliance_attest", args=["access-review"]), {"comment": "Trust me"}
    )
    assert response.status_code == 422
    assert "Give a link to the evidence or attach a file." in response.text
    assert not Attestation.objects.exists()


def test_nobody_attests_an_automatic_control(client, register, hr_editor):
    client.force_login(hr_editor)
    response = client.post(reverse("compliance_attest", args=["runbooks-reviewed"]), _attest_data())
    assert response.status_code == 422
    assert not Attestation.objects.exists()


def test_an_htmx_attestation_answers_the_attest_section(client, register, hr_editor):
    client.force_login(hr_editor)
    response = client.post(
        reverse("compliance_attest", args=["access-review"]),
        _attest_data(),
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith(
        '<section class="panel" id="control-access-review-attest">'
    )
    assert "Attested by" in response.text
    assert "<html" not in response.text


def test_hr_adds_and_edits_a_control(client, departments, hr_editor):
    client.force_login(hr_editor)
    response = client.post(
        reverse("compliance_control_new"),
        {
            "statement": "Backups restore in a drill",
            "department": departments["strategy"].pk,
            "recurrence": "yearly",
            "framework_tags": "ISO 27001 A.8.13, SOC 2 A1.3",
            "source": "",
            "parameters": "",
            "active": "on",
        },
    )
    control = Control.objects.get()
    assert response.status_code == 302
    assert response["Location"] == control.get_absolute_url()
    assert control.framework_tags == ["ISO 27001 A.8.13", "SOC 2 A1.3"]
    assert control.is_manual
    response = client.post(
        reverse("compliance_control_edit", args=[control.slug]),
        {
            "statement": "Backups restore in a drill",
            "department": departments["strategy"].pk,
            "recurrence": "quarterly",
            "framework_tags": "ISO 27001 A.8.13",
            "source": "secrets_decrypt",
            "parameters": "[1]",
            "active": "on",
        },
    )
    assert response.status_code == 200  # parameters must be an object
    control.refresh_from_db()
    assert control.recurrence == "yearly"
    assert AuditEvent.objects.filter(action="compliance.control.create").count() == 1


def test_evaluate_now_stores_an_evaluation_per_active_control(client, register, hr_editor):
    Control.objects.filter(slug="incident-drill").update(active=False)
    client.force_login(hr_editor)
    response = client.post(reverse("compliance_evaluate"))
    assert response.status_code == 302
    assert Evaluation.objects.count() == len(register) - 1
    assert set(Evaluation.objects.values_list("evaluated_by", flat=True)) == {hr_editor.pk}


def test_the_report_exports_each_controls_status_and_evidence_links(
    client, register, hr_editor, viewer, target
):
    compliance.do_attest(hr_editor, register["access-review"], **_attest_data())
    compliance.evaluate_all()
    period = compliance.period_of(Control.QUARTERLY, timezone.now()).label
    client.force_login(viewer)
    page = client.get(reverse("compliance_report"), {"period": period})
    assert page.status_code == 200
    assert f"Compliance report {period}" in page.text
    assert 'id="export-csv"' in page.text
    # Everything evaluated this quarter is new against the last one.
    assert 'id="change-access-review"' in page.text

    data = json.loads(
        client.get(reverse("compliance_report"), {"period": period, "format": "json"}).content
    )
    assert data["period"] == period
    by_slug = {row["control"]: row for row in data["controls"]}
    assert by_slug["access-review"]["status"] == "pass"
    assert by_slug["db-scan-each-quarter"]["status"] == "incomplete"  # no database URL
    assert by_slug["db-scan-each-quarter"]["evidence"][0]["url"] == target.get_absolute_url()
    assert data["attestations"][0]["person"] == "tomas"

    response = client.get(reverse("compliance_report"), {"period": period, "format": "csv"})
    assert (
        response["Content-Disposition"] == f'attachment; filename="kaizen-compliance-{period}.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == len(register)
    scan = next(row for row in rows if row["control"] == "db-scan-each-quarter")
    assert scan["status"] == "incomplete"
    assert f"<http://testserver{target.get_absolute_url()}>" in scan["evidence"]


def test_a_report_of_a_period_that_is_none_is_refused(client, register, viewer):
    client.force_login(viewer)
    response = client.get(reverse("compliance_report"), {"period": "last week"})
    assert response.status_code == 400
    assert "is not a period" in response.text


def test_a_viewer_of_the_owning_department_never_attests(client, register, make_user):
    hr_viewer = make_user("hana", ("hr", Membership.VIEWER))
    client.force_login(hr_viewer)
    response = client.post(reverse("compliance_attest", args=["access-review"]), _attest_data())
    assert response.status_code == 403
    assert 'name="comment"' not in client.get(register["access-review"].get_absolute_url()).text
    assert not Attestation.objects.exists()
