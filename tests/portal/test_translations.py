"""Japanese and English: every marked string has its ja translation, and users get their language.

The catalogue is read in Python (portal/i18n.py), never through GNU gettext,
which a fresh machine does not have. Strings are found the way makemessages
finds them: templates through Django's own ``templatize``, Python through
``ast`` (gettext, gettext_lazy, pgettext, ngettext, ``_`` …). Pages not marked
yet have nothing to check; a page marked later is held to the same test.
"""

from __future__ import annotations

import gettext
import io
from pathlib import Path

import pytest
from django import forms
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from optimizations.jobs import kinds
from optimizations.jobs.forms import FILLED_BY_PORTAL
from optimizations.targets import slo
from portal.i18n import (
    Entry,
    PoError,
    compile_catalogue,
    compile_mo,
    parse_po,
    po_quote,
    project_messages,
    project_sources,
    python_messages,
    template_messages,
    unmarked_texts,
)
from portal.language import language_for
from portal.models import Notification, UserPreference

BASE = Path(settings.BASE_DIR)
JA_PO = BASE / "locale" / "ja" / "LC_MESSAGES" / "django.po"


def untranslated(entries: list[Entry], messages: dict) -> list[str]:
    """One line per marked string without a usable ja translation, with where it is."""
    catalogue = {entry.key: entry for entry in entries if not entry.obsolete}
    problems = []
    for key, found in sorted(messages.items(), key=lambda item: item[0][1]):
        where = ", ".join(sorted({message.where for message in found}))
        entry = catalogue.get(key)
        context = f"msgctxt {po_quote(key[0])} " if key[0] is not None else ""
        if entry is None:
            problems.append(f"missing: {context}msgid {po_quote(key[1])} ({where})")
        elif entry.fuzzy:
            problems.append(f"fuzzy: {context}msgid {po_quote(key[1])} ({where})")
        elif not entry.translated:
            problems.append(f"empty: {context}msgid {po_quote(key[1])} ({where})")
        elif found[0].msgid_plural is not None and entry.msgid_plural is None:
            problems.append(f"not plural: {context}msgid {po_quote(key[1])} ({where})")
    return problems


# --- the catalogue against the code -------------------------------------------------


def test_every_marked_string_has_a_japanese_translation():
    messages = project_messages(BASE, *project_sources(BASE, settings.TEMPLATES[0]["DIRS"]))
    assert len(messages) > 50  # the extraction found the marked navigation, pages and messages
    problems = untranslated(parse_po(JA_PO.read_text(encoding="utf-8")), messages)
    assert not problems, (
        f"{len(problems)} string(s) lack a ja translation in {JA_PO.relative_to(BASE)} "
        "(./kaizen manage add_missing_translations adds them; translate them, then "
        "./kaizen manage compile_translations):\n" + "\n".join(problems)
    )


def test_the_check_covers_the_python_sources_too():
    """Words built in Python (gettext, gettext_noop for Phrase) are held to the same test
    as the templates: the reports' and observe pages' sentences among them."""
    messages = project_messages(BASE, *project_sources(BASE, settings.TEMPLATES[0]["DIRS"]))
    where = {m.where.split(":")[0] for found in messages.values() for m in found}
    for module in (
        "optimizations/reports/texts.py",
        "optimizations/reports/roi.py",
        "optimizations/reports/capacity.py",
        "optimizations/observe/texts.py",
        "optimizations/jobs/baselines.py",
    ):
        assert module in where, module
    assert (None, "no interval (too few runs)") in messages
    assert ("between sentences", "; ") in messages


def test_no_catalogue_entry_is_fuzzy_or_empty():
    entries = parse_po(JA_PO.read_text(encoding="utf-8"))
    bad = [e.msgid for e in entries if e.msgid and not e.obsolete and (e.fuzzy or not e.translated)]
    assert not bad


