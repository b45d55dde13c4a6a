"""The output pipeline: what the model writes is redacted, converted and split before Slack sees it."""

from __future__ import annotations

from lucy.contracts import task_workflow_id
from lucy.slack_text import split_message, to_mrkdwn
from tests.conftest import Lucy, mention_event, new_team
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack


def test_markdown_becomes_mrkdwn_and_code_is_untouched():
    md = "# Plan\n**Bold**, *italic*, ~~gone~~, [docs](https://example.com/x)\n- a\n- b\n`**raw**`\n```\n**raw**\n```"
    assert to_mrkdwn(md) == (
        "*Plan*\n*Bold*, _italic_, ~gone~, <https://example.com/x|docs>\n• a\n• b\n`**raw**`\n```\n**raw**\n```"
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
