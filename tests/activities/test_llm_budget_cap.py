"""``llm.chat``'s ``max_tokens`` follows the room left in every budget that applies (the real
database, the fake OpenRouter server recording each request body): the caller's or default cap
with ample room, fewer tokens when a budget is nearly used up, never more than two racing calls
can pay for together, refused before any request when not even a short answer fits. The hold
is the cost of exactly the ``max_tokens`` sent."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from decimal import ROUND_CEILING, Decimal

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.exceptions import ApplicationError

from capabilities.budgets.repository import set_budget, user_scope
from capabilities.budgets.rules import MILLION, estimate_prompt_tokens
from lucy.contracts.errors import ErrorType
from lucy.db.repositories.tenants import set_tenant
from lucy.db.session import create_sessionmaker
from lucy.settings import Settings
from tests.activities.test_llm_budget import _env, _llm, _request, _rows, _workspace
from tests.fakes.llm import FakeLlm

PER_MTOK = 10  # LUCY_BUDGET_ESTIMATE_USD_PER_MTOK in these tests: input and output alike
PER_TOKEN = Decimal(PER_MTOK) / MILLION
DEFAULT_CAP = 4_096


def _prompt_cost(request_text: str) -> Decimal:
    return estimate_prompt_tokens([request_text]) * PER_TOKEN


def _hold_for(prompt_cost: Decimal, max_tokens: int) -> Decimal:
    """The worst case of a call: its prompt plus ``max_tokens``, rounded up to the column's cents."""
    return (prompt_cost + max_tokens * PER_TOKEN).quantize(Decimal("0.000001"), rounding=ROUND_CEILING)


async def _user_daily(engine: AsyncEngine, ws: uuid.UUID, user: uuid.UUID, limit: str) -> None:
    async with create_sessionmaker(engine).begin() as s:
        await set_tenant(session=s, workspace_id=ws)
        await set_budget(
            session=s,
            workspace_id=ws,
            scope_key=user_scope(user),
            period="day",
            limit_usd=Decimal(limit),
            updated_by="U0ADMIN",
        )


async def test_max_tokens_shrinks_to_the_room_left_and_the_hold_is_its_cost(
    settings: Settings, engine: AsyncEngine, fake_llm: FakeLlm
):
    ws, user = await _workspace(engine, "5")  # the workspace has room; the user's day does not
    await _user_daily(engine, ws, user, "0.0100")
    request = dataclasses.replace(_request(ws, user), max_tokens=None)
    prompt = _prompt_cost(request.messages[0].content)
    room_tokens = int((Decimal("0.0100") - prompt) / PER_TOKEN)  # ~924: far below the default cap
    fake_llm.then(cost=0.001).then(cost=0.001)
    async with httpx.AsyncClient() as http:
        llm = _llm(settings, engine, http, fake_llm, budget_estimate_usd_per_mtok=PER_MTOK)
        await _env().run(llm.chat, request)
        sent = fake_llm.requests[0]["max_tokens"]
        assert 256 <= sent <= room_tokens < DEFAULT_CAP
        held, _ = await _rows(engine, ws)
        assert [h.amount_usd for h in held] == [_hold_for(prompt, sent)]
        assert held[0].amount_usd <= Decimal("0.0100")

        await _user_daily(engine, ws, user, "5")  # an admin raises it: ample room again
        await _env().run(llm.chat, request)
    assert fake_llm.requests[1]["max_tokens"] == DEFAULT_CAP
    held, _ = await _rows(engine, ws)
    assert sorted(h.amount_usd for h in held) == [_hold_for(prompt, sent), _hold_for(prompt, DEFAULT_CAP)]


async def test_two_racing_calls_never_get_more_tokens_than_the_room_pays_for(
    settings: Settings, engine: AsyncEngine, fake_llm: FakeLlm
):
    ws, user = await _workspace(engine, "5")
    limit = Decimal("0.0315")  # the two prompts, plus ~3,000 answer tokens: not two of 2,000
    await _user_daily(engine, ws, user, str(limit))
    request = dataclasses.replace(_request(ws, user), max_tokens=2_000)
    prompt = _prompt_cost(request.messages[0].content)
    fake_llm.then(delay=1.0, cost=0.001).then(delay=1.0, cost=0.001)  # both held at once
    async with httpx.AsyncClient() as http:
        llm = _llm(settings, engine, http, fake_llm, budget_estimate_usd_per_mtok=PER_MTOK)
        results = await asyncio.gather(
            _env().run(llm.chat, request), _env().run(llm.chat, request), return_exceptions=True
        )
    assert [r for r in results if isinstance(r, BaseException)] == []  # both answered...
    caps = sorted(r["max_tokens"] for r in fake_llm.requests)
    assert caps[1] == 2_000 and 256 <= caps[0] < 2_000  # ...the second with what was left
    assert sum(_hold_for(prompt, c) for c in caps) <= limit
    held, _ = await _rows(engine, ws)
    assert sorted(h.amount_usd for h in held) == [_hold_for(prompt, c) for c in caps]


async def test_no_room_for_a_short_answer_refuses_before_any_request(
    settings: Settings, engine: AsyncEngine, fake_llm: FakeLlm
):
    ws, user = await _workspace(engine, "5")
    await _user_daily(engine, ws, user, "0.0020")  # the prompt, plus ~120 tokens: under the floor
    async with httpx.AsyncClient() as http:
        llm = _llm(settings, engine, http, fake_llm, budget_estimate_usd_per_mtok=PER_MTOK)
        with pytest.raises(ApplicationError) as err:
            await _env().run(llm.chat, dataclasses.replace(_request(ws, user), max_tokens=None))
    assert err.value.type == ErrorType.BUDGET_EXCEEDED and err.value.non_retryable
    assert "your daily Lucy budget of $0.0020 is used up" in err.value.message
    assert fake_llm.requests == []
    held, _ = await _rows(engine, ws)
    assert held == []
