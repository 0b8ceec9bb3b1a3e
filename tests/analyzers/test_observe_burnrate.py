"""Error budgets and multiwindow, multi-burn-rate alerts, judged with an injected clock."""

from datetime import UTC, datetime, timedelta

import pytest

from optimizations.analyzers.observe import burnrate
from optimizations.analyzers.observe.burnrate import AlertRule, Bucket

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
OBJECTIVE = 0.999  # a budget of 0.1 % bad events


def clock():
    return NOW


def minutes(count, good, bad, ending=NOW):
    """``count`` minute buckets of ``good``/``bad`` events, the last one starting a minute
    before ``ending``."""
    return [Bucket(ending - timedelta(minutes=n), good, bad) for n in range(count, 0, -1)]


def states(buckets, rules=burnrate.DEFAULT_RULES):
    return {s.rule.name: s for s in burnrate.evaluate(buckets, OBJECTIVE, rules, clock=clock)}


def test_a_healthy_service_fires_nothing():
    judged = states(minutes(3 * 24 * 60, good=1000, bad=0))

    assert {name: s.verdict for name, s in judged.items()} == {
        "fast burn": "pass",
        "slow burn": "pass",
        "steady burn": "pass",
    }
    assert judged["fast burn"].long.total == 60 * 1000
    assert judged["fast burn"].reason == (
        "burn rate 0.0× over 1 h, 0.0× over 5 min (threshold 14.4×)"
    )


def test_a_fast_burn_pages_when_both_windows_burn():
    # An hour at 2 % bad: 20× the 0.1 % allowance, in the long and the short window.
    judged = states(minutes(60, good=980, bad=20))

    fast = judged["fast burn"]
    assert fast.firing and fast.rule.severity == "page"
    assert fast.long.burn_rate == pytest.approx(20.0)
    assert fast.short.burn_rate == pytest.approx(20.0)
    assert judged["slow burn"].firing  # 6× over 6 h: only this hour has events, at 20×


def test_a_burn_that_stopped_does_not_page_any_more():
    # The hour burnt at 20×, but the last 5 minutes were clean: the short window resets it.
    buckets = minutes(55, good=980, bad=20, ending=NOW - timedelta(minutes=5))
    buckets += minutes(5, good=1000, bad=0)

    fast = states(buckets)["fast burn"]

    assert fast.long.burn_rate == pytest.approx(20 * 55 / 60)
    assert fast.short.burn_rate == 0.0
    assert fast.verdict == "pass"


def test_a_short_spike_alone_does_not_page():
    # Five minutes at 5 % bad in an otherwise clean hour: 50× short, but 4.2× over the hour.
    buckets = minutes(55, good=1000, bad=0, ending=NOW - timedelta(minutes=5))
    buckets += minutes(5, good=950, bad=50)

    fast = states(buckets)["fast burn"]

    assert fast.short.burn_rate == pytest.approx(50.0)
    assert fast.long.burn_rate == pytest.approx(250 / 60_000 / 0.001)
    assert fast.verdict == "pass"


def test_the_window_edges_to_the_minute():
    # The 5-minute window at 12:00 holds the buckets of 11:55 .. 11:59, not 11:54 nor 12:00.
    buckets = [
        Bucket(NOW - timedelta(minutes=6), 0, 7),
        Bucket(NOW - timedelta(minutes=5), 10, 0),
        Bucket(NOW - timedelta(minutes=1), 10, 0),
        Bucket(NOW, 0, 9),
    ]

    rate = burnrate.window_rate(buckets, OBJECTIVE, timedelta(minutes=5), NOW)

    assert (rate.good, rate.bad, rate.burn_rate) == (20, 0, 0.0)


def test_a_window_without_events_is_incomplete_and_says_how_to_get_some():
    # Events stopped 10 minutes ago: the 5-minute window has nothing to judge.
    judged = states(minutes(50, good=0, bad=10, ending=NOW - timedelta(minutes=10)))

    fast = judged["fast burn"]
    assert fast.verdict == "incomplete" and not fast.firing
    assert fast.reason.startswith("no events in the last 5 min: give the target a health path")
    assert burnrate.evaluate([], OBJECTIVE, clock=clock)[2].reason.startswith(
        "no events in the last 3 d"
    )


