"""Prose Kaizen builds in Python reads in the reader's language (issue 18).

Refusals, gate evidence, the plan's default names and audit summaries are
written in English (the API, the CLI, exports and the stored columns keep it)
and shown in Japanese to a person who reads the portal in Japanese. What is
stored keeps its msgid and values, so each reader gets it in their own
language, not the writer's.
"""

import dataclasses
import datetime
import html
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy, gettext_noop

from departments import actions, compliance
from departments.models import Control, Runbook, TrainingGate, TrainingModule
from optimizations.jobs import engine, kinds, landing, preflight
from optimizations.models import Phase, PhaseTask, Run
from optimizations.work import gates
from optimizations.work.actions import do_set_phase_status, do_update_task
from portal.i18n import Phrase, shown_phrase
from portal.models import AuditEvent, UserPreference
from portal.tokens import do_create_token
from tests.departments.conftest import QUIZ
from tests.optimizations import fake_analyzer

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_kinds(monkeypatch, broker_up):
    """Every kind is the fake analyzer; the DB scan needs a database URL; nothing is sent."""
    for name, kind in list(kinds.KINDS.items()):
        needs = ("database_url",) if name == "db_scan" else ("base_url",)
        fake = dataclasses.replace(kind, module=fake_analyzer.__name__, needs=needs)
        monkeypatch.setitem(kinds.KINDS, name, fake)
    monkeypatch.setattr(landing, "enqueue", lambda job: True)


def japanese(user):
    UserPreference.objects.update_or_create(user=user, defaults={"language": "ja"})
    return user


# --- the phrase itself -------------------------------------------------------------


def test_a_phrase_is_english_text_that_each_reader_gets_in_their_language():
    phrase = Phrase(
        gettext_noop("moved phase %(number)s (%(phase)s) from %(old)s to %(new)s"),
        number=1,
        phase=Phrase(gettext_noop("Analysis")),
        old=gettext_lazy("Not started"),
        new=gettext_lazy("Done"),
    )
    with translation.override("ja"):
        english = str(phrase)
        japanese_text = phrase.shown()
        from_storage = shown_phrase(phrase.as_data(), "fallback")
    assert english == "moved phase 1 (Analysis) from Not started to Done"
    assert japanese_text == from_storage == "フェーズ 1（分析）を未着手から完了に移しました"
    assert shown_phrase({}, "written before") == "written before"


# --- refusals --------------------------------------------------------------------------


def test_a_training_refusal_is_japanese_on_the_page_and_english_in_the_api(
    fake_kinds, target, qa_engineer, hr_editor, departments, client
):
    module = actions.do_create_module(
        hr_editor,
        title="Load testing safely",
        content="Read the runbook, then answer.",
        quiz=QUIZ,
        pass_mark=80,
        status=TrainingModule.PUBLISHED,
        owner_department=departments["hr"],
    )
    TrainingGate.objects.create(target=target, module=module)
    client.force_login(japanese(qa_engineer))
    response = client.post(
        reverse("run_start", args=[target.slug]), {"mode": "performance"}, follow=True
    )
    said = [str(message) for message in response.context["messages"]]
    assert said == [
        "Orders API では先に研修が必要です：このジョブの前に「Load testing safely」"
        "（/training/modules/load-testing-safely/）を修了してください。修了は再認定日まで有効です。"
    ]

    _, key = do_create_token(qa_engineer, "tests")
    response = client.post(
        "/api/runs",
        {"target": target.slug, "mode": "performance"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}", "Accept-Language": "ja"},
    )
    assert response.status_code == 409
    assert response.json()["detail"].startswith("Orders API asks for training first: complete")


def test_what_the_target_lacks_is_stored_in_english_and_shown_in_japanese(
    fake_kinds, target, qa_engineer, login
):
    with translation.override("ja"):
        answer = preflight.check(qa_engineer, target, "performance", ["sqlalchemy"])
        why = {item["kind"]: preflight.skipped_why(item) for item in answer.skipped}
    assert (
        why["db_scan"]
        == "対象サービスにデータベース URL（対象サービスの設定ページで指定）がありません"
    )

    run = engine.start_run(qa_engineer, target, "performance", ["sqlalchemy"])
    stored = {item["kind"]: item for item in Run.objects.get(pk=run.pk).skipped}
    assert stored["db_scan"]["why"] == (
        "the target lacks a database URL (set it on the target's settings page)"
    )
    page = login(japanese(qa_engineer)).get(reverse("run_detail", args=[run.pk]))
    text = page.content.decode()
    assert "対象サービスにデータベース URL（対象サービスの設定ページで指定）がありません" in text
    assert "the target lacks a database URL" not in text


