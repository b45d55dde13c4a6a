"""Repository functions. Keyword-only, take ``session=`` (and ``workspace_id=`` for tenant
data), never commit: the caller owns the transaction.

Tenant isolation is enforced twice: every query here filters by ``workspace_id``, and
PostgreSQL row-level security filters by the transaction's tenant, which
:func:`set_tenant` (or :func:`upsert_workspace`) sets. A session that never set its tenant
sees no tenant rows at all: isolation fails closed.

Every write is an upsert or a guarded update so that an activity retried after a crash, or a
Slack event delivered twice, converges on the same rows.
"""

from lucy.db.repositories import budgets, webhooks
from lucy.db.repositories.approvals import (
    close_approval,
    create_approval,
    decide_approval,
    get_approval,
    list_pending_approvals,
    set_approval_message,
)
from lucy.db.repositories.credentials import rotate_credentials
from lucy.db.repositories.ledger import CostRollup, monthly_cost, record_audit, record_cost
from lucy.db.repositories.tasks import (
    TERMINAL_STATUSES,
    IngressClaim,
    get_task,
    ingress_claim,
    latest_thread_task,
    list_user_tasks,
    record_step,
    record_task_finished,
    record_task_running,
)
from lucy.db.repositories.tenants import (
    WorkspaceRemoved,
    get_channel,
    get_user,
    get_workspace,
    is_feature_enabled,
    list_workspace_ids,
    set_tenant,
    upsert_channel,
    upsert_user,
    upsert_workspace,
)

__all__ = [
    "TERMINAL_STATUSES",
    "CostRollup",
    "IngressClaim",
    "WorkspaceRemoved",
    "budgets",
    "close_approval",
    "create_approval",
    "decide_approval",
    "get_approval",
    "get_channel",
    "get_task",
    "get_user",
    "get_workspace",
    "ingress_claim",
    "is_feature_enabled",
    "latest_thread_task",
    "list_pending_approvals",
    "list_user_tasks",
    "list_workspace_ids",
    "monthly_cost",
    "record_audit",
    "record_cost",
    "record_step",
    "record_task_finished",
    "record_task_running",
    "rotate_credentials",
    "set_approval_message",
    "set_tenant",
    "upsert_channel",
    "upsert_user",
    "upsert_workspace",
    "webhooks",
]
