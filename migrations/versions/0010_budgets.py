"""USD budgets: limits, spend per period, reservations of model calls in flight.

1. ``budgets``: an admin's limits (the workspace's monthly budget, the default per-user daily
   and monthly budgets, per-user overrides); ``limit_usd`` NULL is an explicit "no budget".
2. ``budget_spend``: settled and reserved USD per (scope, period, period start): the rows a
   reservation locks. ``budget_reservations``: one row per model-call attempt.
   All three are tenant tables with forced row-level security, like the others.
3. Functions (SECURITY INVOKER: row-level security applies; reserve, settle and release scope
   their transaction to the workspace they are given, so each is one round trip):
   ``lucy_budget_reserve`` checks every budget that applies and holds the estimate in one
   call, locking the period rows in a fixed order (workspace, user's month, user's day), so
   two reservations never both take the last room and never deadlock; a retried reserve with
   the same key counts once. ``lucy_budget_settle`` / ``lucy_budget_release`` turn a hold
   into spend or give it back, once. ``lucy_budget_blocked`` is ingress's cheap check.
4. ``lucy_budget_sweep(now)`` (SECURITY DEFINER, every tenant): holds past their expiry (a
   worker died mid-call) are released. ``lucy_budget_warnings(...)`` (SECURITY DEFINER, every
   tenant): monthly scopes past a share of their limit, each returned once per month
   (``budget_spend.warned_at``) with the workspace's admins, for the 80% notice. Both run in
   maintenance.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "lucy_app_rw"
SEARCH_PATH = "SET search_path = pg_catalog, public, pg_temp"
TABLES = ("budgets", "budget_spend", "budget_reservations")

# The scopes one call is held against, in lock order (the same in every function).
SCOPES = """
    v_keys := ARRAY['workspace'];
    v_periods := ARRAY['month'];
    v_starts := ARRAY[v_month];
    v_limits := ARRAY[public.lucy_budget_limit(v_ws, NULL, 'month', p_ws_month)];
    IF p_user IS NOT NULL THEN
        v_keys := v_keys || ('user:' || p_user::text) || ('user:' || p_user::text);
        v_periods := v_periods || 'month'::text || 'day'::text;
        v_starts := v_starts || v_month || v_day;
        v_limits := v_limits || public.lucy_budget_limit(v_ws, p_user, 'month', p_user_month)
                             || public.lucy_budget_limit(v_ws, p_user, 'day', p_user_day);
    END IF;
"""

DECLARE_SCOPES = """
    v_ws uuid := public.lucy_current_workspace();
    v_month date := date_trunc('month', p_now AT TIME ZONE 'UTC')::date;
    v_day date := (p_now AT TIME ZONE 'UTC')::date;
    v_keys text[];
    v_periods text[];
    v_starts date[];
    v_limits numeric[];
    i int;
"""

# reserve/settle/release scope their own (implicit) transaction to p_ws, as lucy_ingress_claim
# does, so the worker calls each in one round trip; a transaction scoped to another tenant is
# refused.
SCOPE_TO = """
    IF coalesce(current_setting('lucy.workspace_id', true), '') NOT IN ('', p_ws::text) THEN
        RAISE EXCEPTION 'budget call for another tenant than the transaction''s';
    END IF;
    PERFORM set_config('lucy.workspace_id', p_ws::text, true);
"""

FUNCTIONS: dict[str, str] = {
    "lucy_budget_limit(uuid, uuid, text, numeric)": f"""
CREATE FUNCTION lucy_budget_limit(p_ws uuid, p_user uuid, p_period text, p_default numeric)
RETURNS numeric LANGUAGE plpgsql STABLE SECURITY INVOKER {SEARCH_PATH} AS $$
DECLARE
    v numeric;
