"""The modal behind *Show exactly what runs*: what a step will run, every character, secrets
included, for one person who may decide (see :mod:`lucy.slack.masking`).

It opens at once with "checking" (Slack's trigger lasts 3 seconds), then shows either the exact
arguments with Approve / Reject, or why the clicker may not see them.
"""

from __future__ import annotations

from typing import Any

from capabilities.task.views.blocks import approval_buttons, argument_blocks
from lucy.slack.limits import section
from lucy.slack.modals import modal
from lucy.slack.text import escape_mrkdwn

TITLE = "Exactly what runs"


def _modal(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return modal(TITLE, blocks, callback_id="lucy_exact_view", close="Close")


def checking_modal() -> dict[str, Any]:
    """Shown while the worker checks that the clicker may decide."""
    return _modal([section("Checking that you may decide this approval…")])


def refused_modal(why: str) -> dict[str, Any]:
    """The clicker may not see the exact text (or the approval is no longer waiting)."""
    return _modal([section(f":no_entry: {escape_mrkdwn(why)}")])


def decided_modal(decision: str) -> dict[str, Any]:
    """The exact view once its Approve / Reject counted (the arguments are no longer shown)."""
    return _modal([section(f"Done: the step was {escape_mrkdwn(decision)}.")])


def exact_modal(
    *, workflow_id: str, approval_id: str, tool: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """Every argument exactly as it will run, then Approve / Reject."""
    head = (
        f"*What will run:* `{escape_mrkdwn(tool)}`, every character exactly as it will run, "
        "secrets included. Only you see this; do not copy the secrets anywhere."
    )
    return _modal(
        [
            section(head),
            *argument_blocks(arguments, exact=True),
            approval_buttons(workflow_id, approval_id),
        ]
    )
