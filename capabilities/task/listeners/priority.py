"""A click that resumes a task puts it at the front of the queue.

A task waiting for Approve or Reject has the priority of its source: a scheduled run or a
webhook waits behind every Slack request. Once a person clicks, that person is waiting, so the
ingress raises the task's priority to ``PriorityKey.RESUMED`` (its workspace's fairness key
kept) before it delivers the click: the workflow task that applies the decision, and every
activity after it, go ahead of the backlog. Only the order changes; whether the click counts is
still the worker's and the workflow's decision, and a member who can click can ask Lucy
directly at ``INTERACTIVE`` anyway. A server without the API (or a finished task) is logged and
the click goes on.
"""

from __future__ import annotations

from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.common.v1 import Priority as PriorityProto
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflow.v1 import WorkflowExecutionOptions
from temporalio.api.workflowservice.v1 import UpdateWorkflowExecutionOptionsRequest
from temporalio.client import Client
from temporalio.service import RPCError

from lucy.contracts.priority import resumed_priority
from lucy.logging import get_logger

log = get_logger(__name__)


async def resume_first(temporal: Client, *, workflow_id: str, team: str) -> bool:
    """Raise ``workflow_id``'s priority to ``RESUMED`` (fairness key: ``team``, the clicker's
    verified workspace, which the task belongs to); whether Temporal accepted it."""
    wanted = resumed_priority(team)
    request = UpdateWorkflowExecutionOptionsRequest(
        namespace=temporal.namespace,
        workflow_execution=WorkflowExecution(workflow_id=workflow_id),
        workflow_execution_options=WorkflowExecutionOptions(
            priority=PriorityProto(
                priority_key=wanted.priority_key or 0, fairness_key=wanted.fairness_key or ""
            )
        ),
        update_mask=FieldMask(paths=["priority"]),
        identity=temporal.identity,
    )
    try:
        await temporal.workflow_service.update_workflow_execution_options(request)
    except RPCError as exc:
        log.info("task priority not raised", workflow_id=workflow_id, error=exc.__class__.__name__)
        return False
    return True
