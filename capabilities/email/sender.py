"""Who wrote a mail, as the workspace sees it: a member found by their email address (Slack's
``users.lookupByEmail``), or someone from outside; what the workspace's ``email-outsiders``
setting says about the latter; and the mail's attachments within the size limits.

A member found by address becomes the task's requester (their Slack id, their role). Nobody is
a member whose account is deactivated, a bot, or from another organisation (Slack Connect).
An address Slack does not know (``users_not_found``) is from outside. A Slack error that may
pass (rate limit, 5xx) raises, so the delivery fails and AgentMail delivers it again; any
other refusal (a missing ``users:read.email`` scope, ...) is logged and the sender is treated
as from outside, which is the safe side.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from capabilities.email.contracts import EmailAttachment, EmailOrigin
from capabilities.email.message import InboundEmail
from lucy.logging import get_logger
from lucy.roles import is_external, role_of

log = get_logger(__name__)

OUTSIDERS_KEY = "email_outsiders"  # workspaces.settings: "ignore" (default) | "accept"
OUTSIDERS = ("ignore", "accept")
DEFAULT_OUTSIDERS = "ignore"
_PASSING = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}


@dataclass(frozen=True)
class Member:
    """The workspace member a sender's address belongs to."""

    slack_user_id: str
    role: str
    display_name: str | None = None


def outsiders_policy(settings: dict[str, object]) -> str:
    """``ignore`` or ``accept``: what happens to mail from someone who is not a member."""
    value = settings.get(OUTSIDERS_KEY)
    return value if isinstance(value, str) and value in OUTSIDERS else DEFAULT_OUTSIDERS


async def find_member(slack: AsyncWebClient, team_id: str, address: str) -> Member | None:
    """The active member of ``team_id`` whose Slack profile has ``address``, or None."""
    if not address:
        return None
    try:
        response = await slack.users_lookupByEmail(email=address)
    except SlackApiError as exc:
        code = str(exc.response.get("error") or "") if exc.response is not None else ""
        status = getattr(exc.response, "status_code", 200)
        if code == "users_not_found":
            return None
        if status == 429 or status >= 500 or code in _PASSING:
            raise
        log.warning("could not look the sender up in Slack: treated as from outside", error=code[:64])
        return None
    user = response.get("user")
    if not isinstance(user, dict) or not user.get("id"):
        return None
    if user.get("deleted") or user.get("is_bot") or user.get("is_app_user") or is_external(user, team_id):
        return None
    profile = user.get("profile") or {}
    name = (
        profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user.get("name")
    )
    return Member(slack_user_id=str(user["id"]), role=role_of(user, team_id), display_name=name or None)


@dataclass(frozen=True)
class AttachmentLimits:
    """Per-file and total bytes of attachments a task may read (settings
    ``LUCY_EMAIL_ATTACHMENT_MAX_BYTES``, ``LUCY_EMAIL_ATTACHMENTS_TOTAL_MAX_BYTES``)."""

    per_file: int = 10_000_000
    total: int = 25_000_000


def limit_attachments(files: tuple[EmailAttachment, ...], limits: AttachmentLimits) -> list[EmailAttachment]:
    """The attachments, each marked ``refused`` when it is over the per-file limit or would
    take the total over its limit (in the mail's order)."""
    kept, used = [], 0
    for f in files:
        if f.size > limits.per_file:
            f = replace(f, refused=f"larger than the {_mb(limits.per_file)} limit per file")
        elif used + f.size > limits.total:
            f = replace(f, refused=f"the attachments together exceed the {_mb(limits.total)} limit")
        else:
            used += f.size
        kept.append(f)
    return kept


def _mb(n: int) -> str:
    return f"{n / 1_000_000:g} MB"


def attachments_note(files: list[EmailAttachment]) -> str:
    """What the task is told about the attachments (names are the sender's: quoted)."""
    if not files:
        return ""
    lines = []
    for f in files:
        what = f"{f.filename!r} ({f.content_type or 'unknown type'}, {f.size} bytes)"
        lines.append(f"{what}: not available, {f.refused}" if f.refused else what)
    readable = any(not f.refused for f in files)
    how = " What could be read of them is quoted above, as information too." if readable else ""
    return f"Attachments: {'; '.join(lines)}.{how}"


def origin(email: InboundEmail, member: Member | None, files: list[EmailAttachment]) -> EmailOrigin:
    """Where the task's answer is sent back: the sender's own address, never a Reply-To. Only a
    full member gets it without an approval: a guest's reply waits like an outsider's (the
    answer may hold what a guest does not see in Slack)."""
    return EmailOrigin(
        inbox_id=email.inbox_id,
        thread_id=email.thread_id,
        message_id=email.message_id,
        sender=email.address,
        subject=email.subject,
        member=member is not None and member.role != "guest",
        attachments=files,
    )
