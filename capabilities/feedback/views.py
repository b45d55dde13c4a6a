"""Slack's feedback buttons under an answer: a ``context_actions`` block with a
``feedback_buttons`` element (thumbs up / down), as slack_sdk's ``ContextActionsBlock`` and
``FeedbackButtonsElement`` build it. A message with blocks shows its blocks, not its text, so
the answer's (already converted and escaped) mrkdwn goes in section blocks above the buttons;
the text stays the notification and accessibility fallback. Pure."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ContextActionsBlock, FeedbackButtonObject, FeedbackButtonsElement

from lucy.contracts.ids import FEEDBACK_ACTION_ID, feedback_button_value

SECTION_LIMIT = 3_000  # Slack's limit on a section's text
FENCE = "```"


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


def _sections(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, cut at line ends (a line longer than
    a part is cut where it must); a code block cut in two is closed at the end of one part and
    reopened at the start of the next, so every part renders on its own."""
    out: list[str] = []
    part: list[str] = []
    fenced = False  # a ``` block is open at the end of ``part``
    closing = len(FENCE) + 1  # "\n```"
    piece_limit = limit - 2 * closing  # a reopened fence, the piece and a closing fence fit

    def flush() -> list[str]:
        body = "\n".join(part)
        if body.strip() and body != FENCE:
            out.append(body + ("\n" + FENCE if fenced else ""))
        return [FENCE] if fenced else []

    for line in text.split("\n"):
        for start in range(0, max(len(line), 1), piece_limit):
            piece = line[start : start + piece_limit]
            size = len("\n".join(part))
            if part and size + 1 + len(piece) + closing > limit:
                part = flush()
            part.append(piece)
        if line.count(FENCE) % 2:
            fenced = not fenced
    flush()
    return out


def answer_blocks(text: str, workflow_id: str) -> list[dict[str, Any]]:
    """An answer's (last) message: its mrkdwn in sections, then the feedback buttons."""
    sections = [{"type": "section", "text": {"type": "mrkdwn", "text": part}} for part in _sections(text)]
    return [*sections, feedback_block(workflow_id)]
