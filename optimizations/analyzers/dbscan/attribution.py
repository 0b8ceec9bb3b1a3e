"""Which endpoint issues a statement family.

Two sources, best first:

* SQL comments the target adds (sqlcommenter style ``/*route='/items',...*/``
  or ``/* route: GET /items */``) — read from pg_stat_statements' stored text
  and from pg_stat_activity's live text;
* sampling pg_stat_activity while a benchmark scenario drives one route at a
  time: every active statement seen (by ``query_id``, computed by the server
  when pg_stat_statements is loaded) is counted for the route under load.

The sampler uses its own single connection (a sampling loop cannot share the
scan's connection across threads) with the same safety settings.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from ..netguard import AllowList
from .connect import Session, open_session

_SQLCOMMENTER = re.compile(r"/\*(?P<body>[^*]*(?:\*(?!/)[^*]*)*)\*/", re.S)
_KV = re.compile(r"(\w+)\s*=\s*'([^']*)'")
_ROUTE_WORDS = re.compile(
    r"\b(?:route|endpoint|path)\s*[:=]\s*'?(?P<route>(?:(?:GET|POST|PUT|PATCH|DELETE|HEAD)\s+)?/[^'\s,*]*)",
    re.I,
)


def routes_from_comment(query: str) -> list[str]:
    """Routes named in SQL comments of ``query`` ("GET /items", "/items/{id}")."""
    found: list[str] = []
    for match in _SQLCOMMENTER.finditer(query or ""):
        body = match.group("body")
        pairs = {k.lower(): unquote(v) for k, v in _KV.findall(body)}
        route = pairs.get("route") or pairs.get("endpoint") or pairs.get("path")
        if route:
            method = pairs.get("method") or pairs.get("http_method")
            found.append(f"{method.upper()} {route}" if method else route)
            continue
        plain = _ROUTE_WORDS.search(body)
        if plain:
            found.append(plain.group("route").strip())
    return list(dict.fromkeys(found))


class ActivitySampler:
    """Samples pg_stat_activity in a thread; ``label`` names the route under load now.

    Use as a context manager around a benchmark scenario::

        with ActivitySampler(url, allowed_hosts) as sampler:
            sampler.label = "GET /products/search"
            ... drive load ...
        sampler.routes_by_queryid()  # {queryid: {"GET /products/search": 37}}
    """

    def __init__(
        self,
        database_url: str,
        allowed_hosts: AllowList,
        interval: float = 0.05,
        max_samples: int = 20000,
    ) -> None:
        self.database_url = database_url
        self.allowed_hosts = allowed_hosts
        self.interval = interval
        self.max_samples = max_samples
        self.label: str | None = None
        self.samples = 0
        self.counts: dict[int, Counter[str]] = defaultdict(Counter)
        self.texts: dict[int, str] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session: Session | None = None

    def sample_once(self, session: Session) -> None:
        rows = session.rows(
            "SELECT query_id, left(query, 1000) AS query FROM pg_stat_activity "
            "WHERE state = 'active' AND backend_type = 'client backend' "
            "AND pid <> pg_backend_pid() AND application_name <> 'kaizen' "
            "AND datname = current_database()",
            limit=200,
        )
        self.samples += 1
        for row in rows:
            qid = row["query_id"]
            if qid is None:
                continue
            text = row["query"] or ""
            routes = routes_from_comment(text) or ([self.label] if self.label else [])
            for route in routes:
                self.counts[int(qid)][route] += 1
            self.texts.setdefault(int(qid), text)

    def _loop(self) -> None:
        assert self._session is not None
        while not self._stop.is_set() and self.samples < self.max_samples:
            try:
                self.sample_once(self._session)
            except Exception as exc:  # a sampling hiccup must not end the benchmark
                self.errors.append(str(exc))
                if len(self.errors) > 20:
                    return
            self._stop.wait(self.interval)

    def start(self) -> ActivitySampler:
        self._session = open_session(
            self.database_url, self.allowed_hosts, statement_timeout_ms=1000
        )
        self._thread = threading.Thread(target=self._loop, name="kaizen-activity", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> ActivitySampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def routes_by_queryid(self) -> dict[int, dict[str, int]]:
        return {qid: dict(counter) for qid, counter in self.counts.items()}


def merge_routes(*sources: Mapping[Any, Mapping[str, int]] | None) -> dict[int, dict[str, int]]:
    """Merge {queryid: {route: count}} maps (keys may arrive as strings from JSON)."""
    merged: dict[int, Counter[str]] = defaultdict(Counter)
    for source in sources:
        for qid, routes in (source or {}).items():
            try:
                key = int(qid)
            except (TypeError, ValueError):
                continue
            for route, count in (routes or {}).items():
                merged[key][str(route)] += int(count)
    return {qid: dict(counter) for qid, counter in merged.items()}
