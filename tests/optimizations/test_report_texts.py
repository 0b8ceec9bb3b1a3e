"""The reports room in Japanese (issue 18): the comparison rule's words, the ROI's
evidence sentences, the SLO board's sources and the compare page are shown in the
page's language, while the CSV, JSON and CLI keep the English."""

import datetime
import json

import pytest
from django.urls import reverse
from django.utils.translation import gettext, override

from optimizations.analyzers import stats
from optimizations.jobs import baselines
from optimizations.models import TargetService
from optimizations.reports import capacity, roi, texts
from portal.i18n import Phrase
from portal.models import UserPreference
from tests.optimizations import test_capacity, test_compare, test_roi
from tests.optimizations.test_roi import SLOW, T0, bench_set

META = {"mode": "load", "rate": 100, "duration": 10}


@pytest.fixture
def improved(initiative, target):
    """As in test_roi: a baseline set with a knee, a faster set, assumptions and hours."""
    base = bench_set(target, T0, SLOW, capacity=300)
    latest = bench_set(target, T0 + datetime.timedelta(days=5), test_roi.FAST)
    test_roi.assume(initiative)
    test_roi.log_hours(initiative, dev=10, qa=5)
    return base, latest


@pytest.fixture
def twin(departments):
    return TargetService.objects.create(
        name="Orders API (fixed)",
        slug="orders-fixed",
        base_url="http://127.0.0.1:8101",
        owner_department=departments["dev"],
    )


def comparisons():
    """The rule's verdicts: each kind of reason it writes."""
    yield stats.compare([100, 101, 102, 103, 104], [40, 41, 42, 43, 44])  # improved
    yield stats.compare([100, 101, 102, 103, 104], [100, 101, 102, 103, 104.5])  # no change
    yield stats.compare([100, 130, 90, 120, 80], [95, 125, 85, 118, 70])  # inconclusive
    yield stats.compare([100, 101], [40, 41, 42])  # too few runs
    yield stats.compare([1.0, 1.2, 0.9, 1.1, 1.0], [5.0, 5.2, 4.9, 5.1, 5.0], scale=stats.POINTS)
    yield stats.compare([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])  # not positive on the ratio scale
    yield stats.compare(
        [100] * 5,
        [40] * 5,
        baseline_meta=[META] * 5,
        candidate_meta=[{**META, "rate": 50}] * 5,
    )
    yield stats.compare(
        [100] * 5,
        [40] * 5,
        baseline_meta=[META, META, META, META, {**META, "duration": 20}],
        candidate_meta=[META] * 5,
    )


@pytest.mark.parametrize("comparison", list(comparisons()))
def test_the_rebuilt_reasons_say_in_english_exactly_what_the_rule_said(comparison):
    rebuilt = texts.reasons(comparison)
    assert [str(reason) for reason in rebuilt] == comparison.reasons
    assert all(isinstance(reason, Phrase) for reason in rebuilt)  # not the English fallback
    with override("ja"):
        japanese = rebuilt.translated(gettext)
    assert japanese != "; ".join(comparison.reasons)


def test_the_reasons_in_japanese():
    better, _same, _unsure, few, *_ = comparisons()
    with override("ja"):
        assert "厳密な Mann–Whitney" in texts.reasons(better).translated(gettext)
        assert "を超えています" in texts.reasons(better).translated(gettext)
        assert "各側に少なくとも 5 回の実行が必要です（現在 2 回と 3 回）" in texts.reasons(
            few
        ).translated(gettext)
        assert texts.interval_text(few).translated(gettext) == "区間なし（実行回数が不足）"


def test_a_set_is_described_in_english_for_the_exports_and_in_japanese_on_a_page(
    initiative, target
):
    bench_set(target, T0, SLOW)
    base, _latest, _sets = baselines.baseline_and_latest(target, "load", initiative)
    described = base.describe()
    assert described == (
        f"Baseline: run #{base.run_id} (5 × load, 100 req/s, 10 s), the first load set in the "
        "initiative"
    )
    assert base.to_dict()["described"] == described
    with override("ja"):
        assert described.translated(gettext) == (
            f"ベースライン：実行 #{base.run_id}（5 × load, 100 req/s, 10 s）、"
            "改善施策で最初の load のセット"
        )


def ja_page(client_for, user, url):
    UserPreference.objects.update_or_create(user=user, defaults={"language": "ja"})
    response = client_for(user).get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_the_roi_page_in_japanese_says_why_and_how_in_japanese(login, initiative, improved):
    page = ja_page(login, initiative.owner, reverse("initiative_roi", args=[initiative.pk]))
    base, latest = improved
    # The sets, the speed-up's basis, the capacity's basis and what is missing.
    assert f"ベースライン：実行 #{base[0].run_id}（5 × load, 100 req/s, 10 s）" in page
    assert f"最新：実行 #{latest[0].run_id}" in page
    assert "ベースラインのニー × 高速化" in page
    assert "この対象サービスとその改善版の交互比較がありません" in page
    assert "厳密な Mann–Whitney" in page  # the rule's reasons under the table
    assert "<strong>計測</strong>による証跡です" in page  # one sentence around the link
    assert "ジョブ #" in page and "のニー" in page
    for english in (
        "Baseline: run #",
        "no interleaved comparison of this target",
        "exact Mann–Whitney",
        "(derived)",
    ):
        assert english not in page, english


