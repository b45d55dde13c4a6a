"""USD budgets: set and read limits, reserve/settle/release a model call's estimate (one SQL
function each, migration 0010), ingress's cheap check, the sweep and the usage report."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lucy.db.models import Budget, BudgetReservation, BudgetSpend, User

WORKSPACE, USER_DEFAULT = "workspace", "user"


def user_scope(user_id: uuid.UUID) -> str:
    """The ``scope_key`` of one user's own budget."""
    return f"user:{user_id}"


@dataclass(frozen=True)
class BudgetDefaults:
    """Limits from settings, used where no ``budgets`` row says otherwise (None: no budget)."""

    workspace_monthly: Decimal | None = None
    user_monthly: Decimal | None = None
    user_daily: Decimal | None = None

    def params(self) -> dict[str, Decimal | None]:
        return {
            "ws_month": self.workspace_monthly,
            "user_month": self.user_monthly,
            "user_day": self.user_daily,
        }


@dataclass(frozen=True)
class BudgetVerdict:
    """What a reservation (or ingress's check) found. ``scope``: ``workspace``, ``user`` or
    ``unpriced`` when refused; ``period``: ``month`` or ``day``."""

    ok: bool
    applies: bool = False
    scope: str | None = None
    period: str | None = None
    limit_usd: Decimal | None = None
    spent_usd: Decimal | None = None
    max_tokens: int | None = None  # a reservation's: the answer tokens its hold covers
    amount_usd: Decimal | None = None  # a reservation's: what it holds


def _verdict(
    row: Any, *, ok: bool, applies: bool, max_tokens: int | None = None, amount_usd: Decimal | None = None
) -> BudgetVerdict:
    """A verdict from a row of ``lucy_budget_reserve`` or ``lucy_budget_blocked``: the budget
    it names (scope, period, limit, spent), and for a reservation what it holds."""
    return BudgetVerdict(
        ok=ok,
        applies=applies,
        scope=row.scope,
        period=row.period,
        limit_usd=row.limit_usd,
        spent_usd=row.spent_usd,
        max_tokens=max_tokens,
        amount_usd=amount_usd,
    )


@dataclass(frozen=True)
class Answer:
    """What a call's answer may cost: ``per_token_usd`` for each of up to ``max_tokens``
    tokens, at least ``min_tokens`` of them (fewer than the cap when the room left is short).
    The default is no answer part: the hold is the fixed amount alone."""

    per_token_usd: Decimal = Decimal(0)
    max_tokens: int = 0
    min_tokens: int = 0


_RESERVE = text(
    "SELECT * FROM lucy_budget_reserve(:ws, :key, :user_id, :amount, :per_token, :max_tokens, "
    ":min_tokens, :model, :now, :ttl, :ws_month, :user_month, :user_day)"
)
Executor = AsyncSession | AsyncConnection
_BLOCKED = text("SELECT * FROM lucy_budget_blocked(:user_id, :now, :ws_month, :user_month, :user_day)")


async def reserve(
    *,
    session: Executor,
    workspace_id: uuid.UUID,
    key: str,
    user_id: uuid.UUID | None,
    amount_usd: Decimal | None,
    model: str,
    now: datetime,
    ttl_seconds: int,
    defaults: BudgetDefaults,
    answer: Answer = Answer(),
) -> BudgetVerdict:
    """Hold ``amount_usd`` (the prompt's cost) plus as many of ``answer``'s tokens as the least
    room left pays for (up to its cap; refused under its floor) against every budget that
    applies, atomically (row locks in a fixed order); the verdict says the tokens and the hold.
    ``amount_usd`` None means the call cannot be priced, refused when a budget applies. The
    same ``key`` again holds nothing more and returns the first hold. The function scopes the
    transaction to ``workspace_id`` itself: one statement, and in an autocommit connection one
    round trip."""
    row = (
        await session.execute(
            _RESERVE,
            {
                "ws": workspace_id,
                "key": key,
                "user_id": user_id,
                "amount": amount_usd,
                "per_token": answer.per_token_usd,
                "max_tokens": answer.max_tokens,
                "min_tokens": answer.min_tokens,
                "model": model[:255],
                "now": now,
                "ttl": ttl_seconds,
                **defaults.params(),
            },
        )
    ).one()
    return _verdict(
        row, ok=bool(row.ok), applies=bool(row.applies), max_tokens=row.max_tokens, amount_usd=row.amount_usd
    )


