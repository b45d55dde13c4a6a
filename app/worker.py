"""Worker composition root: builds every client once and registers workflows and activities."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import httpx
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from capabilities.approvals.activities.identity import IdentityActivities
from capabilities.approvals.activities.requests import ApprovalActivities
from capabilities.approvals.activities.sealed_arguments import arguments_keyring
from capabilities.budgets.activities import BudgetGuard
from capabilities.email.activities.reply import EmailReplyActivities
from capabilities.mcp.activities import McpActivities
from capabilities.memory.activities.upkeep import MemoryUpkeepActivities
from capabilities.memory.workflow import LucyMemoryUpkeepWorkflow
from capabilities.proactive.activities.maintenance import MaintenanceActivities
from capabilities.proactive.activities.monitors import MonitorActivities
from capabilities.proactive.activities.patterns import PatternActivities
from capabilities.proactive.activities.schedules import ScheduleActivities
from capabilities.proactive.mirror import StandingMirror
from capabilities.proactive.workflow.maintenance import LucyMaintenanceWorkflow
from capabilities.proactive.workflow.monitor import LucyMonitorWorkflow
from capabilities.proactive.workflow.patterns import LucyPatternsWorkflow
from capabilities.skills.activities import SkillDraftActivities
from capabilities.skills.workflow.draft import LucySkillDraftWorkflow
from capabilities.task.activities.assistant_threads import AssistantThreadActivities
from capabilities.task.activities.context import ContextActivities
from capabilities.task.activities.llm import LlmActivities
from capabilities.task.activities.records import RecordActivities
from capabilities.task.activities.slack import ChannelPacer, SlackActivities
from capabilities.task.workflow import LucyTaskWorkflow
from capabilities.tools.activities import registry
from capabilities.tools.activities.gateway import GatewayActivities
from capabilities.tools.deps import ToolDeps
from capabilities.tools.egress import EgressGuard
from lucy.db.session import create_engine, create_sessionmaker
from lucy.logging import get_logger
from lucy.settings import Settings
from lucy.signing import claim_signer

log = get_logger(__name__)

WORKFLOWS: Sequence[type] = (
    LucyTaskWorkflow,
    LucyMaintenanceWorkflow,
    LucyMonitorWorkflow,
    LucyMemoryUpkeepWorkflow,
    LucySkillDraftWorkflow,
    LucyPatternsWorkflow,
)


# Imported once and shared by every workflow run instead of once per run (see workflow_runner).
PASSTHROUGH = (
    "capabilities",
    "lucy.contracts",
    "lucy.redact",
    "lucy.slack.text",
)


def workflow_runner() -> SandboxedWorkflowRunner:
    """Temporal's sandbox, with Lucy's workflow code and what it uses passed through.

    By default the sandbox imports a workflow's module, and what it imports that is not passed
    through, anew for every workflow run: for 1,000 waiting tasks, 1,000 copies of the task
    workflow's modules. ``workflows/`` holds deterministic code only (``tests/test_architecture.py``
    checks what it imports and that it never reads the clock, randomness, the environment or
    files); the contracts are dataclasses; ``activities`` are only referenced (by method, for
    their names and types), never run in a workflow. So they are imported once and shared. Every
    run still gets its own workflow instance and state, and the sandbox still guards the rest."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


def build_slack_client(settings: Settings) -> AsyncWebClient | None:
    """The bot's Web API client (no client-side retries: Temporal retries)."""
    token = settings.slack.slack_bot_token
    if token is None:
        return None
    return AsyncWebClient(
        token=token.get_secret_value(), base_url=settings.slack.slack_api_url, timeout=15, retry_handlers=[]
    )


HEARTBEAT_THROTTLE = timedelta(seconds=2)
# How long a workflow task waits on this worker's own (sticky) queue before any worker may take
# it (replaying the history). After a kill -9 the dead worker's sticky queue holds the task's
# next workflow task this long (the SDK's default, 10 s, made a kill during a task's first
# seconds cost 10 s more); a live worker polls its sticky queue continuously.
STICKY_TIMEOUT = timedelta(seconds=3)


def build_activities(
    settings: Settings,
    *,
    http: httpx.AsyncClient,
    engine: AsyncEngine,
    slack: AsyncWebClient | None,
    temporal: Client,
    owner_engine: AsyncEngine | None = None,
    egress: EgressGuard | None = None,
) -> list[Any]:
    """Every activity callable, bound to its injected clients."""
    sessions = create_sessionmaker(engine)
    llm = LlmActivities(http, settings.llm, BudgetGuard(engine, settings.budget), slack=slack)
    records = RecordActivities(sessions)
    slack_acts = SlackActivities(
        slack, ChannelPacer(settings.slack.slack_channel_min_interval), plans=settings.llm.llm_streaming
    )
    context = ContextActivities(sessions, settings, slack=slack, http=http)
    approvals = ApprovalActivities(sessions, slack_acts, arguments_keyring(settings))
    identity = IdentityActivities(slack, claim_signer(settings))
    mirror = StandingMirror(temporal, task_queue=settings.temporal.temporal_task_queue)
    schedules = ScheduleActivities(sessions, mirror, settings.limits, settings.budget)
    egress = egress or EgressGuard()
    monitors = MonitorActivities(
        sessions,
        mirror,
        settings.limits,
        GatewayActivities(http, settings.tools, egress=egress),
        budgets=settings.budget,
    )
    return [
        llm.chat,
        records.task_running,
        records.task_finished,
        records.steps,
        slack_acts.post_message,
        slack_acts.update_message,
        AssistantThreadActivities(slack).show,
        context.prepare,
        approvals.request,
        approvals.settle,
        identity.verify,
        schedules.claim_run,
        schedules.run_finished,
        schedules.reconcile,
        monitors.claim,
        monitors.probe,
        monitors.record,
        MemoryUpkeepActivities(sessions).upkeep,
        *tool_activities(settings, http=http, slack=slack, egress=egress, sessions=sessions),
        *_skill_activities(sessions, slack),
        *_mcp(McpActivities(sessions, settings, egress)),
        *_maintenance(settings, temporal, engine, owner_engine),
    ]


