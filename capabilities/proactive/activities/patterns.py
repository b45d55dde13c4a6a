"""``patterns.scan``: the weekly look for recurring requests, and the one offer each gets.

Workspace by workspace (each under its own row-level security): the requests of the last weeks
that may be scanned (see :mod:`capabilities.proactive.repository.patterns`) are grouped by
:func:`capabilities.proactive.patterns.find`; each finding is stored in ``patterns``; a row not
offered yet is offered to its requester by DM: the ordinary schedule confirmation
(:func:`capabilities.proactive.offers.schedule_offer`) with Not now and Never. The row is marked
offered in the same transaction as the post, so a retried activity does not ask twice.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from temporalio import activity

from capabilities.proactive import patterns
from capabilities.proactive.contracts.patterns import PatternScan, PatternsReport
from capabilities.proactive.offers import OfferRefused, schedule_offer
from capabilities.proactive.repository import patterns as rows
from capabilities.proactive.service import ScheduleDraft
from capabilities.proactive.views import patterns as views
from capabilities.tools.activities.liveness import beat
from lucy.db.repositories.tenants import tenant_transaction
from lucy.db.session import create_sessionmaker


class PatternActivities:
    def __init__(self, engine: AsyncEngine, slack: AsyncWebClient | None, *, min_interval: timedelta) -> None:
        self._sessions = create_sessionmaker(engine)
        self._slack = slack
        self._min_interval = min_interval

    @activity.defn(name="patterns.scan")
    async def scan(self, request: PatternScan) -> PatternsReport:
        """Find and store recurring requests in every workspace; offer each new one once."""
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            workspace_ids = await rows.workspaces(session=session)
        found = offered = 0
        for n, workspace_id in enumerate(workspace_ids):
            beat(n)
            async with tenant_transaction(self._sessions, workspace_id) as session:
                since = now - timedelta(days=request.lookback_days)
                requests = await rows.requests_since(session=session, workspace_id=workspace_id, since=since)
                for finding in patterns.find(requests):
                    await rows.record(session=session, workspace_id=workspace_id, found=finding)
                    found += 1
            offered += await self._offer_due(workspace_id, now)
        return PatternsReport(workspaces=len(workspace_ids), found=found, offered=offered)

    async def _offer_due(self, workspace_id: uuid.UUID, now: datetime) -> int:
        if self._slack is None:
            return 0
        async with tenant_transaction(self._sessions, workspace_id) as session:
            due = await rows.due_offers(session=session, workspace_id=workspace_id, now=now)
        sent = 0
        for row in due:
            async with tenant_transaction(self._sessions, workspace_id) as session:
                sent += await self._offer(session, workspace_id, row, now)
        return sent

    async def _offer(
        self, session: AsyncSession, workspace_id: uuid.UUID, row: rows.PatternRow, now: datetime
    ) -> int:
        """Mark the row offered, then post (a failed post rolls the mark back)."""
        assert self._slack is not None
        data = row.data
        channel = str(data["slack_channel_id"])
        draft = ScheduleDraft(
            schedule_id=patterns.draft_id(row.id),
            when=str(data["when"]),
            timezone=str(data.get("timezone") or "UTC"),
            request=str(data["request"]),
            slack_channel_id=channel,
            channel_type="im" if channel.startswith("D") else "public",
        )
        try:
            offer = schedule_offer(draft, min_interval=self._min_interval, now=now)
        except OfferRefused:
            await rows.set_status(
                session=session, workspace_id=workspace_id, pattern_id=row.id, status="dismissed"
            )
            return 0  # nothing Lucy could schedule (too long a request): never offered
        await rows.set_status(
            session=session, workspace_id=workspace_id, pattern_id=row.id, status="suggested"
        )
        blocks = views.offer_blocks(offer.blocks, pattern_id=str(row.id), description=row.description)
        try:
            await self._slack.chat_postMessage(
                channel=str(data["slack_user_id"]), text=views.heading(row.description), blocks=blocks
            )
        except SlackApiError as exc:  # Slack refused (a person gone, a DM closed): try next week
            activity.logger.warning(
                "pattern offer not delivered", extra={"error": str(exc.response.get("error"))}
            )
            await rows.set_status(
                session=session,
                workspace_id=workspace_id,
                pattern_id=row.id,
                status="detected",
                offer_after=now + timedelta(days=7),
            )
            return 0
        except (aiohttp.ClientError, TimeoutError):
            activity.logger.warning("pattern offer not delivered: Slack unreachable")
            raise  # the mark is rolled back; Temporal retries the scan
        return 1
