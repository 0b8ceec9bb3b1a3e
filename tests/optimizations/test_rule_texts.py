"""Analyzer texts in Japanese, keyed by rule id, on the finding pages (issue 18, Decided).

The analyzers write English (CLI, JSON and SARIF keep it); the finding pages put a
rule's Japanese title, why and fix in their place when the page is in Japanese, and
fall back to the stored English for a rule the catalogue does not have.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from optimizations.analyzers.codescan.rules import RULES
from optimizations.models import Finding
from optimizations.work.rule_texts import JA
from portal.models import UserPreference

ANALYZERS = Path(settings.BASE_DIR) / "optimizations" / "analyzers"


def written_rule_ids() -> set[str]:
    """Every rule id an analyzer writes as a literal (rule_id="…")."""
    found = set()
    for path in ANALYZERS.rglob("*.py"):
        found.update(re.findall(r'rule_id="([A-Za-z0-9_.-]+)"', path.read_text(encoding="utf-8")))
    return found


def test_every_code_scan_rule_has_its_japanese_title_why_and_fix():
    missing = [
        rule_id
        for rule_id in RULES
        if rule_id not in JA or not (JA[rule_id].title and JA[rule_id].why and JA[rule_id].fix)
    ]
    assert not missing, f"add them to optimizations/work/rule_texts.py: {missing}"


def test_every_rule_id_an_analyzer_writes_has_a_japanese_title():
    ids = written_rule_ids()
    assert {"FSA001", "db.unused_index", "sec.headers", "benchmark.slow_operation"} <= ids
    missing = sorted(ids - set(JA))
    assert not missing, f"add them to optimizations/work/rule_texts.py: {missing}"


def a_finding(target, rule_id: str, **fields) -> Finding:
    now = timezone.now()
    return Finding.objects.create(
        target=target,
        source=fields.pop("source", "code"),
        rule_id=rule_id,
        severity="high",
        category="orm",
        fingerprint=f"{rule_id}-print",
        first_seen_at=now - datetime.timedelta(days=1),
        last_seen_at=now,
        **fields,
    )


def test_a_japanese_page_shows_the_rules_japanese_texts_and_keeps_the_stored_title(
    login, manager, target
):
    rule = RULES["FSA101"]
    finding = a_finding(
        target,
        "FSA101",
        title=f"{rule.title}: orders.items read per order",
        location="app/routes/orders.py:42",
        evidence={"why": rule.why},
        fix_hint=rule.fix,
    )
    UserPreference.objects.create(user=manager, language="ja")
    page = login(manager).get(reverse("finding_detail", args=[finding.pk])).content.decode()
    assert JA["FSA101"].title in page  # クエリ結果のループ内でのクエリ（N+1）
    assert "反復ごとにステートメントが 1 つ増えます" in page
    assert "関連する行を 1 つのステートメントで取得してください" in page
    # The English prose is gone (the raw evidence, shown folded as data, still holds it).
    assert f"<p>{rule.why}</p>" not in page and "Fetch the related rows" not in page
    # The stored title with its particulars is kept, marked as English data.
    assert '<p class="muted" lang="en">Query inside a loop over query results (N+1): orders' in page

    listing = login(manager).get(reverse("finding_list", args=[target.slug])).content.decode()
    assert JA["FSA101"].title in listing


def test_an_english_page_shows_the_stored_texts(login, manager, target):
    rule = RULES["FSA104"]
    finding = a_finding(
        target, "FSA104", title=rule.title, evidence={"why": rule.why}, fix_hint=rule.fix
    )
    page = login(manager).get(reverse("finding_detail", args=[finding.pk])).content.decode()
    assert rule.title in page and JA["FSA104"].title not in page
    assert f"<p>{rule.why}</p>" in page and "イベントループ" not in page


def test_a_rule_the_catalogue_lacks_falls_back_to_the_stored_english(login, manager, target):
    finding = a_finding(
        target,
        "ruff.B006",
        title="Mutable default argument",
        evidence={"why": "ruff B006: shared between calls"},
        fix_hint="Use None and create the list inside.",
    )
    UserPreference.objects.create(user=manager, language="ja")
    page = login(manager).get(reverse("finding_detail", args=[finding.pk])).content.decode()
    assert "Mutable default argument" in page
    assert "ruff B006: shared between calls" in page and "Use None and create" in page
    assert 'lang="en"' not in page.split("<main", 1)[1].split("Mutable default", 1)[0]