async def settle(
    *, session: Executor, workspace_id: uuid.UUID, key: str, cost_usd: Decimal, now: datetime
) -> bool:
    """The hold becomes the call's actual cost, once. Returns False for a retried settle."""
    result = await session.execute(
        text("SELECT lucy_budget_settle(:ws, :key, :cost, :now)"),
        {"ws": workspace_id, "key": key, "cost": cost_usd, "now": now},
    )
    return bool(result.scalar_one())


async def release(*, session: Executor, workspace_id: uuid.UUID, key: str, now: datetime) -> bool:
    """A failed call gives its hold back, once."""
    result = await session.execute(
        text("SELECT lucy_budget_release(:ws, :key, :now)"), {"ws": workspace_id, "key": key, "now": now}
    )
    return bool(result.scalar_one())


async def blocked(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    user_id: uuid.UUID | None,
    now: datetime,
    defaults: BudgetDefaults,
) -> BudgetVerdict | None:
    """The budget that stops new work in this scope (used up, or a call was refused at its
    current limit), or None. A read: no lock, no write."""
    del workspace_id
    row = (await session.execute(_BLOCKED, {"user_id": user_id, "now": now, **defaults.params()})).one()
    if row.scope is None:
        return None
    return _verdict(row, ok=False, applies=True)


async def sweep(*, session: AsyncSession, now: datetime) -> int:
    """Give back every hold past its expiry, in every workspace (a worker died mid-call)."""
    return int((await session.execute(text("SELECT lucy_budget_sweep(:now)"), {"now": now})).scalar_one())


@dataclass(frozen=True)
class BudgetWarning:
    """A monthly scope past the warning share of its limit (returned once per month)."""

    workspace_id: uuid.UUID
    slack_team_id: str
    scope_key: str
    subject: str | None  # the Slack user of a user scope
    limit_usd: Decimal
    spent_usd: Decimal
    admins: list[str]


async def due_warnings(
    *, session: AsyncSession, now: datetime, defaults: BudgetDefaults, share: Decimal
) -> list[BudgetWarning]:
    """Every monthly scope, in every workspace, whose spend passed ``share`` of its limit and
    was not warned about this month; each is marked warned as it is returned (at most once)."""
    rows = await session.execute(
        text("SELECT * FROM lucy_budget_warnings(:now, :ws_month, :user_month, :share)"),
        {
            "now": now,
            "ws_month": defaults.workspace_monthly,
            "user_month": defaults.user_monthly,
            "share": share,
        },
    )
    return [
        BudgetWarning(
            r.workspace_id,
            r.slack_team_id,
            r.scope_key,
            r.subject,
            r.limit_usd,
            r.spent_usd,
            list(r.admins or []),
        )
        for r in rows
    ]


async def set_budget(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    scope_key: str,
    period: str,
    limit_usd: Decimal | None,
    updated_by: str | None,
) -> Decimal | None:
    """Set one limit (None: explicitly no budget, overriding a default). Returns the previous
    limit (None also when there was no row)."""
    previous = (
        await session.execute(
            select(Budget.limit_usd).where(
                Budget.workspace_id == workspace_id, Budget.scope_key == scope_key, Budget.period == period
            )
        )
    ).scalar_one_or_none()
    stmt = insert(Budget).values(
        workspace_id=workspace_id,
        scope_key=scope_key,
        period=period,
        limit_usd=limit_usd,
        updated_by=updated_by,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            constraint="pk_budgets",
            set_={"limit_usd": stmt.excluded.limit_usd, "updated_by": updated_by, "updated_at": func.now()},
        )
    )
    return previous


async def clear_budget(
    *, session: AsyncSession, workspace_id: uuid.UUID, scope_key: str, period: str
) -> None:
    """Remove one limit's row: the default from settings applies again."""
    await session.execute(
        delete(Budget).where(
            Budget.workspace_id == workspace_id, Budget.scope_key == scope_key, Budget.period == period
        )
    )


async def effective_limit(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    user_id: uuid.UUID | None,
    period: str,
    defaults: BudgetDefaults,
) -> Decimal | None:
    """The limit that applies (user_id None: the workspace's)."""
    default = (
        defaults.workspace_monthly
        if user_id is None
        else (defaults.user_monthly if period == "month" else defaults.user_daily)
    )
    result = await session.execute(
        text("SELECT lucy_budget_limit(:ws, :user_id, :period, :default)"),
        {"ws": workspace_id, "user_id": user_id, "period": period, "default": default},
    )
    value = result.scalar_one()
    return Decimal(value) if value is not None else None


