"""A real browser: Debian's Chromium driven by Playwright, skipped only off CI."""

import datetime
import os
import shutil
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone

from departments.models import Topic
from departments.runbook_templates import ensure_topics
from optimizations.models import Initiative, TargetService
from portal.demo import DEMO_TARGET_SLUG, load_demo
from tests.conftest import PASSWORD, need
from tests.factories import benchmark_job

CHROMIUM = os.environ.get("KAIZEN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def browser_page(monkeypatch, request):
    need(
        Path(CHROMIUM).exists(),
        f"no Chromium at {CHROMIUM} (Debian: apt install chromium; or set KAIZEN_CHROMIUM)",
    )
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the test still
    # reads the database between browser steps, which is safe here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
            browser.close()
            # Inside Playwright's event loop Django keeps separate connections
            # (asgiref's context-local storage); close them here, where they are
            # visible, or PostgreSQL cannot drop the test database at the end.
            connections.close_all()


@pytest.fixture
def demo(departments):
    """The demo's target and initiative with one finished benchmark: (target, initiative, job)."""
    # A transactional test flushes what the data migrations made; put the topics back.
    ensure_topics(Topic)
    load_demo(PASSWORD, "http://127.0.0.1:9")
    target = TargetService.objects.get(slug=DEMO_TARGET_SLUG)
    initiative = Initiative.objects.get(target=target)
    finished = timezone.now() - datetime.timedelta(hours=1)
    job = benchmark_job(
        target,
        finished=finished,
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
    return target, initiative, job
