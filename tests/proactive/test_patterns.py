"""Recurring requests on the time-skipping server: ``LucyPatternsWorkflow`` (the weekly scan)
reads the tasks in PostgreSQL, stores what recurs in ``patterns`` and offers it once by DM,
through the real worker, the real ingress (signed commands and clicks) and the fake Slack.

Every date is derived from the clock: the requests are put on the last Mondays before today."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import ScheduleActionStartWorkflow
from temporalio.testing import WorkflowEnvironment

from capabilities.proactive.contracts.patterns import PatternScan, PatternsReport
from capabilities.proactive.maintenance_schedule import ensure_patterns_schedule
from capabilities.proactive.patterns import draft_id
from capabilities.proactive.workflow.patterns import LucyPatternsWorkflow
from capabilities.task.repository import ingress_claim
from lucy.db.session import create_sessionmaker
from lucy.settings import Settings
from tests.conftest import Lucy, eventually, new_team, record_history, running_lucy
from tests.fakes.slack import FakeSlack
from tests.proactive.helpers import forget

ZONE = "Europe/Paris"
DM = "D0PATTERNS"
CHANNEL = "C0PATTERNS"
ASK = "Post the weekly sales summary, please!"


@pytest.fixture
async def lucy_ts(
    settings: Settings, ts_env: WorkflowEnvironment, engine: AsyncEngine, admin_engine: AsyncEngine
) -> AsyncIterator[Lucy]:
    async with running_lucy(settings, ts_env.client, engine, admin_engine) as running:
        yield running


def mondays_at(hours: list[float], *, zone: str = ZONE) -> list[datetime]:
    """The last ``len(hours)`` Mondays before today (oldest first), each at its hour, local time."""
    today = datetime.now(ZoneInfo(zone)).date()
    last = today - timedelta(days=(today.weekday() or 7))  # the Monday before today
    days = [last - timedelta(weeks=i) for i in reversed(range(len(hours)))]
    return [
        datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(zone)) + timedelta(hours=h)
        for d, h in zip(days, hours, strict=True)
    ]


async def ask(
    engine: AsyncEngine,
    admin: AsyncEngine,
    team: str,
    user: str,
    when: list[datetime],
    *,
    channel: str = DM,
    texts: list[str] | None = None,
) -> None:
    """Tasks claimed as ingress claims them, then dated ``when`` (the requester's zone is Paris)."""
    sessions = create_sessionmaker(engine)
    for i, at in enumerate(when):
        workflow_id = f"lucy-task-{team}-{channel}-{uuid.uuid4().hex[:10]}"
        async with sessions.begin() as session:
            await ingress_claim(
                session=session,
                slack_team_id=team,
                slack_user_id=user,
                slack_channel_id=channel,
                channel_type="im" if channel.startswith("D") else "public",
                workflow_id=workflow_id,
                source="dm" if channel.startswith("D") else "mention",
                request_text=(texts or [ASK] * len(when))[i],
                slack_thread_ts=None,
                user_capacity=100,
                user_refill_per_second=1,
                workspace_capacity=100,
                workspace_refill_per_second=1,
                month=datetime.now(UTC).date(),
            )
        async with admin.begin() as conn:
            await conn.execute(
                text("UPDATE tasks SET created_at = :at, status = 'completed' WHERE workflow_id = :wf"),
                {"at": at, "wf": workflow_id},
            )
    async with admin.begin() as conn:
        await conn.execute(
            text(
                "UPDATE users u SET timezone = :zone FROM workspaces w "
                "WHERE w.id = u.workspace_id AND w.slack_team_id = :team"
            ),
            {"zone": ZONE, "team": team},
        )


async def scan(lucy: Lucy, name: str | None = None) -> PatternsReport:
    workflow_id = f"lucy-patterns-test-{uuid.uuid4().hex[:8]}"
    report = await lucy.client.execute_workflow(
        LucyPatternsWorkflow.run,
        PatternScan(),
        id=workflow_id,
        task_queue=lucy.settings.temporal.temporal_task_queue,
    )
    if name:
        await record_history(lucy, workflow_id, name)
    return report


def offers(slack: FakeSlack, user: str) -> list[dict[str, Any]]:
    return [m for m in slack.posted(user) if "schedule it?" in m.get("text", "")]


async def rows(admin: AsyncEngine, team: str) -> list[Any]:
    async with admin.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT p.* FROM patterns p JOIN workspaces w ON w.id = p.workspace_id "
                "WHERE w.slack_team_id = :team"
            ),
            {"team": team},
        )
        return list(found)


