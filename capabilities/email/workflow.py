"""A task from email answers by email too: its answer, secrets masked, goes back as the reply
to the received message, in the same email thread (activity ``email.reply``).

Who gets it is fixed: the address the mail came from (``TaskInput.email.sender``). A sender
mapped to a workspace member gets it at once. A sender from outside the workspace (accepted by
``/lucy settings email-outsiders accept``) gets it only after a person approves it in Slack,
seeing the recipient, the subject and the full text (the answer may hold workspace data): the
task's :class:`~capabilities.approvals.workflow.ApprovalGate`, as for any other step. A reply that is
rejected, expires or cannot be sent is said in the thread; the task still completes.

That approval may wait for days, so the task stays cancellable while it waits
(:func:`too_late_to_cancel`): a cancel then settles the approval message as cancelled, sends
no reply and ends the task cancelled (the answer was posted in Slack already).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from capabilities.email.activities.reply import MAX_REPLY_CHARS, EmailReplyActivities
from capabilities.approvals.contracts import ApprovalDecisionKind
from capabilities.approvals.workflow import ApprovalGate
from capabilities.email.contracts import EmailOrigin, EmailReplyRequest
from capabilities.task.contracts.task import TaskInput, TaskState
from capabilities.task.workflow.models import error_type
from capabilities.task.workflow.posting import post
from capabilities.task.workflow.recorder import StepRecorder
from lucy.contracts.errors import ErrorType
from lucy.contracts.ids import idempotency_key
from lucy.redact import redact_secrets

TOOL = "email_reply"
STEP = "email_reply"
REPLY_TIMEOUT = timedelta(seconds=60)
REPLY_DEADLINE = timedelta(minutes=30)
# A send is idempotent by its key (AgentMail's record answers a retry), so retrying is safe.
REPLY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=10,
    non_retryable_error_types=[ErrorType.TOOL_REJECTED, ErrorType.TOOL_NOT_CONFIGURED],
)


def too_late_to_cancel(finished: bool, closing: bool, state: TaskState) -> bool:
    """Whether the cancel update is refused: after the end, after a cancel, and while the task
    is closing (answering, failing), except while an approval waits (the email reply's)."""
    return finished or state.cancel_by is not None or (closing and state.pending is None)


def reply_subject(subject: str) -> str:
    """The subject AgentMail gives the reply (``Re:`` once), shown to the approver."""
    subject = " ".join(subject.split())
    return subject if subject.lower().startswith("re:") else f"Re: {subject or '(no subject)'}"


def reply_text(answer: str) -> str:
    """The mail's text: the answer as the model wrote it (Markdown reads as plain text), with
    secrets masked and cut at ``MAX_REPLY_CHARS`` (as the activity cuts), exactly what the
    approver sees and what is sent."""
    text = redact_secrets(answer).strip()
    return text[:MAX_REPLY_CHARS] + "\n[… cut]" if len(text) > MAX_REPLY_CHARS else text


async def send(
    task: TaskInput, state: TaskState, gate: ApprovalGate, recorder: StepRecorder, answer: str
) -> None:
    """Send the answer as the email reply (after an approval for an outside sender); a task
    that did not come from email does nothing here."""
    origin = task.email
    text = reply_text(answer)
    if origin is None or not origin.sender or not text:
        return
    if not origin.member:
        decision, _ = await gate.ask(
            TOOL,
            {"to": origin.sender, "subject": reply_subject(origin.subject), "text": text},
            risk="high",
            summary=f"email reply to {origin.sender}",
            reason="The answer to the email, sent back to its sender in the same thread.",
            because=(
                "the sender is not a member of this workspace and the answer may contain the "
                "workspace's information, so a person approves what leaves"
            ),
        )
        if decision != ApprovalDecisionKind.APPROVED:
            await _tell(task, state, f"The email reply to {origin.sender} was not sent ({decision}).")
            return
    await _deliver(task, state, recorder, origin, text)


async def _deliver(
    task: TaskInput, state: TaskState, recorder: StepRecorder, origin: EmailOrigin, text: str
) -> None:
    workflow_id = workflow.info().workflow_id
    index = recorder.next_index()
    try:
        sent = await workflow.execute_activity_method(
            EmailReplyActivities.reply,
            EmailReplyRequest(
                workflow_id=workflow_id,
                workspace_id=task.workspace_id,
                inbox_id=origin.inbox_id,
                message_id=origin.message_id,
                to=origin.sender,
                text=text,
                idempotency_key=idempotency_key(workflow_id, STEP),
            ),
            start_to_close_timeout=REPLY_TIMEOUT,
            schedule_to_close_timeout=REPLY_DEADLINE,
            retry_policy=REPLY_RETRY,
            summary=f"email: reply to {origin.sender}",
        )
    except ActivityError as err:
        if is_cancelled_exception(err):
            raise
        kind = error_type(err)
        workflow.logger.warning("email reply not sent", extra={"error_type": kind})
        recorder.add(
            kind="tool_use", name=TOOL, status="failed", input={"to": origin.sender}, error=kind, index=index
        )
        await _tell(task, state, f"I could not send the email reply to {origin.sender} ({kind}).")
        return
    recorder.add(
        kind="tool_use",
        name=TOOL,
        status="completed",
        input={"to": origin.sender, "in_reply_to": origin.message_id[:200]},
        output={"message_id": sent.message_id[:200]},
        index=index,
    )


async def _tell(task: TaskInput, state: TaskState, words: str) -> None:
    await post(
        task,
        state,
        f"_{words}_",
        step="email_reply_note",
        summary="slack: email reply not sent",
        format=False,
    )
