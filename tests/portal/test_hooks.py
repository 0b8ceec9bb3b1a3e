"""portal.hooks: the named calls through which a lower part of Kaizen reaches a higher one."""

import pytest

from departments.actions import flag_runbooks_for_review
from optimizations.jobs import schedules, sentinel
from portal import hooks


def test_departments_register_their_runbook_review_for_a_finished_phase():
    assert hooks.registered("phase_done") == [flag_runbooks_for_review]


def test_the_job_machinery_guards_finished_initiatives_and_schedules_new_targets():
    assert hooks.registered("initiative_done") == [sentinel.arm]
    assert hooks.registered("target_created") == [schedules.create_default_schedules]


def test_registering_twice_calls_once():
    hooks.register("phase_done", flag_runbooks_for_review)
    assert hooks.registered("phase_done").count(flag_runbooks_for_review) == 1


def test_an_unknown_hook_name_is_refused_both_ways():
    with pytest.raises(KeyError, match="phase_done"):
        hooks.register("phase_finished", print)
    with pytest.raises(KeyError, match="no hook named 'phase_finished'"):
        hooks.call("phase_finished")
