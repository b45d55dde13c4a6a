"""The approval builders when an argument holds a secret: the channel's masked view (marked,
without Approve), the note that replaces it when masking would hide structure, and the private
exact view; every payload validates with ``slack_sdk.models``."""

from __future__ import annotations

import json

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from capabilities.approvals.views import checking_modal, decided_modal, exact_modal, refused_modal
from capabilities.task.views import blocks
from lucy.slack.masking import Masking, masking
from tests.approvals.test_slack_blocks import EXPIRES, preformatted

TOKEN = "glpat-" + "xYz12AbC3dEf45GhIjKl"


def _message(arguments: dict) -> list[dict]:
    return blocks.approval_message(
        workflow_id="lucy-task-T1-C1-1.1",
        approval_id="ap-1",
        tool="exec",
        arguments=arguments,
        attachment=None,
        risk="high",
        because="exec runs commands",
        reason="",
        requester="UREQ",
        approvers=["UBOSS"],
        expires_at=EXPIRES,
        masked=masking(arguments),
    )


def _actions(rendered: list[dict]) -> list[str]:
    return [e["action_id"] for b in rendered if b["type"] == "actions" for e in b["elements"]]


def _valid(rendered: list[dict]) -> None:
    for block in Block.parse_all(rendered):
        block.validate_json()


def test_without_a_secret_the_channel_shows_it_all_with_approve():
    rendered = _message({"command": "ls -la | wc -l"})
    assert masking({"command": "ls -la | wc -l"}) == Masking(secrets=0, faithful=True)
    assert preformatted(rendered) == ["ls -la | wc -l"]
    assert _actions(rendered) == ["lucy_approve", "lucy_reject"]
    _valid(rendered)


def test_a_secret_is_masked_counted_and_approve_moves_to_the_exact_view():
    command = f"git clone https://oauth2:{TOKEN}@gitlab.example/x.git && echo token={TOKEN}"
    rendered = _message({"command": command})
    assert masking({"command": command}) == Masking(secrets=2, faithful=True)
    (shown,) = preformatted(rendered)
    assert TOKEN not in json.dumps(rendered)
    assert shown == "git clone https://oauth2:[redacted]@gitlab.example/x.git && echo token=[redacted]"
    assert "2 secrets masked" in json.dumps(rendered)
    assert _actions(rendered) == ["lucy_show_exact", "lucy_reject"]
    _valid(rendered)
    modal = exact_modal(workflow_id="w", approval_id="ap-1", tool="exec", arguments={"command": command})
    assert preformatted(modal["blocks"]) == [command]
    assert _actions(modal["blocks"]) == ["lucy_approve", "lucy_reject"]
    for view in (
        modal,
        checking_modal(),
        refused_modal("Guests <!channel> can't"),
        decided_modal("approved"),
    ):
        View(**view).validate_json()
    assert "<!channel>" not in json.dumps(refused_modal("Guests <!channel> can't"))


def test_when_masking_would_hide_structure_the_channel_shows_no_arguments():
    unfaithful = Masking(secrets=1, faithful=False)
    rendered = blocks.what_will_run("exec", {"command": f"x {TOKEN}"}, None, unfaithful)
    assert preformatted(rendered) == [] and "shown only privately" in json.dumps(rendered)
    _valid(rendered)
