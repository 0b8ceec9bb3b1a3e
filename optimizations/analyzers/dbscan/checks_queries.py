"""Statement checks over the analysis window: average query time, slow-query
rate (bounds, estimate, exact when samples exist) and slow families."""

from __future__ import annotations

from collections.abc import Iterable

from ..base import FindingData
from .attribution import routes_from_comment
from .common import DOCS, ScanState, normalise_sql, short
from .slowrate import SlowRate, exact_rate, window_rate
from .snapshots import Family

LOAD_FIX = "scan while the target serves traffic (e.g. during a benchmark) or with a longer window"


def pgss_unknown(state: ScanState, check_ids: Iterable[str]) -> None:
    why, fix = state.caps.pgss_unknown()
    for check_id in check_ids:
        state.unknown(check_id, f"pg_stat_statements: {why}", fix)


def avg_query_time(state: ScanState, families: list[Family], window_s: float | None) -> None:
    t = state.thresholds
    calls = sum(f.calls for f in families)
    total = sum(f.total_ms for f in families)
    scope = f"{window_s:g}s window" if window_s else "since statistics reset"
    if calls == 0:
        state.unknown(
            "db.avg_query_time",
            f"no statement ran in the {scope}",
            LOAD_FIX,
        )
        return
    avg = total / calls
    state.summary.update(avg_query_ms=round(avg, 3), calls=calls, db_time_ms=round(total, 1))
    state.measure("db.query.avg", round(avg, 4), "ms", scope=scope)
    state.measure("db.calls", calls, "count", scope=scope)
    if window_s:
        state.measure("db.query.throughput", round(calls / window_s, 2), "1/s")
    detail = f"{avg:.2f} ms over {calls:,} calls ({scope})"
    if avg <= t.db_avg_ms:
        state.passed("db.avg_query_time", detail)
        return
    top = [
        {
            "query": short(f.query, 200),
            "share_pct": round(100 * f.share, 1),
            "mean_ms": round(f.mean_ms, 2),
        }
        for f in families[:5]
    ]
    state.add(
        FindingData(
            rule_id="db.avg_query_time",
            title=f"Average query time {avg:.1f} ms exceeds the {t.db_avg_ms:g} ms SLO",
            severity="high",
            category="performance",
            location=state.caps.database,
            key=f"avg_query_time:{state.caps.database}",
            evidence={"avg_ms": round(avg, 3), "calls": calls, "scope": scope, "top_families": top},
            fix_hint="Fix the statement families with the largest share of time first (below).",
            doc_url=DOCS + "pgstatstatements.html",
        )
    )
    state.failed("db.avg_query_time", detail)


def slow_query_rate(
    state: ScanState, families: list[Family], exact: tuple[float, str] | None
) -> SlowRate | None:
    t = state.thresholds
    rate, per_family = window_rate(families, t.slow_query_ms)
    state.facts["slow_counts"] = per_family
    if rate.calls == 0 and exact is None:
        state.unknown(
            "db.slow_query_rate",
            "no statement ran in the window",
            LOAD_FIX,
        )
        return None
    if exact is not None:
        rate.exact, rate.exact_source = exact
        if rate.calls == 0:
            # pg_stat_statements saw nothing (e.g. another database): no bounds from it.
            rate.low, rate.high, rate.estimate = 0.0, 1.0, rate.exact
    pct = {
        k: round(100 * v, 4)
        for k, v in (("low", rate.low), ("high", rate.high), ("estimate", rate.estimate))
    }
    state.summary["slow_query_rate"] = {
        "threshold_ms": t.slow_query_ms,
        "calls": rate.calls,
        "slow_low": round(rate.low * rate.calls),
        "slow_high": round(rate.high * rate.calls),
        "low_pct": pct["low"],
        "high_pct": pct["high"],
        "estimate_pct": pct["estimate"],
        "exact_pct": None if rate.exact is None else round(100 * rate.exact, 4),
        "exact_source": rate.exact_source or None,
    }
    for name, value in pct.items():
        state.measure(f"db.slow_query_rate.{name}", value, "%")
    if rate.exact is not None:
        state.measure(
            "db.slow_query_rate.exact", round(100 * rate.exact, 4), "%", source=rate.exact_source
        )
    best = 100 * rate.best
    how = "exact" if rate.exact is not None else "estimate"
    detail = (
        f"{best:.2f}% ({how}); guaranteed between {pct['low']:.2f}% and {pct['high']:.2f}% "
        f"of {rate.calls:,} executions ≥ {t.slow_query_ms:g} ms"
    )
    if best <= t.slow_query_rate_pct:
        state.passed("db.slow_query_rate", detail)
        return rate
    certain = rate.exact is not None or pct["low"] > t.slow_query_rate_pct
    worst = sorted(
        ((per_family[f.queryid], f) for f in families if per_family[f.queryid].high > 0),
        key=lambda x: x[0].estimate,
        reverse=True,
    )[:5]
    bounds = "exact" if rate.exact is not None else f"bounds {pct['low']:.1f}-{pct['high']:.1f}%"
    state.add(
        FindingData(
            rule_id="db.slow_query_rate",
            title=f"Slow-query rate {best:.1f}% exceeds {t.slow_query_rate_pct:g}% ({bounds})",
            severity="high" if certain else "medium",
            category="performance",
            location=state.caps.database,
            key=f"slow_query_rate:{state.caps.database}",
            evidence={
                **state.summary["slow_query_rate"],
                "families": [
                    {
                        "query": short(f.query, 200),
                        "calls": f.calls,
                        "slow_low": c.low,
                        "slow_high": c.high,
                        "slow_estimate": round(c.estimate, 1),
                    }
                    for c, f in worst
                ],
                "method": "bounds from n, Σx, Σx², min and max per family (Cantelli / Markov "
                "with min and max); estimate from a truncated log-normal fit",
            },
            fix_hint="Fix the families listed; the rate counts executions of at least "
            f"{t.slow_query_ms:g} ms, not families by their mean.",
            doc_url=DOCS + "pgstatstatements.html",
        )
    )
    state.failed("db.slow_query_rate", detail)
    return rate


