"""Which task queue each activity runs on: the one place that decides it.

An activity's role follows what it reaches (docs/scaling.md):

* ``llm`` (``Q-llm``): the model provider (``llm.chat``, which also streams into Slack);
* ``tools`` (``Q-tools``): every :class:`~capabilities.tools.spec.ToolSpec` activity of the
  registry, a workspace's MCP tools, and the other calls to the same outside services (the email
  reply, a monitor's probe, the MCP refresh, and ``context.prepare``: it reads the Slack thread,
  the mail's attachments, the embeddings endpoint and the browser pool's health);
* ``slack`` (``Q-slack``): the Slack Web API (posts, updates, approvals' messages, who clicked
  in runs recorded before ``speed-verify-local``, the DMs of the maintenance and patterns steps);
* ``workflows`` (Q itself): the rest, which reach only PostgreSQL and Temporal (records,
  schedules, monitors' claims, partitions, memory upkeep). Local activities are not routed:
  they run on the workflow's worker (``identity.verify``, a read of Slack's ``users.info``, and
  ``records.task_finished``), so the workflow worker also reaches Slack's Web API.

:class:`ActivityQueues`, a worker interceptor, routes every activity a workflow starts without a
queue of its own to ``queue_name(<the workflow's queue>, role)``, behind the patch
:data:`QUEUES_PATCH` so that runs recorded before it (every activity on Q) replay unchanged. The
worker registers each activity on its role's queue with the same :func:`role_of`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from temporalio import activity, workflow
from temporalio.worker import (
    Interceptor,
    StartActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from lucy.contracts.queues import QueueRole, queue_name

with workflow.unsafe.imports_passed_through():
    from capabilities.tools.activities import registry

# Runs recorded before the split ran every activity on the workflow's own queue.
QUEUES_PATCH = "activity-queues-by-role"

# Every activity that is not a registered tool's, by name (a name missing here fails the worker
# at start: see app.worker).
ROLES: Mapping[str, QueueRole] = {
    "llm.chat": QueueRole.LLM,
    "context.prepare": QueueRole.TOOLS,
    "email.reply": QueueRole.TOOLS,
    "heartbeats.probe": QueueRole.TOOLS,
    "mcp.call_tool": QueueRole.TOOLS,
    "mcp.refresh": QueueRole.TOOLS,
    "slack.post_message": QueueRole.SLACK,
    "slack.update_message": QueueRole.SLACK,
    "slack.assistant_thread": QueueRole.SLACK,
    "skills.show_draft": QueueRole.SLACK,
    "approvals.request": QueueRole.SLACK,
    "approvals.settle": QueueRole.SLACK,
    "identity.verify": QueueRole.SLACK,
    "maintenance.reconcile_claims": QueueRole.SLACK,
    "patterns.scan": QueueRole.SLACK,
    "records.task_running": QueueRole.WORKFLOWS,
    "records.task_finished": QueueRole.WORKFLOWS,
    "records.steps": QueueRole.WORKFLOWS,
    "schedules.claim_run": QueueRole.WORKFLOWS,
    "schedules.run_finished": QueueRole.WORKFLOWS,
    "schedules.reconcile": QueueRole.WORKFLOWS,
    "heartbeats.claim": QueueRole.WORKFLOWS,
    "heartbeats.record": QueueRole.WORKFLOWS,
    "maintenance.partitions": QueueRole.WORKFLOWS,
    "memory.upkeep": QueueRole.WORKFLOWS,
    "skills.draft_source": QueueRole.WORKFLOWS,
}


def activity_name(fn: Callable[..., Any]) -> str:
    """The name an activity callable is registered under (``@activity.defn(name=...)``)."""
    return str(activity._Definition.must_from_callable(fn).name)


def tool_activities() -> frozenset[str]:
    """The activities' names of the registry's tools, read from ``registry.TOOLS`` when asked: a
    tool added there (one line) runs on the tools queue with nothing else changed."""
    return frozenset(activity_name(spec.activity) for spec in registry.TOOLS.values())


def role_of(name: str) -> QueueRole | None:
    """The role of the activity registered as ``name``; None for a name nobody declared."""
    if name in ROLES:
        return ROLES[name]
    return QueueRole.TOOLS if name in tool_activities() else None


class _Outbound(WorkflowOutboundInterceptor):
    route = True

    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        role = role_of(input.activity)
        routed = role is not None and role is not QueueRole.WORKFLOWS and input.task_queue is None
        # The marker is recorded whether or not this worker routes: a run's history is the same
        # either way, so workers that route and workers that do not can take turns on it.
        if role is not None and routed and workflow.patched(QUEUES_PATCH) and self.route:
            input.task_queue = queue_name(workflow.info().task_queue, role)
        return super().start_activity(input)


class _Unrouted(_Outbound):
    route = False


class _Inbound(WorkflowInboundInterceptor):
    outbound: type[_Outbound] = _Outbound

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(self.outbound(outbound))


class _InboundUnrouted(_Inbound):
    outbound = _Unrouted


class ActivityQueues(Interceptor):
    """Routes each activity to its role's queue (see the module's docstring). ``split=False``
    (``LUCY_WORKER_SPLIT_QUEUES=false``, one process serving everything) keeps every activity on
    the workflow's queue, where the SDK can hand it to the same worker at once (eager
    activities), and still records the patch marker."""

    def __init__(self, *, split: bool = True) -> None:
        self._split = split

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _Inbound if self._split else _InboundUnrouted
