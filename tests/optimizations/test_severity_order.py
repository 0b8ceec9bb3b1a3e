"""One severity order (optimizations.analyzers.base) read by every place that ranks findings:
the models' sorting, "at least high", the gates, the portfolio and chart rows, SARIF levels."""

import pytest

from optimizations.analyzers import base
from optimizations.analyzers.codescan import sarif
from optimizations.models import Finding
from optimizations.reports import portfolio
from optimizations.work import gates
from tests.optimizations.test_work import finding


def test_the_order_runs_from_info_to_critical_and_lists_show_it_reversed():
    assert base.SEVERITIES == ("info", "low", "medium", "high", "critical")
    assert base.MOST_SEVERE_FIRST == ("critical", "high", "medium", "low", "info")
    assert base.SEVERITY_RANK["critical"] > base.SEVERITY_RANK["high"] > base.SEVERITY_RANK["info"]


def test_at_least_high_is_critical_and_high():
    assert base.at_least("high") == ("critical", "high")
    assert base.at_least("info") == base.MOST_SEVERE_FIRST
    assert base.is_at_least("critical", "high") and not base.is_at_least("medium", "high")
    assert not base.is_at_least("bogus", "info")
    with pytest.raises(ValueError, match="unknown severity 'severe'"):
        base.at_least("severe")


def test_every_reader_takes_the_one_order():
    assert Finding.SEVERITIES == [
        ("critical", "Critical"),
        ("high", "High"),
        ("medium", "Medium"),
        ("low", "Low"),
        ("info", "Info"),
    ]
    assert set(gates.SEVERE) == {"critical", "high"}
    assert portfolio.SEVERITIES == ["critical", "high", "medium", "low", "info"]
    assert sarif.LEVELS == {
        "critical": "error",
        "high": "error",
        "medium": "warning",
        "low": "note",
        "info": "note",
    }


@pytest.mark.django_db
def test_by_severity_puts_the_most_severe_first_and_ties_in_a_stable_order(target):
    made = {
        severity: finding(target, f"R-{severity}", severity=severity, location=f"{severity}.py:1")
        for severity in ("low", "critical", "info", "high", "medium")
    }
    # Two findings alike but for their key: the primary key decides (pages never repeat).
    twin_a = finding(target, "R-high", severity="high", location="high.py:1", title="a")
    twin_b = finding(target, "R-high", severity="high", location="high.py:1", title="b")
    ordered = list(Finding.objects.filter(target=target).by_severity())
    assert [f.severity for f in ordered] == [
        "critical",
        "high",
        "high",
        "high",
        "medium",
        "low",
        "info",
    ]
    highs = [f.pk for f in ordered if f.severity == "high"]
    assert highs == sorted([made["high"].pk, twin_a.pk, twin_b.pk])
