"""Continuous observation in Japanese (issue 18): the sentences the burn-rate rules, the
budgets and the incidents store in English are shown in Japanese on the pages, each
written here by the code that stores it; the stored rows keep the English."""

import datetime
import re

from django.urls import reverse
from django.utils.translation import override

from optimizations.analyzers.observe import burnrate
from optimizations.models import Incident
from optimizations.observe import alerting, budgets, incidents, texts
from portal.models import UserPreference
from tests.optimizations.test_observe_alerts import NOW, checks


def ja(text):
    with override("ja"):
        return texts.stored(text)


def test_a_burn_rate_rules_reasons_in_japanese():
    minutes = [burnrate.Bucket(NOW - datetime.timedelta(minutes=n + 1), 0, 10) for n in range(60)]
    firing, *_ = burnrate.evaluate(minutes, 0.999, clock=lambda: NOW)
    assert firing.reason.startswith("burn rate 1000.0× over 1 h, 1000.0× over 5 min")
    assert ja(firing.reason) == "バーンレート：1 時間 で 1000.0×、5 分 で 1000.0×（しきい値 14.4×）"
    quiet, *_ = burnrate.evaluate([], 0.999, clock=lambda: NOW)
    assert ja(quiet.reason).startswith("直近 1 時間 にイベントがありません。")


def test_the_budgets_objectives_in_japanese(target):
    assert ja(budgets.describe(target, "availability_pct")) == "毎分チェックの 99.9 % で稼働"
    assert ja(budgets.describe(target, "error_rate_pct")) == "リクエストの 99 % が 5xx なし"
    assert ja(budgets.describe(target, "p99_ms")) == "リクエストの 99 % が 500 ms 以下"


def test_text_in_no_known_shape_is_shown_as_stored():
    assert ja("Disk full on db-1 (from Alertmanager)") == "Disk full on db-1 (from Alertmanager)"
    assert ja("") == ""


def test_a_burn_rate_incident_reads_in_japanese_and_stays_english_stored(
    login, target, dev_engineer
):
    checks(target, 120, 0)
    alerting.evaluate_target(target, NOW)
    later = NOW + datetime.timedelta(minutes=2)
    checks(target, 0, 2, end=later)
    alerting.evaluate_target(target, later)
    opened = Incident.objects.get(source="burn-rate", key="availability_pct:page")
    assert opened.detail.startswith("Orders API: Availability budget burning (99.9 % of minute")
    incidents.resolve_from_alert(target, "burn-rate", "availability_pct:page")
    japanese = ja(opened.detail)
    assert japanese.startswith(
        "Orders API：可用性 のエラーバジェットを消費中（毎分チェックの 99.9 % で稼働） — "
        "高速バーン：バーンレート："
    )
    assert "低速バーン：バーンレート：" in japanese

    UserPreference.objects.create(user=dev_engineer, language="ja")
    client = login(dev_engineer)
    page = client.get(reverse("incident_detail", args=[opened.pk])).content.decode()
    assert japanese in page
    assert "ランブックを選択" in page and "Select an option" not in page  # the runbook's choice
    assert "alert availability_pct:page cleared" not in page
    assert "burn-rate のアラート availability_pct:page が解消しました。" in page
    listing = client.get(reverse("incident_list")).content.decode()
    assert "Orders API：可用性 のエラーバジェットを消費中" in listing
    assert "budget burning" not in listing

    alerts = client.get(reverse("target_alerts", args=[target.slug])).content.decode()
    assert "高速バーン" in alerts and "継続バーン" in alerts and "呼び出し" in alerts
    assert "バーンレート：" in alerts and "毎分チェックの 99.9 % で稼働" in alerts
    assert ">fast burn<" not in alerts  # (the edit form keeps the name as its value)
    assert not re.search(r"burn rate [\d.]+×", alerts)


def test_the_minute_checks_and_timeline_sentences_in_japanese(target):
    assert ja("Orders API is down: HTTP 503") == "Orders API が停止しています：HTTP 503"
    assert ja("Connection-pool use 93 % > 80 %") == "接続プールの使用率 93 % > 80 %"
    assert ja("Nobody acknowledged it within 15 minutes.") == "15 分以内に誰も確認しませんでした。"
    assert ja("email ×2, inbox ×3") == "メールアドレス ×2, 受信箱 ×3"
    assert (
        ja("Postmortem written; 2 task(s) in “Speed up orders”.")
        == "ポストモーテムを作成しました。「Speed up orders」のタスク 2 件。"
    )
