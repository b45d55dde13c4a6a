"""Whose mail it is, proven: the From header's display name never makes a sender a member, only
an aligned pass in the receiving MTA's Authentication-Results does, a positive failure is a
forged sender, and automatic mail (auto-replies, lists) is never answered. Through the signed
``POST /webhooks/agentmail``, the real ingress, worker, Temporal and PostgreSQL; fake Slack,
LLM and AgentMail."""

from __future__ import annotations

import uuid

import pytest

from capabilities.email.routing import CAPPED_NOTE, MAX_THREAD_TASKS
from lucy.contracts.ids import email_workflow_id
from tests.conftest import Lucy, eventually
from tests.e2e.test_email import (  # noqa: F401  (fixtures used by name)
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

# Bob (bob@example.com) is a member (tests.e2e.test_email._channels).
BOB_DMARC = "mx.agentmail.to; dmarc=pass header.from=example.com"


async def _ignored_as_outsider(lucy: Lucy, fake_llm: FakeLlm, team: str, message_id: str) -> None:
    [row] = await _deliveries(lucy, message_id)
    assert row.status == "ignored" and "not a member" in row.last_error
    assert fake_llm.requests == [] and await _count_tasks(lucy, team) == 0


@pytest.mark.parametrize(
    ("sender", "looked_up"),
    [
        # The attacker's own domain passes DMARC: the mail is from them, whatever the name says.
        ('"bob@example.com" <eve@outside.example>', ["eve@outside.example"]),
        ("bob@example.com <eve@outside.example>", []),  # two addresses: nobody is looked up
    ],
    ids=["quoted-name", "bare-name"],
)
async def test_a_member_address_in_the_display_name_is_not_the_member(
    lucy: Lucy, fake_llm: FakeLlm, fake_slack: FakeSlack, sender: str, looked_up: list[str]
):
    team, inbox = await _bound_workspace(lucy.engine)
    thread = f"thr_{uuid.uuid4().hex}"
    event = message_received(
        inbox_id=inbox,
        thread_id=thread,
        message_id=f"<{thread}>",
        sender=sender,
        headers={"Authentication-Results": "mx.agentmail.to; dmarc=pass header.from=outside.example"},
    )
    assert (await _deliver(lucy, event)).json()["status"] == "ignored"
    await _ignored_as_outsider(lucy, fake_llm, team, f"<{thread}>")
    assert [c.params["email"] for c in fake_slack.calls_to("users.lookupByEmail")] == looked_up


@pytest.mark.parametrize(
    "results",
    [
        None,  # no Authentication-Results at all
        "mx.agentmail.to; spf=pass smtp.mailfrom=bounce@mailer.example; dkim=pass header.d=mailer.example",
        "mx.agentmail.to; spf=none; dkim=neutral; dmarc=none",
        "mx.agentmail.to; dmarc=pass header.from=outside.example",
    ],
    ids=["no-headers", "unaligned-pass", "none-neutral", "dmarc-for-another-domain"],
)
async def test_a_member_address_without_an_aligned_pass_is_from_outside(
    lucy: Lucy, fake_llm: FakeLlm, fake_slack: FakeSlack, results: str | None
):
    team, inbox = await _bound_workspace(lucy.engine)
    thread = f"thr_{uuid.uuid4().hex}"
    event = message_received(
        inbox_id=inbox,
        thread_id=thread,
        message_id=f"<{thread}>",
        authenticated=False,
        headers={"Authentication-Results": results} if results else None,
    )
    assert (await _deliver(lucy, event)).json()["status"] == "ignored"
    await _ignored_as_outsider(lucy, fake_llm, team, f"<{thread}>")
    assert fake_slack.calls_to("users.lookupByEmail") == []  # never treated as a member


async def test_an_unproven_member_address_is_accepted_only_as_an_outsider(
    lucy: Lucy, fake_llm: FakeLlm, fake_slack: FakeSlack
):
    team, inbox = await _bound_workspace(lucy.engine, email_outsiders="accept")
    thread = f"thr_{uuid.uuid4().hex}"
    fake_llm.then(content="Noted.")
    event = message_received(inbox_id=inbox, thread_id=thread, message_id=f"<{thread}>", authenticated=False)
    assert (await _deliver(lucy, event)).json()["status"] == "started"
    request = await _first_request(fake_llm)
    assert "comes from outside Slack" in request and "<@U0BOBMAIL>" not in request
    assert await _count_tasks(lucy, team) == 1


async def _first_request(fake_llm: FakeLlm) -> str:
    await eventually(lambda: fake_llm.task_requests, "the task's LLM call")
    return str(fake_llm.task_requests[0])


async def test_an_aligned_pass_makes_the_member(lucy: Lucy, fake_llm: FakeLlm):
    team, inbox = await _bound_workspace(lucy.engine)
    thread = f"thr_{uuid.uuid4().hex}"
    fake_llm.then(content="Done.")
    event = message_received(
        inbox_id=inbox,
        thread_id=thread,
        message_id=f"<{thread}>",
        authenticated=False,
        headers={"Authentication-Results": "mx.agentmail.to; dkim=pass header.d=example.com"},
    )
    assert (await _deliver(lucy, event)).json()["status"] == "started"
    assert "<@U0BOBMAIL>" in await _first_request(fake_llm)
    assert (await _result(lucy, email_workflow_id(team, thread)))["status"] == "completed"


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"X-Autoreply": "yes"},
        {"X-Auto-Response-Suppress": "All"},
        {"List-Id": "<team.lists.example.com>"},
    ],
    ids=["auto-submitted", "precedence", "x-autoreply", "x-auto-response-suppress", "list-id"],
)
async def test_automatic_mail_from_a_member_starts_nothing_and_mails_nothing(
    lucy: Lucy, fake_llm: FakeLlm, fake_slack: FakeSlack, headers: dict[str, str]
):
    """A member's out-of-office answering Lucy's reply would otherwise start a mail loop."""
    team, inbox = await _bound_workspace(lucy.engine)
    thread = f"thr_{uuid.uuid4().hex}"
    event = message_received(inbox_id=inbox, thread_id=thread, message_id=f"<{thread}>", headers=headers)
    assert (await _deliver(lucy, event)).json()["status"] == "ignored"
    [row] = await _deliveries(lucy, f"<{thread}>")
    assert row.status == "ignored" and "automatic mail is never answered" in row.last_error
    assert fake_llm.requests == [] and await _count_tasks(lucy, team) == 0
    assert fake_slack.posted("C0GENERAL") == []