BEGIN
    -- The most specific row wins (a NULL limit in it means "no budget"), then the default.
    IF p_user IS NOT NULL THEN
        SELECT b.limit_usd INTO v FROM public.budgets b
         WHERE b.workspace_id = p_ws AND b.scope_key = 'user:' || p_user::text AND b.period = p_period;
        IF FOUND THEN RETURN v; END IF;
    END IF;
    SELECT b.limit_usd INTO v FROM public.budgets b
     WHERE b.workspace_id = p_ws AND b.period = p_period
       AND b.scope_key = CASE WHEN p_user IS NULL THEN 'workspace' ELSE 'user' END;
    IF FOUND THEN RETURN v; END IF;
    RETURN p_default;
END $$
""",
    "lucy_budget_apply(uuid, uuid, date, date, numeric, numeric, timestamptz)": f"""
CREATE FUNCTION lucy_budget_apply(
    p_ws uuid, p_user uuid, p_month date, p_day date, p_reserved numeric, p_settled numeric, p_now timestamptz
) RETURNS void LANGUAGE plpgsql VOLATILE SECURITY INVOKER {SEARCH_PATH} AS $$
BEGIN
    -- Same lock order as lucy_budget_reserve: the workspace's month, the user's month, day.
    UPDATE public.budget_spend s
       SET reserved_usd = GREATEST(s.reserved_usd + p_reserved, 0),
           settled_usd = s.settled_usd + p_settled, updated_at = p_now
     WHERE s.workspace_id = p_ws AND s.scope_key = 'workspace' AND s.period = 'month'
       AND s.period_start = p_month;
    IF p_user IS NOT NULL THEN
        UPDATE public.budget_spend s
           SET reserved_usd = GREATEST(s.reserved_usd + p_reserved, 0),
               settled_usd = s.settled_usd + p_settled, updated_at = p_now
         WHERE s.workspace_id = p_ws AND s.scope_key = 'user:' || p_user::text
           AND ((s.period = 'month' AND s.period_start = p_month)
             OR (s.period = 'day' AND s.period_start = p_day));
    END IF;
END $$
""",
    "lucy_budget_reserve(uuid, text, uuid, numeric, text, timestamptz, integer, numeric, numeric, numeric)": f"""
CREATE FUNCTION lucy_budget_reserve(
    p_ws uuid, p_key text, p_user uuid, p_amount numeric, p_model text, p_now timestamptz, p_ttl_seconds integer,
    p_ws_month numeric, p_user_month numeric, p_user_day numeric,
    OUT ok boolean, OUT applies boolean, OUT scope text, OUT period text,
    OUT limit_usd numeric, OUT spent_usd numeric
) LANGUAGE plpgsql VOLATILE SECURITY INVOKER {SEARCH_PATH} AS $$
#variable_conflict use_column
DECLARE
{DECLARE_SCOPES.replace("public.lucy_current_workspace()", "p_ws")}
    v_used numeric[] := ARRAY[]::numeric[];
    v_one numeric;
