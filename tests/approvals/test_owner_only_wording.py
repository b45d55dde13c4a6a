"""A step on the requester's own account (``trust2-account-owner-approval``) can be approved by
them alone: the task's progress line in the thread and ``/lucy status`` say so, as the approval
message does, instead of offering "or a workspace admin". Real ingress, Temporal and Postgres;
Slack, the model and Composio are the fake servers."""

from __future__ import annotations

import asyncio
import json

from capabilities.task.views.blocks import progress_text
from lucy.contracts.slack import ProgressView
from tests.conftest import Lucy, eventually, new_team, record_history
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack
from tests.triggers.test_webhook_triggers import _approval, _create, _post
from tests.triggers.test_webhook_triggers import composio as composio
from tests.triggers.test_webhook_triggers import settings as settings

ALONE = "<@UADMIN1> alone (it acts on their own account)"


def _plan_title(slack: FakeSlack, channel: str) -> str | None:
    """The title of the task's progress (the plan of its streaming message in the thread)."""
    titles = [str((m.get("plan") or {}).get("title")) for m in slack.posted(channel) if m.get("plan")]
    return next((t for t in titles if t.startswith("Waiting for approval")), None)


def test_the_plain_progress_line_names_the_owner_alone():
    view = ProgressView(
        kind="waiting", workflow_id="w", detail="composio", approvers=["UADMIN1"], owner_only=True
    )
    assert progress_text(view) == f"Waiting for approval from {ALONE}: composio"
    shared = ProgressView(kind="waiting", workflow_id="w", detail="composio", approvers=["UADMIN1"])
    assert progress_text(shared) == "Waiting for approval from <@UADMIN1> or a workspace admin: composio"


async def test_progress_and_status_say_only_the_owner_may_approve(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm
):
    team = new_team()
    trigger, secret = await _create(lucy, team, "Summarise this push for the team.")
    read_mail = json.dumps({"action": "GMAIL_FETCH_EMAILS", "arguments": {"query": "release notes"}})
    fake_llm.then(tool_calls=[("composio_execute", read_mail)])
    fake_llm.then(content="Done.")
    started = await _post(lucy, trigger, secret, {"ref": "main"}, delivery="d-owner-wording")
    workflow_id = started.json()["workflow_id"]
    approval = await eventually(lambda: _approval(fake_slack, "C0GENERAL"), "the approval message")

    title = await eventually(lambda: _plan_title(fake_slack, "C0GENERAL"), "the progress line")
    assert title == "Waiting for approval: only the requester may approve (it acts on their own account)"
    status = (await lucy.command(f"status {workflow_id}", team=team, user="UADMIN1")).json()["text"]
    assert f"Waiting for {ALONE} to approve" in status and "workspace admin" not in status

    await lucy.click(approval, "lucy_reject", team=team, user="UADMIN1")
    handle = lucy.client.get_workflow_handle(workflow_id)
    assert (await asyncio.wait_for(handle.result(), timeout=60))["status"] in ("completed", "failed")
    await record_history(lucy, workflow_id, "owner_only_progress")
