"""The task's tool steps as a Slack plan: the ``chunks`` of a streaming message shown with
``task_display_mode="plan"`` (``plan_update`` for the plan's title, one ``task_update`` per
step with its status), as slack_sdk's ``PlanUpdateChunk`` / ``TaskUpdateChunk`` build them.

A step's title comes from the model's arguments (redacted already by the workflow): it is
escaped like every text Lucy posts, and cut to a line. A final view (the task is over) shows
no step as still running: what never finished is shown failed. Pure.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.messages.chunk import PlanUpdateChunk, TaskUpdateChunk

from lucy.contracts.slack import PlanStatus, PlanStep, Progress, ProgressView
from lucy.slack.text import escape_mrkdwn, fit

DISPLAY_MODE = "plan"
TITLE_LIMIT = 120
DETAILS_LIMIT = 200
_UNFINISHED = (PlanStatus.PENDING.value, PlanStatus.IN_PROGRESS.value)


def _line(text: str, limit: int) -> str:
    return fit(escape_mrkdwn(" ".join(text.split())), limit)


def plan_title(view: ProgressView) -> str:
    """The plan's title: what the task is doing, or how it ended."""
    kind = Progress(view.kind)
    if kind == Progress.WAITING:
        return "Waiting for approval"
    if kind == Progress.DONE:
        return f"Done in {view.steps} step(s)"
    if kind == Progress.STOPPED:
        return "Stopped: I ran into a problem"
    if kind == Progress.CANCELLED:
        return "Cancelled"
    if kind == Progress.UNPOSTED:
        return "Finished, but I could not post"
    return "Working on it"


def _step(step: PlanStep, *, final: bool) -> dict[str, Any]:
    status, details = step.status, step.details
    if final and status in _UNFINISHED:
        status, details = PlanStatus.ERROR.value, "not finished"
    chunk = TaskUpdateChunk(
        id=step.id[:64] or "step",
        title=_line(step.title, TITLE_LIMIT) or "step",
        status=status,
        details=_line(details, DETAILS_LIMIT) or None,
    )
    return chunk.to_dict()


def plan_chunks(view: ProgressView) -> list[dict[str, Any]]:
    """The chunks that show ``view``'s plan: its title, then every step (the same id updates
    the same task, so sending them all again is harmless)."""
    final = not view.cancellable
    return [
        PlanUpdateChunk(title=plan_title(view)).to_dict(),
        *(_step(s, final=final) for s in view.plan),
    ]