def test_the_catalogue_calls_a_target_by_one_name():
    """A target service is 対象サービス on every page (the dominant term), never ターゲット."""
    entries = parse_po(JA_PO.read_text(encoding="utf-8"))
    translations = [
        text
        for entry in entries
        if entry.msgid and not entry.obsolete
        for text in [entry.msgstr, *entry.msgstr_plural.values()]
    ]
    assert sum("対象サービス" in text for text in translations) > 50
    assert [text for text in translations if "ターゲット" in text] == []


def test_the_committed_mo_is_compiled_from_the_po():
    mo = JA_PO.with_suffix(".mo")
    assert mo.exists(), "run ./kaizen manage compile_translations and commit the .mo"
    assert mo.read_bytes() == compile_catalogue(JA_PO), (
        f"{mo.relative_to(BASE)} is stale: run ./kaizen manage compile_translations"
    )


def test_the_check_names_a_missing_an_empty_and_a_fuzzy_string():
    messages = {}
    for message in template_messages(
        '{% load i18n %}{% translate "Here" %}{% translate "Gone" %}'
        '{% translate "Blank" %}{% translate "Unsure" %}',
        "t.html",
    ):
        messages.setdefault(message.key, []).append(message)
    entries = parse_po(
        'msgid "Here"\nmsgstr "ここ"\n\nmsgid "Blank"\nmsgstr ""\n\n'
        '#, fuzzy\nmsgid "Unsure"\nmsgstr "たぶん"\n'
    )
    assert untranslated(entries, messages) == [
        'empty: msgid "Blank" (t.html:1)',
        'missing: msgid "Gone" (t.html:1)',
        'fuzzy: msgid "Unsure" (t.html:1)',
    ]


def test_no_template_shows_english_it_does_not_mark():
    """Every page is born translatable: English text between tags, or in the title,
    placeholder, aria-label and alt a person reads, goes through {% translate %}."""
    template_dirs, _ = project_sources(BASE, settings.TEMPLATES[0]["DIRS"])
    templates = [path for folder in template_dirs for path in Path(folder).rglob("*.html")]
    assert len(templates) > 60
    problems = [
        f"{path.relative_to(BASE)}:{line}: {text!r}"
        for path in sorted(templates)
        for line, text in unmarked_texts(path.read_text(encoding="utf-8"))
    ]
    assert not problems, (
        f"{len(problems)} English text(s) a person reads are not marked for translation "
        "(wrap them in {% translate %} / {% blocktranslate %}):\n" + "\n".join(problems)
    )


def test_the_unmarked_text_check_finds_text_and_attributes_and_spares_data():
    source = (
        "{% load i18n %}\n"
        '<h1 title="Open it">{% translate "Marked" %}</h1>\n'
        "<p>Hello {{ user.username }}, welcome</p>\n"
        "<code>select 1</code><pre>raw log</pre>\n"
        "{% blocktranslate %}Inside a block{% endblocktranslate %}\n"
        '<input placeholder="mode=stress"><td>42 ms · CSV · JSON</td>\n'
        "<span>{{ finding.title }}</span> <small>--focus</small>\n"
        '<img alt="Chart of the runs">\n'
    )
    assert unmarked_texts(source) == [
        (2, "Open it"),
        (3, "Hello"),
        (3, ", welcome"),
        (8, "Chart of the runs"),
    ]


def test_every_analyzer_parameter_and_slo_text_has_a_japanese_translation():
    """The analyzers and the SLO table stay English and Django-free; the forms and pages
    look their labels and help up in the catalogue at render time."""
    texts = set()
    for kind in kinds.KINDS.values():
        for param in kind.params():
            if param.name not in FILLED_BY_PORTAL.get(kind.name, ()):
                texts |= {param.label or param.name.replace("_", " ").capitalize(), param.help}
    for threshold in slo.THRESHOLDS:
        texts |= {threshold.label, threshold.help}
    texts.discard("")
    assert len(texts) > 100
    catalogue = {
        entry.msgid: entry
        for entry in parse_po(JA_PO.read_text(encoding="utf-8"))
        if entry.msgctxt is None and not entry.obsolete
    }
    missing = sorted(t for t in texts if t not in catalogue or not catalogue[t].translated)
    assert not missing, f"add them to {JA_PO.relative_to(BASE)} with their Japanese:\n" + "\n".join(
        f"msgid {po_quote(t)}" for t in missing
    )