def test_a_run_with_nothing_it_can_start_is_refused_in_japanese(fake_kinds, target, qa_engineer):
    with translation.override("ja"):
        answer = preflight.check(qa_engineer, target, specs=[("db_scan", {})])
    assert answer.message == (
        "この実行のジョブはどれも開始できません（db_scan：対象サービスにデータベース URL"
        "（対象サービスの設定ページで指定）がありません）。"
    )


def test_an_unknown_parameter_and_the_start_limit_are_refused_in_japanese(
    fake_kinds, target, qa_engineer, settings
):
    with translation.override("ja"):
        answer = preflight.check(qa_engineer, target, specs=[("benchmark", {"colour": "red"})])
        assert answer.reasons[0].message.startswith(
            "benchmark の不明なパラメーター：ベンチマーク にパラメーター colour はありません"
            "（受け付けるのは "
        )
        settings.KAIZEN_JOB_START_RATE = 1
        engine.start_job(qa_engineer, target, "benchmark", {})
        limited = preflight.check(qa_engineer, target, specs=[("benchmark", {})])
    assert limited.reasons[0].message.startswith("直近 1 分間に 1 件の実行を開始しました")


def test_a_write_refusal_is_japanese(fake_kinds, target, qa_engineer):
    with translation.override("ja"):
        answer = preflight.check(qa_engineer, target, specs=[("integrity", {})])
    assert "は Orders API の API を通じてデータを作成・変更・取消しますが" in answer.message


# --- gates, the plan, the audit log -----------------------------------------------------


def test_gate_evidence_reads_japanese_and_is_signed_off_in_english(
    login, manager, initiative, target
):
    first = initiative.phases.get(number=1)
    page = login(japanese(manager)).get(
        reverse("phase_gate", args=[first.pk]), headers={"HX-Request": "true"}
    )
    text = page.content.decode()
    assert "ベースラインのベンチマークセット" in text and "DB スナップショット" in text
    assert (
        "DB スキャンなし：対象サービスにデータベース URL がありません — 対象サービスの編集ページで"
        "追加してください" in text
    )
    assert "Baseline benchmark set" not in text

    gates.do_sign_gate(manager, first, override_reason="measured elsewhere")
    signoff = first.signoffs.get()
    assert [check["label"] for check in signoff.evidence] == [
        "Baseline benchmark set",
        "DB snapshot",
    ]
    event = AuditEvent.objects.get(action="phase.gate")
    assert event.summary.startswith(
        "overrode the gate (missing: Baseline benchmark set, DB snapshot)"
    )
    with translation.override("ja"):
        assert event.shown_summary == (
            "フェーズ 1（分析）のゲートを強制通過させました（不足：ベースラインのベンチマーク"
            "セット、DB スナップショット） — measured elsewhere"
        )


def test_the_plans_default_names_read_japanese_until_a_person_renames_them(
    login, manager, initiative
):
    renamed = initiative.phases.get(number=2)
    renamed.name = "Make it fast"
    renamed.save()
    text = login(japanese(manager)).get(initiative.get_absolute_url()).content.decode()
    assert "1. 分析" in text and "パフォーマンスを分析する" in text
    assert "ゲート：ベースラインのベンチマークと DB スナップショットがある。" in text
    assert "2. Make it fast" in text
    assert ">Analyze performance<" not in text
    # Stored in English: the CLI, the API and exports read the plan as written.
    assert initiative.phases.get(number=1).name == "Analysis"


