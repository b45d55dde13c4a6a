"""SQLAlchemy 2 models: the tenant store and the task record.

Every tenant table carries ``workspace_id``; every table has timezone-aware
``created_at`` / ``updated_at`` and a ``deleted_at`` for soft deletes. Enumerations are
stored as text with a CHECK constraint so that adding a value is a constraint swap in a
migration, not an ``ALTER TYPE``."""

from __future__ import annotations

from lucy.contracts.ids import ACTIVE_TASK_STATUSES
from lucy.db.models.base import PARTITIONED_TABLES, Base
from lucy.db.models.budgets import Budget, BudgetReservation, BudgetSpend
from lucy.db.models.feedback import TaskFeedback
from lucy.db.models.ledger import AuditLog, CostLog, CostMonthly, WebhookDelivery
from lucy.db.models.mcp import McpServer
from lucy.db.models.memory import MEMORY_SCOPES, Memory
from lucy.db.models.proactive import Integration, IntegrationCredential, Monitor, Pattern, Schedule
from lucy.db.models.skills import SkillVersion
from lucy.db.models.tasks import Approval, Task, TaskStep
from lucy.db.models.tenants import Agent, Channel, FeatureFlag, RateLimit, User, Workspace

# Tables with a workspace_id: row-level security applies to each of them.
TENANT_TABLES = tuple(
    t.name for t in Base.metadata.sorted_tables if "workspace_id" in t.c and t.name != "workspaces"
)

__all__ = [
    "ACTIVE_TASK_STATUSES",
    "MEMORY_SCOPES",
    "PARTITIONED_TABLES",
    "TENANT_TABLES",
    "Agent",
    "Approval",
    "AuditLog",
    "Base",
    "Budget",
    "BudgetReservation",
    "BudgetSpend",
    "Channel",
    "CostLog",
    "CostMonthly",
    "FeatureFlag",
    "Integration",
    "IntegrationCredential",
    "McpServer",
    "Memory",
    "Monitor",
    "Pattern",
    "RateLimit",
    "Schedule",
    "SkillVersion",
    "Task",
    "TaskFeedback",
    "TaskStep",
    "User",
    "WebhookDelivery",
    "Workspace",
]
