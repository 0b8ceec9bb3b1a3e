"""The real-world patterns of issue 14 (tests/codescan_corpus/real_world): what the findings
say, beyond where they fire (test_codescan_corpus checks the places)."""

from pathlib import Path

import pytest

from optimizations.analyzers.codescan import scan_path

CASE = Path(__file__).resolve().parents[1] / "codescan_corpus" / "real_world"


@pytest.fixture(scope="module")
def findings():
    result = scan_path(CASE, ruff=False)
    return {(f.location, f.rule_id): f for f in result.findings}


def test_a_trigram_index_declared_in_alembic_turns_the_full_scan_claim_into_a_check(findings):
    indexed = findings[("app/search.py:20", "FSA107")]
    assert indexed.severity == "low" and indexed.evidence["trigram_index"] is True
    plain = findings[("app/search.py:32", "FSA107")]
    assert plain.severity == "medium" and "full scan" in plain.evidence["detail"]


def test_alembic_environment_under_another_folder_is_not_scanned(findings):
    assert not [key for key in findings if key[0].startswith("db/")]


def test_mass_assignment_shows_the_path_of_the_client_filled_schema(findings):
    hit = findings[("app/members.py:30", "FSA404")]
    assert hit.evidence["request_path"][0].startswith("POST /memberships")


def test_critical_sql_injection_has_a_request_path_across_calls(findings):
    hit = findings[("app/pages.py:23", "FSA402")]
    assert hit.severity == "critical"
    assert hit.evidence["request_path"] == ["GET /pages/search → app.pages.search"]


def test_column_from_input_across_modules_names_both_functions(findings):
    hit = findings[("app/listing.py:15", "FSA403")]
    assert hit.evidence["request_path"] == [
        "GET /items → app.items.list_items",
        "app.listing.sorted_items",
    ]


def test_unbounded_pagination_spellings_say_what_they_mean(findings):
    assert "`limit or -1`" in findings[("app/recall.py:56", "FSA105")].evidence["detail"]
    assert "defaults to None" in findings[("app/recall.py:75", "FSA105")].evidence["detail"]
    assert "`per_page=-1`" in findings[("app/recall.py:96", "FSA105")].evidence["detail"]