def test_a_job_form_in_japanese_shows_the_analyzers_labels_in_japanese(login, manager, target):
    UserPreference.objects.create(user=manager, language="ja")
    page = login(manager).get(reverse("job_params", args=[target.slug, "benchmark"]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "時間（秒）" in text and "レート（req/s）" in text
    assert ">Duration (s)<" not in text


# --- finding marked strings ------------------------------------------------------------


def test_templates_give_the_msgids_django_looks_up():
    source = (
        "{% load i18n %}\n"
        '<h1>{% translate "Open tasks" %}</h1>\n'
        '{% translate "50% done" %}\n'
        '{% translate "May" context "month" %}\n'
        "{% blocktranslate with n=phase.number %}Phase {{ n }}{% endblocktranslate %}\n"
        "{% blocktranslate count counter=items|length %}{{ counter }} item"
        "{% plural %}{{ counter }} items{% endblocktranslate %}\n"
        "{% blocktranslate trimmed %}\n  Two\n  lines\n{% endblocktranslate %}\n"
        '{{ name|default:_("nobody") }}\n'
    )
    found = {(m.msgctxt, m.msgid, m.msgid_plural): m.where for m in template_messages(source, "x")}
    assert found == {
        (None, "Open tasks", None): "x:2",
        (None, "50%% done", None): "x:3",
        ("month", "May", None): "x:4",
        (None, "Phase %(n)s", None): "x:5",
        (None, "%(counter)s item", "%(counter)s items"): "x:6",
        (None, "Two lines", None): "x:7",
        (None, "nobody", None): "x:11",
    }


def test_python_sources_give_literal_gettext_calls_only():
    source = (
        "from django.utils.translation import gettext as _, gettext_lazy, pgettext\n"
        "from django.utils.translation import ngettext as n_\n"
        "a = _('Saved.')\n"
        "b = gettext_lazy('Label')\n"
        "c = pgettext('verb', 'Run')\n"
        "d = n_('%(n)s run', '%(n)s runs', 2)\n"
        "e = _(variable)\n"
        "f = len('not marked')\n"
    )
    found = {(m.msgctxt, m.msgid, m.msgid_plural) for m in python_messages(source, "m.py")}
    assert found == {
        (None, "Saved.", None),
        (None, "Label", None),
        ("verb", "Run", None),
        (None, "%(n)s run", "%(n)s runs"),
    }


# --- reading .po and writing .mo -----------------------------------------------------


PO = r"""# a comment
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=1; plural=0;\n"

#: a.html:1
msgid "Sign out"
msgstr "ログアウト"

msgctxt "verb"
msgid "Run"
msgstr "実行"

msgid ""
"Two "
"\"lines\"\n"
msgstr "二行\n"

msgid "%(n)s run"
msgid_plural "%(n)s runs"
msgstr[0] "%(n)s 件の実行"

#, fuzzy
msgid "Guess"
msgstr "推測"

msgid "Untranslated"
msgstr ""

#~ msgid "Old"
#~ msgstr "古い"
"""


def test_a_po_file_is_read_with_contexts_plurals_flags_and_obsolete_entries():
    entries = {(e.msgctxt, e.msgid): e for e in parse_po(PO)}
    assert entries[(None, "Sign out")].msgstr == "ログアウト"
    assert entries[("verb", "Run")].msgstr == "実行"
    assert entries[(None, 'Two "lines"\n')].msgstr == "二行\n"
    assert entries[(None, "%(n)s run")].msgstr_plural == {0: "%(n)s 件の実行"}
    assert entries[(None, "Guess")].fuzzy
    assert not entries[(None, "Untranslated")].translated
    assert entries[(None, "Old")].obsolete


def test_the_mo_file_is_what_python_gettext_reads():
    catalogue = gettext.GNUTranslations(io.BytesIO(compile_mo(parse_po(PO))))
    assert catalogue.gettext("Sign out") == "ログアウト"
    assert catalogue.pgettext("verb", "Run") == "実行"
    assert catalogue.gettext('Two "lines"\n') == "二行\n"
    assert catalogue.ngettext("%(n)s run", "%(n)s runs", 5) == "%(n)s 件の実行"
    # Like msgfmt: fuzzy, empty and obsolete entries are left out.
    assert catalogue.gettext("Guess") == "Guess"
    assert catalogue.gettext("Untranslated") == "Untranslated"
    assert catalogue.gettext("Old") == "Old"
    assert catalogue.info()["content-type"] == "text/plain; charset=UTF-8"


def test_a_broken_po_file_is_refused_with_its_line():
    with pytest.raises(PoError, match="line 2"):
        parse_po('msgid "a"\nmsgstr "unterminated\n')


# --- the user's language ---------------------------------------------------------------


def test_a_user_who_chose_japanese_sees_the_japanese_navigation(login, manager):
    UserPreference.objects.create(user=manager, language="ja")
    response = login(manager).get(reverse("dashboard"))
    page = response.content.decode()
    assert '<html lang="ja">' in page
    assert "ダッシュボード" in page and "改善施策" in page and "ログアウト" in page
    assert ">Sign out<" not in page
    assert response["Content-Language"] == "ja"


def test_the_users_choice_wins_over_the_browsers(login, manager):
    UserPreference.objects.create(user=manager, language="en")
    page = login(manager).get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert ">Dashboard<" in page and "ダッシュボード" not in page


def test_without_a_choice_the_browsers_language_is_used(login, manager):
    page = login(manager).get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="ja,en;q=0.5")
    assert "ダッシュボード" in page.content.decode()
    page = login(manager).get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="fr")
    assert ">Dashboard<" in page.content.decode()


