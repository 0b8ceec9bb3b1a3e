"""Hooks: how a lower part of Kaizen lets a higher one act on its changes without
importing it.

``optimizations`` does not import ``departments``' actions (runbooks, training
sit above the optimization work and call into it), and the plan (``work``)
does not import the job machinery (``jobs`` stores its results through the
plan); when the lower part changes something the higher one acts on, it calls
a hook here by name, and the higher part registers its function in its app's
``AppConfig.ready()`` (departments/apps.py, optimizations/apps.py). Plain function
calls in the caller's transaction, in registration order — not Django signals:
every hook is named below, a call to an unknown name raises, and an exception
in a hook reaches the caller (a state change must not half-happen quietly).
"""

from __future__ import annotations

from collections.abc import Callable

# name → what it is called with, and when.
HOOKS = {
    "phase_done": "(initiative, phase, actor) after a phase moved to done, in its transaction",
    "initiative_done": "(actor, initiative) after an initiative moved to done, in its transaction",
    "target_created": "(target, actor) after a target was registered, in its transaction",
    "target_written": "(target, log) after a job that wrote through the target's API "
    "(the integrity probes, a load test with allow_writes) ran, while it holds the lease",
    "postmortem_template_needed": "(actor) when a postmortem is begun and no runbook made "
    "from HR's 'postmortem' template exists: create it",
}

_registered: dict[str, list[Callable[..., object]]] = {name: [] for name in HOOKS}


def register(name: str, function: Callable[..., object]) -> None:
    """Call ``function`` whenever ``name`` is called (once, however often registered)."""
    if name not in HOOKS:
        raise KeyError(f"no hook named {name!r}; the hooks are {', '.join(HOOKS)}")
    if function not in _registered[name]:
        _registered[name].append(function)


def call(name: str, *args: object) -> None:
    """Run the functions registered for ``name``, in the order they were registered."""
    if name not in HOOKS:
        raise KeyError(f"no hook named {name!r}; the hooks are {', '.join(HOOKS)}")
    for function in _registered[name]:
        function(*args)


def registered(name: str) -> list[Callable[..., object]]:
    """The functions registered for ``name`` (for tests and the system check)."""
    return list(_registered[name])
