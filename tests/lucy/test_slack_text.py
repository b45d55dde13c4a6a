"""The output pipeline: what the model writes is redacted, converted and split before Slack sees it."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lucy.contracts.ids import task_workflow_id
from lucy.slack.text import INPUT_LIMIT, escape_mrkdwn, prepare, split_message, to_mrkdwn
from tests.conftest import Lucy, mention_event, new_team
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack


def test_markdown_becomes_mrkdwn_and_code_is_untouched():
    md = "# Plan\n**Bold**, *italic*, ~~gone~~, [docs](https://example.com/x)\n- a\n- b\n`**raw**`\n```\n**raw**\n```"
    assert to_mrkdwn(md) == (
        "*Plan*\n*Bold*, _italic_, ~gone~, docs (<https://example.com/x>)\n• a\n• b\n`**raw**`\n```\n**raw**\n```"
    )


def test_split_respects_the_limit_and_keeps_code_fences_balanced():
    text = "word " * 500 + "\n\n```\n" + "print(1)\n" * 300 + "```\nthe end"
    parts = split_message(text, 1000)
    assert len(parts) > 3
    assert all(len(p) <= 1000 for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts)
    assert "".join(parts).replace("```", "").replace(" ", "").replace("\n", "") == text.replace(
        "```", ""
    ).replace(" ", "").replace("\n", "")


async def test_long_markdown_answer_arrives_formatted_split_and_redacted(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    team = new_team()
    answer = "**Summary**: use the key sk-or-v1-0123456789abcdef carefully.\n\n" + "\n\n".join(
        f"Paragraph {i}: " + "lorem ipsum " * 40 for i in range(20)
    )
    fake_llm.then(content=answer)
    event = mention_event(team=team, channel="C0LONG", text="a long answer please")
    assert (await lucy.post_event(event)).status_code == 200
    ev = event["event"]
    handle = lucy.client.get_workflow_handle(task_workflow_id(team, ev["channel"], ev["ts"]))
    assert (await handle.result())["status"] == "completed"
    posts = fake_slack.posted("C0LONG")
    assert len(posts) >= 3
    assert all(p["thread_ts"] == ev["ts"] for p in posts)
    assert all(len(p["text"]) <= 3500 for p in posts)
    assert posts[0]["text"].startswith("*Summary*: use the key [redacted] carefully.")
    assert "sk-or-v1" not in "".join(p["text"] for p in posts)
    assert posts[-1]["text"].rstrip().endswith("lorem ipsum")
    joined = " ".join(p["text"] for p in posts)
    assert [f"Paragraph {i}:" in joined for i in range(20)] == [True] * 20


async def test_a_retry_after_a_partial_post_sends_only_the_missing_parts(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    team = new_team()
    fake_llm.then(content="\n\n".join(f"Part {i} " + "x" * 3000 for i in range(3)))
    fake_slack.fail(
        "chat.postMessage", status=500, error="internal_error", apply_then_fail=True
    )  # 1st part lands
    event = mention_event(team=team, channel="C0PARTIAL", text="three parts")
    assert (await lucy.post_event(event)).status_code == 200
    ev = event["event"]
    handle = lucy.client.get_workflow_handle(task_workflow_id(team, ev["channel"], ev["ts"]))
    assert (await handle.result())["status"] == "completed"
    texts = [p["text"][:6] for p in fake_slack.posted("C0PARTIAL")]
    assert texts == ["Part 0", "Part 1", "Part 2"]


# --------------------------------------------------------------------------- conversion


def test_more_markdown_becomes_mrkdwn():
    md = (
        "## Steps ##\n1. one\n  * nested *it*\n+ plus\n__strong__ and **a *b* c**\n"
        "| a | b |\n|:--|--:|\n| 1 | 2 |\n---\n# C#\nend"
    )
    assert to_mrkdwn(md) == (
        "*Steps*\n1. one\n  • nested _it_\n• plus\n*strong* and *a _b_ c*\n| a | b |\n| 1 | 2 |\n*C#*\nend"
    )


def test_code_is_kept_verbatim_but_escaped():
    md = "```python\nif a < b && c > d:\n    print('<!channel> **x**')\n```\nafter `<@U1> & **y**`"
    assert to_mrkdwn(md) == (
        "```\nif a &lt; b &amp;&amp; c &gt; d:\n    print('&lt;!channel&gt; **x**')\n```\n"
        "after `&lt;@U1&gt; &amp; **y**`"
    )
    # An unclosed fence is closed; ~~~ fences become Slack's ```; ```x``` on one line is code.
    assert to_mrkdwn("```\n- not a bullet") == "```\n- not a bullet\n```"
    assert to_mrkdwn("~~~\n# not a heading\n~~~\n# heading") == "```\n# not a heading\n```\n*heading*"
    assert to_mrkdwn("```**x**``` and *y*") == "```**x**``` and *y*"


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("[docs](https://example.com/x)", "docs (<https://example.com/x>)"),
        ("[https://example.com/x](https://example.com/x)", "<https://example.com/x>"),
        ("[example.com](https://example.com/)", "<https://example.com/>"),
        ("[](https://example.com)", "<https://example.com>"),
        ("![chart](https://x.example/c.png)", "chart (<https://x.example/c.png>)"),
        ("[q](https://x.example/?q=1&r=2)", "q (<https://x.example/?q=1&amp;r=2>)"),
        ("[pipe](https://x.example/a|https://okta.corp)", "pipe (<https://x.example/a%7Chttps://okta.corp>)"),
        ("[gt](https://x.example/a>b)", "[gt](https://x.example/a&gt;b)"),
        ("[Foo](https://en.wikipedia.org/wiki/Foo_(bar))", "Foo (<https://en.wikipedia.org/wiki/Foo_(bar)>)"),
        ("[https://okta.corp](https://evil.example)", "https://okta.corp (<https://evil.example>)"),
        ("[<!channel> here](https://x.example)", "&lt;!channel&gt; here (<https://x.example>)"),
        ("[**x** `c`](https://a.example)", "*x* `c` (<https://a.example>)"),
        (
            "[<https://evil.example|https://okta.corp>](https://a.example)",
            "https://okta.corp (<https://evil.example>) (<https://a.example>)",
        ),
        # Nothing invisible can make a link's URL read as another: bidi controls are shown,
        # invisible characters in a URL are percent-encoded.
        ("[x\u202e](https://moc.atko.example)", "x⟦U+202E⟧ (<https://moc.atko.example>)"),
        ("[x](https://a.example/\u200bq)", "x (<https://a.example/%E2%80%8Bq>)"),
        ("\u2067code\u2069", "⟦U+2067⟧code⟦U+2069⟧"),
        ("<https://x.example/a>", "<https://x.example/a>"),
        ("<https://evil.example|https://okta.corp>", "https://okta.corp (<https://evil.example>)"),
        ("<https://evil.example|<!channel>>", "&lt;https://evil.example|&lt;!channel&gt;&gt;"),
        ("<mailto:a@b.example|Click>", "&lt;mailto:a@b.example|Click&gt;"),
        (
            "see https://x.example/a_b_c and https://x.example/__init__.py",
            "see https://x.example/a_b_c and https://x.example/__init__.py",
        ),
        ("[not a link](javascript:alert(1))", "[not a link](javascript:alert(1))"),
    ],
)
def test_links_show_their_real_url(markdown: str, expected: str):
    assert to_mrkdwn(markdown) == expected


# --------------------------------------------------------------------------- injection

ATTACKS = {
    "<!channel>": "&lt;!channel&gt;",
    "<!here>": "&lt;!here&gt;",
    "<!here|here>": "&lt;!here|here&gt;",
    "<!everyone>": "&lt;!everyone&gt;",
    "<!subteam^S123>": "&lt;!subteam^S123&gt;",
    "<!subteam^S123|@oncall>": "&lt;!subteam^S123|@oncall&gt;",
    "<@U123>": "&lt;@U123&gt;",
    "<@U123|boss>": "&lt;@U123|boss&gt;",
    "<#C123>": "&lt;#C123&gt;",
    "<#C123|general>": "&lt;#C123|general&gt;",
    "<!date^1392734382^{date}|x>": "&lt;!date^1392734382^{date}|x&gt;",
    "&lt;!channel&gt;": "&amp;lt;!channel&amp;gt;",
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_mentions_are_neutralised_everywhere(attack: str):
    shown = ATTACKS[attack]
    assert prepare(f"Hey {attack}, look") == [f"Hey {shown}, look"]
    assert prepare(f"# {attack}") == [f"*{shown}*"]
    assert prepare(f"- **{attack}**") == [f"• *{shown}*"]
    assert prepare(f"`{attack}`") == [f"`{shown}`"]
    assert prepare(f"```\n{attack}\n```") == [f"```\n{shown}\n```"]
    assert prepare(f"[{attack}](https://x.example)") == [f"{shown} (<https://x.example>)"]
    assert escape_mrkdwn(attack) == shown
    _assert_nothing_pings_or_lies(prepare(attack)[0])


def test_escape_mrkdwn():
    assert escape_mrkdwn("a & b <!here> <https://evil|okta> *x* `y`") == (
        "a &amp; b &lt;!here&gt; &lt;https://evil|okta&gt; *x* `y`"
    )
    assert escape_mrkdwn("") == ""
    assert escape_mrkdwn("plain") == "plain"


def _assert_nothing_pings_or_lies(text: str) -> None:
    """No special, user or channel mention and no labelled link: the only ``<...>`` is a bare URL."""
    for forbidden in ("<!", "<@", "<#"):
        assert forbidden not in text
    for m in re.finditer("<", text):
        end = text.find(">", m.start())
        inner = text[m.start() + 1 : end] if end >= 0 else text[m.start() + 1 :].split()[0]
        assert inner.startswith(("http://", "https://")), text
        assert "|" not in inner and not any(c.isspace() for c in inner), text


_HOSTILE = (
    "<",
    ">",
    "|",
    "!",
    "@",
    "#",
    "^",
    "&",
    "&lt;",
    "&gt;",
    "&amp;",
    "channel",
    "here",
    "U123",
    "subteam^S123",
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!subteam^S123>",
    "<@U123>",
    "<#C123>",
    "<#C123|general>",
    "<https://evil.example|https://okta.corp>",
    "<http://a.example>",
    "https://",
    "http://x.example/",
    "https://x.example/a|b",
    "[",
    "]",
    "(",
    ")",
    "](",
    "[okta](https://evil.example)",
    "![i](https://x.example/i.png)",
    "`",
    "```",
    "```\n",
    "~~~",
    "\n",
    "\r\n",
    " ",
    "\t",
    "*",
    "**",
    "_",
    "__",
    "~",
    "~~",
    "#",
    "# ",
    "- ",
    "|---|",
    "\x00",
    "\x01",
    "\x02",
    "\x03",
    "0",
    "7",
    "mailto:a@b.example",
    "xoxb-1-2-3",
)
_hostile_text = st.lists(st.one_of(st.sampled_from(_HOSTILE), st.text(max_size=4)), max_size=80).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_hostile_text, limit=st.integers(min_value=64, max_value=4_000))
def test_nothing_that_comes_out_can_ping_or_hide_a_link(text: str, limit: int):
    parts = prepare(text, limit)
    assert parts and all(0 < len(p) <= limit for p in parts)
    for part in parts:
        _assert_nothing_pings_or_lies(part)
    escaped = escape_mrkdwn(text)
    assert "<" not in escaped and ">" not in escaped
    _assert_nothing_pings_or_lies(escaped)


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_at_all_is_safe(text: str):
    for part in prepare(text, 100):
        _assert_nothing_pings_or_lies(part)
    _assert_nothing_pings_or_lies(escape_mrkdwn(text))


# --------------------------------------------------------------------------- size and time


def test_text_beyond_the_input_limit_is_cut_with_a_visible_marker():
    parts = prepare("word " * 20_000)  # 100,000 characters
    marker = re.search(r"\n\[… ([\d,]+) characters not shown …\]$", parts[-1])
    assert marker is not None
    assert 60_000 <= int(marker.group(1).replace(",", "")) <= 60_010
    assert sum(len(p) for p in parts) <= INPUT_LIMIT + 100
    # Cut inside a code block: the block is closed before the marker.
    parts = prepare("```\n" + "x = 1\n" * 10_000)
    assert all(p.count("```") % 2 == 0 for p in parts)
    assert parts[-1].endswith("```\n\n[… 20,005 characters not shown …]")  # cut at a line end
    # A secret beyond the cut is neither shown nor counted wrong.
    assert prepare("a\n" * 30_000 + "xoxb-1-2-3")[-1].endswith("characters not shown …]")


def test_prepare_redacts_every_kind_of_secret():
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
    token = "ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5"
    assert prepare(f"The key:\n```\n{pem}\n```\nand `{token}`") == [
        "The key:\n```\n-----BEGIN RSA PRIVATE KEY-----\n[redacted]\n-----END RSA PRIVATE KEY-----\n```"
        "\nand `[redacted]`"
    ]


PATHOLOGICAL = {
    "newlines": "\n" * 8_000,
    "blank lines with spaces": "\n \n" * 4_000,
    "spaces then newline": " \n" * 8_000,
    "pipes": "|\n" * 8_000,
    "pipes and spaces": "| |\n" * 4_000,
    "dashes": "-\n" * 8_000,
    "pipe dashes": "|-\n" * 8_000,
    "table rules": "| --- |\n" * 2_000,
    "almost table rules": "|---|---|---|--\n" * 1_000 + "x",
    "hashes": "#\n" * 8_000,
    "heading markers": "# \n" * 8_000,
    "heading with long tail": "# x" + " " * 8_000 + "#" * 8_000 + " !",
    "heading spaces": "#" + " " * 16_000 + "x",
    "table rule spaces": "|" + " " * 8_000 + ":---" + " " * 8_000 + "x",
    "bold openers": "**a " * 4_000,
    "strike openers": "~~a " * 4_000,
    "italic openers": "*a " * 5_000,
    "link openers": "[a](https://x " * 2_000,
    "link labels": "[" * 16_000,
    "slack links": "<https://a|" * 2_000,
}


@pytest.mark.parametrize("text", list(PATHOLOGICAL.values()), ids=list(PATHOLOGICAL))
def test_the_old_pathological_cases_finish_fast(text: str):
    started = time.perf_counter()
    parts = prepare(text)
    elapsed = time.perf_counter() - started
    assert parts
    assert elapsed < 0.5, f"{elapsed:.3f}s"


def test_blank_input_still_says_something():
    assert prepare("\n" * 8_000) == ["(no text)"]
    assert prepare("") == ["(no text)"]


_RUN_UNITS = (
    "\n",
    " ",
    "|",
    "-",
    "#",
    "*",
    "_",
    "~",
    "`",
    "[",
    "](",
    "<",
    ">",
    "&",
    "\n \n",
    "| ",
    "|---",
    "# ",
    "**a ",
    "__a ",
    "~~a ",
    "*a ",
    "[a](https://x ",
    "<https://a|",
    "```\n",
    "~~~\n",
    "- ",
    "\t",
    ":",
    "a",
    "https://",
    "eyJ",
    "://a:",
    "bearer ",
    "Authorization: ",
    "@",
)
_adversarial = st.lists(
    st.tuples(st.sampled_from(_RUN_UNITS), st.integers(min_value=1, max_value=25_000)), min_size=1, max_size=5
).map(lambda runs: "".join(unit * n for unit, n in runs)[:50_000])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_adversarial)
def test_prepare_takes_linear_time_on_adversarial_input(text: str):
    started = time.perf_counter()
    prepare(text)
    elapsed = time.perf_counter() - started
    kilobytes = max(len(text) / 1024, 5)  # small inputs: allow 100 ms for noise
    assert elapsed / kilobytes < 0.020, f"{elapsed * 1000:.0f} ms for {len(text)} characters"


@pytest.mark.parametrize("unit", _RUN_UNITS)
def test_fifty_kilobytes_of_one_adversarial_run_take_well_under_a_second(unit: str):
    text = (unit * (50_000 // len(unit) + 1))[:50_000]
    started = time.perf_counter()
    prepare(text)
    assert time.perf_counter() - started < 0.5