def test_the_login_page_follows_accept_language(client, db):
    page = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "ユーザー名" in page and "ログイン" in page
    english = client.get(reverse("login")).content.decode()
    assert "Username" in english and "ユーザー名" not in english


def test_choosing_a_language_saves_it_and_applies_at_once(login, manager):
    client = login(manager)
    response = client.post(reverse("set_language"), {"language": "ja"}, follow=True)
    assert UserPreference.objects.get(user=manager).language == "ja"
    assert "表示言語を保存しました。" in response.content.decode()
    assert "ダッシュボード" in client.get(reverse("dashboard")).content.decode()
    client.post(reverse("set_language"), {"language": ""})
    assert UserPreference.objects.get(user=manager).language == ""
    assert ">Dashboard<" in client.get(reverse("dashboard")).content.decode()


def test_a_later_session_starts_in_the_saved_language(client, manager):
    UserPreference.objects.create(user=manager, language="ja")
    client.force_login(manager)  # the login hook reads the choice into the session
    assert client.session["language"] == "ja"
    assert "ダッシュボード" in client.get(reverse("dashboard")).content.decode()


def test_an_unknown_language_is_refused(login, manager):
    response = login(manager).post(reverse("set_language"), {"language": "fr"}, follow=True)
    assert not UserPreference.objects.filter(user=manager).exists()
    assert "Choose one of the languages offered." in response.content.decode()


def test_the_language_form_needs_a_signed_in_user_and_a_post(client, login, manager, db):
    response = client.post(reverse("set_language"), {"language": "ja"})
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert not UserPreference.objects.exists()
    assert login(manager).get(reverse("set_language")).status_code == 405


def test_the_language_form_needs_its_csrf_token(manager):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    assert client.post(reverse("set_language"), {"language": "ja"}).status_code == 403
    assert not UserPreference.objects.filter(user=manager).exists()