BEGIN
{SCOPE_TO}
    IF p_amount IS NOT NULL AND p_amount < 0 THEN
        RAISE EXCEPTION 'lucy_budget_reserve: negative amount';
    END IF;
{SCOPES}
    applies := false;
    FOR i IN 1 .. array_length(v_keys, 1) LOOP
        applies := applies OR v_limits[i] IS NOT NULL;
    END LOOP;
    ok := true;
    IF p_amount IS NULL THEN  -- the call cannot be priced: refused when any budget applies
        IF applies THEN
            ok := false;
            scope := 'unpriced';
            RETURN;
        END IF;
        p_amount := 0;
    END IF;
    -- Lock every period row first, in order; then decide.
    FOR i IN 1 .. array_length(v_keys, 1) LOOP
        INSERT INTO public.budget_spend (workspace_id, scope_key, period, period_start, updated_at)
        VALUES (v_ws, v_keys[i], v_periods[i], v_starts[i], p_now)
        ON CONFLICT ON CONSTRAINT pk_budget_spend DO NOTHING;
        SELECT s.settled_usd + s.reserved_usd INTO v_one FROM public.budget_spend s
         WHERE s.workspace_id = v_ws AND s.scope_key = v_keys[i] AND s.period = v_periods[i]
           AND s.period_start = v_starts[i]
           FOR UPDATE;
        v_used := v_used || v_one;
    END LOOP;
    PERFORM 1 FROM public.budget_reservations r WHERE r.workspace_id = v_ws AND r.reservation_key = p_key;
    IF FOUND THEN  -- a retried reserve: held once
        RETURN;
    END IF;
    FOR i IN 1 .. array_length(v_keys, 1) LOOP
        IF v_limits[i] IS NOT NULL AND v_used[i] + p_amount > v_limits[i] THEN
            ok := false;
            scope := split_part(v_keys[i], ':', 1);
            period := v_periods[i];
            limit_usd := v_limits[i];
            spent_usd := v_used[i];
            UPDATE public.budget_spend s SET refused_at_limit = v_limits[i], updated_at = p_now
             WHERE s.workspace_id = v_ws AND s.scope_key = v_keys[i] AND s.period = v_periods[i]
               AND s.period_start = v_starts[i];
            RETURN;
        END IF;
    END LOOP;
    PERFORM public.lucy_budget_apply(v_ws, p_user, v_month, v_day, p_amount, 0, p_now);
    INSERT INTO public.budget_reservations
        (workspace_id, reservation_key, user_id, month_start, day_start, amount_usd, model, status,
         created_at, expires_at)
    VALUES (v_ws, p_key, p_user, v_month, v_day, p_amount, p_model, 'held',
            p_now, p_now + make_interval(secs => p_ttl_seconds));
END $$
""",
    "lucy_budget_settle(uuid, text, numeric, timestamptz)": f"""
CREATE FUNCTION lucy_budget_settle(p_ws uuid, p_key text, p_cost numeric, p_now timestamptz)
RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY INVOKER {SEARCH_PATH} AS $$
DECLARE
    v_ws uuid := p_ws;
    r public.budget_reservations%ROWTYPE;
BEGIN
{SCOPE_TO}
    SELECT * INTO r FROM public.budget_reservations x
     WHERE x.workspace_id = v_ws AND x.reservation_key = p_key FOR UPDATE;
    IF NOT FOUND OR r.status = 'settled' THEN  -- nothing held, or a retried settle
        RETURN false;
    END IF;
    UPDATE public.budget_reservations x SET status = 'settled', cost_usd = p_cost, settled_at = p_now
     WHERE x.workspace_id = v_ws AND x.reservation_key = p_key;
    -- An expired hold was given back by the sweep already: only the spend is added.
    PERFORM public.lucy_budget_apply(
        v_ws, r.user_id, r.month_start, r.day_start,
        CASE WHEN r.status = 'held' THEN -r.amount_usd ELSE 0 END, p_cost, p_now);
    RETURN true;
END $$
""",
    "lucy_budget_release(uuid, text, timestamptz)": f"""
CREATE FUNCTION lucy_budget_release(p_ws uuid, p_key text, p_now timestamptz)
RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY INVOKER {SEARCH_PATH} AS $$
DECLARE
    v_ws uuid := p_ws;
    r public.budget_reservations%ROWTYPE;
BEGIN
{SCOPE_TO}
    UPDATE public.budget_reservations x SET status = 'released', settled_at = p_now
     WHERE x.workspace_id = v_ws AND x.reservation_key = p_key AND x.status = 'held'
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM public.lucy_budget_apply(v_ws, r.user_id, r.month_start, r.day_start, -r.amount_usd, 0, p_now);
    RETURN true;
END $$
""",
    "lucy_budget_blocked(uuid, timestamptz, numeric, numeric, numeric)": f"""
CREATE FUNCTION lucy_budget_blocked(
    p_user uuid, p_now timestamptz, p_ws_month numeric, p_user_month numeric, p_user_day numeric,
    OUT scope text, OUT period text, OUT limit_usd numeric, OUT spent_usd numeric
) LANGUAGE plpgsql STABLE SECURITY INVOKER {SEARCH_PATH} AS $$
#variable_conflict use_column
DECLARE
{DECLARE_SCOPES}
    v_used numeric;
    v_refused numeric;
