"""Security scan: HTTP probes against a target's running API, driven by its OpenAPI document.

    from optimizations.analyzers import securityscan
    result = securityscan.run(target, {"checks": ["sec.cors"]}, ctx)

Checks (``CHECK_IDS``): security headers, CORS with a hostile origin, compression of
large responses, keep-alive, caching headers, unauthenticated state-changing
operations, unbounded input, negative testing (invalid and unexpected input,
any 5xx or missing answer is a finding), error leakage (stack traces, SQL, file
paths in error bodies), server banners and a short rate-limiting burst. Each
reports passed, failed or unknown with why; findings carry a stable ``key``
(check, variant or ``METHOD /path/template``).

Every request goes to the allow-listed, resolved address of the base URL, at no
more than the target's ``max_rate`` (or less), within its ``max_duration`` and a
request budget, with a timeout, and stops within about a second of a cancel.
Requests to state-changing operations are always invalid by the documented
schema (a server that validates creates nothing); the auth header is sent,
never logged, and redacted from evidence.

Negative testing uses a compact seeded generator (``openapi.py``) rather than
schemathesis: schemathesis sends through its own HTTP stack (requests) under
Hypothesis, which would bypass this client's allow-list pinning, pacing, budget
and sub-second cancellation, and it brings pytest, Hypothesis and requests into
the worker as runtime dependencies.
"""

from .checks_api import leaks_in
from .scan import CHECK_IDS, CHECKS, PARAMS, run

__all__ = ["CHECKS", "CHECK_IDS", "PARAMS", "leaks_in", "run"]