def _mcp(acts: McpActivities) -> list[Any]:
    return [acts.call_tool, acts.refresh]


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """Worker Versioning: with ``LUCY_TEMPORAL_WORKER_BUILD_ID``, this worker is that version of the
    ``LUCY_TEMPORAL_WORKER_DEPLOYMENT``; a task stays pinned to the version that started it (a
    task waiting a day for an approval finishes on the code it began with)."""
    temporal = settings.temporal
    if not temporal.temporal_worker_build_id:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(
            deployment_name=temporal.temporal_worker_deployment, build_id=temporal.temporal_worker_build_id
        ),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
    )


def _maintenance(
    settings: Settings, temporal: Client, engine: AsyncEngine, owner_engine: AsyncEngine | None
) -> list[Any]:
    acts = MaintenanceActivities(
        engine,
        temporal,
        retention_months=settings.database.database_retention_months,
        owner_engine=owner_engine,
        slack=build_slack_client(settings),
        budgets=settings.budget,
    )
    found = PatternActivities(
        engine,
        build_slack_client(settings),
        min_interval=timedelta(seconds=settings.limits.schedule_min_interval),
    )
    return [acts.partitions, acts.reconcile_claims, found.scan]


def _skill_activities(sessions: async_sessionmaker[AsyncSession], slack: AsyncWebClient | None) -> list[Any]:
    """Save as skill's reads and its Slack call (``use_skill`` is a tool: see the registry)."""
    draft = SkillDraftActivities(sessions, slack)
    return [draft.source, draft.show]


def tool_activities(
    settings: Settings,
    *,
    http: httpx.AsyncClient,
    slack: AsyncWebClient | None,
    egress: EgressGuard | None = None,
    sessions: async_sessionmaker[AsyncSession] | None = None,
) -> list[Any]:
    """Every registered tool's activity (:mod:`capabilities.tools.activities.registry`), and the email reply
    step's. ``egress`` checks every URL the model chose (default: system DNS, with a timeout)."""
    deps = ToolDeps(
        settings=settings, http=http, slack=slack, egress=egress or EgressGuard(), sessions=sessions
    )
    return [*registry.TOOLS.activities(deps), EmailReplyActivities(settings.tools, http).reply]


@contextlib.asynccontextmanager
async def lucy_worker(
    settings: Settings,
    client: Client,
    *,
    task_queue: str | None = None,
    engine: AsyncEngine | None = None,
    egress: EgressGuard | None = None,
) -> AsyncIterator[Worker]:
    """A running worker with all of Lucy's workflows and activities; stops on exit. ``egress``
    replaces the URL guard's resolver (tests resolve their fake sites without DNS)."""
    own_engine = engine is None
    engine = engine or create_engine(settings.database)
    migration_url = settings.database.database_migration_url
    # Retention (dropping old months) needs the schema owner; optional, a small pool suffices.
    owner_engine = (
        create_engine(settings.database, url=settings.database.migration_url, pool_size=1, max_overflow=1)
        if migration_url is not None
        else None
    )
    http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=False)
    slack = build_slack_client(settings)
    queue = task_queue or settings.temporal.temporal_task_queue
    try:
        # Every activity is async: no thread pool is needed.
        worker = Worker(
            client,
            task_queue=queue,
            deployment_config=deployment_config(settings),
            workflows=list(WORKFLOWS),
            workflow_runner=workflow_runner(),
            # A heartbeat's details (the LLM activity's stream ts) reach Temporal within 2 s, so
            # an attempt after a kill -9 knows which Slack message to rewrite.
            max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
            sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
            activities=build_activities(
                settings,
                http=http,
                engine=engine,
                slack=slack,
                temporal=client,
                owner_engine=owner_engine,
                egress=egress,
            ),
        )
        async with worker:
            log.info("worker started", task_queue=queue, namespace=client.namespace)
            yield worker
    finally:
        await http.aclose()
        if slack is not None:
            session = getattr(slack, "session", None)
            if session is not None:
                await session.close()
        if own_engine:
            await engine.dispose()
        if owner_engine is not None:
            await owner_engine.dispose()


async def run_worker(settings: Settings, client: Client) -> None:
    """Run the worker until cancelled."""
    import asyncio

    from capabilities.memory.upkeep_schedule import ensure_memory_upkeep_schedule
    from capabilities.proactive.maintenance_schedule import (
        ensure_maintenance_schedule,
        ensure_patterns_schedule,
    )

    async with lucy_worker(settings, client):
        await ensure_maintenance_schedule(client, settings.temporal.temporal_task_queue, run_now=True)
        await ensure_memory_upkeep_schedule(client, settings.temporal.temporal_task_queue)
        await ensure_patterns_schedule(client, settings.temporal.temporal_task_queue)
        await asyncio.Event().wait()