def test_the_settings_page_offers_the_languages(login, manager):
    page = login(manager).get(reverse("profile")).content.decode()
    assert 'action="/me/language/"' in page
    assert '<option value="ja">日本語</option>' in page


def test_dates_follow_the_language(login, manager):
    import datetime

    from django.utils import timezone

    note = Notification.objects.create(user=manager, subject="Load test #7 finished")
    at = timezone.make_aware(datetime.datetime(2026, 3, 5, 14, 30), datetime.UTC)
    Notification.objects.filter(pk=note.pk).update(created_at=at)
    client = login(manager)
    assert "Mar 5, 14:30" in client.get(reverse("inbox")).content.decode()
    UserPreference.objects.create(user=manager, language="ja")
    client = login(manager)
    page = client.get(reverse("inbox")).content.decode()
    assert "3月5日 14:30" in page and "すべて既読にする" in page


def test_mail_goes_out_in_the_users_language_else_english(manager, dev_engineer):
    UserPreference.objects.create(user=manager, language="ja")
    assert language_for(manager) == "ja"
    assert language_for(dev_engineer) == settings.LANGUAGE_CODE == "en"


def test_missing_strings_are_added_to_the_catalogue_untranslated(settings, tmp_path):
    from django.core.management import call_command

    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "page.html").write_text(
        '{% load i18n %}{% translate "Kept" %}\n{% translate "New" %}\n'
        "{% blocktranslate count n=runs %}{{ n }} run{% plural %}{{ n }} runs"
        "{% endblocktranslate %}",
        encoding="utf-8",
    )
    po = tmp_path / "locale" / "ja" / "LC_MESSAGES" / "django.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid ""\nmsgstr ""\n\n#: old\nmsgid "Kept"\nmsgstr "保持"\n', encoding="utf-8")
    settings.BASE_DIR = tmp_path
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path / "templates"]}]
    call_command("add_missing_translations", stdout=io.StringIO())
    text = po.read_text(encoding="utf-8")
    assert text.startswith('msgid ""\nmsgstr ""\n\n#: old\nmsgid "Kept"\nmsgstr "保持"\n')
    entries = {entry.msgid: entry for entry in parse_po(text)}
    assert entries["New"].msgstr == "" and entries["New"].line > entries["Kept"].line
    assert entries["%(n)s run"].msgid_plural == "%(n)s runs"
    assert not entries["%(n)s run"].translated
    call_command("add_missing_translations", stdout=io.StringIO())
    assert po.read_text(encoding="utf-8") == text  # nothing added twice


def test_the_json_api_stays_english_whatever_the_client_asks(client, manager):
    UserPreference.objects.create(user=manager, language="ja")
    client.force_login(manager)
    response = client.get("/api/me", HTTP_ACCEPT_LANGUAGE="ja")
    assert response.status_code == 401 and response["Content-Language"] == "en"
    assert "ダッシュボード" in client.get(reverse("dashboard")).content.decode()


def test_any_signed_in_person_may_choose_their_own_language(login, outsider):
    login(outsider).post(reverse("set_language"), {"language": "ja"})
    assert UserPreference.objects.get(user=outsider).language == "ja"


def test_a_japanese_page_writes_dates_the_japanese_way(login, manager, initiative):
    import datetime

    initiative.target_date = datetime.date(2026, 3, 5)
    initiative.save(update_fields=["target_date"])
    client = login(manager)
    assert "March 5, 2026" in client.get(reverse("dashboard")).content.decode()
    page = client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "2026年3月5日" in page


def test_a_select_s_empty_choice_reads_japanese():
    # Django 6 says "- Select an option -" for a select's empty choice; its own ja
    # catalogue has no translation for it, so ours gives one (the compare page's selects).
    class Pick(forms.Form):
        target = forms.ModelChoiceField(queryset=Notification.objects.none())

    with translation.override("ja"):
        html = str(Pick()["target"])
    assert "― 選択してください ―" in html and "Select an option" not in html
