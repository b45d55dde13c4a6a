"""``/lucy schedule`` with no text: a modal asks what, when and where, then the same confirmation.

The modal only collects the three answers. On Next, a "when" Lucy cannot read is shown under
its field (the modal stays open); otherwise the modal closes and the confirmation, with its
Create and Cancel buttons, appears only to the caller in the channel they chose (as a DM from
Lucy when it cannot post there, e.g. a channel it is not in). Nothing exists until Create.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext
from slack_bolt.kwargs_injection.async_args import AsyncArgs
from slack_sdk.errors import SlackApiError

from capabilities.proactive.offers import OfferRefused, new_schedule_offer
from capabilities.proactive.views import schedules as views
from capabilities.task.listeners.clicks import caller
from capabilities.task.listeners.deps import clicker_of, listener_deps, modal_metadata
from lucy.logging import get_logger
from lucy.slack.refused import without_refused_blocks

log = get_logger(__name__)


async def open_modal(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    await ack()
    try:
        await context.client.views_open(
            trigger_id=str(command.get("trigger_id") or ""),
            view=views.schedule_modal(str(command["channel_id"])),
        )
    except SlackApiError as exc:
        log.warning("could not open the schedule modal", error=str(exc.response.get("error")))


async def on_submit(args: AsyncArgs) -> None:
    """Next: errors stay in the modal; a good answer becomes the confirmation in the channel."""
    ack, view, client = args.ack, args.view or {}, args.client
    deps = listener_deps(args.context)
    team, user = clicker_of(args.body, args.context)
    what, when, channel = views.modal_values(view)
    metadata = modal_metadata(view)
    channel = channel or str(metadata.get("channel") or "")
    if not (what and when and channel):
        await ack(response_action="errors", errors={"what": "Say what to do, when, and where."})
        return
    who = await caller(deps, client, team, user)
    if who.role == "guest":
        await ack(response_action="errors", errors={"what": "Guests can't create schedules."})
        return
    min_interval = timedelta(seconds=deps.settings.limits.schedule_min_interval)
    try:
        offer = new_schedule_offer(when, what, who, channel, min_interval)
    except OfferRefused as refused:
        await ack(response_action="errors", errors={"when": str(refused)[:1500]})
        return
    await ack()
    try:
        await without_refused_blocks(
            client.chat_postEphemeral,
            {"channel": channel, "user": user, "text": offer.text, "blocks": offer.blocks},
            builder="schedule_confirmation",
        )
    except SlackApiError as exc:
        log.info("confirmation not shown in the channel; sent as a DM", error=str(exc.response.get("error")))
        await client.chat_postMessage(channel=user, text=offer.text, blocks=offer.blocks)
