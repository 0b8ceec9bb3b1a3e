"""The main work pages in Japanese show no English UI words (issue 18), in a real browser.

What a person reads in ``<main>`` is collected from the rendered page; data is
left aside — code and pre blocks, text marked ``lang="en"`` (a finding's stored
English title), and the names, slugs, usernames, rule ids, parameters and
locations the demo's rows hold. What remains must have no English word but the
units, formats and product names that read the same in both languages.
"""

import datetime
import re
from pprint import pformat

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from departments.models import Department, Runbook, Topic
from departments.runbook_templates import ensure_topics
from optimizations.models import Finding, Initiative, Job, Phase, Schedule, TargetService
from portal.demo import DEMO_TARGET_SLUG, load_demo
from portal.i18n import UNTRANSLATED_WORDS
from portal.models import AuditEvent
from tests.browser.test_pages import sign_in
from tests.conftest import PASSWORD
from tests.factories import benchmark_job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The text of <main> a person reads: code, preformatted blocks and English data left out.
VISIBLE_TEXT = """() => {
  const skip = 'code, pre, kbd, samp, script, style, [lang=en], [hidden], .mono';
  const out = [];
  const walker = document.createTreeWalker(document.querySelector('main'), NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const element = node.parentElement;
    if (!element || element.closest(skip)) continue;
    if (!element.getClientRects().length) continue;  // not rendered (a closed <details>…)
    out.push(node.textContent);
  }
  for (const element of document.querySelectorAll('main [title], main [aria-label]')) {
    if (element.closest(skip)) continue;
    for (const name of ['title', 'aria-label']) {
      if (element.getAttribute(name)) out.push(element.getAttribute(name));
    }
  }
  // A placeholder that is an example of a value (mode=stress, FSA1, db.fk) is not words.
  for (const element of document.querySelectorAll('main [placeholder]')) {
    const value = element.getAttribute('placeholder');
    if (!/[=.,:\\/@]/.test(value)) out.push(value);
  }
  return out.join('\\n');
}"""


@pytest.fixture
def demo(departments):
    ensure_topics(Topic)
    load_demo(PASSWORD, "http://127.0.0.1:9")
    target = TargetService.objects.get(slug=DEMO_TARGET_SLUG)
    initiative = Initiative.objects.get(target=target)
    job = benchmark_job(
        target,
        finished=timezone.now() - datetime.timedelta(hours=1),
        initiative=initiative,
        per_second={
            "p50_ms": [40.0 + i for i in range(20)],
            "p95_ms": [120.0 + 3 * i for i in range(20)],
            "p99_ms": [200.0 + 5 * i for i in range(20)],
            "achieved": [95.0 + (i % 3) for i in range(20)],
            "ok": [95.0] * 20,
        },
        verdict="pass",
    )
    now = timezone.now()
    Finding.objects.create(
        target=target,
        source="code",
        rule_id="FSA101",
        severity="high",
        category="orm",
        title="Query inside a loop over query results (N+1): orders.items per order",
        location="app/routes/orders.py:42",
        fingerprint="fsa101-orders",
        first_seen_at=now - datetime.timedelta(days=1),
        last_seen_at=now,
    )
    return target, job


def data_words(target: TargetService) -> set[str]:
    """Words the pages show as data: what the rows hold, not what Kaizen says."""
    texts = [target.name, target.slug, target.base_url, target.description]
    texts += list(get_user_model().objects.values_list("username", flat=True))
    texts += list(Department.objects.values_list("name", flat=True))
    texts += list(Initiative.objects.values_list("title", flat=True))
    texts += list(Phase.objects.values_list("name", flat=True))
    texts += list(Runbook.objects.values_list("title", flat=True))
    texts += list(Schedule.objects.values_list("name", flat=True))
    texts += list(AuditEvent.objects.values_list("summary", flat=True))  # stored as written
    # The run modes and their focus tags: the CLI's vocabulary, shown as such.
    texts += [*Initiative.ALL_FOCUS, *(mode for mode, _label in Initiative.RUN_MODES)]
    texts += ["load", "open", "closed", "stress", "endurance"]  # a load test's type and model
    for job in Job.objects.all():
        texts += [job.kind, *map(str, job.params), *map(str, job.params.values())]
    for rule_id, location in Finding.objects.values_list("rule_id", "location"):
        texts += [rule_id, location]
    return {word for text in texts if text for word in re.findall(r"[A-Za-z][A-Za-z']+", text)}


# Not words but names: URLs, options, paths, files, snake_case settings, commands, products.
IDENTIFIERS = re.compile(
    r"https?://\S+|--[\w-]+|\.?/[\w./-]+|\b\w+\.md\b|\b\w+_\w+\b|\./kaizen \w+|Celery beat"
)


def english_words(text: str, allowed: set[str]) -> list[str]:
    words = re.findall(
        r"[A-Za-z][A-Za-z']+",
        re.sub(IDENTIFIERS, "", text),
    )
    return sorted({word for word in words if word not in allowed})


def test_the_job_target_findings_and_slo_pages_in_japanese_show_no_english_ui_words(
    browser_page, live_server, demo
):
    target, job = demo
    page = browser_page
    page.set_extra_http_headers({"Accept-Language": "ja"})
    sign_in(page, live_server.url, "dev.manager")
    allowed = set(UNTRANSLATED_WORDS) | data_words(target)

    report = {}
    for name, path in {
        "job page": reverse("job_detail", args=[job.pk]),
        "target page": reverse("target_detail", args=[target.slug]),
        "findings list": reverse("finding_list", args=[target.slug]),
        "SLO board": reverse("target_slo", args=[target.slug]),
    }.items():
        page.goto(live_server.url + path)
        page.wait_for_load_state("load")
        assert page.get_attribute("html", "lang") == "ja"
        text = page.evaluate(VISIBLE_TEXT)
        assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", text), f"{name}: no Japanese at all"
        lines = [
            " ".join(line.split())[:160]
            for line in text.split("\n")
            if english_words(line, allowed)
        ]
        if lines:
            report[name] = sorted(set(lines))
    assert report == {}, pformat(report, width=170)
