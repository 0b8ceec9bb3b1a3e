"""DB scan: a read-only analysis of a target's PostgreSQL.

Slow queries as they really are (windowed pg_stat_statements, the slow-query
rate as bounds plus an estimate), index problems, index suggestions measured
with HypoPG, connection and pool use, and server health — each check reporting
passed, failed, or unknown with why and the exact fix. See ANALYSIS.md §1.

    from optimizations.analyzers import dbscan
    result = dbscan.run(target, {"window": 30}, ctx)
    report = dbscan.test_connection(url, allowed_hosts)
"""

from .attribution import ActivitySampler, routes_from_comment
from .capabilities import Capabilities, detect
from .common import Thresholds
from .connect import open_session, safe_url
from .scan import CHECK_IDS, PARAMS, run, test_connection

__all__ = [
    "CHECK_IDS",
    "PARAMS",
    "ActivitySampler",
    "Capabilities",
    "Thresholds",
    "detect",
    "open_session",
    "routes_from_comment",
    "run",
    "safe_url",
    "test_connection",
]
