"""Slack's AI-app surface: assistant threads, through Bolt's own ``AsyncAssistant`` middleware.

When a user opens an assistant thread, Lucy offers suggested prompts (``thread_started``). A
message in that thread is a DM with a ``thread_ts``: the middleware has no listener for it, so
it reaches the DM listener (see ``events``) and becomes a task like any DM, acknowledged only
after the durable start (the middleware's own ``user_message`` listeners acknowledge first,
which would lose a message whose start failed). Ingress then sets the thread's status
("is working on it…"); Slack clears it when Lucy's answer is posted. A context change is
acknowledged and ignored: Bolt's default would rewrite the metadata of Lucy's first reply,
which carries its idempotency key. Workspaces without the AI-app feature answer these calls
with an error, which is logged and ignored.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.set_suggested_prompts.async_set_suggested_prompts import AsyncSetSuggestedPrompts
from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant
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


def build_assistant() -> AsyncAssistant:
    assistant = AsyncAssistant()

    @assistant.thread_started
    async def offer_prompts(set_suggested_prompts: AsyncSetSuggestedPrompts | None) -> None:
        if set_suggested_prompts is None:  # an event without its thread: nothing to offer prompts in
            return
        try:
            await set_suggested_prompts(prompts=SUGGESTED_PROMPTS, title="Try asking me")
        except SlackApiError as exc:
            log.info("suggested prompts not set", error=str(exc.response.get("error")))

    @assistant.thread_context_changed
    async def ignore_context_change() -> None:
        return None  # the user moved to another channel; nothing to keep

    return assistant


def register(app: AsyncApp) -> None:
    app.use(build_assistant())