def test_audit_summaries_are_stored_in_english_and_shown_in_the_readers_language(
    login, manager, initiative
):
    do_set_phase_status(manager, initiative.phases.get(number=2), Phase.ACTIVE)
    created = AuditEvent.objects.get(action="initiative.create")
    moved = AuditEvent.objects.get(action="phase.status")
    assert created.summary == "created initiative “Speed up orders” on Orders API"
    assert moved.summary == "moved phase 2 (Implementation) from Not started to Active"

    text = login(japanese(manager)).get(reverse("audit_list")).content.decode()
    assert "Orders API に改善施策「Speed up orders」を作成しました" in text
    assert "フェーズ 2（実装）を未着手から有効に移しました" in text
    assert "created initiative" not in text

    # The same entries for a reader of English (signing in reads the chosen language).
    UserPreference.objects.filter(user=manager).update(language="en")
    text = login(manager).get(reverse("audit_list")).content.decode()
    assert "moved phase 2 (Implementation) from Not started to Active" in text


def test_a_runbook_audit_entry_and_the_default_controls_read_japanese(
    login, hr_editor, departments
):
    actions.do_create_runbook(
        hr_editor,
        title="Slow-query triage",
        body="1. Look at pg_stat_statements.",
        owner_department=departments["hr"],
        owner=hr_editor,
        status=Runbook.PUBLISHED,
        topics=[],
    )
    compliance.ensure_default_register()
    client = login(japanese(hr_editor))
    text = client.get(reverse("compliance_register")).content.decode()
    assert "保存されたシークレットはすべて現在の暗号鍵で復号できる。" in text
    assert "Every stored secret decrypts with the current encryption key." not in text
    event = AuditEvent.objects.get(action="runbook.create")
    assert event.summary == "created runbook “Slow-query triage”"
    with translation.override("ja"):
        assert event.shown_summary == "ランブック「Slow-query triage」を作成しました"


def test_a_compliance_judgement_is_stored_in_english_and_shown_in_the_readers_language(
    login, hr_editor, target
):
    compliance.ensure_default_register()
    control = Control.objects.get(slug="db-scan-each-quarter")
    # Orders API has no database URL: it cannot have a DB scan yet (incomplete).
    evaluation = compliance.evaluate(
        control, now=timezone.make_aware(datetime.datetime(2026, 11, 16, 9))
    )
    lacks = "no database URL: add one on the target's settings page"
    assert (
        evaluation.reason == f"0 of 1 targets had one in 2026-Q4; 1 cannot have one yet ({lacks})."
    )
    assert [entry["label"] for entry in evaluation.evidence] == [f"Orders API: {lacks}"]

    text = html.unescape(
        login(japanese(hr_editor)).get(reverse("compliance_register")).content.decode()
    )
    row = text[text.index('id="control-db-scan-each-quarter"') :]
    row = row[: row.index("</tr>")]
    assert (
        "対象サービス 1 件中 0 件が 2026-Q4 に実行済み; 1 件はまだ実行できません"
        "（データベース URL がない：対象サービスの設定ページで追加してください）。"
    ) in row
    assert "Orders API：データベース URL がない：対象サービスの設定ページで追加してください" in row
    assert "targets had one" not in row
    control_page = html.unescape(login(hr_editor).get(control.get_absolute_url()).content.decode())
    assert "対象サービス 1 件中 0 件が 2026-Q4 に実行済み" in control_page

    # The same judgement for a reader of English.
    UserPreference.objects.filter(user=hr_editor).update(language="en")
    text = html.unescape(login(hr_editor).get(reverse("compliance_register")).content.decode())
    assert evaluation.reason in text
    assert f"Orders API: {lacks}" in text
    assert "対象サービス" not in text


def test_a_task_edits_changes_read_japanese_and_stay_english_where_stored(
    login, manager, initiative
):
    task = PhaseTask.objects.filter(phase__initiative=initiative).order_by("pk").first()
    PhaseTask.objects.filter(pk=task.pk).update(title="Index the orders table")
    task.refresh_from_db()
    do_update_task(manager, task, status=PhaseTask.DOING, logged_hours=Decimal("2.5"))
    event = AuditEvent.objects.get(action="task.logged_hours+status")
    assert event.summary == (
        "task “Index the orders table”: status To do → Doing, logged hours 0.0 → 2.5"
    )
    assert event.changes["status"] == ["todo", "doing"]  # the values, as the API reads them

    text = login(japanese(manager)).get(reverse("audit_list")).content.decode()
    assert (
        "タスク「Index the orders table」：ステータス 未着手 → 作業中, 記録工数 0.0 → 2.5" in text
    )
    assert "status To do" not in text