async def test_an_email_thread_gets_at_most_its_answers_a_day_then_only_slack_hears_of_it(
    lucy: Lucy,
    fake_llm: FakeLlm,
    fake_slack: FakeSlack,
    fake_agentmail: FakeAgentMail,
):
    """A loop that no header betrays (a member's auto-responder without Auto-Submitted): each
    mail in the thread starts a follow-up answered by mail, up to the cap; the next one is shown
    in Slack, not answered, and the thread says why."""
    team, inbox = await _bound_workspace(lucy.engine)
    thread = f"thr_{uuid.uuid4().hex}"
    for n in range(MAX_THREAD_TASKS):
        fake_llm.then(content=f"Answer {n}.")
        mail = message_received(inbox_id=inbox, thread_id=thread, message_id=f"<{n}-{thread}>")
        outcome = (await _deliver(lucy, mail, mail=fake_agentmail)).json()
        assert outcome["status"] == ("started" if n == 0 else "followup")
        assert (await _result(lucy, outcome["workflow_id"]))["status"] == "completed"
    assert len(fake_agentmail.replies) == MAX_THREAD_TASKS
    one_more = message_received(inbox_id=inbox, thread_id=thread, message_id=f"<x-{thread}>")
    outcome = (await _deliver(lucy, one_more, mail=fake_agentmail)).json()
    assert outcome["status"] == "ignored" and f"{MAX_THREAD_TASKS} answers in 24 h" in outcome["reason"]
    assert (await _deliver(lucy, one_more)).json()["status"] == "duplicate"
    assert await _count_tasks(lucy, team) == MAX_THREAD_TASKS
    assert len(fake_agentmail.replies) == MAX_THREAD_TASKS
    posted = [p["text"] for p in fake_slack.posted("C0GENERAL")]
    assert posted.count(CAPPED_NOTE) == 1 and "A reply in this email thread" in posted[-2]


@pytest.mark.parametrize(
    ("headers", "forged"),
    [
        # Added by the sender under another authserv-id: read as nothing.
        ({"Authentication-Results": "attacker.example; dmarc=pass header.from=example.com"}, False),
        # Duplicated: the receiving MX's (topmost) says fail; the sender's copy below says pass.
        (
            {
                "Authentication-Results": [
                    "mx.agentmail.to; dmarc=fail (p=reject) header.from=example.com",
                    "mx.agentmail.to; dmarc=pass header.from=example.com",
                ]
            },
            True,
        ),
        # A fail next to a forged pass in one header: the fail wins.
        ({"Authentication-Results": f"{BOB_DMARC}; dmarc=fail header.from=example.com"}, True),
        # Folded over lines, a pass for another domain with a comment claiming ours.
        (
            {
                "Authentication-Results": "mx.agentmail.to;\r\n\tdkim=pass (header.d=example.com)\r\n"
                " header.d=outside.example"
            },
            False,
        ),
    ],
    ids=["other-authserv-id", "duplicated", "fail-next-to-pass", "folded"],
)
async def test_forged_authentication_results_never_make_a_member(
    lucy: Lucy, fake_llm: FakeLlm, fake_slack: FakeSlack, headers: dict[str, object], forged: bool
):
    team, inbox = await _bound_workspace(lucy.engine)
    thread = f"thr_{uuid.uuid4().hex}"
    event = message_received(inbox_id=inbox, thread_id=thread, message_id=f"<{thread}>", authenticated=False)
    event["message"]["headers"].update(headers)
    assert (await _deliver(lucy, event)).json()["status"] == "ignored"
    [row] = await _deliveries(lucy, f"<{thread}>")
    reason = "could not be authenticated" if forged else "not a member"
    assert row.status == "ignored" and reason in row.last_error
    assert fake_llm.requests == [] and await _count_tasks(lucy, team) == 0
    assert fake_slack.calls_to("users.lookupByEmail") == []  # never looked up as a member
