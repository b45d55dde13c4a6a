"""Slack's feedback buttons under an answer: a ``context_actions`` block with a
``feedback_buttons`` element (thumbs up / down), as slack_sdk's ``ContextActionsBlock`` and
``FeedbackButtonsElement`` build it. A message with blocks shows its blocks, not its text, so
the answer's (already converted and escaped) mrkdwn goes in section blocks above the buttons;
the text stays the notification and accessibility fallback. Pure."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ContextActionsBlock, FeedbackButtonObject, FeedbackButtonsElement

from lucy.contracts import FEEDBACK_ACTION_ID, feedback_button_value

SECTION_LIMIT = 3_000  # Slack's limit on a section's text


def feedback_block(workflow_id: str) -> dict[str, Any]:
    """The thumbs up / down buttons of the answer of task ``workflow_id``."""
    return ContextActionsBlock(
        block_id="lucy_feedback",
        elements=[
            FeedbackButtonsElement(
                action_id=FEEDBACK_ACTION_ID,
                positive_button=FeedbackButtonObject(
                    text="Good answer",
                    accessibility_label="This answer was helpful",
                    value=feedback_button_value(workflow_id, "good"),
                ),
                negative_button=FeedbackButtonObject(
                    text="Bad answer",
                    accessibility_label="This answer was not helpful",
                    value=feedback_button_value(workflow_id, "bad"),
                ),
            )
        ],
    ).to_dict()


def _sections(text: str) -> list[str]:
    out: list[str] = []
    while len(text) > SECTION_LIMIT:
        cut = text.rfind("\n", 0, SECTION_LIMIT)
        cut = cut if cut > 0 else SECTION_LIMIT
        out.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return [*out, text] if text.strip() else out


def answer_blocks(text: str, workflow_id: str) -> list[dict[str, Any]]:
    """An answer's (last) message: its mrkdwn in sections, then the feedback buttons."""
    sections = [{"type": "section", "text": {"type": "mrkdwn", "text": part}} for part in _sections(text)]
    return [*sections, feedback_block(workflow_id)]
