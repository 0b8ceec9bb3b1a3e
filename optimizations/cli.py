"""``fastapi-sqlalchemy-optimize``: the organisation's former optimizer command, on Kaizen.

Installed as a console script (pyproject's ``[project.scripts]``), so
``fastapi-sqlalchemy-optimize comprehensive --target shop-api --user qa.engineer --wait``
works from any directory; it is ``manage.py optimize`` with the same arguments,
output and exit codes (the run's verdict: 0 pass, 1 fail, 2 error / cancelled /
could not start, 3 incomplete), as its ``--help`` says.
"""

from __future__ import annotations

import os
import sys

import django
from django.core.management import load_command_class

PROG = "fastapi-sqlalchemy-optimize"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    # The command found by name, as manage.py finds it: its module reads models, so it
    # is imported once Django is set up.
    command = load_command_class("optimizations", "optimize")
    argv = sys.argv if argv is None else argv
    # load_command_class is typed to return BaseCommand: this one is optimize's Command.
    command.standalone_prog = PROG  # type: ignore[attr-defined]
    # run_from_argv parses, runs, reports a CommandError and exits with the command's code.
    command.run_from_argv([PROG, "optimize", *argv[1:]])
    return 0
