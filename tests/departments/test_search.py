"""Runbook search: PostgreSQL full-text search there, a word match on SQLite.

The suite runs on both databases; each test states what holds on both, and
where they differ, what each does.
"""

import re

import pytest
from django.db import connection

from departments.actions import do_save_runbook
from departments.models import Runbook
from departments.search import search_runbooks, snippet


@pytest.fixture
def library(make_runbook):
    return {
        "pool": make_runbook(
            "Connection-pool exhaustion",
            body="Check pg_stat_activity for connections idle in transaction.",
        ),
        "index": make_runbook(
            "Rolling out an index",
            body="CREATE INDEX CONCURRENTLY cannot run inside a transaction block.",
        ),
        "slow": make_runbook(
            "Slow-query triage",
            body="Find the statements with the most total time, then read the plan. "
            "A missing index is the usual cause.",
        ),
    }


def titles(query):
    return [runbook.title for runbook in search_runbooks(Runbook.objects.all(), query)]


def test_a_word_in_the_body_finds_the_runbook(library):
    assert titles("pg_stat_activity") == ["Connection-pool exhaustion"]


def test_a_match_in_the_title_ranks_first(library):
    assert titles("index") == ["Rolling out an index", "Slow-query triage"]


def test_every_word_must_match(library):
    assert titles("transaction concurrently") == ["Rolling out an index"]
    assert titles("transaction plan") == []


def test_case_does_not_matter(library):
    assert titles("CONCURRENTLY") == titles("concurrently") == ["Rolling out an index"]


def test_nothing_matches_an_unknown_word(library):
    assert titles("kubernetes") == []


def test_only_the_current_revision_is_searched(library, hr_editor):
    pool = library["pool"]
    do_save_runbook(hr_editor, pool, title=pool.title, body="Look at the pool metrics.")
    assert titles("pg_stat_activity") == []
    assert titles("metrics") == ["Connection-pool exhaustion"]


def test_word_forms(library):
    found = titles("indexes")
    if connection.vendor == "postgresql":
        # English stemming: "indexes" and "index" are one word.
        assert found == ["Rolling out an index", "Slow-query triage"]
    else:
        # The fallback matches the letters as typed.
        assert found == []


def test_the_snippet_marks_the_match_and_escapes_the_text(make_runbook):
    make_runbook("Danger", body="Never paste <script>alert(1)</script> next to the pool size.")
    (found,) = search_runbooks(Runbook.objects.all(), "pool")
    html = snippet(found, "pool", found.current_revision.body)
    assert "<mark>pool</mark>" in html
    # Whatever each database keeps of the text, the only markup is the highlight.
    assert set(re.findall(r"</?([a-z]+)", html)) == {"mark"}
