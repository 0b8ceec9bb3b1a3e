"""Why a run cannot start: reasons a person reads and a program tells apart.

A leaf module (it imports nothing of Kaizen) so that the preflight, the
engine and the start limits can all raise the same exceptions without
importing one another in a circle.
"""

from __future__ import annotations

from dataclasses import dataclass

# Reason codes (stable: the API's 404/409/422/429 and the command line read them).
KIND = "kind"  # no such job kind
LINK_UNKNOWN = "link.unknown"  # no initiative, phase or task of that number
LINK_ELSEWHERE = "link.elsewhere"  # the initiative is about another target
MODE = "mode"  # no such run mode, or a mode that is not a run
FOCUS = "focus"  # a focus tag the mode does not have
PARAMS = "params"  # a parameter unknown to its kind, or a value it refuses
UNAVAILABLE = "unavailable"  # the kind is not yet available in this Kaizen
TRAINING = "training"  # a training gate of the target asks for a module first
NOTHING_TO_RUN = "nothing_to_run"  # every job lacks what it needs (skipped), none is left
WRITES = "writes"  # a job that writes through the API, on a target that allows no writes
LIMIT = "limit"  # too many starts (KAIZEN_*_START_RATE, KAIZEN_*_QUEUE_MAX)
BROKER = "broker"  # the job queue cannot be reached

# What the person sent was wrong (the API's 422, with the field); the others are
# about the target, the person or the moment (409, 429, 503).
INPUT = frozenset({KIND, LINK_ELSEWHERE, MODE, FOCUS, PARAMS, UNAVAILABLE})


@dataclass(frozen=True)
class Reason:
    """One reason a run cannot start: ``message`` for a person, ``code`` for a program,
    ``field`` the input it is about (("params", "benchmark", "rate"), ("initiative",))."""

    code: str
    message: str
    field: tuple[str, ...] = ()


class CannotStart(Exception):
    """A run could not start; the message says why, for a person, and ``reasons`` one
    by one (the preflight's answer)."""

    def __init__(self, message: str, reasons: list[Reason] | tuple[Reason, ...] = ()):
        super().__init__(message)
        self.reasons = list(reasons)


class BrokerUnavailable(CannotStart):
    """The job queue cannot be reached, so nothing was started."""


class TooManyStarts(CannotStart):
    """A limit on starting jobs was reached; ``retry_after`` says when to try again (s)."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, [Reason(LIMIT, message)])
        self.retry_after = max(1, int(retry_after))
