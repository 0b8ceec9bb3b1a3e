"""Translation catalogues without GNU gettext: read .po, write .mo, find marked strings.

A fresh machine has no ``msgfmt`` or ``xgettext``, so Kaizen does in Python
the three things it needs of them:

- ``parse_po`` reads a catalogue (msgctxt, plurals, flags such as ``fuzzy``,
  obsolete ``#~`` entries, multi-line strings with C escapes);
- ``compile_mo`` writes the GNU .mo file Django (Python's ``gettext``) loads;
  fuzzy and untranslated entries are left out, as ``msgfmt`` does. The .mo
  files are committed beside their .po, so a checkout runs translated
  without an install step; ``manage.py compile_translations`` rewrites them
  and tests/portal/test_translations.py fails when one is stale;
- ``template_messages`` and ``python_messages`` list the strings marked for
  translation: templates through Django's own ``templatize`` (what
  ``makemessages`` feeds to xgettext), Python sources through ``ast``
  (gettext, gettext_lazy, pgettext, ngettext, ``_`` and their variants).
"""

from __future__ import annotations

import ast
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from django.utils.functional import Promise
from django.utils.translation import gettext as _gettext
from django.utils.translation import override

# --- reading a .po file ---------------------------------------------------------

_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    '"': '"',
    "\\": "\\",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}


@dataclass
class Entry:
    """One message of a catalogue."""

    msgid: str
    msgstr: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr_plural: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False
    line: int = 0

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.msgctxt, self.msgid)

    @property
    def fuzzy(self) -> bool:
        return "fuzzy" in self.flags

    @property
    def translated(self) -> bool:
        """Every form has a non-empty translation."""
        if self.msgid_plural is not None:
            return bool(self.msgstr_plural) and all(self.msgstr_plural.values())
        return bool(self.msgstr)


class PoError(ValueError):
    pass


def _unquote(text: str, lineno: int) -> str:
    text = text.strip()
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise PoError(f"line {lineno}: expected a quoted string, found {text!r}")
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            if i + 1 >= len(body) or body[i + 1] not in _ESCAPES:
                raise PoError(f"line {lineno}: unknown escape in {text!r}")
            out.append(_ESCAPES[body[i + 1]])
            i += 2
        elif char == '"':
            raise PoError(f"line {lineno}: unescaped quote in {text!r}")
        else:
            out.append(char)
            i += 1
    return "".join(out)


_KEYWORD = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(\".*)$")


def parse_po(text: str) -> list[Entry]:
    """The entries of a .po file, the header (msgid "") included."""
    entries: list[Entry] = []
    fields: dict = {}
    flags: set[str] = set()
    obsolete = False
    current = None  # the field continued by a bare "..." line
    start = 0

    def complete() -> bool:
        return "msgstr" in fields or any(isinstance(k, tuple) for k in fields)

    def finish():
        nonlocal fields, flags, obsolete, current
        if "msgid" in fields:
            plural = {k[1]: v for k, v in fields.items() if isinstance(k, tuple)}
            entries.append(
                Entry(
                    msgid=fields["msgid"],
                    msgstr=fields.get("msgstr", plural.get(0, "")),
                    msgctxt=fields.get("msgctxt"),
                    msgid_plural=fields.get("msgid_plural"),
                    msgstr_plural=plural,
                    flags=flags,
                    obsolete=obsolete,
                    line=start,
                )
            )
        elif fields:
            raise PoError(f"line {start}: an entry without msgid")
        fields, flags, obsolete, current = {}, set(), False, None

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        is_obsolete = line.startswith("#~")
        if is_obsolete:
            line = line[2:].strip()
        if not line:
            finish()
            continue
        if line.startswith("#"):
            if complete():  # a comment after a complete entry starts the next one
                finish()
            if line.startswith("#,"):
                flags |= {flag.strip() for flag in line[2:].split(",") if flag.strip()}
            continue
        match = _KEYWORD.match(line)
        if match:
            keyword, index, rest = match.groups()
            if keyword in ("msgctxt", "msgid") and complete():
                finish()
            if not fields:
                start = lineno
            obsolete = obsolete or is_obsolete
            current = ("msgstr", int(index)) if index is not None else keyword
            if current in fields:
                raise PoError(f"line {lineno}: {keyword} given twice")
            fields[current] = _unquote(rest, lineno)
        elif line.startswith('"'):
            if current is None:
                raise PoError(f"line {lineno}: a string continues nothing")
            fields[current] += _unquote(line, lineno)
        else:
            raise PoError(f"line {lineno}: cannot read {raw!r}")
    finish()
    return entries


