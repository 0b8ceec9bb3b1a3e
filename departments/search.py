"""Runbook search: PostgreSQL full-text search there, a word match on SQLite.

PostgreSQL ranks title words above body words (weights A and B), understands
web-search syntax ("quoted phrases", -excluded, or) and English stemming, so
"indexes" finds "index". The vector is computed per query: at HR's scale
(hundreds of runbooks) that takes milliseconds, and a stored, indexed vector
would need ``django.contrib.postgres`` in INSTALLED_APPS.

SQLite has no full-text search Django can use, so each word must appear in the
title or the body (case-insensitive), and title matches rank first.
"""

from __future__ import annotations

import re

from django.db import connection
from django.db.models import Case, CharField, Q, QuerySet, Value, When
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

CONFIG = "english"
# Private-use characters mark the highlighted words in PostgreSQL's headline:
# they cannot come from a form field that went through the sanitising below.
START, STOP = "\ue000", "\ue001"
_MARKUP = re.compile(r"[#*_`>|\[\]]+")


def words_of(query: str) -> list[str]:
    return [w for w in re.findall(r"[\w][\w.-]*", query.lower()) if len(w) > 1][:12]


def search_runbooks(runbooks: QuerySet, query: str) -> QuerySet:
    """``runbooks`` matching ``query``, best first, each with a ``snippet`` source."""
    if connection.vendor == "postgresql":
        return _postgres(runbooks, query)
    return _fallback(runbooks, query)


def _postgres(runbooks: QuerySet, query: str) -> QuerySet:
    from django.contrib.postgres.search import (
        SearchHeadline,
        SearchQuery,
        SearchRank,
        SearchVector,
    )

    vector = SearchVector("title", weight="A", config=CONFIG) + SearchVector(
        "current_revision__body", weight="B", config=CONFIG
    )
    search = SearchQuery(query, search_type="websearch", config=CONFIG)
    return (
        runbooks.annotate(
            document=vector,
            rank=SearchRank(vector, search),
            headline=SearchHeadline(
                "current_revision__body",
                search,
                config=CONFIG,
                start_sel=START,
                stop_sel=STOP,
                max_words=28,
                min_words=12,
            ),
        )
        .filter(document=search)
        .order_by("-rank", "title")
    )


def _fallback(runbooks: QuerySet, query: str) -> QuerySet:
    words = words_of(query)
    if not words:
        return runbooks.none()
    for word in words:
        runbooks = runbooks.filter(
            Q(title__icontains=word) | Q(current_revision__body__icontains=word)
        )
    in_title = sum(
        (Case(When(title__icontains=word, then=Value(1)), default=Value(0)) for word in words),
        start=Value(0),
    )
    return runbooks.annotate(rank=in_title, headline=Value("", output_field=CharField())).order_by(
        "-rank", "title"
    )


def snippet(runbook, query: str, body: str = "") -> SafeString:
    """A line of the body around the match, the matched words in <mark>, all else escaped."""
    headline = getattr(runbook, "headline", "") or ""
    if isinstance(headline, str) and START in headline:
        text = _MARKUP.sub(" ", headline)
        return mark_safe(
            re.sub(r"\s+", " ", escape(text))
            .replace(START, "<mark>")
            .replace(STOP, "</mark>")
            .strip()
        )
    return _excerpt(body, words_of(query))


def _excerpt(body: str, words: list[str], width: int = 180) -> SafeString:
    text = re.sub(r"\s+", " ", _MARKUP.sub(" ", body or "")).strip()
    lower = text.lower()
    hits = [lower.find(word) for word in words if lower.find(word) >= 0]
    start = max(0, min(hits) - width // 3) if hits else 0
    piece = text[start : start + width]
    prefix = "…" if start else ""
    suffix = "…" if start + width < len(text) else ""
    if not words:
        return mark_safe(prefix + escape(piece) + suffix)
    alternatives = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
    pieces = re.split(f"({alternatives})", piece, flags=re.IGNORECASE)
    html = "".join(
        f"<mark>{escape(part)}</mark>" if position % 2 else escape(part)
        for position, part in enumerate(pieces)
    )
    return mark_safe(prefix + html + suffix)
