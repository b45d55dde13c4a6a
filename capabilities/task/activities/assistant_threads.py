"""Slack's assistant threads: what Lucy is doing, shown under the thread
(``assistant.threads.setStatus``: "is thinking…", "is running gateway exec…", "is waiting for
approval", an empty status to clear it), and the thread's title from the first request
(``assistant.threads.setTitle``).

Only a nicety: where it does not apply (not an assistant thread, a token or workspace without
the AI-app feature) Slack answers an error (``invalid_thread_ts``, ``not_allowed_token_type``,
``missing_scope``...), which is logged and ignored. A rate limit or an outage is retried a
few times by Temporal; the workflow never fails the task over it. Idempotent: setting the same
status or title twice is the same thread.
"""

from __future__ import annotations

import re

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio import activity

from capabilities.task.activities.slack import slack_error
from lucy.contracts.errors import ErrorType
from lucy.contracts.slack import AssistantThreadRequest
from lucy.slack.text import escape_mrkdwn

TITLE_LIMIT = 60
_SLACK_TOKEN = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")  # <@U1>, <#C1|general>, <https://x|label>


def thread_title(text: str, limit: int = TITLE_LIMIT) -> str:
    """A short, neutral title from the request: one line, Slack's ``<...>`` tokens reduced to
    their label (a mention or a channel link never comes out of it), Slack's entities decoded
    (its message text has ``&``, ``<`` and ``>`` as ``&amp;``, ``&lt;``, ``&gt;``), cut, then
    escaped once (so ``&`` shows as ``&``, and a typed ``<!channel>`` stays text)."""
    text = _SLACK_TOKEN.sub(lambda m: m.group(2) or "", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = " ".join("".join(c for c in text if c.isprintable() or c.isspace()).split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return escape_mrkdwn(text)


class AssistantThreadActivities:
    def __init__(self, client: AsyncWebClient | None) -> None:
        self._client = client

    @activity.defn(name="slack.assistant_thread")
    async def show(self, request: AssistantThreadRequest) -> bool:
        """Set the thread's status (and title); False when Slack refused (not an assistant
        thread, no AI-app feature) or Slack is not configured."""
        client = self._client
        if client is None:
            return False
        try:
            if request.title and thread_title(request.title):
                await client.assistant_threads_setTitle(
                    channel_id=request.channel, thread_ts=request.thread_ts, title=thread_title(request.title)
                )
            await client.assistant_threads_setStatus(
                channel_id=request.channel, thread_ts=request.thread_ts, status=request.status
            )
        except SlackApiError as exc:
            error = slack_error(exc, "assistant.threads")
            if error.type == ErrorType.SLACK_RETRYABLE:
                raise error from None
            code = error.details[0] if error.details else ""
            activity.logger.info("assistant thread status not shown", extra={"error": code})
            return False
        except (aiohttp.ClientError, TimeoutError) as exc:
            activity.logger.info("assistant thread status not shown", extra={"error": type(exc).__name__})
            return False
        return True
