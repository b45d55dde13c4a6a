"""Mail from outside under the default ``email-outsiders ignore`` ([trust2] item 3): shown in
the notification channel as quoted, untrusted content, the sender "not verified", never
answered by itself; a member (not a guest) may let Lucy draft a reply, whose mail waits for an
approval of its exact text, or ignore the sender. Through the signed ``POST /webhooks/agentmail``
and signed Slack clicks; the real ingress, worker, Temporal and PostgreSQL; fake Slack, LLM and
AgentMail."""

from __future__ import annotations

import json
import uuid
from typing import Any

from slack_sdk.models.blocks import Block

from lucy.contracts.ids import email_workflow_id
from tests.conftest import Lucy, eventually
from tests.e2e.test_email import (  # noqa: F401  (fixtures used by name)
    EVE,
    _approval,
    _bound_workspace,
    _channels,
    _count_tasks,
    _deliver,
    _deliveries,
    _result,
    settings,
)
from tests.fakes.agentmail import FakeAgentMail, message_received
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack

HOSTILE = "Hi <!channel>, pay now: <https://evil.example|your bank> & thanks <@U0ADMIN1>"


def _notice(fake_slack: FakeSlack) -> dict[str, Any] | None:
    return next(
        (m for m in fake_slack.posted("C0GENERAL") if "Mail from outside" in json.dumps(m.get("blocks"))),
        None,
    )


async def _shown(
    lucy: Lucy, fake_slack: FakeSlack, inbox: str, mail: FakeAgentMail | None = None
) -> tuple[str, dict[str, Any]]:
    thread = f"thr_{uuid.uuid4().hex}"
    event = message_received(
        inbox_id=inbox, thread_id=thread, message_id=f"<{thread}>", sender=EVE, text=HOSTILE
    )
    outcome = (await _deliver(lucy, event, mail=mail)).json()
    assert outcome["status"] == "ignored" and "shown in Slack" in outcome["reason"]
    notice = _notice(fake_slack)
    assert notice is not None, "the mail is shown in the notification channel"
    return thread, notice


async def test_outside_mail_is_shown_quoted_unverified_with_two_buttons_and_not_answered(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_agentmail: FakeAgentMail
):
    team, inbox = await _bound_workspace(lucy.engine)
    thread, notice = await _shown(lucy, fake_slack, inbox)
    blocks = notice["blocks"]
    for block in blocks:
        Block.parse(block).validate_json()  # type: ignore[union-attr]
    shown = json.dumps(blocks)
    assert "eve@outside.example" in shown and "not verified" in shown
    assert "&lt;!channel&gt;" in shown and "<!channel>" not in shown and "<https://evil" not in shown
    assert "<@U0ADMIN1>" not in shown and "&amp; thanks" in shown
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert [b["text"]["text"] for b in buttons] == ["Let Lucy draft a reply", "Ignore sender"]
    assert all(len(b["value"]) < 2000 for b in buttons)
    assert fake_llm.requests == [] and await _count_tasks(lucy, team) == 0 and fake_agentmail.replies == []
    [row] = await _deliveries(lucy, f"<{thread}>")
    assert row.status == "ignored"
    again = message_received(inbox_id=inbox, thread_id=thread, message_id=f"<{thread}>", sender=EVE)
    assert (await _deliver(lucy, again)).json()["status"] == "duplicate"
    assert len([m for m in fake_slack.posted("C0GENERAL") if m.get("blocks")]) == 1  # shown once


async def test_a_guest_cannot_decide_and_a_member_lets_lucy_draft_a_reply_sent_only_when_approved(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_agentmail: FakeAgentMail
):
    team, inbox = await _bound_workspace(lucy.engine)
    thread, notice = await _shown(lucy, fake_slack, inbox, fake_agentmail)
    url = fake_slack.response_url("guest")
    await lucy.click(notice, "lucy_email_draft", team=team, user="UGUEST1", response_url=url)
    await eventually(lambda: fake_slack.responses, "the guest's refusal")
    assert "not a guest" in fake_slack.responses[-1]["text"]
    assert await _count_tasks(lucy, team) == 0
    fake_llm.then(content="Hello Eve, thanks: we'll look into it.")
    await lucy.click(
        notice, "lucy_email_draft", team=team, user="U0ALICE", response_url=fake_slack.response_url()
    )
    approval = await eventually(lambda: _approval(fake_slack, "C0GENERAL"), "the reply's approval")
    request = str(fake_llm.task_requests[0])
    assert "comes from outside Slack" in request and "pay now" in request
    assert "we'll look into it" in json.dumps(approval["blocks"])  # the exact text is shown
    assert fake_agentmail.replies == []  # nothing leaves before the decision
    await lucy.click(approval, "lucy_approve", team=team, user="UADMIN1")
    workflow_id = email_workflow_id(team, thread, f"<{thread}>")
    assert (await _result(lucy, workflow_id))["status"] == "completed"
    [reply] = fake_agentmail.replies
    assert reply.body["to"] == ["eve@outside.example"] and "we'll look into it" in reply.body["text"]


async def test_ignore_sender_hides_later_mail_from_that_address(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    team, inbox = await _bound_workspace(lucy.engine)
    _, notice = await _shown(lucy, fake_slack, inbox)
    await lucy.click(
        notice, "lucy_email_ignore_sender", team=team, user="U0ALICE", response_url=fake_slack.response_url()
    )
    said = await eventually(lambda: fake_slack.responses, "the notice's update")
    assert said[-1]["replace_original"] and "chose to ignore" in said[-1]["text"]
    assert "actions" not in [b["type"] for b in said[-1]["blocks"]]  # the buttons are gone
    later = f"thr_{uuid.uuid4().hex}"
    event = message_received(inbox_id=inbox, thread_id=later, message_id=f"<{later}>", sender=EVE)
    outcome = (await _deliver(lucy, event)).json()
    assert outcome["status"] == "ignored" and "ignore this sender" in outcome["reason"]
    assert len([m for m in fake_slack.posted("C0GENERAL") if m.get("blocks")]) == 1
    assert fake_llm.requests == [] and await _count_tasks(lucy, team) == 0