# --- writing a .mo file ---------------------------------------------------------


def compile_mo(entries: list[Entry]) -> bytes:
    """The GNU .mo file of the translated, non-fuzzy, non-obsolete entries.

    Keys are sorted (the format's lookup allows a binary search), so the same
    catalogue always gives the same bytes; no hash table is written (size 0),
    which the format allows and Python's and GNU's readers accept.
    """
    messages: dict[bytes, bytes] = {}
    for entry in entries:
        if entry.obsolete or (entry.fuzzy and entry.msgid) or not entry.translated:
            continue
        key = entry.msgid
        if entry.msgid_plural is not None:
            key += "\0" + entry.msgid_plural
            forms = [entry.msgstr_plural[i] for i in sorted(entry.msgstr_plural)]
            value = "\0".join(forms)
        else:
            value = entry.msgstr
        if entry.msgctxt is not None:
            key = entry.msgctxt + "\x04" + key
        messages[key.encode()] = value.encode()
    keys = sorted(messages)
    count = len(keys)
    originals_at = 7 * 4
    translations_at = originals_at + count * 8
    data_at = translations_at + count * 8
    originals, translations, data = [], [], bytearray()
    for original in keys:
        originals.append((len(original), data_at + len(data)))
        data += original + b"\0"
    for original in keys:
        translated = messages[original]
        translations.append((len(translated), data_at + len(data)))
        data += translated + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, count, originals_at, translations_at, 0, 0)
    table = b"".join(struct.pack("<2I", *pair) for pair in originals + translations)
    return header + table + bytes(data)


def catalogues(base_dir: Path) -> list[Path]:
    """Every .po file under the project's locale/ folder."""
    return sorted((base_dir / "locale").glob("*/LC_MESSAGES/*.po"))


def compile_catalogue(po_path: Path) -> bytes:
    return compile_mo(parse_po(po_path.read_text(encoding="utf-8")))


# --- finding the marked strings -------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A string marked for translation, and where."""

    msgid: str
    msgctxt: str | None
    msgid_plural: str | None
    where: str

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.msgctxt, self.msgid)


# name -> (context position, singular position, plural position)
_FUNCTIONS = {
    "_": (None, 0, None),
    "gettext": (None, 0, None),
    "gettext_lazy": (None, 0, None),
    "gettext_noop": (None, 0, None),
    "pgettext": (0, 1, None),
    "pgettext_lazy": (0, 1, None),
    "ngettext": (None, 0, 1),
    "ngettext_lazy": (None, 0, 1),
    "npgettext": (0, 1, 2),
    "npgettext_lazy": (0, 1, 2),
}


def _call_messages(tree: ast.AST, where: str, aliases: dict[str, str]) -> list[Message]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        if name is None and isinstance(func, ast.Attribute):
            name = func.attr  # translation.gettext(...)
        if name is None:
            continue
        name = aliases.get(name, name)
        if name not in _FUNCTIONS:
            continue
        context_at, singular_at, plural_at = _FUNCTIONS[name]

        def literal(position, node=node):
            if position is None:
                return None
            if position >= len(node.args):
                return ...
            arg = node.args[position]
            is_text = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            return arg.value if is_text else ...

        msgid, context, plural = literal(singular_at), literal(context_at), literal(plural_at)
        # A variable's value cannot be extracted (nor can xgettext): it must be
        # a marked literal elsewhere.
        if msgid is ... or context is ... or plural is ...:
            continue
        found.append(Message(msgid, context, plural, f"{where}:{node.lineno}"))
    return found


