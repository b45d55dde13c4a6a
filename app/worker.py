"""Worker composition root: builds every client once and registers workflows and activities."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import aiohttp
import httpx
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import (
    Interceptor,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkerDeploymentConfig,
    WorkflowRunner,
)

from app.serving import SLACK_TIMEOUT_S, slack_session
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
from capabilities.task.workflow.queues import ActivityQueues, activity_name, role_of
from capabilities.tools.activities import registry
from capabilities.tools.activities.gateway import GatewayActivities
from capabilities.tools.deps import ToolDeps
from capabilities.tools.egress import EgressGuard
from lucy.contracts.queues import ALL_ROLES, QueueRole, queue_name
from lucy.db.pool import PoolTimeoutInterceptor
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


# What the sandbox passed through when the worker ran sandboxed (``bench/worker_scale.py
# --compare-sandbox`` measures that runner against :func:`workflow_runner`).
PASSTHROUGH = (
    "capabilities",
    "lucy.contracts",
    "lucy.redact",
    "lucy.slack.text",
)


def workflow_runner() -> WorkflowRunner:
    """Lucy's workflows run without Temporal's sandbox (``UnsandboxedWorkflowRunner``).

    The sandbox re-imports, for every workflow run, the modules it does not pass through, and
    proxies the restricted ones. Lucy passed all of its own code through (``PASSTHROUGH``:
    otherwise 1,000 waiting tasks held 1,000 copies of the task workflow's modules), so the
    sandbox no longer saw Lucy's code: a passed-through module calls the real ``datetime``,
    ``random`` and ``os``; only the builtins it patches during an activation (``open``,
    ``input``, ``breakpoint``) were still stopped at run time. What it still cost was a sandbox
    per workflow (an importer, its globals, restricted builtins) and an ``exec`` of a code
    string under its import hooks for every activation and every payload sequence: memory per
    cached workflow and CPU per task (docs/bench-worker-scale.md, "Without the sandbox").
    Determinism is guarded statically: ``tests/test_architecture.py`` checks that workflow code
    imports only deterministic modules, and reads every line workflow code runs (the workflow
    role, the contracts, the pure modules) for the clock, randomness, the environment, files and
    those builtins; ``tests/test_replay.py`` replays every recorded history with this runner."""
    return UnsandboxedWorkflowRunner()


def workflow_interceptors(*, split: bool = True) -> list[Interceptor]:
    """The interceptors every Lucy worker (and the replay test) runs workflows with: each
    activity to its role's task queue (:mod:`capabilities.task.workflow.queues`), unless ``split``
    is off (``LUCY_WORKER_SPLIT_QUEUES=false``)."""
    return [ActivityQueues(split=split)]


def build_slack_client(
    settings: Settings, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient | None:
    """The bot's Web API client (no client-side retries: Temporal retries). With ``session``
    (the worker's: :func:`app.serving.slack_session`) its calls share kept-alive connections."""
    token = settings.slack.slack_bot_token
    if token is None:
        return None
    return AsyncWebClient(
        token=token.get_secret_value(),
        base_url=settings.slack.slack_api_url,
        timeout=SLACK_TIMEOUT_S,
        retry_handlers=[],
        session=session,
    )


HEARTBEAT_THROTTLE = timedelta(seconds=2)
# A test's or a bench's limits for every role: (workflow tasks, activities); None keeps the settings.
SlotLimits = tuple[int | None, int | None]
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
        *_maintenance(settings, temporal, engine, owner_engine, slack),
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
    settings: Settings,
    temporal: Client,
    engine: AsyncEngine,
    owner_engine: AsyncEngine | None,
    slack: AsyncWebClient | None,
) -> list[Any]:
    acts = MaintenanceActivities(
        engine,
        temporal,
        retention_months=settings.database.database_retention_months,
        owner_engine=owner_engine,
        slack=slack,
        budgets=settings.budget,
    )
    found = PatternActivities(
        engine,
        slack,
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


def activities_by_role(activities: Sequence[Any]) -> dict[QueueRole, list[Any]]:
    """Each activity under the role :func:`role_of` gives its name; one nobody declared stops the
    worker here (a new activity must say where it runs), not a task later."""
    by_role: dict[QueueRole, list[Any]] = {role: [] for role in ALL_ROLES}
    for fn in activities:
        name = activity_name(fn)
        role = role_of(name)
        if role is None:
            raise RuntimeError(
                f"activity {name!r} has no queue role: add it to capabilities/task/workflow/queues.py"
            )
        by_role[role].append(fn)
    return by_role


def role_worker(
    settings: Settings,
    client: Client,
    role: QueueRole,
    base: str,
    activities: Sequence[Any],
    limits_override: SlotLimits = (None, None),
) -> Worker:
    """The worker of one role's queue: the workflows (on the base queue) or only activities, with
    the role's concurrency limit (or ``limits_override``: workflow tasks, activities) and the
    same Worker Deployment version as its siblings."""
    limits = settings.temporal
    workflows = role is QueueRole.WORKFLOWS
    workflow_tasks, activity_slots = limits_override
    slots = (
        activity_slots
        or {
            QueueRole.WORKFLOWS: limits.worker_records_concurrency,
            QueueRole.LLM: limits.worker_llm_concurrency,
            QueueRole.TOOLS: limits.worker_tools_concurrency,
            QueueRole.SLACK: limits.worker_slack_concurrency,
        }[role]
    )
    return Worker(
        client,
        task_queue=queue_name(base, role),
        deployment_config=deployment_config(settings),
        workflows=list(WORKFLOWS) if workflows else [],
        workflow_runner=workflow_runner(),
        # each activity to its role's queue; an exhausted database pool: a retried step, no hang
        interceptors=[*workflow_interceptors(split=limits.worker_split_queues), PoolTimeoutInterceptor()],
        max_concurrent_workflow_tasks=(workflow_tasks or limits.worker_workflow_concurrency)
        if workflows
        else None,
        max_concurrent_activities=slots,
        # A heartbeat's details (the LLM activity's stream ts) reach Temporal within 2 s, so
        # an attempt after a kill -9 knows which Slack message to rewrite.
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
        activities=activities,
    )


@contextlib.asynccontextmanager
async def lucy_worker(
    settings: Settings,
    client: Client,
    *,
    task_queue: str | None = None,
    engine: AsyncEngine | None = None,
    egress: EgressGuard | None = None,
    roles: Sequence[QueueRole] = ALL_ROLES,
    max_concurrent_workflow_tasks: int | None = None,
    max_concurrent_activities: int | None = None,
) -> AsyncIterator[list[Worker]]:
    """Running workers, one per queue role in ``roles`` (default: all four), sharing one client
    and one set of activity clients; stops on exit. ``task_queue`` replaces the configured base
    queue; ``egress`` replaces the URL guard's resolver (tests resolve their fake sites without
    DNS); the ``max_concurrent_*`` limits replace every role's settings (tests, benches)."""
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
    session = slack_session() if settings.slack.slack_bot_token is not None else None
    slack = build_slack_client(settings, session)
    base = task_queue or settings.temporal.temporal_task_queue
    try:
        # Every activity is async: no thread pool is needed.
        everything = build_activities(
            settings,
            http=http,
            engine=engine,
            slack=slack,
            temporal=client,
            owner_engine=owner_engine,
            egress=egress,
        )
        by_role = activities_by_role(everything)
        # The workflows' queue also serves every activity: a run started before the split (no
        # QUEUES_PATCH marker) schedules all of its activities there, and must still finish.
        by_role[QueueRole.WORKFLOWS] = everything
        override = (max_concurrent_workflow_tasks, max_concurrent_activities)
        workers = [role_worker(settings, client, role, base, by_role[role], override) for role in roles]
        async with contextlib.AsyncExitStack() as running:
            for worker in workers:
                await running.enter_async_context(worker)
            queues = [queue_name(base, role) for role in roles]
            log.info("worker started", task_queues=queues, namespace=client.namespace)
            yield workers
    finally:
        await http.aclose()
        if session is not None:
            await session.close()
        if own_engine:
            await engine.dispose()
        if owner_engine is not None:
            await owner_engine.dispose()


async def run_worker(settings: Settings, client: Client, roles: Sequence[QueueRole] = ALL_ROLES) -> None:
    """Run the workers of ``roles`` until cancelled. The process that serves workflows also
    ensures Lucy's own schedules (idempotent; the maintenance run at start once per such process)."""

    from app.memory_trim import trim_freed_memory
    from capabilities.memory.upkeep_schedule import ensure_memory_upkeep_schedule
    from capabilities.proactive.maintenance_schedule import (
        ensure_maintenance_schedule,
        ensure_patterns_schedule,
    )

    async with lucy_worker(settings, client, roles=roles):
        if QueueRole.WORKFLOWS in roles:
            await ensure_maintenance_schedule(client, settings.temporal.temporal_task_queue, run_now=True)
            await ensure_memory_upkeep_schedule(client, settings.temporal.temporal_task_queue)
            await ensure_patterns_schedule(client, settings.temporal.temporal_task_queue)
        await trim_freed_memory(settings.temporal.worker_memory_trim_seconds)
