"""JSON from a target, loaded within limits on size and nesting.

A target's OpenAPI document (or a list endpoint's answer) may be huge or
nested thousands of levels deep, by accident or on purpose. ``json.loads``
then raises RecursionError, and a document that just fits under Python's
recursion limit breaks whatever walks it next (the job ended as "internal
error (RecursionError)"). ``loads`` refuses both with a sentence a person
can act on. ``$ref`` cycles are the resolvers' business: they bound how many
references they follow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

# Real OpenAPI documents nest about 15-25 levels (paths → operation → content
# → schema → properties → …); 64 leaves room and stays far below Python's
# recursion limit for the code that walks them.
MAX_DEPTH = 64
MAX_BYTES = 20 * 1024 * 1024


class DocumentRefused(ValueError):
    """Too large or too deeply nested; the message says which and the limit."""


def loads(
    body: bytes | str, what: str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> Any:
    """``body`` decoded as JSON; DocumentRefused when beyond the limits.

    ``what`` names the document in the message ("The OpenAPI document at …").
    Other decoding errors (not JSON, not UTF-8) are raised as ``json.loads``
    raises them.
    """
    if len(body) > max_bytes:
        raise DocumentRefused(f"{what} is larger than {_megabytes(max_bytes)} MB.")
    try:
        value = json.loads(body)
    except RecursionError:
        raise DocumentRefused(f"{what} nests deeper than {max_depth} levels.") from None
    if depth(value, stop_after=max_depth) > max_depth:
        raise DocumentRefused(f"{what} nests deeper than {max_depth} levels.")
    return value


def depth(value: Any, stop_after: int | None = None) -> int:
    """How deeply ``value`` nests (a scalar: 0, ``[]``: 1); iterative, no recursion.

    With ``stop_after``, returns as soon as the depth exceeds it.
    """
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        children: Iterable[Any]
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        if stop_after is not None and deepest > stop_after:
            return deepest
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:g}"
