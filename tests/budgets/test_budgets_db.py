"""USD budgets in PostgreSQL (migrations 0010, 0014), as the application role: reservations that
cannot overspend under concurrency, answer tokens shrunk to the room left, retries that never count twice, holds of crashed calls
swept, unpriced calls refused under a budget, ingress's check and an admin raising a limit."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from capabilities.budgets import repository as budgets
from capabilities.budgets.repository import (
    Answer,
    BudgetDefaults,
    BudgetVerdict,
    release,
    set_budget,
    sweep,
    user_scope,
)
from lucy.db.models import BudgetSpend
from lucy.db.repositories.tenants import set_tenant, upsert_user, upsert_workspace
from lucy.db.session import create_sessionmaker
from tests.conftest import new_team
from tests.fixtures.clock import FROZEN

NOW = FROZEN  # calendar semantics (a month, a day): a fixed instant, never today
NONE = BudgetDefaults()


@asynccontextmanager
async def tenant(engine: AsyncEngine, workspace_id: uuid.UUID) -> AsyncIterator[AsyncSession]:
    async with create_sessionmaker(engine).begin() as session:
        await set_tenant(session=session, workspace_id=workspace_id)
        yield session


async def new_workspace(engine: AsyncEngine) -> uuid.UUID:
    async with create_sessionmaker(engine).begin() as session:
        return await upsert_workspace(session=session, slack_team_id=new_team())


async def new_user(engine: AsyncEngine, ws: uuid.UUID) -> uuid.UUID:
    async with tenant(engine, ws) as s:
        return await upsert_user(session=s, workspace_id=ws, slack_user_id=f"U{uuid.uuid4().hex[:8]}")


async def set_limit(
    engine: AsyncEngine, ws: uuid.UUID, limit: str | None, scope: str = "workspace", period: str = "month"
) -> None:
    async with tenant(engine, ws) as s:
        await set_budget(
            session=s,
            workspace_id=ws,
            scope_key=scope,
            period=period,
            limit_usd=Decimal(limit) if limit is not None else None,
            updated_by="UADMIN",
        )


async def reserve(
    engine: AsyncEngine,
    ws: uuid.UUID,
    key: str,
    amount: str | None,
    *,
    user: uuid.UUID | None = None,
    now=NOW,
    ttl: int = 600,
    defaults: BudgetDefaults = NONE,
) -> BudgetVerdict:
    async with tenant(engine, ws) as s:
        return await budgets.reserve(
            session=s,
            workspace_id=ws,
            key=key,
            user_id=user,
            amount_usd=Decimal(amount) if amount is not None else None,
            model="m/one",
            now=now,
            ttl_seconds=ttl,
            defaults=defaults,
        )


async def settle(engine: AsyncEngine, ws: uuid.UUID, key: str, cost: Decimal, now=NOW) -> bool:
    async with tenant(engine, ws) as s:
        return await budgets.settle(session=s, workspace_id=ws, key=key, cost_usd=cost, now=now)


async def spend(engine: AsyncEngine, ws: uuid.UUID, scope: str = "workspace", period: str = "month"):
    async with tenant(engine, ws) as s:
        return (
            await s.execute(
                select(BudgetSpend.settled_usd, BudgetSpend.reserved_usd).where(
                    BudgetSpend.workspace_id == ws,
                    BudgetSpend.scope_key == scope,
                    BudgetSpend.period == period,
                )
            )
        ).one()


async def test_twenty_racing_calls_against_room_for_five_never_overspend(engine: AsyncEngine):
    ws = await new_workspace(engine)
    await set_limit(engine, ws, "1.00")  # room for five calls of $0.20
    rng = random.Random(15)

    async def call(n: int) -> tuple[bool, Decimal, Decimal]:
        key = f"wf-{n}/run/1/1"
        verdict = await reserve(engine, ws, key, "0.20")
        if not verdict.ok:
            return False, Decimal(0), Decimal(0)
        await asyncio.sleep(rng.random() / 50)  # the model call
        cost = Decimal("0.20") * Decimal(str(rng.choice((0.5, 0.9, 1.0, 1.3))))  # some cost more
        assert await settle(engine, ws, key, cost)
        return True, cost, max(cost - Decimal("0.20"), Decimal(0))

    results = await asyncio.gather(*(call(n) for n in range(20)))
    admitted = [r for r in results if r[0]]
    settled, reserved = await spend(engine, ws)
    overshoot = sum((r[2] for r in admitted), Decimal(0))
    print(f"\nadmitted {len(admitted)} of 20; settled ${settled} against $1.00; overshoot ${overshoot}")
    assert reserved == 0
    assert settled == sum((r[1] for r in admitted), Decimal(0))
    assert settled <= Decimal("1.00") + overshoot
    assert 5 <= len(admitted) < 20  # cheaper calls give room back; never all twenty


async def test_racing_calls_get_the_answer_tokens_the_room_left_pays_for(engine: AsyncEngine):
    ws = await new_workspace(engine)
    await set_limit(engine, ws, "1.00")
    # A $0.01 prompt and up to 2,000 answer tokens at $0.0001: $0.21 a call, at least 100 tokens.
    answer = Answer(per_token_usd=Decimal("0.0001"), max_tokens=2_000, min_tokens=100)

    async def call(key: str) -> BudgetVerdict:
        async with tenant(engine, ws) as s:
            return await budgets.reserve(
                session=s,
                workspace_id=ws,
                key=key,
                user_id=None,
                amount_usd=Decimal("0.01"),
                model="m/one",
                now=NOW,
                ttl_seconds=600,
                defaults=NONE,
                answer=answer,
            )

    held = await asyncio.gather(*(call(f"k{n}") for n in range(20)))
    admitted = [v for v in held if v.ok]
    # Four full calls ($0.84), then one with the $0.16 left: its prompt and 1,500 tokens.
    assert sorted(v.max_tokens for v in admitted) == [1_500, 2_000, 2_000, 2_000, 2_000]
    assert [v.amount_usd for v in admitted if v.max_tokens == 1_500] == [Decimal("0.16")]
    assert await spend(engine, ws) == (Decimal(0), Decimal("1.00"))
    assert all(v.scope == "workspace" and v.max_tokens is None for v in held if not v.ok)
    # A retried reserve gets the first attempt's tokens and hold, and holds nothing more.
    last = next(n for n, v in enumerate(held) if v.max_tokens == 1_500)
    again = await call(f"k{last}")
    assert (again.ok, again.max_tokens, again.amount_usd) == (True, 1_500, Decimal("0.16"))
    assert await spend(engine, ws) == (Decimal(0), Decimal("1.00"))


async def test_exactly_five_fit_when_every_call_costs_its_reservation(engine: AsyncEngine):
    ws = await new_workspace(engine)
    await set_limit(engine, ws, "1.00")
    held = await asyncio.gather(*(reserve(engine, ws, f"k{n}", "0.20") for n in range(20)))
    assert sum(v.ok for v in held) == 5
    refused = next(v for v in held if not v.ok)
    assert (refused.scope, refused.period, refused.limit_usd) == ("workspace", "month", Decimal("1.0000"))
    assert await spend(engine, ws) == (Decimal(0), Decimal("1.00"))


async def test_a_retried_reserve_or_settle_counts_once(engine: AsyncEngine):
    ws = await new_workspace(engine)
    user = await new_user(engine, ws)
    await set_limit(engine, ws, "10")
    for _ in range(3):
        assert (await reserve(engine, ws, "same", "1.50", user=user)).ok
    assert await spend(engine, ws) == (Decimal(0), Decimal("1.50"))
    assert await spend(engine, ws, user_scope(user)) == (Decimal(0), Decimal("1.50"))
    assert await settle(engine, ws, "same", Decimal("1.25"))
    assert not await settle(engine, ws, "same", Decimal("1.25"))
    assert await spend(engine, ws) == (Decimal("1.25"), Decimal(0))
    assert await spend(engine, ws, user_scope(user), "day") == (Decimal("1.25"), Decimal(0))
    async with tenant(engine, ws) as s:  # releasing a settled call gives nothing back
        assert not await release(session=s, workspace_id=ws, key="same", now=NOW)
    assert await spend(engine, ws) == (Decimal("1.25"), Decimal(0))


async def test_a_failed_call_releases_its_hold(engine: AsyncEngine):
    ws = await new_workspace(engine)
    await set_limit(engine, ws, "1")
    assert (await reserve(engine, ws, "a", "0.80")).ok
    assert not (await reserve(engine, ws, "b", "0.80")).ok
    async with tenant(engine, ws) as s:
        assert await release(session=s, workspace_id=ws, key="a", now=NOW)
        assert not await release(session=s, workspace_id=ws, key="a", now=NOW)
    assert (await reserve(engine, ws, "b", "0.80")).ok


async def test_a_crashed_calls_hold_is_swept_after_its_expiry(engine: AsyncEngine):
    ws = await new_workspace(engine)
    await set_limit(engine, ws, "1")
    assert (await reserve(engine, ws, "crashed", "0.90", ttl=60)).ok
    async with create_sessionmaker(engine).begin() as s:
        # The sweep is global: holds other tests left may expire here; this one must not.
        await sweep(session=s, now=NOW + timedelta(seconds=59))
    assert not (await reserve(engine, ws, "next", "0.90")).ok  # the crashed call's hold still stands
    async with create_sessionmaker(engine).begin() as s:
        assert await sweep(session=s, now=NOW + timedelta(seconds=61)) >= 1
    assert await spend(engine, ws) == (Decimal(0), Decimal(0))
    # The crashed call's late settle still counts what was spent, and nothing is given back twice.
    assert await settle(engine, ws, "crashed", Decimal("0.30"))
    assert await spend(engine, ws) == (Decimal("0.30"), Decimal(0))


async def test_an_unpriced_call_is_refused_only_where_a_budget_applies(engine: AsyncEngine):
    ws = await new_workspace(engine)
    assert (await reserve(engine, ws, "free", None)).ok  # no budget: runs, counted at its cost later
    verdict = await reserve(
        engine, ws, "priced?", None, defaults=BudgetDefaults(workspace_monthly=Decimal(5))
    )
    assert (verdict.ok, verdict.scope) == (False, "unpriced")
    await set_limit(engine, ws, None)  # the admin said "off": the default no longer applies
    assert (await reserve(engine, ws, "off", None, defaults=BudgetDefaults(workspace_monthly=Decimal(5)))).ok


async def test_user_budgets_default_then_override_and_ingress_check(engine: AsyncEngine):
    ws = await new_workspace(engine)
    alice, bob = await new_user(engine, ws), await new_user(engine, ws)
    defaults = BudgetDefaults(user_daily=Decimal("0.50"))
    assert (await reserve(engine, ws, "a1", "0.40", user=alice, defaults=defaults)).ok
    refused = await reserve(engine, ws, "a2", "0.40", user=alice, defaults=defaults)
    assert (refused.ok, refused.scope, refused.period) == (False, "user", "day")
    assert (await reserve(engine, ws, "b1", "0.40", user=bob, defaults=defaults)).ok  # Bob's own day

    async def blocked(user: uuid.UUID):
        async with tenant(engine, ws) as s:
            return await budgets.blocked(session=s, workspace_id=ws, user_id=user, now=NOW, defaults=defaults)

    assert (await blocked(alice)).scope == "user"  # refused at this limit: ingress refuses too
    assert await blocked(bob) is None
    await set_limit(engine, ws, "2", scope=user_scope(alice), period="day")  # an admin raises hers
    assert await blocked(alice) is None
    assert (await reserve(engine, ws, "a2", "0.40", user=alice, defaults=defaults)).ok
    # The next day starts afresh (the month does not: it has no limit here).
    tomorrow = NOW + timedelta(days=1)
    assert (await reserve(engine, ws, "b2", "0.40", user=bob, now=tomorrow, defaults=defaults)).ok


async def test_one_tenant_never_sees_or_spends_anothers_budget(engine: AsyncEngine):
    ws1, ws2 = await new_workspace(engine), await new_workspace(engine)
    await set_limit(engine, ws1, "1")
    assert (await reserve(engine, ws1, "x", "0.60")).ok
    async with tenant(engine, ws2) as s:
        rows = (await s.execute(text("SELECT count(*) FROM budget_spend"))).scalar_one()
        assert rows == 0  # row-level security
        verdict = await budgets.reserve(
            session=s,
            workspace_id=ws2,
            key="x",
            user_id=None,
            amount_usd=Decimal("0.60"),
            model="m",
            now=NOW,
            ttl_seconds=600,
            defaults=NONE,
        )
    assert verdict.ok and not verdict.applies
    assert await spend(engine, ws1) == (Decimal(0), Decimal("0.60"))


async def test_a_budget_call_for_another_tenant_than_the_transactions_is_refused(engine: AsyncEngine):
    ws1, ws2 = await new_workspace(engine), await new_workspace(engine)
    with pytest.raises(DBAPIError, match="another tenant"):
        async with tenant(engine, ws1) as s:
            await budgets.reserve(
                session=s,
                workspace_id=ws2,
                key="sneaky",
                user_id=None,
                amount_usd=Decimal(1),
                model="m",
                now=NOW,
                ttl_seconds=600,
                defaults=NONE,
            )
