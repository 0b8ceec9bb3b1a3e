"""Switch the demo target between slow and fast mode, and reseed it."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal import demo_target


class Command(BaseCommand):
    help = (
        "Show or change the demo target's mode. A running ./kaizen up restarts the target "
        "in the new mode within a second."
    )

    def add_arguments(self, parser):
        parser.add_argument("--mode", choices=demo_target.MODES, help="slow or fast")
        parser.add_argument(
            "--reseed", action="store_true", help="drop and regenerate the demo target's data"
        )

    def handle(self, *args, mode=None, reseed=False, **options):
        var_dir = Path(settings.VAR_DIR)
        state = demo_target.reload_state(var_dir)
        if not state.database_url:
            raise CommandError("The demo target has not been set up yet: run ./kaizen up first.")
        if reseed:
            self.stdout.write(f"Reseeding the demo target's {state.database_label} database…")
            demo_target.seed(state, reset=True)
        if mode and mode != state.mode:
            state.mode = mode
            demo_target.save_state(state)
            self.stdout.write(f"Demo target switched to {mode} mode.")
        self.stdout.write(
            f"Demo target: {state.mode} mode on {state.database_label}, {state.base_url}"
        )
