"""A DEFAULT partition under every time-series table, drained into months by maintenance.

Before this revision a write to ``cost_log``, ``audit_log`` or ``webhook_deliveries`` failed
("no partition of relation ... found for row") whenever its month had no partition yet: a
worker that was down across a month boundary, a maintenance schedule that had not run, or a
row stamped with a workflow timestamp from a month that was never created. The activity
treated that as a permanent database rejection and the task lost its record.

Now every table has ``<table>_default``, which takes any row whose month has no partition,
so such a write can never fail. Maintenance (``lucy db partitions``, the ``lucy-maintenance``
schedule) drains it: ``lucy_drain_default_partition(parent)`` detaches the default, creates
the months its rows belong to, moves the rows into them unchanged (same id, same
``created_at``, so idempotency keys still collide with a retry) and attaches the default
again, all in one transaction. Rows are moved straight into the month partitions, so the
statement-level ``cost_monthly`` trigger on the parent does not count them twice, and
``audit_log`` rows are never updated or deleted: the detached default loses its cloned
append-only trigger until it is attached again, empty, at the end of the same transaction.

``lucy_ensure_month_partition`` now drains first when the default already holds rows of the
month it is asked to create (PostgreSQL refuses to create that month otherwise), and its
bounds are UTC midnights whatever the session's time zone.

Row-level security on the default partitions is enabled but not forced: the application role
never reaches partitions directly (it has no grant on them; it goes through the parent, whose
policy is forced), and the schema owner must see every row there to drain and count them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTITIONED = ("cost_log", "audit_log", "webhook_deliveries")
POLICY = (
    "CREATE POLICY tenant_isolation ON {t}_default USING (workspace_id = lucy_current_workspace()) "
    "WITH CHECK (workspace_id = lucy_current_workspace())"
)

ENSURE_MONTH = r"""
CREATE OR REPLACE FUNCTION lucy_ensure_month_partition(parent text, month date) RETURNS text
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    start_at date := date_trunc('month', month)::date;
    name text := format('%s_%s', parent, to_char(start_at, 'YYYY_MM'));
    low timestamptz := start_at::timestamp AT TIME ZONE 'UTC';
    high timestamptz := (start_at + interval '1 month')::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN name;
    END IF;
    BEGIN
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', name, parent, low, high);
    EXCEPTION WHEN check_violation THEN
        -- The default partition holds rows of this month: move them (this creates the month).
        PERFORM lucy_drain_default_partition(parent);
        RETURN name;
    END;
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', name);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', name);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %I USING (workspace_id = lucy_current_workspace()) '
        'WITH CHECK (workspace_id = lucy_current_workspace())', name
    );
    RETURN name;
END $$
"""

DRAIN = r"""
CREATE FUNCTION lucy_drain_default_partition(parent text) RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    dflt text := parent || '_default';
    waiting boolean;
    month date;
    part text;
    n bigint;
    moved bigint := 0;
BEGIN
    IF to_regclass(dflt) IS NULL THEN
        RETURN 0;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', dflt) INTO waiting;
    IF NOT waiting THEN
        RETURN 0;
    END IF;
    -- Detached, the default no longer claims any range, so its months can be created.
    EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', parent, dflt);
    FOR month IN EXECUTE format(
        'SELECT DISTINCT date_trunc(''month'', created_at AT TIME ZONE ''UTC'')::date FROM %I ORDER BY 1', dflt
    ) LOOP
        part := lucy_ensure_month_partition(parent, month);
        -- The owner is subject to the month's forced policy; lift it for this move only
        -- (the lock taken here is held, and the change undone, before anyone else looks).
        EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', part);
        EXECUTE format(
            'INSERT INTO %I SELECT * FROM %I WHERE created_at >= %L AND created_at < %L',
            part, dflt,
            month::timestamp AT TIME ZONE 'UTC',
            (month + interval '1 month')::timestamp AT TIME ZONE 'UTC'
        );
        GET DIAGNOSTICS n = ROW_COUNT;
        moved := moved + n;
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', part);
    END LOOP;
    EXECUTE format('TRUNCATE %I', dflt);
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I DEFAULT', parent, dflt);
    RETURN moved;
END $$
"""

ENSURE_MONTH_0002 = r"""
CREATE OR REPLACE FUNCTION lucy_ensure_month_partition(parent text, month date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    start_at date := date_trunc('month', month)::date;
    name text := format('%s_%s', parent, to_char(start_at, 'YYYY_MM'));
BEGIN
    IF to_regclass(name) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
            name, parent, start_at::timestamptz, (start_at + interval '1 month')::timestamptz
        );
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', name);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', name);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (workspace_id = lucy_current_workspace()) '
            'WITH CHECK (workspace_id = lucy_current_workspace())', name
        );
    END IF;
    RETURN name;
END $$
"""


def upgrade() -> None:
    op.execute(DRAIN)
    op.execute(ENSURE_MONTH)
    for t in PARTITIONED:
        op.execute(f"CREATE TABLE {t}_default PARTITION OF {t} DEFAULT")
        op.execute(f"ALTER TABLE {t}_default ENABLE ROW LEVEL SECURITY")
        op.execute(POLICY.format(t=t))
    op.execute("REVOKE EXECUTE ON FUNCTION lucy_drain_default_partition(text) FROM PUBLIC")
    op.execute("REVOKE EXECUTE ON FUNCTION lucy_ensure_month_partition(text, date) FROM PUBLIC")


def downgrade() -> None:
    # Nothing is lost: rows waiting in a default partition move to their months first.
    for t in PARTITIONED:
        op.execute(f"SELECT lucy_drain_default_partition('{t}')")
        op.execute(f"DROP TABLE {t}_default")
    op.execute(ENSURE_MONTH_0002)
    op.execute("DROP FUNCTION lucy_drain_default_partition(text)")
