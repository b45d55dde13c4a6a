"""The LLM activity's budget guard: reserve a call's estimate before it (its ``max_tokens``
shrunk to the room left in the budgets), settle to its actual cost after it, release it when
the call failed. Each is one SQL function call, alone in an
autocommit statement (one round trip; migration 0010's functions scope it to the
workspace), keyed by the activity attempt
(``workflow id/run id/activity id/attempt``), so a retried database call never counts twice
and a crashed attempt's hold expires and is swept by maintenance."""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from capabilities.budgets import repository as budgets
from capabilities.budgets.repository import Answer
from capabilities.budgets.rules import (
    defaults_from,
    estimate_prompt_tokens,
    price_of,
    reported_cost,
    stopped_sentence,
)
from lucy.contracts.errors import ErrorType
from lucy.contracts.llm import LlmRequest
from lucy.metrics import BUDGET_REFUSALS
from lucy.settings import BudgetSettings, ModelPrice


@dataclass(frozen=True)
class Hold:
    """One reserved call: where, under which key, at what price."""

    workspace_id: uuid.UUID
    key: str
    amount_usd: Decimal
    price: ModelPrice | None  # None: priced by the provider's reported cost only
    estimate_price: ModelPrice  # what a call without reported cost and table entry settles at
    max_tokens: int  # the answer length the hold covers: the call's max_tokens


def attempt_key() -> str:
    """This activity attempt's reservation key (the same for a retried database call)."""
    info = activity.info()
    return f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}/{info.attempt}"


class BudgetGuard:
    """Reserve, settle and release a model call's cost against the budgets that apply."""

    def __init__(self, engine: AsyncEngine, settings: BudgetSettings) -> None:
        # The same pool; each statement is its own transaction.
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._settings = settings
        self._defaults = defaults_from(settings)

    @property
    def default_max_tokens(self) -> int:
        """The answer length a call without ``max_tokens`` is held for, and capped at."""
        return self._settings.budget_estimate_max_tokens

    def _estimate_price(self) -> ModelPrice:
        per = self._settings.budget_estimate_usd_per_mtok
        return ModelPrice(input=per, output=per)

    async def reserve(
        self, request: LlmRequest, *, model: str, reports_cost: bool, key: str | None = None
    ) -> Hold | None:
        """Hold the estimate (prompt tokens, estimated, plus the answer's ``max_tokens`` at the
        model's price), ``max_tokens`` being the request's (else the default) or fewer, what the
        least room left in the budgets pays for after the prompt. Raises ``BudgetExceeded`` when
        that is under ``LUCY_BUDGET_MIN_ANSWER_TOKENS``, ``BudgetUnpriced`` when a budget applies
        and the call cannot be priced (fail closed). None for a request with no workspace
        (nothing to hold against)."""
        if not request.workspace_id:
            return None
        workspace_id = uuid.UUID(request.workspace_id)
        user_id = uuid.UUID(request.user_id) if request.user_id else None
        price = self._settings.llm_prices.get(model)
        estimate = price or (self._estimate_price() if reports_cost else None)
        cap = request.max_tokens or self._settings.budget_estimate_max_tokens
        answer = Answer(max_tokens=cap, min_tokens=self._settings.budget_min_answer_tokens)
        prompt_usd: Decimal | None = None
        if estimate is not None:
            texts = [m.content for m in request.messages]
            if request.tools:
                texts.append(json.dumps([t.parameters for t in request.tools]))
            prompt_usd = price_of(estimate_prompt_tokens(texts), 0, estimate)
            answer = dataclasses.replace(answer, per_token_usd=price_of(0, 1, estimate))
        key = key or attempt_key()
        async with self._engine.connect() as conn:
            verdict = await budgets.reserve(
                session=conn,
                workspace_id=workspace_id,
                key=key,
                user_id=user_id,
                amount_usd=prompt_usd,
                model=model,
                now=datetime.now(UTC),
                ttl_seconds=self._settings.budget_reservation_ttl_seconds,
                defaults=self._defaults,
                answer=answer,
            )
        if not verdict.ok:
            unpriced = verdict.scope == "unpriced"
            BUDGET_REFUSALS.labels("unpriced" if unpriced else "exceeded").inc()
            raise ApplicationError(
                stopped_sentence(verdict, model=model),
                {"scope": verdict.scope or "", "period": verdict.period or ""},
                type=ErrorType.BUDGET_UNPRICED if unpriced else ErrorType.BUDGET_EXCEEDED,
                non_retryable=True,
            )
        return Hold(
            workspace_id,
            key,
            verdict.amount_usd or Decimal(0),
            price,
            self._estimate_price(),
            verdict.max_tokens or cap,
        )

    def actual_cost(
        self, hold: Hold, *, reported: float | None, prompt_tokens: int, completion_tokens: int
    ) -> Decimal:
        """The provider's reported cost; else tokens at the table's price; else (a provider
        that reports cost but did not this time) tokens at the estimate price: never $0."""
        if reported is not None:
            return Decimal(str(reported))
        return price_of(prompt_tokens, completion_tokens, hold.price or hold.estimate_price)

    def failed_cost(self, hold: Hold, usage: dict[str, Any]) -> Decimal:
        """What a call that failed after reaching the provider is counted at: the usage the
        provider reported (its cost, else its tokens), else the hold's estimate."""
        reported = reported_cost(usage)
        prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        if reported is None and not (prompt or completion):
            return hold.amount_usd
        return self.actual_cost(hold, reported=reported, prompt_tokens=prompt, completion_tokens=completion)

    async def settle(self, hold: Hold, cost_usd: Decimal) -> bool:
        async with self._engine.connect() as conn:
            return await budgets.settle(
                session=conn,
                workspace_id=hold.workspace_id,
                key=hold.key,
                cost_usd=cost_usd.quantize(Decimal("0.000001")),
                now=datetime.now(UTC),
            )

    async def release(self, hold: Hold) -> bool:
        async with self._engine.connect() as conn:
            return await budgets.release(
                session=conn, workspace_id=hold.workspace_id, key=hold.key, now=datetime.now(UTC)
            )
