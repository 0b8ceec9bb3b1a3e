"""Compile locale/*/LC_MESSAGES/*.po into .mo files, in Python (no GNU gettext needed)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.i18n import PoError, catalogues, compile_catalogue


class Command(BaseCommand):
    help = "Write each catalogue's .mo beside its .po (--check: only say which are stale)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="exit 1 when a .mo differs from its .po"
        )

    def handle(self, *args, check=False, **options):
        stale = []
        for po in catalogues(Path(settings.BASE_DIR)):
            try:
                data = compile_catalogue(po)
            except PoError as exc:
                raise CommandError(f"{po}: {exc}") from exc
            mo = po.with_suffix(".mo")
            if mo.exists() and mo.read_bytes() == data:
                continue
            stale.append(mo)
            if not check:
                mo.write_bytes(data)
                self.stdout.write(f"wrote {mo.relative_to(settings.BASE_DIR)}")
        if check and stale:
            names = ", ".join(str(mo.relative_to(settings.BASE_DIR)) for mo in stale)
            raise CommandError(f"stale: {names} (run manage.py compile_translations)")
