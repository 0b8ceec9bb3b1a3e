"""Acceptance criteria of tasks made from findings, checked when a run lands."""

from __future__ import annotations


def check_after_run(run) -> None:
    return None
