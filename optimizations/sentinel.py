"""The regression sentinel: scheduled re-runs of a finished initiative's benchmark."""

from __future__ import annotations


def check_after_run(run) -> None:
    """Compare a sentinel run with its reference; built in issue 9 (portfolio)."""
    return None