BEGIN
    IF v_ws IS NULL THEN
        RETURN;
    END IF;
{SCOPES}
    FOR i IN 1 .. array_length(v_keys, 1) LOOP
        CONTINUE WHEN v_limits[i] IS NULL;
        SELECT s.settled_usd + s.reserved_usd, s.refused_at_limit INTO v_used, v_refused
          FROM public.budget_spend s
         WHERE s.workspace_id = v_ws AND s.scope_key = v_keys[i] AND s.period = v_periods[i]
           AND s.period_start = v_starts[i];
        -- Used up, or a call was refused at this very limit (an admin has not raised it since).
        IF coalesce(v_used, 0) >= v_limits[i] OR coalesce(v_refused, -1) >= v_limits[i] THEN
            scope := split_part(v_keys[i], ':', 1);
            period := v_periods[i];
            limit_usd := v_limits[i];
            spent_usd := coalesce(v_used, 0);
            RETURN;
        END IF;
    END LOOP;
END $$
""",
    "lucy_budget_warnings(timestamptz, numeric, numeric, numeric)": f"""
CREATE FUNCTION lucy_budget_warnings(p_now timestamptz, p_ws_month numeric, p_user_month numeric, p_share numeric)
RETURNS TABLE (workspace_id uuid, slack_team_id text, scope_key text, subject text,
               limit_usd numeric, spent_usd numeric, admins text[])
LANGUAGE plpgsql VOLATILE SECURITY DEFINER {SEARCH_PATH} AS $$
#variable_conflict use_column
DECLARE
    v_ws uuid;
    v_team text;
    v_prior text := current_setting('lucy.workspace_id', true);
    v_month date := date_trunc('month', p_now AT TIME ZONE 'UTC')::date;
    v_user uuid;
    v_limit numeric;
    r record;
BEGIN
    FOR v_ws, v_team IN SELECT w.id, w.slack_team_id FROM public.workspaces w
                         WHERE w.deleted_at IS NULL ORDER BY w.id LOOP
        PERFORM set_config('lucy.workspace_id', v_ws::text, true);
        FOR r IN SELECT s.scope_key AS key, s.settled_usd AS settled FROM public.budget_spend s
                  WHERE s.workspace_id = v_ws AND s.period = 'month' AND s.period_start = v_month
                    AND s.warned_at IS NULL
                  ORDER BY s.scope_key FOR UPDATE SKIP LOCKED LOOP
            v_user := CASE WHEN r.key LIKE 'user:%' THEN substr(r.key, 6)::uuid END;
            v_limit := public.lucy_budget_limit(
                v_ws, v_user, 'month', CASE WHEN v_user IS NULL THEN p_ws_month ELSE p_user_month END);
            CONTINUE WHEN v_limit IS NULL OR v_limit <= 0 OR r.settled < p_share * v_limit;
            UPDATE public.budget_spend s SET warned_at = p_now
             WHERE s.workspace_id = v_ws AND s.scope_key = r.key AND s.period = 'month'
               AND s.period_start = v_month;
            workspace_id := v_ws;
            slack_team_id := v_team;
            scope_key := r.key;
            subject := (SELECT u.slack_user_id FROM public.users u WHERE u.workspace_id = v_ws AND u.id = v_user);
            limit_usd := v_limit;
            spent_usd := r.settled;
            admins := ARRAY(SELECT u.slack_user_id FROM public.users u
                             WHERE u.workspace_id = v_ws AND u.role IN ('admin', 'owner')
                               AND u.deleted_at IS NULL AND NOT u.is_bot ORDER BY u.slack_user_id);
            RETURN NEXT;
        END LOOP;
    END LOOP;
    PERFORM set_config('lucy.workspace_id', coalesce(v_prior, ''), true);
END $$
""",
    "lucy_budget_sweep(timestamptz)": f"""
CREATE FUNCTION lucy_budget_sweep(p_now timestamptz)
RETURNS integer LANGUAGE plpgsql VOLATILE SECURITY DEFINER {SEARCH_PATH} AS $$
DECLARE
    v_ws uuid;
    v_prior text := current_setting('lucy.workspace_id', true);
    r public.budget_reservations%ROWTYPE;
    n integer := 0;
