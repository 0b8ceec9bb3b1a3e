"""A tiny HTML builder whose text() escapes nothing SQL-related."""

import html


def text(markup: str) -> str:
    return html.unescape(markup).strip()
