"""One findings query (optimizations.work.findings.query): the findings list, the
initiative's work board, both exports and the JSON API read findings through it, so a
filter means the same everywhere — including category and first-seen day."""

import csv
import datetime
import io

import pytest
from django.urls import reverse

from optimizations.models import Finding
from optimizations.work import findings as service
from portal.tokens import do_create_token
from tests.optimizations.test_work import NOW, finding

pytestmark = pytest.mark.django_db

OLD = NOW - datetime.timedelta(days=30)


@pytest.fixture
def made(target):
    """Findings that differ by one filter each from the one every filter keeps."""
    made = {
        "kept": finding(target, "FSA301", category="security", title="SQL built from input"),
        "other_category": finding(target, "FSA302", title="SQL built twice", location="b.py:1"),
        "too_old": finding(
            target, "FSA303", category="security", title="SQL built long ago", location="c.py:1"
        ),
        "no_text": finding(target, "FSA304", category="security", location="d.py:1"),
        "fixed": finding(
            target,
            "FSA305",
            category="security",
            title="SQL built, then fixed",
            location="e.py:1",
            status=Finding.FIXED,
        ),
    }
    Finding.objects.filter(pk=made["too_old"].pk).update(first_seen_at=OLD)
    return made


def _filters(since):
    return {"category": "security", "since": since.isoformat(), "q": "SQL built", "status": "open"}


def test_the_query_reads_every_filter(made, target):
    since = (NOW - datetime.timedelta(days=2)).date()
    chosen = service.filters_from(_filters(since))
    assert list(service.query(chosen, target=target)) == [made["kept"]]
    with pytest.raises(service.BadFilter, match="since: “last week” is not a day"):
        list(service.query({**chosen, "since": "last week"}, target=target))


def test_list_board_exports_and_api_answer_the_same_findings(
    made, target, initiative, login, viewer, client
):
    since = (NOW - datetime.timedelta(days=2)).date()
    params = _filters(since)
    wanted = [made["kept"].pk]
    browser = login(viewer)

    page = browser.get(reverse("finding_list", args=[target.slug]), params)
    assert [f.pk for f in page.context["page"].object_list] == wanted

    board = browser.get(reverse("initiative_findings", args=[initiative.pk]), params)
    assert [f.pk for f in board.context["rows"]] == wanted

    for name, key in (
        ("target_findings_export", target.slug),
        ("initiative_findings_export", initiative.pk),
    ):
        export = browser.get(reverse(name, args=[key, "csv"]), params)
        rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
        assert [int(row["id"]) for row in rows] == wanted, name

    _, token = do_create_token(viewer, "tests")
    answer = client.get(
        f"/api/targets/{target.slug}/findings",
        params,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert [item["id"] for item in answer.json()["items"]] == wanted


def test_a_day_that_is_not_one_is_said_not_ignored(made, target, initiative, login, viewer, client):
    browser = login(viewer)
    bad = {"since": "yesterday"}
    page = browser.get(reverse("finding_list", args=[target.slug]), bad)
    assert "since: “yesterday” is not a day (write it as YYYY-MM-DD)" in page.content.decode()
    assert list(page.context["page"].object_list) == []
    board = browser.get(reverse("initiative_findings", args=[initiative.pk]), bad)
    assert "is not a day" in board.content.decode()
    export = browser.get(reverse("target_findings_export", args=[target.slug, "csv"]), bad)
    assert export.status_code == 400
    _, token = do_create_token(viewer, "tests")
    answer = client.get(
        f"/api/targets/{target.slug}/findings", bad, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 422


def test_the_list_pages_keep_the_text_filter(target, login, viewer):
    """Page 2 of a text search was every finding: the page links dropped ``q``."""
    for n in range(51):
        finding(target, f"FSA{n:03}", title=f"orders problem {n}", location=f"o{n}.py:1")
    finding(target, "FSA999", title="unrelated", location="z.py:1")
    page = login(viewer).get(reverse("finding_list", args=[target.slug]), {"q": "orders"})
    assert page.context["page"].paginator.count == 51
    assert 'href="?q=orders&page=2"' in page.content.decode()
