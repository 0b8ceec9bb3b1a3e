"""The parameter forms by intent: a benchmark shows its test type's fields, with that
type's defaults; advanced options are folded; a field of another type is never sent."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from optimizations.jobs import landing
from optimizations.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue(monkeypatch, broker_up):
    def enqueue(job):
        Job.objects.filter(pk=job.pk).update(enqueued_at=timezone.now())

    monkeypatch.setattr(landing, "enqueue", enqueue)


def row(page, name):
    """The opening tag of a field's row on the form."""
    match = re.search(r'<div class="field-row"[^>]*>\s*<label for="id_p-' + name + '"', page)
    assert match, name
    return match.group(0)


def folded(page):
    return page.split('<details class="advanced"', 1)[1].split("</details>", 1)[0]


def test_a_load_test_form_shows_the_load_fields_with_their_defaults(login, qa_engineer, target):
    url = reverse("job_params", args=[target.slug, "benchmark"])
    page = login(qa_engineer).get(url, headers={"HX-Request": "true"}).content.decode()
    assert "hidden" not in row(page, "rate") and "hidden" not in row(page, "duration")
    # Stress-only and endurance-only fields are there for the other types, hidden.
    assert 'data-test-types="stress" hidden' in row(page, "step_factor")
    assert 'data-test-types="endurance" hidden' in row(page, "memory_source")
    # A default that depends on the type is shown for the chosen one, and the others kept.
    rate = re.search(r'<input[^>]*name="p-rate"[^>]*>', page).group(0)
    assert 'placeholder="100"' in rate and 'data-default-endurance="50"' in rate
    # The engine's tuning waits under "Advanced options"; the rate does not.
    assert 'name="p-timeout"' in folded(page) and 'name="p-seed"' in folded(page)
    assert 'name="p-rate"' not in folded(page)
    essential = page.split('<details class="advanced"', 1)[0]
    assert essential.count('class="field-row"') <= 12


def test_a_stress_form_with_an_error_shows_the_stress_fields(login, qa_engineer, target, queue):
    url = reverse("job_start", args=[target.slug, "benchmark"])
    page = login(qa_engineer).post(
        url, {"p-mode": "stress", "p-step_factor": "9"}, headers={"HX-Request": "true"}
    )
    assert page.status_code == 422
    body = page.content.decode()
    assert "hidden" not in row(body, "step_factor") and "hidden" in row(body, "rate")


def test_a_field_of_another_test_type_is_not_sent(login, qa_engineer, target, queue):
    login(qa_engineer).post(
        reverse("job_start", args=[target.slug, "benchmark"]),
        {"p-mode": "stress", "p-rate": "77", "p-start_rate": "20", "p-memory_interval": "9"},
    )
    params = Job.objects.get().params
    assert params["mode"] == "stress" and params["start_rate"] == 20
    # What the stored parameters hold for them is the declared default, not the typed value.
    assert params.get("rate") != 77 and params.get("memory_interval") != 9


def test_the_code_scan_form_folds_its_tuning(login, qa_engineer, target):
    url = reverse("job_params", args=[target.slug, "code_scan"])
    page = login(qa_engineer).get(url, headers={"HX-Request": "true"}).content.decode()
    assert 'name="p-source"' not in folded(page) and 'name="p-focus"' not in folded(page)
    for advanced in ("max_files", "pooler", "advisory_url", "cache_dir", "timeout"):
        assert f'name="p-{advanced}"' in folded(page)