def test_the_steady_burn_opens_a_ticket():
    # Three days at 1.5× the allowance.
    judged = states(minutes(3 * 24 * 60, good=9985, bad=15))

    assert judged["steady burn"].firing and judged["steady burn"].rule.severity == "ticket"
    assert not judged["fast burn"].firing and not judged["slow burn"].firing


def test_live_checks_use_short_windows_of_their_own():
    rules = [AlertRule("live", "page", 2.0, timedelta(minutes=10), timedelta(minutes=2))]

    judged = states(minutes(10, good=99, bad=1), rules)

    assert judged["live"].firing and judged["live"].long.burn_rate == pytest.approx(10.0)


def test_the_budget_of_the_month_so_far():
    last_month = minutes(60, good=0, bad=1000, ending=datetime(2026, 3, 1, tzinfo=UTC))
    this_month = minutes(100, good=9995, bad=5)  # 0.05 % bad: half the budget

    spent = burnrate.budget(last_month + this_month, OBJECTIVE, clock=clock)

    assert (spent.period_start, spent.period_end) == (
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 4, 1, tzinfo=UTC),
    )
    assert (spent.good, spent.bad, spent.total) == (999_500, 500, 1_000_000)
    assert spent.allowed_bad == pytest.approx(1000)
    assert spent.consumed == pytest.approx(0.5) and spent.remaining == pytest.approx(0.5)
    assert spent.verdict == "pass"


def test_an_overspent_budget_fails_and_no_events_is_incomplete():
    overspent = burnrate.budget(minutes(10, good=90, bad=10), OBJECTIVE, clock=clock)
    nothing = burnrate.budget([], OBJECTIVE, clock=clock)

    assert overspent.remaining == pytest.approx(1 - 100) and overspent.verdict == "fail"
    assert (nothing.remaining, nothing.verdict) == (None, "incomplete")


def test_december_rolls_over_to_january():
    december = burnrate.budget([], OBJECTIVE, clock=lambda: datetime(2026, 12, 31, 23, tzinfo=UTC))

    assert december.period_end == datetime(2027, 1, 1, tzinfo=UTC)


def test_bucketize_aligns_events_on_the_minute():
    events = [
        (datetime(2026, 3, 10, 11, 58, 59, 999999, tzinfo=UTC), True),
        (datetime(2026, 3, 10, 11, 59, 0, tzinfo=UTC), False),
        (datetime(2026, 3, 10, 11, 59, 30, tzinfo=UTC), True),
        (datetime(2026, 3, 10, 11, 58, 0, tzinfo=UTC), True),
    ]

    assert burnrate.bucketize(events) == [
        Bucket(datetime(2026, 3, 10, 11, 58, tzinfo=UTC), 2, 0),
        Bucket(datetime(2026, 3, 10, 11, 59, tzinfo=UTC), 1, 1),
    ]
    with pytest.raises(ValueError, match="aware"):
        burnrate.bucketize([(datetime(2026, 3, 10), True)])


def test_alert_rules_round_trip_and_refuse_nonsense():
    rule = burnrate.DEFAULT_RULES[0]

    assert AlertRule.from_dict(rule.as_dict()) == rule
    assert rule.as_dict()["long_window_s"] == 3600
    with pytest.raises(ValueError, match="needs short_window_s"):
        AlertRule.from_dict({"name": "x", "severity": "page", "burn_rate": 2, "long_window_s": 60})
    with pytest.raises(ValueError, match="are numbers"):
        AlertRule.from_dict({**rule.as_dict(), "burn_rate": "fast"})
    with pytest.raises(ValueError, match="shorter than the long one"):
        AlertRule.from_dict({**rule.as_dict(), "short_window_s": 7200})
    with pytest.raises(ValueError, match="page or ticket"):
        AlertRule.from_dict({**rule.as_dict(), "severity": "sms"})
    with pytest.raises(ValueError, match="positive"):
        AlertRule.from_dict({**rule.as_dict(), "burn_rate": 0})


def test_objectives_and_clocks_are_checked():
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        burnrate.budget([], 1.0, clock=clock)
    with pytest.raises(ValueError, match="aware datetime"):
        burnrate.evaluate([], OBJECTIVE, clock=lambda: datetime(2026, 3, 10))
