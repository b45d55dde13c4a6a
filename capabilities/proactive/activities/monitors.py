"""Monitor activities: claim a probe, run it, and record what it found.

``claim`` takes the probe against the owner's quota and rate limits with the same database
function as ingress (a probe is a task row, source ``TaskSource.MONITOR``, stored as
``heartbeat``), and refuses a fire of a monitor that is paused, in error or deleted.
``probe`` looks: a web page through the gateway's
``web_fetch`` (behind the egress guard) or a schedule's record; a target that answers badly is
an alert, a probe that cannot look (the gateway down) fails and Temporal retries it a little.
``record`` applies the outcome once per workflow id (:mod:`capabilities.proactive.alerting`), finishes the
task row, audits alerts, and pauses the Temporal Schedule when the monitor goes to ``error``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from capabilities.budgets.rules import defaults_from
from capabilities.proactive import conditions
from capabilities.proactive.activities import standing
from capabilities.proactive.contracts.monitors import (
    MonitorClaim,
    MonitorKind,
    MonitorRecorded,
    MonitorRun,
    ProbeOutcome,
    ProbeRequest,
    ProbeResult,
    ProbeVerdict,
)
from capabilities.proactive.contracts.schedules import ChannelNotice
from capabilities.proactive.mirror import StandingMirror
from capabilities.proactive.repository import monitors as rows
from capabilities.proactive.repository import schedules as schedule_rows
from capabilities.task.repository import record_task_finished
from capabilities.tools.activities.gateway import GatewayActivities
from capabilities.tools.activities.openclaw import GatewayResult
from lucy.contracts.errors import ErrorType
from lucy.contracts.ids import TaskSource, TaskStatus, idempotency_key
from lucy.db.repositories.ledger import record_audit
from lucy.db.repositories.tenants import tenant_transaction
from lucy.logging import get_logger
from lucy.settings import BudgetSettings, LimitSettings
from lucy.slack.text import escape_mrkdwn

log = get_logger(__name__)

PAGE_LIMIT = 20_000  # characters of a page the model sees for a ``custom`` question
OVERDUE = timedelta(minutes=10)  # a schedule this late past its next run has missed it


class MonitorActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        mirror: StandingMirror,
        limits: LimitSettings,
        gateway: GatewayActivities,
        budgets: BudgetSettings | None = None,
    ) -> None:
        self._sessions = sessions
        self._mirror = mirror
        self._limits = limits
        self._gateway = gateway
        self._budgets = defaults_from(budgets or BudgetSettings())

    @activity.defn(name="heartbeats.claim")
    async def claim(self, run: MonitorRun) -> MonitorClaim:
        """Whether this fire probes, and the condition it checks."""
        workspace_id = uuid.UUID(run.workspace_id)
        async with tenant_transaction(self._sessions, workspace_id) as session:
            record = await rows.get_monitor(
                session=session, workspace_id=workspace_id, monitor_id=uuid.UUID(run.heartbeat_id)
            )
            if record is None or record.status != "active":
                return MonitorClaim(run=False)
            fire = standing.Fire(
                workspace_id=workspace_id,
                workflow_id=run.workflow_id,
                slack_team_id=run.slack_team_id,
                slack_user_id=record.owner_slack_id,
                slack_channel_id=record.slack_channel_id,
                source=TaskSource.MONITOR.value,
                request_text=f"monitor: {record.description}",
            )
            claim = await standing.claim_fire(session, fire, self._limits)
            if claim.workspace_id is None:
                return MonitorClaim(run=False)
            refused = claim.refused
            if refused is None and claim.claimed:  # a budget used up: no probe, no model call
                refused = await standing.budget_refusal(session, fire, claim, self._budgets)
            if refused is not None:
                await standing.record_refused(session, fire, "Refused", refused)
                log.info("monitor probe refused", monitor_id=run.heartbeat_id, why=refused[:80])
                return MonitorClaim(run=False)
            # A retry of this activity: the claim stands while the row waits.
            if not claim.claimed and not await standing.claim_still_stands(session, fire):
                return MonitorClaim(run=False)
        return MonitorClaim(
            run=True,
            kind=record.kind,
            config=record.config,
            name=record.name,
            owner_id=str(claim.user_id) if claim.user_id else "",
        )

    @activity.defn(name="heartbeats.probe")
    async def probe(self, request: ProbeRequest) -> ProbeResult:
        """Look, and say what was found (a probe that cannot look raises: Temporal retries it)."""
        config = request.config
        if request.kind == MonitorKind.SCHEDULE_MISS.value:
            return await self._schedule(request)
        if request.kind == MonitorKind.CUSTOM.value:
            page = ""
            if config.get("url"):
                fetched = await self._fetch(str(config["url"]), PAGE_LIMIT)
                if isinstance(fetched, ProbeResult):  # the page itself is down: that is the answer
                    return fetched
                page = str(fetched.details.get("text") or fetched.text)
            return ProbeResult(outcome="", evidence="", ask=True, question=str(config["question"]), page=page)
        fetched = await self._fetch(str(config["url"]), 50_000)
        if isinstance(fetched, ProbeResult):
            return fetched
        details = fetched.details
        if request.kind == MonitorKind.API_HEALTH.value:
            status = details.get("status")
            took = details.get("tookMs")
            judged = conditions.judge_health(
                config,
                status=status if isinstance(status, int) else 200,
                took_ms=int(took) if isinstance(took, int | float) else None,
            )
            return ProbeResult(outcome=judged.outcome, evidence=judged.evidence)
        try:
            judged = conditions.judge_metric(config, str(details.get("text") or fetched.text))
        except conditions.ProbeFailed as failed:
            return ProbeResult(outcome=ProbeOutcome.FAILED.value, evidence=str(failed))
        return ProbeResult(outcome=judged.outcome, evidence=judged.evidence)

    async def _fetch(self, url: str, limit: int) -> ProbeResult | GatewayResult:
        """The page, or the probe's result when the page could not be had: the target's own
        error is an alert; a URL the egress guard refuses, or a gateway that refuses, a failure."""
        try:
            return await self._gateway.fetch({"url": url, "extractMode": "text", "maxChars": limit})
        except ApplicationError as err:
            if err.type == ErrorType.TOOL_REJECTED and "fetch failed" in str(err.message).lower():
                return ProbeResult(outcome=ProbeOutcome.ALERT.value, evidence=f"{url}: {err.message}")
            if err.non_retryable:
                return ProbeResult(outcome=ProbeOutcome.FAILED.value, evidence=str(err.message))
            raise

    async def _schedule(self, request: ProbeRequest) -> ProbeResult:
        schedule_id = str(request.config.get("schedule_id", ""))
        workspace_id = uuid.UUID(request.workspace_id)
        async with tenant_transaction(self._sessions, workspace_id) as session:
            record = await schedule_rows.get_schedule(
                session=session, workspace_id=workspace_id, schedule_id=uuid.UUID(schedule_id)
            )
        if record is None:
            return ProbeResult(ProbeOutcome.ALERT.value, f"schedule {schedule_id} no longer exists")
        name = record.name
        if record.last_outcome in ("failed", "refused"):
            return ProbeResult(ProbeOutcome.ALERT.value, f"the last run of {name} {record.last_outcome}")
        if not record.is_active:
            return ProbeResult(
                ProbeOutcome.ALERT.value, f"{name} is paused ({record.paused_reason or 'paused'})"
            )
        if record.next_run_at is not None and datetime.now(UTC) - record.next_run_at > OVERDUE:
            return ProbeResult(
                ProbeOutcome.ALERT.value, f"{name} was due at {record.next_run_at:%Y-%m-%d %H:%M} UTC"
            )
        return ProbeResult(ProbeOutcome.OK.value, f"{name}: last run {record.last_outcome or 'not yet run'}")

    @activity.defn(name="heartbeats.record")
    async def record(self, verdict: ProbeVerdict) -> MonitorRecorded:
        """Apply the outcome once; finish the probe's task row; what to post."""
        workspace_id = uuid.UUID(verdict.workspace_id)
        at = datetime.fromisoformat(verdict.at)
        async with tenant_transaction(self._sessions, workspace_id) as session:
            say, record = await rows.record_probe(
                session=session,
                workspace_id=workspace_id,
                monitor_id=uuid.UUID(verdict.heartbeat_id),
                workflow_id=verdict.workflow_id,
                outcome=verdict.outcome,
                evidence=verdict.evidence,
                at=at,
            )
            failed = verdict.outcome == ProbeOutcome.FAILED.value
            await record_task_finished(
                session=session,
                workspace_id=workspace_id,
                workflow_id=verdict.workflow_id,
                status=(TaskStatus.FAILED if failed else TaskStatus.COMPLETED).value,
                completed_at=at,
                model=verdict.model,
                prompt_tokens=verdict.prompt_tokens,
                completion_tokens=verdict.completion_tokens,
                cost_usd=verdict.cost_usd,
                error_type="ProbeFailed" if failed else None,
                error_message=verdict.evidence[:500] if failed else None,
                result_data={"outcome": verdict.outcome, "evidence": verdict.evidence[:2000], "said": say},
            )
            if record is not None and say != "quiet":
                await record_audit(
                    session=session,
                    workspace_id=workspace_id,
                    idempotency_key=idempotency_key("monitor", say, verdict.workflow_id),
                    occurred_at=at,
                    actor_type="system",
                    action=f"monitor.{say}",
                    entity_type="heartbeat",
                    entity_id=verdict.heartbeat_id,
                    workflow_id=verdict.workflow_id,
                    details={"evidence": verdict.evidence[:2000]},
                )
        if record is None or say == "quiet":
            return MonitorRecorded(decision=say)
        if say == "error":
            await self._mirror.pause(record.temporal_id, f"error: {verdict.evidence[:200]}")
        return MonitorRecorded(notices=[_notice(record, say, verdict)], decision=say)


def _notice(record: rows.MonitorRecord, say: str, verdict: ProbeVerdict) -> ChannelNotice:
    name, evidence = escape_mrkdwn(record.name), escape_mrkdwn(verdict.evidence)
    key = f"monitor:{verdict.workflow_id}:{say}"
    if say == "error":
        return ChannelNotice(
            channel=record.owner_slack_id,
            text=(
                f":warning: Your monitor *{name}* could not check {record.consecutive_failures} times in "
                f"a row, so I stopped it. Last error: {evidence}\n"
                "Resume it from `/lucy monitors` once the cause is fixed."
            ),
            key=key,
        )
    if say == "recovered":
        text = f":white_check_mark: *{name}* is back to normal: {evidence}"
    elif say == "reminder":
        text = f":rotating_light: Still failing: *{name}*\n>{evidence}"
    else:
        text = f":rotating_light: Monitor alert: *{name}*\n>{evidence}"
    return ChannelNotice(channel=record.slack_channel_id, text=text, key=key)
