"""Budgets in words and numbers, shared by the LLM activity, ingress and Slack views: the
defaults from settings, a call's estimate and actual price, and the plain sentence that says
which budget stopped work and who can raise it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from capabilities.budgets.repository import BudgetDefaults, BudgetVerdict
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


def reported_cost(usage: dict[str, Any]) -> float | None:
    """The cost a provider reported in a completion's ``usage`` (OpenRouter's ``cost``), or None."""
    cost = usage.get("cost")
    return float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0 else None


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


# ---------------------------------------------------------------------- /lucy budget ...

MAX_BUDGET_USD = Decimal(1_000_000)
BUDGET_USAGE = (
    "Usage (workspace admins): `/lucy budget <USD>` or `/lucy budget off` (the workspace's monthly "
    "budget); `/lucy budget user daily|monthly <USD>|off` (every user's default); "
    "`/lucy budget user @someone daily|monthly <USD>|off` (one person); `default` instead of an "
    "amount goes back to the deployment's setting. `/lucy budget` alone shows the budgets."
)


class BudgetInputError(ValueError):
    """Input a person typed that is not a budget; the message says what is expected."""


@dataclass(frozen=True)
class BudgetChange:
    """What ``/lucy budget ...`` asks for. ``user``: a Slack user id (one person), ``"*"`` (the
    default for every user) or None (the workspace). ``action``: ``set``, ``off`` or ``default``."""

    user: str | None
    period: str
    action: str
    amount: Decimal | None = None


_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")


def parse_amount(word: str) -> Decimal:
    """A budget in USD: ``200``, ``$12.50``, ``1,000``. Refuses negative, absurd (over
    $1,000,000), non-numeric and over-precise amounts with a sentence saying so."""
    raw = word.strip().removeprefix("$").replace(",", "")
    if not re.fullmatch(r"\d{1,7}(\.\d{1,4})?", raw):
        if re.fullmatch(r"-\s*\$?[\d.,]+", word.strip()):
            raise BudgetInputError(f"A budget can't be negative (`{word}`). " + BUDGET_USAGE)
        raise BudgetInputError(f"`{word[:40]}` is not an amount in US dollars. " + BUDGET_USAGE)
    amount = Decimal(raw)
    if amount > MAX_BUDGET_USD:
        raise BudgetInputError(
            f"{usd(amount)} is more than the largest budget Lucy takes ({usd(MAX_BUDGET_USD)})."
        )
    return amount


def parse_budget_command(rest: str) -> BudgetChange | None:
    """``/lucy budget <rest>``: None to show the budgets, else the change. Raises
    :class:`BudgetInputError` for anything else."""
    words = rest.split()
    if not words:
        return None
    user: str | None = None
    period = "month"
    if words[0].lower() == "user":
        words = words[1:]
        user = "*"
        if words and (m := _MENTION.match(words[0])):
            user, words = m.group(1), words[1:]
        if not words or words[0].lower() not in ("daily", "monthly"):
            raise BudgetInputError("Say `daily` or `monthly` for a user budget. " + BUDGET_USAGE)
        period, words = ("day" if words[0].lower() == "daily" else "month"), words[1:]
    if len(words) != 1:
        raise BudgetInputError(BUDGET_USAGE)
    word = words[0].lower()
    if word in ("off", "none"):
        return BudgetChange(user, period, "off")
    if word == "default":
        return BudgetChange(user, period, "default")
    return BudgetChange(user, period, "set", parse_amount(words[0]))


WARN_SHARE = Decimal("0.8")  # of a monthly budget: the admins hear about it once that month


def warning_sentence(*, subject: str | None, limit_usd: Decimal, spent_usd: Decimal) -> str:
    """The admins' notice when a monthly budget passes 80%."""
    share = f"{float(spent_usd) / float(limit_usd):.0%}" if limit_usd else ""
    whose = f"<@{subject}> has" if subject else "This workspace has"
    budget = "their" if subject else "its"
    raise_with = f"`/lucy budget user <@{subject}> monthly <USD>`" if subject else "`/lucy budget <USD>`"
    return (
        f"Heads-up: {whose} used {usd(spent_usd)} of {budget} {usd(limit_usd)} monthly Lucy budget "
        f"({share}). When it is used up, tasks stop at their next step and new requests are refused "
        f"until a workspace admin raises it with {raise_with}. `/lucy usage` shows the spend by "
        "person and model."
    )
