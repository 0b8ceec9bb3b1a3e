"""htmx comes from django-htmx's bundled copy, served by the portal itself (no CDN)."""

import re
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders

SCRIPT_SRC = re.compile(r'<script[^>]*\ssrc="([^"]+)"')


def test_every_page_script_is_our_own_and_htmx_is_django_htmxs_copy(login, manager, initiative):
    page = login(manager).get(initiative.get_absolute_url()).content.decode()
    sources = SCRIPT_SRC.findall(page)
    # script-src 'self': nothing is loaded from another origin.
    assert sources and all(src.startswith("/static/") for src in sources), sources
    assert "/static/django_htmx/htmx-2.min.js" in sources
    assert not any("vendor/htmx" in src for src in sources)


def test_the_bundled_htmx_is_major_version_2():
    path = finders.find("django_htmx/htmx-2.min.js")
    assert path is not None
    assert re.search(r'version:"2\.\d+\.\d+"', Path(path).read_text(encoding="utf-8"))
    # Our own hand-vendored copy is gone: one htmx, the one django-htmx keeps current.
    assert not (Path(settings.BASE_DIR) / "static" / "vendor" / "htmx.min.js").exists()
