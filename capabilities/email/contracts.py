"""Email contracts: the mail a task came from (where its answer is sent back), the reply the
``email.reply`` activity sends, and the attachments a task may read (references only: their
content is fetched by an activity when the task reads them, never carried in the workflow)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EmailAttachment:
    """One attachment of the mail, by reference (AgentMail's ``attachment_id``)."""

    attachment_id: str
    filename: str
    content_type: str = ""
    size: int = 0
    # Why the task may not read it ("" when it may): over the per-file or total size limit.
    refused: str = ""


@dataclass(frozen=True)
class EmailOrigin:
    """The received message a task from email answers (``TaskInput.email``).

    ``member``: the sender's address belongs to a workspace member (Slack ``users.lookupByEmail``),
    who is then the task's requester and gets the answer by email at once. Otherwise the sender
    is from outside (accepted by ``/lucy settings email-outsiders accept``) and the reply waits
    for an approval in Slack."""

    inbox_id: str
    thread_id: str
    message_id: str
    sender: str  # the sender's address, lower case: the reply goes there and only there
    subject: str = ""
    member: bool = False
    attachments: list[EmailAttachment] = field(default_factory=list)


@dataclass(frozen=True)
class EmailReplyRequest:
    """Send ``text`` as the reply to ``message_id`` in its thread (``email.reply``), once per
    ``idempotency_key`` (derived from the workflow id and step)."""

    workflow_id: str
    workspace_id: str
    inbox_id: str
    message_id: str
    to: str
    text: str
    idempotency_key: str


@dataclass(frozen=True)
class EmailReplyResult:
    message_id: str
    thread_id: str


@dataclass(frozen=True)
class AttachmentRequest:
    """Read one attachment of the task's mail (the ``read_attachment`` tool)."""

    workflow_id: str
    inbox_id: str
    message_id: str
    attachment: EmailAttachment
