"""The SLOs of DESIGN.md, editable per target: the table lives with the analyzers.

``optimizations.analyzers.slo`` is the one copy (Django-free, so every analyzer
reads it); this module is where the portal's code has always imported it from.
"""

from optimizations.analyzers.slo import (  # noqa: F401
    BY_KEY,
    CALLS,
    MS,
    PCT,
    RPS,
    THRESHOLDS,
    Threshold,
    defaults,
    meets,
    merged,
    ratio,
)