def _buttons(message: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


async def test_three_monday_requests_lead_to_one_offer(
    lucy_ts: Lucy, engine: AsyncEngine, admin_engine: AsyncEngine, fake_slack: FakeSlack
):
    team, user = new_team(), f"U{uuid.uuid4().hex[:8].upper()}"
    await ask(engine, admin_engine, team, user, mondays_at([9.1, 8.75, 9.3]))

    await scan(lucy_ts, "lucy_patterns_offer")

    [offer] = offers(fake_slack, user)
    assert offer["text"] == "You asked this every Monday around 9:00 — schedule it?"
    assert _buttons(offer) == ["lucy_schedule_create", "lucy_pattern_later", "lucy_pattern_never"]
    assert "every monday at 09:00" in str(offer["blocks"])  # the schedule confirmation's own facts
    [row] = await rows(admin_engine, team)
    assert (row.status, row.occurrences, row.data["when"]) == ("suggested", 3, "every monday at 09:00")

    await scan(lucy_ts)  # asked once: the next week's scan does not ask again
    assert len(offers(fake_slack, user)) == 1

    listed = await lucy_ts.command("patterns", team=team, user=user, channel=DM)
    assert "every Monday around 9:00" in str(listed.json()["blocks"])


async def test_irregular_requests_lead_to_none(
    lucy_ts: Lucy, engine: AsyncEngine, admin_engine: AsyncEngine, fake_slack: FakeSlack
):
    team, user = new_team(), f"U{uuid.uuid4().hex[:8].upper()}"
    mondays = mondays_at([9, 9, 9])
    irregular = [mondays[0], mondays[1] + timedelta(days=2), mondays[2] + timedelta(hours=6)]
    await ask(engine, admin_engine, team, user, irregular)
    other = f"U{uuid.uuid4().hex[:8].upper()}"  # regular, but a different request each time
    await ask(
        engine, admin_engine, team, other, mondays, texts=["sales summary", "weather in Paris", "a joke"]
    )

    await scan(lucy_ts)

    assert offers(fake_slack, user) == [] and offers(fake_slack, other) == []
    assert await rows(admin_engine, team) == []


async def test_after_never_the_offer_never_comes_again(
    lucy_ts: Lucy, engine: AsyncEngine, admin_engine: AsyncEngine, fake_slack: FakeSlack
):
    team, user = new_team(), f"U{uuid.uuid4().hex[:8].upper()}"
    await ask(engine, admin_engine, team, user, mondays_at([9, 9, 9]))
    await scan(lucy_ts)
    [offer] = offers(fake_slack, user)

    answer = await lucy_ts.click(
        offer,
        "lucy_pattern_never",
        team=team,
        user="U0SOMEONEELSE",
        channel=user,
        response_url=fake_slack.response_url("never-other"),
    )
    assert answer.status_code == 200
    [row] = await rows(admin_engine, team)
    assert row.status == "suggested"  # only the person asked can answer

    await lucy_ts.click(offer, "lucy_pattern_never", team=team, user=user, channel=user)
    [row] = await rows(admin_engine, team)
    assert row.status == "dismissed"

    await ask(engine, admin_engine, team, user, mondays_at([9, 9, 9, 9])[:1])  # and it goes on
    await scan(lucy_ts)
    assert len(offers(fake_slack, user)) == 1


async def test_not_now_waits_and_the_opt_out_stops_the_scan(
    lucy_ts: Lucy, engine: AsyncEngine, admin_engine: AsyncEngine, fake_slack: FakeSlack
):
    team, user = new_team(), f"U{uuid.uuid4().hex[:8].upper()}"
    await ask(engine, admin_engine, team, user, mondays_at([9, 9, 9]))
    await scan(lucy_ts)
    [offer] = offers(fake_slack, user)
    await lucy_ts.click(offer, "lucy_pattern_later", team=team, user=user, channel=user)
    [row] = await rows(admin_engine, team)
    assert row.status == "detected" and datetime.fromisoformat(row.data["offer_after"]) > datetime.now(UTC)
    await scan(lucy_ts)
    assert len(offers(fake_slack, user)) == 1  # not before the date Not now set

    other = f"U{uuid.uuid4().hex[:8].upper()}"
    said = await lucy_ts.command("settings patterns off", team=team, user=other, channel=DM)
    assert "will not look at your requests" in said.json()["text"]
    await ask(engine, admin_engine, team, other, mondays_at([9, 9, 9]), channel="D0OTHER")
    await scan(lucy_ts)
    assert offers(fake_slack, other) == []
    assert len(await rows(admin_engine, team)) == 1  # nothing stored of the person who opted out


async def test_a_channel_that_is_not_monitored_leads_to_none(
    lucy_ts: Lucy, engine: AsyncEngine, admin_engine: AsyncEngine, fake_slack: FakeSlack
):
    team, user = new_team(), f"U{uuid.uuid4().hex[:8].upper()}"
    await ask(engine, admin_engine, team, user, mondays_at([9, 9, 9]), channel=CHANNEL)
    await scan(lucy_ts)
    assert offers(fake_slack, user) == [] and await rows(admin_engine, team) == []

    refused = await lucy_ts.command("settings patterns-channel on", team=team, user=user, channel=CHANNEL)
    assert "Only a workspace admin" in refused.json()["text"]
    said = await lucy_ts.command("settings patterns-channel on", team=team, user="UADMIN1", channel=CHANNEL)
    assert said.json()["text"] == f"Done: I will now look for recurring requests in <#{CHANNEL}>."
    await scan(lucy_ts)
    [offer] = offers(fake_slack, user)
    assert f"<#{CHANNEL}>" in str(offer["blocks"])


async def test_create_on_the_offer_makes_the_schedule_through_the_ordinary_path(
    lucy: Lucy, engine: AsyncEngine, admin_engine: AsyncEngine, fake_slack: FakeSlack
):
    """On the dev server (Temporal Schedules): Create on the offer is the schedule's own button."""
    team, user = new_team(), "U0ALICE"
    await ask(engine, admin_engine, team, user, mondays_at([9, 9.25, 8.5]))
    before = len(offers(fake_slack, user))
    try:
        await scan(lucy)
        offer = offers(fake_slack, user)[before]
        name = uuid.uuid4().hex[:8]
        await lucy.click(
            offer,
            "lucy_schedule_create",
            team=team,
            user=user,
            channel=user,
            response_url=fake_slack.response_url(name),
        )
        answer = await eventually(
            lambda: next((r for r in fake_slack.responses if r["name"] == name), None), "the answer to Create"
        )
        assert "Scheduled" in answer["text"]
        [row] = await rows(admin_engine, team)
        async with admin_engine.connect() as conn:
            schedule = (
                await conn.execute(text("SELECT * FROM schedules WHERE id = :id"), {"id": draft_id(row.id)})
            ).one()
        assert (schedule.cron_expression, schedule.timezone, schedule.intent_template) == (
            "0 9 * * 1",
            ZONE,
            ASK,
        )
        listed = await lucy.command("patterns", team=team, user=user, channel=DM)
        assert "· scheduled" in str(listed.json()["blocks"])
    finally:
        await forget(lucy.client, admin_engine, team, "schedules")


async def test_the_worker_keeps_a_weekly_patterns_schedule(lucy: Lucy):
    schedule_id = f"lucy-patterns-test-{uuid.uuid4().hex[:8]}"
    queue = lucy.settings.temporal.temporal_task_queue
    await ensure_patterns_schedule(lucy.client, queue, schedule_id=schedule_id)
    await ensure_patterns_schedule(lucy.client, queue, schedule_id=schedule_id)  # idempotent
    handle = lucy.client.get_schedule_handle(schedule_id)
    try:
        desc = await handle.describe()
        assert desc.schedule.spec.intervals[0].every == timedelta(days=7)
        assert isinstance(desc.schedule.action, ScheduleActionStartWorkflow)
        assert desc.schedule.action.workflow == "LucyPatternsWorkflow"
    finally:
        await handle.delete()
