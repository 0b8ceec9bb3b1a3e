"""Markdown to sanitised HTML, for runbooks and training modules.

markdown-it-py renders CommonMark with tables and strikethrough. Authors may
write raw HTML (``<details>``, ``<kbd>``…), so the parser lets it through and
then *everything* passes nh3's allow-list below: tags, attributes, URL schemes
and classes not on it are dropped, and the content of ``script``/``style`` is
removed with them. What reaches a page can therefore hold no script, no event
handler, no ``javascript:`` URL and no inline style beyond table alignment.

A fenced block whose info string starts with ``kaizen-run`` is an executable
step, e.g.::

    ```kaizen-run kind=benchmark target=shop-api
    label: A 30-second load test at 50 requests per second
    mode: load
    rate: 50
    duration: 30
    ```

It is parsed into a ``RunStep`` and left out of the HTML: ``render`` returns
the sanitised HTML split around the steps, and the page renders each step
itself (a button for those allowed to run it).
"""

from __future__ import annotations

import html
import re
import secrets
import shlex
from dataclasses import dataclass, field

import nh3
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from optimizations.jobs.kinds import KINDS

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "dd",
    "del",
    "details",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "mark",
    "ol",
    "p",
    "pre",
    "s",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start"},
    "th": {"style"},
    "td": {"style"},
}
# Relative links (other Kaizen pages) stay; of absolute ones only these schemes.
URL_SCHEMES = {"http", "https", "mailto"}
# Only the fence language markdown-it puts on code, e.g. language-sql.
CODE_LANGUAGES = (
    "sql",
    "python",
    "bash",
    "shell",
    "console",
    "json",
    "yaml",
    "toml",
    "ini",
    "text",
    "http",
    "diff",
)
ALLOWED_CLASSES = {"code": {f"language-{name}" for name in CODE_LANGUAGES}}
# markdown-it aligns table cells with an inline style; that alone is kept.
ALLOWED_STYLES = {"text-align"}

RUN_FENCE = "kaizen-run"
# Job kinds a step may start: the jobs engine's registry.
STEP_KINDS = {name: kind.label for name, kind in KINDS.items()}
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


_MARKDOWN = _parser()


@dataclass(frozen=True)
class RunStep:
    """An executable step written in a runbook as a ``kaizen-run`` fenced block."""

    index: int
    kind: str
    target: str
    label: str
    params: dict[str, str] = field(default_factory=dict)
    error: str = ""
    source: str = ""

    @property
    def kind_label(self) -> str:
        return STEP_KINDS.get(self.kind, self.kind or "—")

    def describe(self) -> str:
        params = " ".join(f"{key}={value}" for key, value in self.params.items())
        return f"{self.kind_label}{' ' + params if params else ''}"


@dataclass(frozen=True)
class Part:
    """A piece of a rendered document: sanitised HTML, or a step between two pieces."""

    html: SafeString | str = ""
    step: RunStep | None = None


@dataclass(frozen=True)
class Rendered:
    parts: list[Part]
    steps: list[RunStep]

    @property
    def html(self) -> SafeString:
        """The document with each step shown as its source, for places without buttons."""
        return mark_safe(
            "".join(
                part.html
                if part.step is None
                else f'<pre class="run-step-source"><code>{escape(part.step.source)}</code></pre>'
                for part in self.parts
            )
        )

    def __html__(self) -> str:
        return self.html


def parse_step(index: int, info: str, body: str) -> RunStep:
    """Read a step's parameters from the fence's info string and its ``key: value`` lines."""
    source = f"```{info}\n{body}```"
    pairs: list[tuple[str, str]] = []
    error = ""
    try:
        words = shlex.split(info[len(RUN_FENCE) :])
    except ValueError as exc:
        words, error = [], f"cannot read the parameters: {exc}"
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            error = error or f"“{word}” is not key=value"
            continue
        pairs.append((key.strip().lower(), value.strip()))
    for line in body.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            key, sep, value = line.partition("=")
        if not sep:
            error = error or f"“{line}” is not “key: value”"
            continue
        pairs.append((key.strip().lower(), value.strip()))
    params: dict[str, str] = {}
    for key, value in pairs:
        if not _KEY.match(key):
            error = error or f"“{key}” is not a parameter name"
        else:
            params[key] = value[:200]
    kind = params.pop("kind", "")
    target = params.pop("target", "")
    label = params.pop("label", "")
    if not error and kind not in STEP_KINDS:
        error = f"unknown kind “{kind}” (use one of {', '.join(sorted(STEP_KINDS))})"
    return RunStep(
        index=index,
        kind=kind,
        target=target,
        label=label or f"Run a {STEP_KINDS.get(kind, 'job').lower()}",
        params=params,
        error=error,
        source=source,
    )


def sanitise(html: str) -> str:
    """Keep only what the allow-list names."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        allowed_classes=ALLOWED_CLASSES,
        filter_style_properties=ALLOWED_STYLES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def render(text: str) -> Rendered:
    """Markdown → sanitised HTML, split around the document's executable steps."""
    tokens = _MARKDOWN.parse(text or "")
    # Each step becomes a marker paragraph carrying a secret of this rendering
    # only, so text in the document can never pose as a step.
    nonce = secrets.token_hex(12)
    steps: list[RunStep] = []
    for token in tokens:
        if token.type == "fence" and token.info.strip().split(" ")[0] == RUN_FENCE:
            steps.append(parse_step(len(steps) + 1, token.info.strip(), token.content))
            token.type = "html_block"
            token.content = f"<p>{nonce}-{len(steps)}</p>\n"
    html = sanitise(_MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {}))
    parts: list[Part] = []
    pieces = re.split(rf"<p>{nonce}-(\d+)</p>", html)
    for position, piece in enumerate(pieces):
        if position % 2:
            parts.append(Part(step=steps[int(piece) - 1]))
        elif piece:
            parts.append(Part(html=mark_safe(piece)))
    return Rendered(parts=parts, steps=steps)


def render_html(text: str) -> SafeString:
    """Sanitised HTML of ``text``, steps shown as their source (training, previews)."""
    return render(text).html


def plain_text(text: str, limit: int = 240) -> str:
    """The words of a Markdown document without its markup, for summaries."""
    words = html.unescape(nh3.clean(_MARKDOWN.render(text or ""), tags=set()))
    words = re.sub(r"\s+", " ", words).strip()
    return words if len(words) <= limit else words[: limit - 1].rsplit(" ", 1)[0] + "…"
