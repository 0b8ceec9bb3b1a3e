"""The load engine: open, closed, stress and endurance benchmarks of a target's HTTP API.

The portal's benchmark job calls ``run(target, params, ctx)`` with ``PARAMS``
(or one mode's list from ``PARAMS_BY_MODE``); see ``modes`` for the modes,
``report`` for the summary and measurements, ``verdicts`` for the SLOs and
``runner`` for the engine processes.
"""

import importlib
from typing import Any

__all__ = ["MODES", "PARAMS", "PARAMS_BY_MODE", "merge_summaries", "run"]
_HOMES = {"merge_summaries": "report"}


def __getattr__(name: str) -> Any:
    # Imported lazily: the engine process starts as ``-m ...loadgen.engine`` and
    # must not pull the analyzer (and the engine module itself) in through here.
    if name in __all__:
        module = importlib.import_module(f"{__name__}.{_HOMES.get(name, 'modes')}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
