"""``llm.chat`` under budgets, for real (ActivityEnvironment, the fake OpenRouter server, the real
database): reserve before, settle to the reported cost or the price table after, release on
failure, refuse without calling when a budget has no room, and fail closed when a budget
applies and the call cannot be priced."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from capabilities.budgets.activities import BudgetGuard
from capabilities.budgets.repository import set_budget
from capabilities.task.activities.llm import LlmActivities
from lucy.contracts.errors import ErrorType
from lucy.contracts.llm import ChatMessage, LlmProvider, LlmRequest
from lucy.db.models import BudgetReservation, BudgetSpend
from lucy.db.repositories.tenants import set_tenant, upsert_user, upsert_workspace
from lucy.db.session import create_sessionmaker
from lucy.settings import Settings, load_settings
from tests.conftest import eventually, new_team
from tests.fakes.llm import FakeLlm


async def _workspace(engine: AsyncEngine, limit: str | None) -> tuple[uuid.UUID, uuid.UUID]:
    async with create_sessionmaker(engine).begin() as s:
        ws = await upsert_workspace(session=s, slack_team_id=new_team())
        user = await upsert_user(session=s, workspace_id=ws, slack_user_id="U0ALICE")
        if limit is not None:
            await set_budget(
                session=s,
                workspace_id=ws,
                scope_key="workspace",
                period="month",
                limit_usd=Decimal(limit),
                updated_by="U0ADMIN",
            )
    return ws, user


async def _rows(engine: AsyncEngine, ws: uuid.UUID) -> tuple[list[Any], tuple[Decimal, Decimal]]:
    async with create_sessionmaker(engine).begin() as s:
        await set_tenant(session=s, workspace_id=ws)
        held = (
            (await s.execute(select(BudgetReservation).where(BudgetReservation.workspace_id == ws)))
            .scalars()
            .all()
        )
        spend = (
            await s.execute(
                select(BudgetSpend.settled_usd, BudgetSpend.reserved_usd).where(
                    BudgetSpend.workspace_id == ws, BudgetSpend.scope_key == "workspace"
                )
            )
        ).one_or_none()
    return list(held), (spend[0], spend[1]) if spend else (Decimal(0), Decimal(0))


def _llm(
    settings: Settings, engine: AsyncEngine, http: httpx.AsyncClient, fake_llm: FakeLlm, **budget: Any
) -> LlmActivities:
    settings = load_settings(
        openrouter_api_key=fake_llm.api_key,
        openrouter_base_url=fake_llm.base_url,
        llm_fallback_base_url=fake_llm.base_url,
        llm_fallback_api_key=fake_llm.api_key,
        llm_fallback_model="other/unlisted",
        **budget,
    )
    return LlmActivities(http, settings.llm, BudgetGuard(engine, settings.budget))


def _request(ws: uuid.UUID, user: uuid.UUID, **kw: Any) -> LlmRequest:
    return LlmRequest(
        messages=[ChatMessage(role="user", content="hello " * 50)],
        max_tokens=100,
        workspace_id=str(ws),
        user_id=str(user),
        **kw,
    )


def _env(n: int = 1) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=f"wf-{uuid.uuid4().hex[:8]}", attempt=n)
    return env


async def test_a_call_is_reserved_then_settled_to_the_reported_cost(
    settings: Settings, engine: AsyncEngine, fake_llm: FakeLlm
):
    ws, user = await _workspace(engine, "5")
    fake_llm.then(cost=0.0123, prompt_tokens=80, completion_tokens=20)
    async with httpx.AsyncClient() as http:
        answer = await _env().run(_llm(settings, engine, http, fake_llm).chat, _request(ws, user))
    assert answer.cost_usd == pytest.approx(0.0123)
    held, spend = await _rows(engine, ws)
    assert [(h.status, h.cost_usd) for h in held] == [("settled", Decimal("0.012300"))]
    assert held[0].amount_usd > 0  # the estimate: ~75 prompt tokens + 100 at the estimate price
    assert spend == (Decimal("0.012300"), Decimal(0))


async def test_no_room_means_no_call(settings: Settings, engine: AsyncEngine, fake_llm: FakeLlm):
    ws, user = await _workspace(engine, "0.001")
    async with httpx.AsyncClient() as http:
        with pytest.raises(ApplicationError) as err:
            await _env().run(_llm(settings, engine, http, fake_llm).chat, _request(ws, user))
    assert err.value.type == ErrorType.BUDGET_EXCEEDED and err.value.non_retryable
    assert "monthly Lucy budget of $0.0010 is used up" in err.value.message
    assert "/lucy budget" in err.value.message
    assert fake_llm.requests == []


async def test_an_unpriced_provider_under_a_budget_fails_closed(
    settings: Settings, engine: AsyncEngine, fake_llm: FakeLlm
):
    ws, user = await _workspace(engine, "5")
    async with httpx.AsyncClient() as http:
        with pytest.raises(ApplicationError) as err:
            await _env().run(
                _llm(settings, engine, http, fake_llm).chat,
                _request(ws, user, provider=LlmProvider.FALLBACK.value),
            )
    assert err.value.type == ErrorType.BUDGET_UNPRICED
    assert "other/unlisted" in err.value.message and "LUCY_LLM_PRICES" in err.value.message
    assert fake_llm.requests == []  # never a silent $0
    held, spend = await _rows(engine, ws)
    assert held == [] and spend == (Decimal(0), Decimal(0))


async def test_the_price_table_prices_a_provider_without_cost(
    settings: Settings, engine: AsyncEngine, fake_llm: FakeLlm
):
    ws, user = await _workspace(engine, "5")
    fake_llm.then(cost=None, prompt_tokens=1_000, completion_tokens=500)  # a provider reporting no cost
    prices = {"other/unlisted": {"input": 2.0, "output": 8.0}}
    async with httpx.AsyncClient() as http:
        answer = await _env().run(
            _llm(settings, engine, http, fake_llm, llm_prices=prices).chat,
            _request(ws, user, provider=LlmProvider.FALLBACK.value),
        )
    expected = Decimal("0.006")  # 1,000 x $2/M + 500 x $8/M
    assert answer.cost_usd == pytest.approx(float(expected))
    _, spend = await _rows(engine, ws)
    assert spend == (expected, Decimal(0))


async def test_openrouter_without_a_reported_cost_is_never_counted_as_zero(
    settings: Settings, engine: AsyncEngine, fake_llm: FakeLlm
):
    ws, user = await _workspace(engine, "5")
    fake_llm.then(cost=None, prompt_tokens=1_000, completion_tokens=1_000)
    async with httpx.AsyncClient() as http:
        await _env().run(
            _llm(settings, engine, http, fake_llm, budget_estimate_usd_per_mtok=10).chat, _request(ws, user)
        )
    _, spend = await _rows(engine, ws)
    assert spend == (Decimal("0.02"), Decimal(0))  # 2,000 tokens at the estimate price


async def test_a_failed_call_releases_and_a_retry_holds_anew(
    settings: Settings, engine: AsyncEngine, fake_llm: FakeLlm
):
    ws, user = await _workspace(engine, "5")
    fake_llm.then(status=500).then(cost=0.002)
    async with httpx.AsyncClient() as http:
        llm = _llm(settings, engine, http, fake_llm)
        env = _env(1)
        with pytest.raises(ApplicationError) as err:
            await env.run(llm.chat, _request(ws, user))
        assert err.value.type == ErrorType.LLM_RETRYABLE
        held, spend = await _rows(engine, ws)
        assert [h.status for h in held] == ["released"] and spend == (Decimal(0), Decimal(0))
        retry = ActivityEnvironment()
        retry.info = dataclasses.replace(env.info, attempt=2)  # Temporal's retry of the same activity
        await retry.run(llm.chat, _request(ws, user))
    held, spend = await _rows(engine, ws)
    assert sorted(h.status for h in held) == ["released", "settled"]
    assert spend == (Decimal("0.002"), Decimal(0))


async def test_a_call_cancelled_while_the_provider_answers_is_settled_at_its_estimate(
    settings: Settings, engine: AsyncEngine, fake_llm: FakeLlm
):
    ws, user = await _workspace(engine, "5")
    fake_llm.then(delay=30, cost=0.002)
    async with httpx.AsyncClient() as http:
        env = _env()
        call = asyncio.create_task(env.run(_llm(settings, engine, http, fake_llm).chat, _request(ws, user)))
        await eventually(lambda: fake_llm.requests, "the request at the provider")
        env.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    held, spend = await _rows(engine, ws)
    assert [h.status for h in held] == ["settled"] and held[0].cost_usd == held[0].amount_usd > 0
    assert spend == (held[0].amount_usd, Decimal(0))


async def test_a_call_the_provider_never_took_is_released(
    settings: Settings, engine: AsyncEngine, fake_llm: FakeLlm
):
    ws, user = await _workspace(engine, "5")
    async with httpx.AsyncClient() as http:
        llm = LlmActivities(
            http,
            load_settings(
                openrouter_api_key=fake_llm.api_key, openrouter_base_url="http://127.0.0.1:9/v1"
            ).llm,
            BudgetGuard(engine, settings.budget),
        )
        with pytest.raises(ApplicationError):
            await _env().run(llm.chat, _request(ws, user))
    held, spend = await _rows(engine, ws)
    assert [h.status for h in held] == ["released"] and spend == (Decimal(0), Decimal(0))


async def test_every_call_carries_max_tokens_and_is_held_for_it(
    settings: Settings, engine: AsyncEngine, fake_llm: FakeLlm
):
    ws, user = await _workspace(engine, "5")
    fake_llm.then(cost=0.001).then(cost=0.001)
    async with httpx.AsyncClient() as http:
        llm = _llm(settings, engine, http, fake_llm, budget_estimate_max_tokens=321)
        await _env().run(llm.chat, dataclasses.replace(_request(ws, user), max_tokens=None))
        await _env().run(llm.chat, _request(ws, user))
    assert [r["max_tokens"] for r in fake_llm.requests] == [321, 100]
    held, _ = await _rows(engine, ws)
    assert sorted(h.amount_usd for h in held)[1] > sorted(h.amount_usd for h in held)[0]


async def test_a_request_without_a_workspace_is_not_held(
    settings: Settings, engine: AsyncEngine, fake_llm: FakeLlm
):
    async with httpx.AsyncClient() as http:
        answer = await _env().run(
            _llm(settings, engine, http, fake_llm).chat,
            LlmRequest(messages=[ChatMessage(role="user", content="hi")]),
        )
    assert answer.content == "You asked: hi"