def python_messages(source: str, where: str) -> list[Message]:
    """The strings a Python module marks: calls of the gettext family with literals."""
    tree = ast.parse(source)
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "django.utils.translation":
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
    return _call_messages(tree, where, aliases)


_TEMPLATE_CALL = re.compile(r"(?<![\w.])(gettext|pgettext|ngettext|npgettext|_)\(")


def template_messages(source: str, where: str) -> list[Message]:
    """The strings a template marks, found by Django's own ``templatize``.

    templatize turns a template into text with a gettext call per marked
    string (the same msgid the template tag looks up at render time, ``%``
    doubled as Django does); each call is read with ``ast``.
    """
    from django.utils.translation.template import templatize

    text = templatize(source, origin=where)
    found = []
    for match in _TEMPLATE_CALL.finditer(text):
        end = match.end()
        # The call ends at the first ")" after which it parses; its arguments
        # are string literals (templatize writes them with repr()) or `count`.
        while True:
            end = text.find(")", end)
            if end < 0:
                snippet = text[match.start() : match.start() + 80]
                raise ValueError(f"{where}: cannot read {snippet!r}")
            try:
                tree = ast.parse(text[match.start() : end + 1].strip(), mode="eval")
            except SyntaxError:
                end += 1
                continue
            break
        # templatize keeps the template's line breaks outside translation tags.
        line = text.count("\n", 0, match.start()) + 1
        found += [
            Message(m.msgid, m.msgctxt, m.msgid_plural, f"{where}:{line}")
            for m in _call_messages(tree, where, {})
        ]
    return found


