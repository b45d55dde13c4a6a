"""The task's progress message as a live Slack plan, for
:class:`capabilities.task.activities.slack.SlackActivities`
where the worker streams (``LUCY_LLM_STREAMING``).

The first view starts a streaming message in the task's thread with
``task_display_mode="plan"`` and the plan's chunks (:mod:`capabilities.task.views.plan`); every later view
appends the steps again (``chat.appendStream``: a task with the same id is updated in place),
and the final view stops the stream (``chat.stopStream``) with every step's last status.

Durability: the stream's ts goes into the activity's heartbeat details as soon as Slack answers,
so an attempt retried after a crash returns that message instead of starting a second one.

Fallbacks to today's progress message, updated in place, so nothing is lost:

* Slack refuses ``chat.startStream`` (a workspace or token without the streaming API, chunks it
  does not take): the plain progress message is posted instead;
* the stream expired (a long wait for an approval) or Slack refuses an append: the same message
  is updated with ``chat.update``, and stays a plain message from then on.

A rate limit or an outage is raised (as :class:`SlackApiError`): Temporal retries the call.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio import activity

from capabilities.task.views.plan import DISPLAY_MODE, plan_chunks
from capabilities.tools.activities.liveness import beat
from lucy.contracts.slack import PostMessageRequest, UpdateMessageRequest

_TRANSIENT = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_REMEMBERED = 10_000  # plain progress messages remembered, so they are updated without a refusal


def transient(exc: SlackApiError) -> bool:
    """A failure worth retrying (rate limit, Slack outage) rather than falling back."""
    response = exc.response
    status = getattr(response, "status_code", 200)
    code = str(response.get("error") or "") if response is not None else ""
    return status == 429 or status >= 500 or code in _TRANSIENT


def _code(exc: SlackApiError) -> str:
    return str(exc.response.get("error") or "") if exc.response is not None else ""


def _earlier_stream(details: Any) -> str | None:
    for item in details or ():
        if isinstance(item, dict) and isinstance(item.get("plan_ts"), str):
            return item["plan_ts"]
    return None


class PlanMessages:
    """Progress messages shown as a live plan in one Slack streaming message each."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._plain: dict[str, None] = {}  # ts of progress messages that are not (or no longer) streams

    def _remember_plain(self, ts: str) -> None:
        self._plain[ts] = None
        if len(self._plain) > _REMEMBERED:
            self._plain.pop(next(iter(self._plain)))

    async def post(self, request: PostMessageRequest) -> str | None:
        """Start the plan; returns its ts, or None when Slack will not show one (then the plain
        progress message is posted)."""
        view = request.progress
        if view is None or not request.thread_ts:
            return None  # a plan is a reply in a thread
        earlier = _earlier_stream(activity.info().heartbeat_details)
        if earlier is not None:
            return earlier  # an earlier attempt started it
        kwargs: dict[str, Any] = {
            "channel": request.channel,
            "thread_ts": request.thread_ts,
            "task_display_mode": DISPLAY_MODE,
            "chunks": plan_chunks(view),
        }
        if view.recipient_user_id:
            kwargs["recipient_user_id"] = view.recipient_user_id
        if view.recipient_team_id:
            kwargs["recipient_team_id"] = view.recipient_team_id
        try:
            response = await self._client.chat_startStream(**kwargs)
        except SlackApiError as exc:
            if transient(exc):
                raise
            activity.logger.info(
                "Slack refused the plan; posting the progress message", extra={"error": _code(exc)}
            )
            return None
        ts = str(response["ts"])
        beat({"plan_ts": ts})  # from now on a retry finds this message
        return ts

    def posted_plain(self, ts: str) -> None:
        """The progress message ``ts`` was posted as a plain message."""
        self._remember_plain(ts)

    async def update(self, request: UpdateMessageRequest) -> bool:
        """Show the view in the plan; False when ``request.ts`` is not a live plan (then the
        message is updated in place with ``chat.update``)."""
        view = request.progress
        if view is None or request.ts in self._plain:
            return False
        chunks = plan_chunks(view)
        try:
            if view.cancellable:
                await self._client.chat_appendStream(channel=request.channel, ts=request.ts, chunks=chunks)
            else:  # the final view: the plan is over
                await self._client.chat_stopStream(channel=request.channel, ts=request.ts, chunks=chunks)
        except SlackApiError as exc:
            if transient(exc):
                raise
            activity.logger.info("plan no longer live; updating in place", extra={"error": _code(exc)})
            self._remember_plain(request.ts)
            return False
        return True
