"""``/lucy budget ...`` input and the budget settings: every amount a person or an operator can
type is either understood exactly or refused with a sentence saying what is expected."""

from __future__ import annotations

from decimal import Decimal

import pytest

from capabilities.budgets.rules import (
    BudgetChange,
    BudgetInputError,
    parse_amount,
    parse_budget_command,
    price_of,
    usd,
)
from lucy.settings import ModelPrice, SettingsError, load_settings


@pytest.mark.parametrize(
    ("words", "change"),
    [
        ("", None),
        ("200", BudgetChange(None, "month", "set", Decimal(200))),
        ("$12.50", BudgetChange(None, "month", "set", Decimal("12.50"))),
        ("1,000", BudgetChange(None, "month", "set", Decimal(1000))),
        ("0", BudgetChange(None, "month", "set", Decimal(0))),
        ("off", BudgetChange(None, "month", "off")),
        ("OFF", BudgetChange(None, "month", "off")),
        ("default", BudgetChange(None, "month", "default")),
        ("user daily 5", BudgetChange("*", "day", "set", Decimal(5))),
        ("user monthly off", BudgetChange("*", "month", "off")),
        ("user <@U0ALICE|alice> daily 2.5", BudgetChange("U0ALICE", "day", "set", Decimal("2.5"))),
        ("user <@W0BOB> monthly default", BudgetChange("W0BOB", "month", "default")),
    ],
)
def test_budget_commands_understood(words: str, change: BudgetChange | None):
    assert parse_budget_command(words) == change


@pytest.mark.parametrize(
    ("words", "says"),
    [
        ("-5", "can't be negative"),
        ("-$5", "can't be negative"),
        ("lots", "is not an amount in US dollars"),
        ("1e9", "is not an amount in US dollars"),
        ("NaN", "is not an amount in US dollars"),
        ("inf", "is not an amount in US dollars"),
        ("5.123456", "is not an amount in US dollars"),
        ("0x10", "is not an amount in US dollars"),
        ("5000000", "more than the largest budget"),
        ("200 300", "Usage"),
        ("user 5", "Say `daily` or `monthly`"),
        ("user <@U0ALICE> 5", "Say `daily` or `monthly`"),
        ("user daily", "Usage"),
    ],
)
def test_bad_budget_input_is_refused_with_a_clear_sentence(words: str, says: str):
    with pytest.raises(BudgetInputError, match=says.replace("$", r"\$")):
        parse_budget_command(words)


def test_amounts_and_prices():
    assert parse_amount("$1,000,000") == Decimal(1_000_000)
    assert (
        usd(Decimal("0.001")) == "$0.0010"
        and usd(Decimal("1234.5")) == "$1,234.50"
        and usd(None) == "no budget"
    )
    assert price_of(1_000, 500, ModelPrice(input=2, output=8)) == Decimal("0.006")


def test_budget_settings(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LUCY_BUDGET_WORKSPACE_MONTHLY_USD", "200")
    monkeypatch.setenv("LUCY_LLM_PRICES", '{"acme/model": {"input": 0.5, "output": 1.5}}')
    settings = load_settings()
    assert settings.budget.budget_workspace_monthly_usd == Decimal(200)
    assert settings.budget.llm_prices["acme/model"] == ModelPrice(input=0.5, output=1.5)
    assert settings.budget.budget_user_daily_usd is None  # unset: no budget
    for name, value in (
        ("LUCY_BUDGET_WORKSPACE_MONTHLY_USD", "-1"),
        ("LUCY_BUDGET_WORKSPACE_MONTHLY_USD", "lots"),
        ("LUCY_LLM_PRICES", '{"acme/model": {"input": -1, "output": 1}}'),
        ("LUCY_LLM_PRICES", "not json"),
    ):
        monkeypatch.setenv(name, value)
        with pytest.raises(SettingsError, match=name):
            load_settings()
        monkeypatch.delenv(name)
