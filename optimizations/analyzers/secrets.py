"""Credentials masked in text that Kaizen stores and shows (code-scan excerpts, messages).

The same mask as the code scan's FSA405 finding text: a URL's password
becomes ``******`` (``postgresql://app:******@db``), and so does a password
given as a query option (``?password=…``) or a quoted literal assigned to a
password-like name (``API_KEY = "…"``). What is left shows where the secret
is, never any character of it.
"""

from __future__ import annotations

import re

MASK = "*" * 6
# scheme://user:password@host — the password is everything up to the last @ of the authority.
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/\s:@\"']*:)[^\s/\"']+@", re.I)
_QUERY_PASSWORD = re.compile(
    r"(?P<head>[?&](?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?token)=)[^&\s\"'#]+",
    re.I,
)
_ASSIGNED_SECRET = re.compile(
    r"(?P<head>\b\w*(?:password|passwd|pwd|secret|token|api[_-]?key)\w*\b[\"']?"
    r"(?:\s*:\s*[\w.\[\], |]+?)?\s*[:=]\s*"
    r"[rbuf]{0,2}(?P<quote>[\"']))(?P<value>[^\"'\n]+)(?P=quote)",
    re.I,
)


def mask_credentials(text: str) -> str:
    """``text`` with every URL password, password option and password literal masked."""
    if not text:
        return text
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    text = _QUERY_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)
    return _ASSIGNED_SECRET.sub(_mask_literal, text)


def _mask_literal(match: re.Match[str]) -> str:
    value: str = match["value"]
    if "://" in value or value.startswith(("{", "$")):
        # A URL (its password already masked) or a template placeholder: nothing secret left.
        return match[0]
    return f"{match['head']}{MASK}{match['quote']}"
