"""A real browser: Debian's Chromium driven by Playwright, skipped only off CI."""

import os
import shutil
from pathlib import Path

import pytest
from django.db import connections

from tests.conftest import need

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