def project_messages(base_dir: Path, template_dirs, python_dirs) -> dict:
    """Every marked string of the project: {(msgctxt, msgid): [Message, ...]}."""
    found: dict = {}
    for folder in template_dirs:
        for path in sorted(Path(folder).rglob("*.html")) + sorted(Path(folder).rglob("*.txt")):
            where = str(path.relative_to(base_dir))
            for message in template_messages(path.read_text(encoding="utf-8"), where):
                found.setdefault(message.key, []).append(message)
    for folder in python_dirs:
        for path in sorted(Path(folder).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            where = str(path.relative_to(base_dir))
            for message in python_messages(path.read_text(encoding="utf-8"), where):
                found.setdefault(message.key, []).append(message)
    return found


def po_quote(text: str) -> str:
    """A string as a .po file writes it (to paste a missing entry)."""
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{body}"'


def project_sources(base_dir: Path, template_dirs) -> tuple[list[Path], list[Path]]:
    """Where Kaizen's marked strings live: the template folders and the apps' Python."""
    apps = [base_dir / name for name in ("portal", "departments", "optimizations")]
    folders = [Path(folder) for folder in template_dirs]
    folders += [app / "templates" for app in apps if (app / "templates").is_dir()]
    return folders, apps


def missing_entries(messages: dict, entries: list[Entry]) -> str:
    """The .po text of each marked string the catalogue lacks, msgstr left empty."""
    known = {entry.key for entry in entries if not entry.obsolete}
    blocks = []
    for key in sorted(set(messages) - known, key=lambda k: (k[1], k[0] or "")):
        found = messages[key]
        first = found[0]
        lines = ["#: " + " ".join(sorted({message.where for message in found}))]
        if "%(" in first.msgid or (first.msgid_plural and "%(" in first.msgid_plural):
            lines.append("#, python-format")
        if first.msgctxt is not None:
            lines.append(f"msgctxt {po_quote(first.msgctxt)}")
        lines.append(f"msgid {po_quote(first.msgid)}")
        if first.msgid_plural is not None:
            lines += [f"msgid_plural {po_quote(first.msgid_plural)}", 'msgstr[0] ""']
        else:
            lines.append('msgstr ""')
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


# --- English a template shows without marking it -------------------------------------

# Words that read the same in both languages: units, formats, product and protocol names.
_SAME_IN_BOTH = (
    "Kaizen ms MiB KiB MB GB CSV JSON SARIF HTML PDF YAML API URL HTTP HTTPS SQL OpenAPI "
    "PgBouncer PostgreSQL HypoPG FastAPI SQLAlchemy Celery Redis ROI SLO SLOs CPU RPS req "
    "p50 p90 p95 p99 pp id ID OK vs min DB CORS PNG GET POST PUT PATCH DELETE Uvicorn "
    "Prometheus OTLP"
)
UNTRANSLATED_WORDS = frozenset(_SAME_IN_BOTH.split())
_SKIPPED_ELEMENTS = ("script", "style", "code", "pre", "textarea", "kbd", "samp")
_READ_ATTRIBUTES = re.compile(r'(?<![\w-])(title|placeholder|aria-label|alt)="([^"{}]*)"')


def _english(text: str) -> bool:
    text = re.sub(r"--[\w-]+", "", text)  # a command-line option
    words = re.findall(r"[A-Za-z][A-Za-z']+", text)
    return any(word not in UNTRANSLATED_WORDS for word in words)


def unmarked_texts(source: str) -> list[tuple[int, str]]:
    """(line, text) of each English text a person reads that the template does not mark:
    text between tags (outside code, pre, script…) and the title, placeholder,
    aria-label and alt attributes. Template variables are data; text inside
    {% blocktranslate %}, {% comment %} and {% verbatim %} is left alone.
    """
    from django.template.base import Lexer, TokenType

    found: list[tuple[int, str]] = []
    in_tag = False  # inside an HTML tag's angle brackets
    skipped: list[str] = []  # open elements whose text is code or data
    quiet = 0  # inside blocktranslate / comment / verbatim
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0] if token.contents else ""
            if name in ("blocktranslate", "blocktrans", "comment", "verbatim"):
                quiet += 1
            elif name in ("endblocktranslate", "endblocktrans", "endcomment", "endverbatim"):
                quiet -= 1
            continue
        if token.token_type != TokenType.TEXT or quiet:
            continue
        text, position, start = token.contents, 0, 0
        node: list[str] = []

        def line_at(index: int, token=token, text=text) -> int:
            return token.lineno + text.count("\n", 0, index)

        while position < len(text):
            char = text[position]
            if in_tag:
                end = text.find(">", position)
                chunk = text[position : len(text) if end < 0 else end]
                for attribute in _READ_ATTRIBUTES.finditer(chunk):
                    name, value = attribute.groups()
                    if name == "placeholder" and re.search(r"[=.,:/@]", value):
                        continue  # an example of a value (mode=stress, FSA1, db.fk), not words
                    if _english(value) and not skipped:
                        found.append((line_at(position + attribute.start()), value))
                if end < 0:
                    break
                in_tag, position = False, end + 1
                continue
            if char == "<" and re.match(r"</?[A-Za-z!]", text[position : position + 3]):
                if node and not skipped and _english("".join(node)):
                    found.append((line_at(start), " ".join("".join(node).split())))
                node = []
                element = re.match(r"<(/?)([A-Za-z][\w-]*)", text[position:])
                if element and element.group(2).lower() in _SKIPPED_ELEMENTS:
                    if element.group(1):
                        if skipped:
                            skipped.pop()
                    else:
                        skipped.append(element.group(2).lower())
                if text.startswith("<!--", position):
                    end = text.find("-->", position)
                    position = len(text) if end < 0 else end + 3
                    continue
                in_tag, position = True, position + 1
                continue
            if not "".join(node).strip():
                start = position  # where the words begin, for the line number
            node.append(char)
            position += 1
        if node and not skipped and _english("".join(node)):
            found.append((line_at(start), " ".join("".join(node).split())))
    return found