def slow_families(
    state: ScanState, families: list[Family], routes: dict[int, dict[str, int]]
) -> set[int]:
    """Families with mean ≥ threshold over ≥ min calls, ranked by share of total time."""
    t = state.thresholds
    counts = state.facts.get("slow_counts", {})
    slow = [
        f
        for f in families
        if f.mean_ms >= t.slow_family_mean_ms and f.calls >= t.slow_family_min_calls
    ]
    ids = set()
    for rank, fam in enumerate(slow, start=1):
        ids.add(fam.queryid)
        query = normalise_sql(fam.query)
        fam_routes = dict(routes.get(fam.queryid, {}))
        for route in routes_from_comment(fam.query):
            fam_routes.setdefault(route, 0)
        count = counts.get(fam.queryid)
        high = fam.mean_ms >= 2 * t.slow_family_mean_ms or fam.share >= 0.25
        where = (
            f" — from {', '.join(sorted(fam_routes, key=lambda r: -fam_routes[r])[:3])}"
            if fam_routes
            else ""
        )
        hits = fam.blks_hit + fam.blks_read
        state.add(
            FindingData(
                rule_id="db.slow_families",
                title=f"Slow statement ({fam.mean_ms:.0f} ms mean x {fam.calls:,} calls, "
                f"{100 * fam.share:.0f}% of DB time){where}: {short(query, 90)}",
                severity="high" if high else "medium",
                category="performance",
                location=", ".join(sorted(fam_routes)) or state.caps.database,
                key=f"family:{query}",
                evidence={
                    "rank": rank,
                    "query": query[:2000],
                    "queryid": str(fam.queryid),
                    "calls": fam.calls,
                    "mean_ms": round(fam.mean_ms, 3),
                    "stddev_ms": round(fam.stddev_ms, 3),
                    "min_ms": round(fam.min_ms, 3),
                    "max_ms": round(fam.max_ms, 3),
                    "total_ms": round(fam.total_ms, 1),
                    "share_pct": round(100 * fam.share, 2),
                    "rows_per_call": round(fam.rows / fam.calls, 1),
                    "cache_hit_pct": round(100 * fam.blks_hit / hits, 2) if hits else None,
                    "window_exact_min_max": fam.window_exact,
                    "slow_executions": None
                    if count is None
                    else {
                        "low": count.low,
                        "high": count.high,
                        "estimate": round(count.estimate, 1),
                    },
                    "routes": fam_routes,
                },
                fix_hint="See the index suggestions for this statement; otherwise fetch fewer rows "
                "or columns, or cache the result.",
                doc_url=DOCS + "using-explain.html",
            )
        )
    state.summary["slow_families"] = len(slow)
    state.verdict(
        "db.slow_families",
        len(slow),
        f"slow statement famil(ies) (mean ≥ {t.slow_family_mean_ms:g} ms over "
        f"≥ {t.slow_family_min_calls} calls)",
    )
    return ids


def exact_from_samples(
    durations_ms: Iterable[float] | None, threshold_ms: float
) -> tuple[float, str] | None:
    value = exact_rate(durations_ms or [], threshold_ms)
    return None if value is None else (value, "per-execution samples")
