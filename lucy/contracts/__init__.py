"""Public contracts shared by ingress, workflows and activities, by topic.

Pure data: frozen dataclasses for every workflow/activity input and output (and the task
workflow's state, carried whole across continue-as-new), search attribute keys, names and
ids. Nothing here does I/O or reads the environment, so workflows may import it.

* :mod:`~lucy.contracts.ids`: names, queues, search attributes, workflow ids, statuses;
* :mod:`~lucy.contracts.task`: a task's input, context, state, status view and result;
* :mod:`~lucy.contracts.llm`, :mod:`~lucy.contracts.tools`: model calls and tool calls;
* :mod:`~lucy.contracts.approvals`: approvals, signed clicks and cancels, replies;
* :mod:`~lucy.contracts.slack`: messages to post and update;
* :mod:`~lucy.contracts.records`: the business record (steps, start, finish);
* :mod:`~lucy.contracts.errors`, :mod:`~lucy.contracts.maintenance`.
"""

from lucy.contracts.approvals import (
    Actor,
    ActorCheck,
    ApprovalDecision,
    ApprovalDecisionKind,
    ApprovalOutcome,
    ApprovalPosted,
    ApprovalRequest,
    ApprovalSettled,
    CancelRequest,
    ThreadReply,
)
from lucy.contracts.errors import (
    ErrorType,
)
from lucy.contracts.ids import (
    ACTIVE_TASK_STATUSES,
    APPROVE_ACTION_ID,
    CANCEL_ACTION_ID,
    DEFAULT_TASK_QUEUE,
    MAINTENANCE_SCHEDULE_ID,
    MAINTENANCE_WORKFLOW_NAME,
    QUERY_STATUS,
    REJECT_ACTION_ID,
    SA_CHANNEL,
    SA_INTENT,
    SA_SOURCE,
    SA_STATUS,
    SA_THREAD,
    SA_USER,
    SA_WORKSPACE,
    SEARCH_ATTRIBUTES,
    TASK_WORKFLOW_NAME,
    UPDATE_ADD_REPLY,
    UPDATE_CANCEL,
    UPDATE_DECIDE_APPROVAL,
    TaskSource,
    TaskStatus,
    approval_button_value,
    belongs_to_team,
    command_workflow_id,
    idempotency_key,
    task_workflow_id,
)
from lucy.contracts.llm import (
    ChatMessage,
    LlmProvider,
    LlmRequest,
    LlmResponse,
    ToolCall,
    ToolSpec,
    untrusted_message,
)
from lucy.contracts.maintenance import (
    MaintenanceInput,
    MaintenanceReport,
    PartitionsResult,
    ReconcileRequest,
    ReconcileResult,
)
from lucy.contracts.records import (
    StepBatch,
    StepRecord,
    TaskFinished,
    TaskStarted,
)
from lucy.contracts.slack import (
    PostMessageRequest,
    PostMessageResult,
    Progress,
    ProgressView,
    UpdateMessageRequest,
)
from lucy.contracts.task import (
    ApprovalView,
    PendingApproval,
    TaskContext,
    TaskContextRequest,
    TaskInput,
    TaskResult,
    TaskState,
    TaskView,
    Usage,
)
from lucy.contracts.tools import (
    TOOL_OUTPUT_LIMIT,
    ToolRequest,
    ToolResult,
    truncate_output,
)
from lucy.redact import REDACTED, redact_secrets

__all__ = [
    "ACTIVE_TASK_STATUSES",
    "APPROVE_ACTION_ID",
    "CANCEL_ACTION_ID",
    "DEFAULT_TASK_QUEUE",
    "MAINTENANCE_SCHEDULE_ID",
    "MAINTENANCE_WORKFLOW_NAME",
    "QUERY_STATUS",
    "REDACTED",
    "REJECT_ACTION_ID",
    "SA_CHANNEL",
    "SA_INTENT",
    "SA_SOURCE",
    "SA_STATUS",
    "SA_THREAD",
    "SA_USER",
    "SA_WORKSPACE",
    "SEARCH_ATTRIBUTES",
    "TASK_WORKFLOW_NAME",
    "TOOL_OUTPUT_LIMIT",
    "UPDATE_ADD_REPLY",
    "UPDATE_CANCEL",
    "UPDATE_DECIDE_APPROVAL",
    "Actor",
    "ActorCheck",
    "ApprovalDecision",
    "ApprovalDecisionKind",
    "ApprovalOutcome",
    "ApprovalPosted",
    "ApprovalRequest",
    "ApprovalSettled",
    "ApprovalView",
    "CancelRequest",
    "ChatMessage",
    "ErrorType",
    "LlmProvider",
    "LlmRequest",
    "LlmResponse",
    "MaintenanceInput",
    "MaintenanceReport",
    "PartitionsResult",
    "PendingApproval",
    "PostMessageRequest",
    "PostMessageResult",
    "Progress",
    "ProgressView",
    "ReconcileRequest",
    "ReconcileResult",
    "StepBatch",
    "StepRecord",
    "TaskContext",
    "TaskContextRequest",
    "TaskFinished",
    "TaskInput",
    "TaskResult",
    "TaskSource",
    "TaskStarted",
    "TaskState",
    "TaskStatus",
    "TaskView",
    "ThreadReply",
    "ToolCall",
    "ToolRequest",
    "ToolResult",
    "ToolSpec",
    "UpdateMessageRequest",
    "Usage",
    "approval_button_value",
    "belongs_to_team",
    "command_workflow_id",
    "idempotency_key",
    "redact_secrets",
    "task_workflow_id",
    "truncate_output",
    "untrusted_message",
]