def test_the_roi_exports_stay_english(login, initiative, improved):
    client = login(initiative.owner)
    UserPreference.objects.create(user=initiative.owner, language="ja")
    data = json.loads(client.get(reverse("initiative_roi_json", args=[initiative.pk])).content)
    assert (
        data["estimated"]["speedup_basis"] == "p95 latency, baseline set vs latest, point estimate"
    )
    assert data["baseline"]["described"].startswith("Baseline: run #")
    assert any("no interleaved comparison" in m for m in data["verified"]["missing"])
    text = client.get(reverse("initiative_roi_csv", args=[initiative.pk])).content.decode()
    assert "Baseline: run #" in text


def test_an_roi_without_a_latest_set_says_so_in_one_japanese_sentence(login, initiative, target):
    bench_set(target, T0, SLOW)
    page = ja_page(login, initiative.owner, reverse("initiative_roi", args=[initiative.pk]))
    assert "<strong>ベースライン以降に比較可能なセットはまだありません</strong>：" in page
    assert "ベースライン（実行 #" in page and "以降に load のセットがありません" in page
    assert "を開いて<em>再実行</em>を押してください" in page
    assert "改善施策のタスクにまだ工数が記録されていません" in page  # what is missing
    assert "no load set after the baseline" not in page


def test_the_compare_page_in_japanese(login, qa_engineer, target, twin):
    a, b = test_compare.sides(target, twin)
    ids = test_compare.ids
    page = ja_page(login, qa_engineer, reverse("compare") + f"?a={ids(a)}&b={ids(b)}")
    assert "変更前（A）" in page and "各側の実行回数" in page  # the form's labels
    assert "厳密な Mann–Whitney" in page and "を超えています" in page
    assert "証跡：<strong>検証済み</strong>。" in page
    assert "交互実行は<strong>検証済み</strong>の証跡" in page
    assert "Runs per side" not in page and "exact Mann–Whitney" not in page


def test_the_slo_board_in_japanese_names_its_sources_in_japanese(login, manager, target):
    base = bench_set(target, T0, SLOW, capacity=300)
    page = ja_page(login, manager, reverse("target_slo", args=[target.slug]))
    assert f"ストレステストのニー · 実行 #{base[0].run_id}" in page
    assert "stress knee" not in page


def test_the_roi_dict_keeps_the_rules_english(initiative, improved):
    result = roi.compute(initiative)
    assert result.measured_column.speedup_basis.startswith("p95 latency, baseline set vs latest")
    assert "no interleaved comparison of this target" in result.verified.missing[0]


def test_the_capacity_advice_is_english_and_reads_in_japanese_on_the_board(login, manager, target):
    job = test_capacity.bounded_stress(target, 100.0)
    test_capacity.db_scan(
        target, run=job.run, pool=test_capacity.POOL, connections=test_capacity.CONNECTIONS
    )
    advice = capacity.advise(target, peak_rps=250, workers_per_instance=2)
    assert advice.summary.startswith("4 instance(s) × 2 worker(s), pool_size 2")
    assert advice.summary.endswith("(Planned on a knee of ≥ 100 req/s, a lower bound.)")
    with override("ja"):
        summary = advice.summary.translated(gettext)
        steps = [step.translated(gettext) for step in advice.steps]
        knee = advice.input("knee")
        source = knee.source.translated(gettext)
    assert summary.startswith("4 インスタンス × 2 ワーカー、ワーカーあたり pool_size 2")
    assert summary.endswith("（下限値である ≥ 100 req/s のニーで計画しています。）")
    assert steps[0].startswith("インスタンス数 = ⌈250 req/s ÷ (ニー ≥ 100 req/s × 80%)⌉ = 4")
    assert "マシンが混雑していました" in source

    page = ja_page(login, manager, reverse("target_slo", args=[target.slug]) + "?peak_rps=250")
    assert "下限値である ≥ 100 req/s のニーで計画しています" in page
    assert "1 インスタンスのストレステストのニー（下限値）" in page
    assert "Planned on a knee" not in page and "busy connections per instance" not in page


def test_the_portfolios_kept_charts_are_kept_per_language(login, viewer, manager, target):
    from tests.optimizations.test_portfolio import finding

    finding(target, "FSA120", "high", "performance")
    client = login(viewer)
    english = client.get(reverse("portfolio")).content.decode()
    assert "Open findings by severity, week by week" in english
    UserPreference.objects.create(user=viewer, language="ja")
    japanese = login(viewer).get(reverse("portfolio")).content.decode()
    with override("ja"):
        title = gettext("Open findings by severity, week by week")
    assert title != "Open findings by severity, week by week"
    assert json.dumps(title)[1:-1] in japanese  # the figure's JSON, kept for Japanese readers
    assert "Open findings by severity, week by week" not in japanese
