"""What happens when a run lands: tasks check their criteria, sentinels compare.

Called once per run, by the job that finished it (runner.finish). Each step
runs on its own, so a failing step never keeps the others (or the run's own
notification) from happening.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def run_landed(run) -> None:
    from optimizations.jobs import sentinel
    from optimizations.work import criteria

    for step in (criteria.check_after_run, sentinel.check_after_run):
        try:
            step(run)
        except Exception:
            log.exception("after run %s: %s failed", run.pk, step.__module__)
