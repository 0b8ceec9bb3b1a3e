"""A readable diff between two revisions: side by side, changed words marked.

Lines are matched with difflib; a changed line is shown beside its old self
with the words that differ in <del>/<ins>. Long unchanged stretches fold into
one "n unchanged lines" row, keeping a few lines of context around changes.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


@dataclass(frozen=True)
class Row:
    # "same", "change", "add", "del", or "fold" (unchanged lines left out)
    kind: str
    old_no: int | None = None
    new_no: int | None = None
    old: SafeString | str = ""
    new: SafeString | str = ""
    folded: int = 0


@dataclass(frozen=True)
class Diff:
    rows: list[Row]
    added: int
    removed: int

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed)


def _words(old: str, new: str) -> tuple[SafeString, SafeString]:
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    pieces: list[list] = []  # [changed?, old text, new text]
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        pieces.append([tag != "equal", "".join(a[i1:i2]), "".join(b[j1:j2])])
    # A short run left equal between two changes ("one at a time" → "all at once")
    # reads better as part of one change than as confetti.
    merged: list[list] = []
    for position, piece in enumerate(pieces):
        between = 0 < position < len(pieces) - 1 and pieces[position + 1][0]
        if not piece[0] and between and merged and merged[-1][0] and len(piece[1].strip()) <= 3:
            piece = [True, piece[1], piece[2]]
        if merged and merged[-1][0] and piece[0]:
            merged[-1][1] += piece[1]
            merged[-1][2] += piece[2]
        else:
            merged.append(piece)
    left: list[str] = []
    right: list[str] = []
    for changed, old_part, new_part in merged:
        old_part, new_part = escape(old_part), escape(new_part)
        if not changed:
            left.append(old_part)
            right.append(new_part)
            continue
        if old_part:
            left.append(f"<del>{old_part}</del>")
        if new_part:
            right.append(f"<ins>{new_part}</ins>")
    return mark_safe("".join(left)), mark_safe("".join(right))


def diff(old_text: str, new_text: str, context: int = 3) -> Diff:
    old_lines = (old_text or "").splitlines()
    new_lines = (new_text or "").splitlines()
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    rows: list[Row] = []
    added = removed = 0
    opcodes = matcher.get_opcodes()
    for position, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            keep_head = context if position > 0 else 0
            keep_tail = context if position < len(opcodes) - 1 else 0
            length = i2 - i1
            if length > keep_head + keep_tail + 1:
                shown = [*range(keep_head), None, *range(length - keep_tail, length)]
            else:
                shown = list(range(length))
            for offset in shown:
                if offset is None:
                    rows.append(Row("fold", folded=length - keep_head - keep_tail))
                    continue
                line = escape(old_lines[i1 + offset])
                rows.append(Row("same", i1 + offset + 1, j1 + offset + 1, line, line))
            continue
        old_chunk, new_chunk = old_lines[i1:i2], new_lines[j1:j2]
        removed += len(old_chunk)
        added += len(new_chunk)
        for k in range(max(len(old_chunk), len(new_chunk))):
            if k < len(old_chunk) and k < len(new_chunk):
                left, right = _words(old_chunk[k], new_chunk[k])
                rows.append(Row("change", i1 + k + 1, j1 + k + 1, left, right))
            elif k < len(old_chunk):
                rows.append(Row("del", old_no=i1 + k + 1, old=escape(old_chunk[k])))
            else:
                rows.append(Row("add", new_no=j1 + k + 1, new=escape(new_chunk[k])))
    return Diff(rows=rows, added=added, removed=removed)
