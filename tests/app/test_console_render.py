"""The console's Block Kit and mrkdwn renderer: Slack's formatting comes out, and nothing from a
message can become markup (tags, attributes, script URLs)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from app.devtools.console.blocks import blocks, find_element, message_body
from app.devtools.console.render import mrkdwn

NAMES = {"U0ALICE": "alice", "C0GENERAL": "general", "UBOTLUCY": "Lucy"}.get
# Everything the renderer itself may emit; any other tag means text became markup.
OWN_TAGS = {
    "a", "b", "i", "s", "code", "pre", "br", "blockquote", "span", "time", "div", "hr", "button",
    "ul", "ol", "li", "label", "input", "textarea",
}  # fmt: skip


def _tags(html: str) -> set[str]:
    return {t.lower() for t in re.findall(r"<\s*/?\s*([a-zA-Z][\w-]*)", html)}


def test_slack_formatting_is_rendered():
    html = mrkdwn(
        "*bold* _it_ ~gone~ `x<y` <@U0ALICE> <#C0GENERAL> <!here> <https://e.com/a?b=1&amp;c=2|site>", NAMES
    )
    assert "<b>bold</b>" in html and "<i>it</i>" in html and "<s>gone</s>" in html
    assert "<code>x&lt;y</code>" in html
    assert '<span class="mention" data-user="U0ALICE">@alice</span>' in html
    assert "#general" in html and "@here" in html
    assert '<a href="https://e.com/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">site</a>' in html
    assert "<pre>line &lt;1&gt;</pre>" in mrkdwn("```line &lt;1&gt;```")
    assert mrkdwn("&gt; quoted\nafter").startswith("<blockquote>quoted</blockquote>after")


def test_dates_render_in_utc_with_their_fallback_if_malformed():
    html = mrkdwn("<!date^1700000000^{date_num} {time}|Nov 14>")
    assert '<time datetime="2023-11-14T22:13:20+00:00"' in html and "2023-11-14 22:13 UTC" in html
    assert mrkdwn("<!date^nope^{date}|fallback &lt;b&gt;>") == "fallback &lt;b&gt;"


def test_hostile_text_stays_text():
    hostile = [
        "<script>alert(1)</script>",
        "&lt;img src=x onerror=alert(1)&gt;",
        "<javascript:alert(1)|click me>",
        '<https://ok.example/"onmouseover="alert(1)|x>',
        '<@U0ALICE|"><img src=x onerror=alert(1)>>',
        "*<b>* _</i>_ `</code><script>`",
        "\x00 0 \x00",
        "```</pre><script>alert(1)</script>```",
    ]
    for text in hostile:
        html = mrkdwn(text, NAMES)
        assert _tags(html) <= OWN_TAGS, (text, html)
        assert "<script" not in html and "<img" not in html and 'href="javascript' not in html, html
        assert "onerror=" not in html or "&lt;" in html or "onerror=alert(1)&gt;" in html


def test_blocks_escape_every_field_and_buttons_carry_only_their_position():
    message = {
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "<b>Head</b>"}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "&lt;script&gt;"},
                "fields": [{"type": "plain_text", "text": "<i>f</i>"}],
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "ctx <!date^0^{date}|x>"}]},
            {"type": "divider"},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "<Approve>"},
                        "style": "primary",
                        "action_id": 'a" onclick="x',
                        "value": "secret-value",
                    },
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "No"},
                        "style": "danger",
                        "action_id": "r",
                    },
                ],
            },
            {
                "type": "rich_text",
                "elements": [
                    {
                        "type": "rich_text_preformatted",
                        "elements": [{"type": "text", "text": "<svg onload=x>"}],
                    }
                ],
            },
            {"type": "mystery<x>"},
        ]
    }
    html = message_body(message)
    assert _tags(html) <= OWN_TAGS, html
    assert "secret-value" not in html and "onclick" not in html  # the server keeps action ids and values
    assert 'class="btn btn-primary" data-block="4" data-el="0">&lt;Approve&gt;</button>' in html
    assert 'class="btn btn-danger"' in html and "<hr" in html and "&lt;svg onload=x&gt;" in html
    assert "[unsupported block: mystery&lt;x&gt;]" in html
    assert find_element(message["blocks"], 4, "0")["value"] == "secret-value"
    assert find_element(message["blocks"], 9, "0") is None and find_element(message["blocks"], 4, "x") is None


PIECES = [
    *list("<>&\"'`*_~|!@#^:/ ajs=()\n"),
    "&lt;",
    "&gt;",
    "&amp;",
    "javascript:",
    "U0ALICE",
    "date^1^{time}",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_no_text_becomes_markup(text: str):
    for html in (
        mrkdwn(text, NAMES),
        blocks([{"type": "section", "text": {"type": "plain_text", "text": text}}]),
    ):
        assert _tags(html) <= OWN_TAGS, (text, html)
        assert 'href="javascript' not in html.lower()
        # Every quote in the output belongs to an attribute the renderer wrote.
        for attr in re.findall(r"<[^>]*>", html):
            assert attr.count('"') % 2 == 0, (text, attr)
