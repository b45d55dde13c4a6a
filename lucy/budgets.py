"""Budgets in words and numbers, shared by the LLM activity, ingress and Slack views: the
defaults from settings, a call's estimate and actual price, and the plain sentence that says
which budget stopped work and who can raise it."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

from lucy.db.repositories.budgets import BudgetDefaults, BudgetVerdict
from lucy.settings import BudgetSettings, ModelPrice

MILLION = Decimal(1_000_000)
CHARS_PER_TOKEN = 4  # a deliberately generous estimate of prompt tokens from text length


def defaults_from(settings: BudgetSettings) -> BudgetDefaults:
    return BudgetDefaults(
        workspace_monthly=settings.budget_workspace_monthly_usd,
        user_monthly=settings.budget_user_monthly_usd,
        user_daily=settings.budget_user_daily_usd,
    )


def usd(value: Decimal | float | None) -> str:
    """``$12.30`` (cents; a fraction of a cent shows as ``$0.0012``)."""
    if value is None:
        return "no budget"
    amount = Decimal(str(value))
    if amount != 0 and abs(amount) < Decimal("0.01"):
        return f"${amount.quantize(Decimal('0.0001'), rounding=ROUND_HALF_UP)}"
    return f"${amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


def estimate_prompt_tokens(texts: Iterable[str]) -> int:
    return sum(len(t) for t in texts) // CHARS_PER_TOKEN + 1


def price_of(prompt_tokens: int, completion_tokens: int, price: ModelPrice) -> Decimal:
    """Tokens at a per-million price, in USD."""
    return (
        Decimal(prompt_tokens) * Decimal(str(price.input))
        + Decimal(completion_tokens) * Decimal(str(price.output))
    ) / MILLION


def stopped_sentence(verdict: BudgetVerdict, *, model: str | None = None) -> str:
    """Which budget stopped work, and who can raise it: the same words in the thread, at
    ingress and in the LLM activity's error."""
    if verdict.scope == "unpriced":
        return (
            f"a budget applies here and I can't price calls to the model {model or '(unknown)'}: "
            "it reports no cost and has no entry in LUCY_LLM_PRICES. Rather than spend money "
            "nobody counts, I stopped. An operator can add its price; a workspace admin can "
            "turn the budget off with `/lucy budget off`."
        )
    period = "daily" if verdict.period == "day" else "monthly"
    spent = usd(verdict.spent_usd)
    if verdict.scope == "user":
        return (
            f"your {period} Lucy budget of {usd(verdict.limit_usd)} is used up ({spent} spent "
            f"or in use). A workspace admin can raise it with `/lucy budget user @you {period} <USD>`."
        )
    return (
        f"this workspace's monthly Lucy budget of {usd(verdict.limit_usd)} is used up ({spent} "
        "spent or in use). A workspace admin can raise it with `/lucy budget <USD>`."
    )
