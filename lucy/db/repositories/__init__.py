"""The shared repositories: what the kernel and several capabilities read and write. Functions
are keyword-only, take ``session=`` (and ``workspace_id=`` for tenant data), never commit: the
caller owns the transaction.

* :mod:`~lucy.db.repositories.tenants`: scoping a transaction to its workspace; workspaces (and
  their settings), users, channels, feature flags;
* :mod:`~lucy.db.repositories.ledger`: the cost log and the audit log;
* :mod:`~lucy.db.repositories.webhooks`: inbound webhook deliveries (email and triggers);
* :mod:`~lucy.db.repositories.credentials`: rotating the integrations' encrypted credentials.

A capability's own reads and writes live in its ``repository`` (for example
:mod:`capabilities.task.repository`, :mod:`capabilities.budgets.repository`). Import each name
from its module: this package re-exports nothing.

Tenant isolation is enforced twice: every query filters by ``workspace_id``, and PostgreSQL
row-level security filters by the transaction's tenant, which
:func:`~lucy.db.repositories.tenants.set_tenant` (or ``upsert_workspace``) sets. A session that
never set its tenant sees no tenant rows at all: isolation fails closed.

Every write is an upsert or a guarded update so that an activity retried after a crash, or a
Slack event delivered twice, converges on the same rows.
"""
