"""Append each marked string a catalogue lacks to it, with an empty msgstr to fill in.

What ``makemessages`` does with GNU xgettext, in Python: templates are read
with Django's templatize, Python with ast (portal/i18n.py). Existing entries
are left exactly as they are; tests/portal/test_translations.py names the
new, still empty ones until they are translated.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.i18n import catalogues, missing_entries, parse_po, project_messages, project_sources


class Command(BaseCommand):
    help = "Add every marked string missing from locale/*/LC_MESSAGES/django.po, untranslated."

    def handle(self, *args, **options):
        base = Path(settings.BASE_DIR)
        template_dirs, python_dirs = project_sources(base, settings.TEMPLATES[0]["DIRS"])
        messages = project_messages(base, template_dirs, python_dirs)
        for po in catalogues(base):
            text = po.read_text(encoding="utf-8")
            added = missing_entries(messages, parse_po(text))
            if not added:
                continue
            po.write_text(text.rstrip("\n") + "\n\n" + added, encoding="utf-8")
            count = added.count("\nmsgid ")
            self.stdout.write(f"{po.relative_to(base)}: {count} string(s) to translate")