class Phrase(str):
    """English words that remember their msgid and parameters.

    Code, JSON, gates and the CLI use it as the plain English ``str`` it is; a
    page shows it in its own language through the ``|translated`` filter (or
    ``phrase.shown()`` in Python). The msgid is marked where it is written:
    ``Phrase(gettext_noop("… %(path)s …"), path=…)``.

    Prose stored and read later (an audit entry's summary, why a run skipped a
    job) keeps ``as_data()`` — the msgid and values as JSON — so each reader gets
    it in their own language, not the writer's: ``Phrase.from_data``. A value may
    itself be a Phrase, a list of them (``Parts``), or a lazy translation such as
    a model choice's label: each is translated with the sentence.
    """

    msgid: str
    params: dict

    def __new__(cls, msgid: str, **params) -> Phrase:
        params = {name: _kept(value) for name, value in params.items()}
        english = {name: _translated(value, str) for name, value in params.items()}
        phrase = super().__new__(cls, msgid % english if params else msgid)
        phrase.msgid, phrase.params = msgid, params
        return phrase

    def translated(self, gettext) -> str:
        """The words in the active language; a parameter that is itself a Phrase (or a
        list of them, joined with "; ") is put into the same language."""
        text = gettext(self.msgid)
        if not self.params:
            return text
        return text % {name: _translated(value, gettext) for name, value in self.params.items()}

    def shown(self) -> str:
        """The phrase in the active language."""
        return self.translated(_gettext)

    def as_data(self) -> dict:
        """JSON to store: {"msgid", "params"}, nested phrases and parts alike."""
        data: dict = {"msgid": self.msgid}
        if self.params:
            data["params"] = {name: _stored(value) for name, value in self.params.items()}
        return data

    @classmethod
    def from_data(cls, data: dict) -> Phrase:
        return cls(
            data["msgid"],
            **{name: _loaded(value) for name, value in (data.get("params") or {}).items()},
        )


class Parts(list):
    """Words joined by ``separator``: in English as a plain ``str``, or each part (a
    Phrase among them) in a page's language when a Phrase holding them is translated."""

    def __init__(self, parts=(), separator: str = "; ") -> None:
        super().__init__(parts)
        self.separator = separator

    def __str__(self) -> str:
        return self.separator.join(str(part) for part in self)

    def translated(self, gettext) -> str:
        return self.separator.join(str(_translated(part, gettext)) for part in self)


def _translated(value, gettext):
    """A parameter of a Phrase: in English when ``gettext`` is ``str``, else translated."""
    if isinstance(value, Phrase | Parts):
        return str(value) if gettext is str else value.translated(gettext)
    if isinstance(value, list | tuple):
        return _translated(Parts(value), gettext)
    return value


def _kept(value):
    """A phrase's value as kept: a lazy translation (a choice's label) becomes the
    Phrase of its English msgid; phrases, parts, lists, numbers and None stay; anything
    else is text."""
    if isinstance(value, Phrase | Parts | list | tuple) or value is None:
        return value
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, Promise):
        with override("en"):
            return Phrase(str(value))
    return str(value)


def _stored(value):
    if isinstance(value, Phrase):
        return value.as_data()
    if isinstance(value, Parts):
        return {"parts": [_stored(part) for part in value], "separator": value.separator}
    if isinstance(value, list | tuple):
        return {"parts": [_stored(part) for part in value], "separator": "; "}
    return value


def _loaded(value):
    if isinstance(value, dict) and "msgid" in value:
        return Phrase.from_data(value)
    if isinstance(value, dict) and "parts" in value:
        return Parts([_loaded(part) for part in value["parts"]], value.get("separator", "; "))
    return value


def shown(text) -> str:
    """A Phrase in the active language; any other text as it is."""
    return text.shown() if isinstance(text, Phrase) else str(text)


def shown_phrase(data, fallback: str = "") -> str:
    """Stored prose in the reader's language: ``data`` as ``Phrase.as_data`` wrote it,
    else ``fallback`` (the English a row written before kept)."""
    if isinstance(data, Phrase):
        return data.shown()
    if isinstance(data, dict) and data.get("msgid"):
        try:
            return Phrase.from_data(data).shown()
        except (KeyError, ValueError, TypeError):
            return fallback  # values that no longer fit a changed msgid
    return fallback