BEGIN
    -- Row-level security is forced on the budget tables, for the owner too: tenant by tenant.
    FOR v_ws IN SELECT w.id FROM public.workspaces w ORDER BY w.id LOOP
        PERFORM set_config('lucy.workspace_id', v_ws::text, true);
        FOR r IN SELECT * FROM public.budget_reservations x
                  WHERE x.workspace_id = v_ws AND x.status = 'held' AND x.expires_at < p_now
                  ORDER BY x.reservation_key FOR UPDATE SKIP LOCKED LOOP
            UPDATE public.budget_reservations x SET status = 'expired', settled_at = p_now
             WHERE x.workspace_id = v_ws AND x.reservation_key = r.reservation_key;
            PERFORM public.lucy_budget_apply(
                v_ws, r.user_id, r.month_start, r.day_start, -r.amount_usd, 0, p_now);
            n := n + 1;
        END LOOP;
    END LOOP;
    PERFORM set_config('lucy.workspace_id', coalesce(v_prior, ''), true);
    RETURN n;
END $$
""",
}


def _timestamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)]


def _workspace(table: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "workspace_id",
        sa.UUID(),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE", name=op.f(f"fk_{table}_workspace_id_workspaces")),
        nullable=False,
    )


def _period(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "period",
        sa.Enum("month", "day", name=name, native_enum=False, create_constraint=True, length=32),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "budgets",
        _workspace("budgets"),
        sa.Column("scope_key", sa.String(64), nullable=False),
        _period("budget_period"),
        sa.Column("limit_usd", sa.Numeric(12, 4)),
        sa.Column("updated_by", sa.String(64)),
        *_timestamps(),
        sa.PrimaryKeyConstraint("workspace_id", "scope_key", "period", name=op.f("pk_budgets")),
    )
    op.create_table(
        "budget_spend",
        _workspace("budget_spend"),
        sa.Column("scope_key", sa.String(64), nullable=False),
        _period("budget_spend_period"),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("settled_usd", sa.Numeric(14, 6), server_default="0", nullable=False),
        sa.Column("reserved_usd", sa.Numeric(14, 6), server_default="0", nullable=False),
        sa.Column("refused_at_limit", sa.Numeric(12, 4)),
        sa.Column("warned_at", sa.DateTime(timezone=True)),
        *_timestamps(),
        sa.PrimaryKeyConstraint(
            "workspace_id", "scope_key", "period", "period_start", name=op.f("pk_budget_spend")
        ),
    )
    op.create_table(
        "budget_reservations",
        _workspace("budget_reservations"),
        sa.Column("reservation_key", sa.Text(), nullable=False),
        sa.Column("user_id", sa.UUID()),
        sa.Column("month_start", sa.Date(), nullable=False),
        sa.Column("day_start", sa.Date(), nullable=False),
        sa.Column("amount_usd", sa.Numeric(14, 6), nullable=False),
        sa.Column("cost_usd", sa.Numeric(14, 6)),
        sa.Column("model", sa.String(255)),
        sa.Column(
            "status",
            sa.Enum(
                "held",
                "settled",
                "released",
                "expired",
                name="reservation_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="held",
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("workspace_id", "reservation_key", name=op.f("pk_budget_reservations")),
    )
    op.create_index(
        "ix_budget_reservations_held",
        "budget_reservations",
        ["expires_at"],
        postgresql_where=sa.text("status = 'held'"),
    )
    for t in TABLES:
        op.execute(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {t} USING (workspace_id = lucy_current_workspace()) "
            "WITH CHECK (workspace_id = lucy_current_workspace())"
        )
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {t} TO {APP_ROLE}")
    for signature, body in FUNCTIONS.items():
        op.execute(body)
        op.execute(f"REVOKE EXECUTE ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP_ROLE}")


def downgrade() -> None:
    for signature in reversed(FUNCTIONS):
        op.execute(f"DROP FUNCTION {signature}")
    for t in reversed(TABLES):
        op.drop_table(t)