@dataclass(frozen=True)
class UsageReport:
    """Month-to-date spend (settled) and holds, against the limits that apply."""

    month: date
    workspace_limit: Decimal | None
    workspace_spent: Decimal
    workspace_reserved: Decimal
    by_model: list[tuple[str, Decimal]] = field(default_factory=list)
    by_user: list[tuple[str, Decimal]] = field(default_factory=list)  # (Slack user id, USD)
    user_limits: dict[str, Decimal | None] = field(default_factory=dict)  # month/day for the asker


async def _workspace_spend(session: AsyncSession, workspace_id: uuid.UUID, month: date) -> Any:
    """The workspace's month row of settled and reserved spend, or None."""
    return (
        await session.execute(
            select(BudgetSpend.settled_usd, BudgetSpend.reserved_usd).where(
                BudgetSpend.workspace_id == workspace_id,
                BudgetSpend.scope_key == WORKSPACE,
                BudgetSpend.period == "month",
                BudgetSpend.period_start == month,
            )
        )
    ).one_or_none()


_COST = func.coalesce(func.sum(BudgetReservation.cost_usd), 0)


def _settled_in(workspace_id: uuid.UUID, month: date, only_user: uuid.UUID | None) -> list[Any]:
    """The conditions for the month's settled reservations (only ``only_user``'s when given)."""
    mine = [BudgetReservation.user_id == only_user] if only_user is not None else []
    return [
        BudgetReservation.workspace_id == workspace_id,
        BudgetReservation.month_start == month,
        BudgetReservation.status == "settled",
        *mine,
    ]


async def _spend_by_model(session: AsyncSession, settled: list[Any]) -> list[tuple[str, Decimal]]:
    rows = (
        await session.execute(
            select(func.coalesce(BudgetReservation.model, "?"), _COST)
            .where(*settled)
            .group_by(BudgetReservation.model)
            .order_by(_COST.desc())
        )
    ).all()
    return [(str(m), Decimal(c or 0)) for m, c in rows]


async def _spend_by_user(
    session: AsyncSession, workspace_id: uuid.UUID, settled: list[Any]
) -> list[tuple[str, Decimal]]:
    rows = (
        await session.execute(
            select(func.coalesce(User.slack_user_id, "?"), _COST)
            .select_from(BudgetReservation)
            .outerjoin(User, (User.id == BudgetReservation.user_id) & (User.workspace_id == workspace_id))
            .where(*settled)
            .group_by(User.slack_user_id)
            .order_by(_COST.desc())
        )
    ).all()
    return [(str(u), Decimal(c or 0)) for u, c in rows]


async def _user_limits(
    session: AsyncSession, workspace_id: uuid.UUID, user_id: uuid.UUID, defaults: BudgetDefaults
) -> dict[str, Decimal | None]:
    """The user's month and day limits."""
    limits: dict[str, Decimal | None] = {}
    for period in ("month", "day"):
        limits[period] = await effective_limit(
            session=session, workspace_id=workspace_id, user_id=user_id, period=period, defaults=defaults
        )
    return limits


async def usage_report(
    *,
    session: AsyncSession,
    workspace_id: uuid.UUID,
    month: date,
    defaults: BudgetDefaults,
    only_user: uuid.UUID | None = None,
) -> UsageReport:
    """This month's spend by model and by user (only ``only_user``'s when given), from the
    settled reservations, and the workspace's total against its budget."""
    month = month.replace(day=1)
    spend = await _workspace_spend(session, workspace_id, month)
    settled = _settled_in(workspace_id, month, only_user)
    by_model = await _spend_by_model(session, settled)
    by_user = await _spend_by_user(session, workspace_id, settled)
    user_limits = {} if only_user is None else await _user_limits(session, workspace_id, only_user, defaults)
    return UsageReport(
        month=month,
        workspace_limit=await effective_limit(
            session=session, workspace_id=workspace_id, user_id=None, period="month", defaults=defaults
        ),
        workspace_spent=spend.settled_usd if spend else Decimal(0),
        workspace_reserved=spend.reserved_usd if spend else Decimal(0),
        by_model=by_model,
        by_user=by_user,
        user_limits=user_limits,
    )
