"""Messages Lucy posts and updates in Slack (the ``slack.*`` activities).

Workflows say *what* to show (a text, a progress state); the activities render it as Slack text
and Block Kit (:mod:`lucy.slack`), so no Block Kit is built in workflow code."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Progress(StrEnum):
    """What the task is doing, as its progress message says it."""

    RUNNING = "running"  # a tool step: ``detail`` is its summary
    WAITING = "waiting"  # for an approval: ``detail`` is the step, ``approvers`` who may decide
    CONTINUING = "continuing"  # a long task went on in a new run
    DONE = "done"  # ``steps`` taken
    UNPOSTED = "unposted"  # finished, but the answer could not be posted
    STOPPED = "stopped"  # failed
    CANCELLED = "cancelled"  # ``by`` whom


class PlanStatus(StrEnum):
    """A tool step's status in the plan (Slack's ``task_update`` statuses)."""

    PENDING = "pending"  # waiting for approval (``details`` says so)
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    ERROR = "error"  # failed, rejected, expired or cancelled (``details`` says which)


@dataclass(frozen=True)
class PlanStep:
    """One tool step of the task's live plan: ``id`` is the model's tool call id, ``title`` the
    step's secret-free summary (escaped by the renderer: it comes from the model's arguments)."""

    id: str
    title: str
    status: str  # a PlanStatus
    details: str = ""


@dataclass(frozen=True)
class ProgressView:
    """The task's one progress message: the renderer (:mod:`capabilities.task.views.blocks`) turns it into
    Slack text, escaping ``detail`` (it comes from the model's arguments)."""

    kind: str  # a Progress
    workflow_id: str
    cancellable: bool = True
    detail: str = ""
    approvers: list[str] = field(default_factory=list)
    owner_only: bool = False  # a step on the requester's own account: only they may approve
    steps: int = 0
    by: str | None = None
    # The tool steps so far, for the plan display of a Slack streaming message (where the
    # worker streams: ``LUCY_LLM_STREAMING``); the plain progress message does not show them.
    plan: list[PlanStep] = field(default_factory=list)
    recipient_user_id: str = ""  # whom a streaming message in a channel is for
    recipient_team_id: str = ""


@dataclass(frozen=True)
class UpdateMessageRequest:
    """``chat.update`` of a message Lucy posted (the progress message, an approval message)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    progress: ProgressView | None = None  # render the progress message (text and blocks)
    builder: str = ""  # the function that built ``blocks`` (logged if Slack refuses them)


@dataclass(frozen=True)
class PostMessageRequest:
    channel: str
    text: str
    idempotency_key: str
    thread_ts: str | None = None
    # Run the output pipeline (redact, Markdown -> mrkdwn, split): for text from a model.
    format: bool = True
    blocks: list[dict[str, Any]] | None = None
    progress: ProgressView | None = None  # render the progress message (text and blocks)
    # A message already in the thread (a streamed answer) that becomes the first part.
    replace_ts: str | None = None
    # The task whose answer this is: its last message carries the feedback buttons.
    feedback_for: str = ""
    builder: str = ""  # the function that built ``blocks`` (logged if Slack refuses them)


@dataclass(frozen=True)
class PostMessageResult:
    ts: str  # the first message's ts when the text was split
    channel: str
    already_posted: bool = False
    parts: int = 1


@dataclass(frozen=True)
class AssistantThreadRequest:
    """``assistant.threads.setStatus`` (and ``setTitle`` when ``title`` is set) in the task's
    assistant thread: what Lucy is doing ("is thinking…"); an empty status clears it."""

    channel: str
    thread_ts: str
    status: str
    title: str = ""  # the request, neutralized and short by the activity
