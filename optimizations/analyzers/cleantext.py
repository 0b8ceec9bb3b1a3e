"""Text from a target made storable: no NUL, no lone surrogates.

A target can answer anything. PostgreSQL refuses NUL in text and in JSONB
("text fields cannot contain NUL", "unsupported Unicode escape sequence"), and
no database driver can encode a lone surrogate (what ``json.loads`` makes of
``"\\ud800"``, or ``surrogateescape`` of invalid UTF-8). One such character
used to fail the write of a whole log batch or result. Both become U+FFFD,
the character that says "something was here that could not be kept".

Plain Python (the analyzers may use it too); the model fields in
``optimizations.models.fields`` call it on every write.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(value: str) -> str:
    """``value`` with NUL and lone surrogates replaced by U+FFFD."""
    if value.isascii():
        return value.replace("\x00", REPLACEMENT) if "\x00" in value else value
    return _UNSTORABLE.sub(REPLACEMENT, value)


def decode(data: bytes) -> str:
    """Bytes from the outside as storable text (invalid UTF-8 → U+FFFD)."""
    return clean_text(data.decode("utf-8", "replace"))


def clean_json(value: Any) -> Any:
    """A JSON-ready value with every string (keys too) cleaned; bytes decoded.

    Returns ``value`` itself when nothing needed cleaning, so a large clean
    summary is not copied.
    """
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return decode(bytes(value))
    if isinstance(value, dict):
        cleaned: dict[Any, Any] = {}
        changed = False
        for key, item in value.items():
            new_key = clean_text(key) if isinstance(key, str) else key
            new_item = clean_json(item)
            changed = changed or new_key is not key or new_item is not item
            cleaned[new_key] = new_item
        return cleaned if changed else value
    if isinstance(value, (list, tuple)):
        items = [clean_json(item) for item in value]
        if any(new is not old for new, old in zip(items, value, strict=True)):
            return items
        return value
    return value
