"""``LucyMonitorWorkflow``: one probe of a monitor, fired by its Temporal Schedule.

Claim (the monitor is live, the owner's quota and rate limits allow a probe), probe (an
activity: a page through the gateway, or a schedule's record), for a ``custom`` monitor ask the
model its yes/no question, record the outcome (once: the alert, cooldown, recovery and error
rules are :mod:`capabilities.proactive.alerting`'s), then post what the record says to post, each with an
idempotency key. A probe that cannot look is retried a little by Temporal and then counts as a
failed probe: three in a row stop the monitor until someone resumes it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    import capabilities.proactive.conditions as conditions
    import capabilities.proactive.contracts.monitors
    import capabilities.proactive.contracts.schedules  # noqa: F401
    import lucy.contracts.errors
    import lucy.contracts.ids
    import lucy.contracts.llm
    import lucy.contracts.slack  # noqa: F401
    from capabilities.proactive.activities.monitors import MonitorActivities
    from capabilities.proactive.contracts.monitors import (
        MonitorClaim,
        MonitorInput,
        MonitorRecorded,
        MonitorRun,
        ProbeOutcome,
        ProbeRequest,
        ProbeVerdict,
    )
    from capabilities.task.activities.llm import LlmActivities
    from capabilities.task.activities.slack import SlackActivities
    from lucy.contracts.ids import MONITOR_WORKFLOW_NAME
    from lucy.contracts.llm import ChatMessage, LlmRequest, ModelTier
    from lucy.contracts.slack import PostMessageRequest

STEP_TIMEOUT = timedelta(seconds=60)
PROBE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(seconds=10), maximum_attempts=3
)
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


@workflow.defn(name=MONITOR_WORKFLOW_NAME)
class LucyMonitorWorkflow:
    @workflow.run
    async def run(self, monitor: MonitorInput) -> str:
        """Returns what was said: ``skipped``, ``quiet``, ``alert``, ``reminder``, ``recovered``
        or ``error``."""
        workflow_id = workflow.info().workflow_id
        claim = await workflow.execute_activity_method(
            MonitorActivities.claim,
            MonitorRun(monitor.workspace_id, monitor.heartbeat_id, monitor.slack_team_id, workflow_id),
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary="claim: the monitor is live and within its owner's quota",
        )
        if not claim.run:
            return "skipped"
        verdict = await self._probe(monitor, workflow_id, claim)
        recorded: MonitorRecorded = await workflow.execute_activity_method(
            MonitorActivities.record,
            verdict,
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary=f"record: {verdict.outcome}",
        )
        for notice in recorded.notices:
            await workflow.execute_activity_method(
                SlackActivities.post_message,
                PostMessageRequest(
                    channel=notice.channel, text=notice.text, idempotency_key=notice.key, format=False
                ),
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=RECORD_RETRY,
                summary=f"slack: monitor {recorded.decision}",
            )
        return recorded.decision

    async def _probe(self, monitor: MonitorInput, workflow_id: str, claim: MonitorClaim) -> ProbeVerdict:
        kind, config = claim.kind, claim.config

        def verdict(outcome: str, evidence: str, **cost: object) -> ProbeVerdict:
            return ProbeVerdict(
                workspace_id=monitor.workspace_id,
                heartbeat_id=monitor.heartbeat_id,
                workflow_id=workflow_id,
                outcome=outcome,
                evidence=evidence,
                at=workflow.now().isoformat(),
                **cost,  # type: ignore[arg-type]
            )

        try:
            found = await workflow.execute_activity_method(
                MonitorActivities.probe,
                ProbeRequest(monitor.workspace_id, monitor.heartbeat_id, workflow_id, kind, config),
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=PROBE_RETRY,
                summary=f"probe: {kind}",
            )
        except ActivityError as err:
            return verdict(ProbeOutcome.FAILED.value, f"the probe failed: {_message(err)}")
        if not found.ask:
            return verdict(found.outcome, found.evidence)
        messages = [
            ChatMessage(role=role, content=content)
            for role, content in conditions.custom_messages(found.question, found.page)
        ]
        try:
            answer = await workflow.execute_activity_method(
                LlmActivities.chat,
                LlmRequest(
                    messages=messages,
                    tier=ModelTier.FAST,
                    max_tokens=300,
                    json_object=True,
                    workspace_id=monitor.workspace_id,  # held against the workspace's and
                    user_id=claim.owner_id,  # the owner's budgets
                ),
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=PROBE_RETRY,
                summary="LLM call: the monitor's yes/no question",
            )
        except ActivityError as err:
            return verdict(ProbeOutcome.FAILED.value, f"the model could not answer: {_message(err)}")
        cost = {
            "model": answer.model,
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "cost_usd": answer.cost_usd,
        }
        try:
            judged = conditions.judge_answer(answer.content)
        except conditions.ProbeFailed as failed:
            return verdict(ProbeOutcome.FAILED.value, str(failed), **cost)
        return verdict(judged.outcome, judged.evidence, **cost)


def _message(err: ActivityError) -> str:
    cause = err.cause
    return str(getattr(cause, "message", None) or cause or err)[:300]
