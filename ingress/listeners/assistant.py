"""Slack's AI-app surface: assistant threads.

When a user opens an assistant thread, Lucy offers suggested prompts. A message in that
thread is a DM with a ``thread_ts``: it becomes a task like any DM (see ``events``), and
ingress sets the thread's status ("is working on it…") right after the durable start; Slack
clears the status by itself when Lucy's answer is posted in the thread. Workspaces without
the AI-app feature answer these calls with an error, which is logged and ignored.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from lucy.logging import get_logger

log = get_logger(__name__)

SUGGESTED_PROMPTS = [
    {"title": "Summarise a thread", "message": "Summarise the discussion in #general from today."},
    {
        "title": "Draft a reply",
        "message": "Help me draft a friendly reply to a customer asking for a refund.",
    },
    {"title": "Explain something", "message": "Explain what a Temporal workflow is, in two paragraphs."},
]
WORKING_STATUS = "is working on it…"


async def set_working(client: AsyncWebClient, *, channel: str, thread_ts: str) -> None:
    """Show "is working on it…" in an assistant thread; never raises."""
    try:
        await client.assistant_threads_setStatus(
            channel_id=channel, thread_ts=thread_ts, status=WORKING_STATUS
        )
    except SlackApiError as exc:
        log.info("assistant status not set", error=str(exc.response.get("error")))
    except Exception as exc:  # a status is a nicety: the task is already durably started
        log.warning("assistant status not set", error=exc.__class__.__name__)


async def on_assistant_thread_started(event: dict[str, Any], ack: AsyncAck, client: AsyncWebClient) -> None:
    await ack()
    thread = event.get("assistant_thread") or {}
    channel, thread_ts = thread.get("channel_id"), thread.get("thread_ts")
    if not (channel and thread_ts):
        return
    try:
        await client.assistant_threads_setSuggestedPrompts(
            channel_id=channel, thread_ts=thread_ts, title="Try asking me", prompts=SUGGESTED_PROMPTS
        )
    except SlackApiError as exc:
        log.info("suggested prompts not set", error=str(exc.response.get("error")))


async def on_assistant_thread_context_changed(ack: AsyncAck) -> None:
    await ack()  # the user moved to another channel; nothing to do yet


def register(app: AsyncApp) -> None:
    app.event("assistant_thread_started")(on_assistant_thread_started)
    app.event("assistant_thread_context_changed")(on_assistant_thread_context_changed)
