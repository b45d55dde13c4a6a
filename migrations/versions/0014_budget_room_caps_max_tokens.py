"""A model call's ``max_tokens`` comes from the room left in its budgets.

``lucy_budget_reserve`` now takes the call's estimate in two parts, the prompt's cost and the
price of one answer token, with the caller's cap and a floor of answer tokens. Under the same
row locks as before (workspace's month, user's month, user's day) it finds the least room left
among the budgets that apply, gives the call ``min(cap, floor((room - prompt) / price))``
answer tokens, refuses it (as before: scope, period, limit, spent; ``refused_at_limit``) when
that is under the floor, and holds exactly prompt + tokens x price (rounded up to the column's
precision, never past the room). It returns the tokens and the hold, so the call sends the same
``max_tokens`` its hold covers; two racing calls can never both take the same room. A retried
reserve (same key) returns the first attempt's tokens and hold: ``budget_reservations`` gains
``max_tokens``. A call with a fixed amount (price 0, cap 0) is held as before.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

import importlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_0010 = importlib.import_module("migrations.versions.0010_budgets")
APP_ROLE = _0010.APP_ROLE
OLD = "lucy_budget_reserve(uuid, text, uuid, numeric, text, timestamptz, integer, numeric, numeric, numeric)"
NEW = (
    "lucy_budget_reserve(uuid, text, uuid, numeric, numeric, integer, integer, text, timestamptz, integer, "
    "numeric, numeric, numeric)"
)

RESERVE = f"""
CREATE FUNCTION lucy_budget_reserve(
    p_ws uuid, p_key text, p_user uuid, p_amount numeric, p_per_token numeric, p_max_tokens integer,
    p_min_tokens integer, p_model text, p_now timestamptz, p_ttl_seconds integer,
    p_ws_month numeric, p_user_month numeric, p_user_day numeric,
    OUT ok boolean, OUT applies boolean, OUT scope text, OUT period text,
    OUT limit_usd numeric, OUT spent_usd numeric, OUT max_tokens integer, OUT amount_usd numeric
) LANGUAGE plpgsql VOLATILE SECURITY INVOKER {_0010.SEARCH_PATH} AS $$
#variable_conflict use_column
DECLARE
{_0010.DECLARE_SCOPES.replace("public.lucy_current_workspace()", "p_ws")}
    v_used numeric[] := ARRAY[]::numeric[];
    v_one numeric;
    v_tight int;  -- the budget with the least room left
    v_room numeric;
    v_tokens bigint;
BEGIN
{_0010.SCOPE_TO}
    IF (p_amount IS NOT NULL AND p_amount < 0) OR p_per_token < 0 OR p_max_tokens < 0 OR p_min_tokens < 0 THEN
        RAISE EXCEPTION 'lucy_budget_reserve: negative amount';
    END IF;
{_0010.SCOPES}
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
        p_per_token := 0;
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
        IF v_limits[i] IS NOT NULL AND (v_room IS NULL OR v_limits[i] - v_one < v_room) THEN
            v_room := v_limits[i] - v_one;
            v_tight := i;
        END IF;
    END LOOP;
    SELECT r.max_tokens, r.amount_usd INTO max_tokens, amount_usd FROM public.budget_reservations r
     WHERE r.workspace_id = v_ws AND r.reservation_key = p_key;
    IF FOUND THEN  -- a retried reserve: held once, for what the first attempt was given
        max_tokens := coalesce(max_tokens, p_max_tokens);
        RETURN;
    END IF;
    max_tokens := p_max_tokens;
    -- The answer tokens the least room left pays for after the prompt, up to the cap.
    IF v_room IS NOT NULL AND p_per_token > 0 THEN
        v_tokens := floor(GREATEST(v_room - p_amount, 0) / p_per_token);
        max_tokens := LEAST(p_max_tokens::bigint, v_tokens);
    END IF;
    -- Rounded up to the column's precision; the room is on that grid, so never past it.
    amount_usd := ceil((p_amount + max_tokens * p_per_token) * 1000000) / 1000000;
    IF v_room IS NOT NULL AND (max_tokens < LEAST(p_min_tokens, p_max_tokens) OR amount_usd > v_room) THEN
        ok := false;
        scope := split_part(v_keys[v_tight], ':', 1);
        period := v_periods[v_tight];
        limit_usd := v_limits[v_tight];
        spent_usd := v_used[v_tight];
        max_tokens := NULL;
        amount_usd := NULL;
        UPDATE public.budget_spend s SET refused_at_limit = v_limits[v_tight], updated_at = p_now
         WHERE s.workspace_id = v_ws AND s.scope_key = v_keys[v_tight] AND s.period = v_periods[v_tight]
           AND s.period_start = v_starts[v_tight];
        RETURN;
    END IF;
    PERFORM public.lucy_budget_apply(v_ws, p_user, v_month, v_day, amount_usd, 0, p_now);
    INSERT INTO public.budget_reservations
        (workspace_id, reservation_key, user_id, month_start, day_start, amount_usd, max_tokens, model,
         status, created_at, expires_at)
    VALUES (v_ws, p_key, p_user, v_month, v_day, amount_usd, max_tokens, p_model, 'held',
            p_now, p_now + make_interval(secs => p_ttl_seconds));
END $$
"""


def upgrade() -> None:
    op.add_column("budget_reservations", sa.Column("max_tokens", sa.Integer()))
    op.execute(f"DROP FUNCTION {OLD}")
    op.execute(RESERVE)
    op.execute(f"REVOKE EXECUTE ON FUNCTION {NEW} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {NEW} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {NEW}")
    op.execute(_0010.FUNCTIONS[OLD])
    op.execute(f"REVOKE EXECUTE ON FUNCTION {OLD} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {OLD} TO {APP_ROLE}")
    op.drop_column("budget_reservations", "max_tokens")
