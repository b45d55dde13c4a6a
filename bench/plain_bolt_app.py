"""The baseline for ``bench/ingress_ack.py``: a plain Slack Bolt app that starts a workflow.

Same Bolt (``AsyncApp`` behind FastAPI, request signatures verified, ``process_before_response``
so the 200 goes back only after the listener ran), and a listener that calls Temporal's
``start_workflow`` directly: no database, no tenant, no limits, no profile look-up. The
workflow id and the search attributes are the ones Lucy's ingress sets for the same event, so
the two differ only by what Lucy does around the start. Served by uvicorn with the same
options as ``lucy ingress --http`` (no access log)::

    uvicorn plain_bolt_app:app --app-dir bench --port 3001

Environment: ``SIGNING_SECRET``, ``BOT_TOKEN``, ``SLACK_API_URL``, ``TEMPORAL_ADDRESS``,
``TASK_QUEUE``. ``GET /handled`` says how many Slack requests it has finished (the bench waits
for it to drain between phases).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

WORKFLOW_TYPE = "BenchNoop"  # never runs: no worker polls the queue, as for Lucy in the bench
_KEYS = {
    name: SearchAttributeKey.for_keyword(name)
    for name in ("LucyWorkspace", "LucyUser", "LucyChannel", "LucyThread", "LucySource", "LucyStatus")
}

bolt = AsyncApp(
    client=AsyncWebClient(token=os.environ["BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]),
    signing_secret=os.environ["SIGNING_SECRET"],
    process_before_response=True,
)
temporal: Client | None = None
handled = 0


@bolt.event("app_mention")
async def start_task(event: dict[str, Any], body: dict[str, Any], ack: AsyncAck) -> None:
    assert temporal is not None
    team, channel, ts = str(body["team_id"]), str(event["channel"]), str(event["ts"])
    attributes = TypedSearchAttributes(
        [
            SearchAttributePair(_KEYS["LucyWorkspace"], team),
            SearchAttributePair(_KEYS["LucyUser"], str(event["user"])),
            SearchAttributePair(_KEYS["LucyChannel"], channel),
            SearchAttributePair(_KEYS["LucyThread"], str(event.get("thread_ts") or ts)),
            SearchAttributePair(_KEYS["LucySource"], "mention"),
            SearchAttributePair(_KEYS["LucyStatus"], "created"),
        ]
    )
    with contextlib.suppress(WorkflowAlreadyStartedError):  # a redelivery: already started
        await temporal.start_workflow(
            WORKFLOW_TYPE,
            {"team": team, "channel": channel, "ts": ts, "user": event["user"], "text": event.get("text")},
            id=f"lucy-task-{team}-{channel}-{ts}",
            task_queue=os.environ["TASK_QUEUE"],
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=attributes,
        )
    await ack()


handler = AsyncSlackRequestHandler(bolt)


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    global temporal
    temporal = await Client.connect(os.environ["TEMPORAL_ADDRESS"])
    yield


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


@app.post("/slack/events")
async def events(request: Request) -> Response:
    global handled
    try:
        return await handler.handle(request)
    finally:
        handled += 1


@app.get("/handled")
async def handled_count() -> dict[str, int]:
    return {"handled": handled}
