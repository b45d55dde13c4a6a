"""How budgets and month-to-date spend read in Slack (``/lucy usage``, ``/lucy budget`` and App
Home): plain text, no Slack markup from anywhere but Lucy."""

from __future__ import annotations

from typing import Any

from capabilities.budgets.repository import UsageReport
from capabilities.budgets.rules import usd
from lucy.slack.limits import section
from lucy.slack.text import escape_mrkdwn


def _bar(spent: Any, limit: Any) -> str:
    if limit is None or limit == 0:
        return ""
    share = min(float(spent) / float(limit), 1.0)
    return f" ({share:.0%})"


def usage_text(report: UsageReport, *, admin: bool, slack_user: str) -> str:
    """Month-to-date spend against the budget, by model and by user (admins: everyone; others:
    their own)."""
    month = report.month.strftime("%B %Y")
    spent = report.workspace_spent
    lines = [f"*Lucy spend in {month}* (month to date, UTC)"]
    if report.workspace_limit is None:
        lines.append(f"• Workspace: {usd(spent)}; no monthly budget.")
    else:
        lines.append(
            f"• Workspace: {usd(spent)} of {usd(report.workspace_limit)}{_bar(spent, report.workspace_limit)}"
            + (
                f", {usd(report.workspace_reserved)} held by calls in flight"
                if report.workspace_reserved
                else ""
            )
        )
    if report.user_limits:
        month_limit, day_limit = report.user_limits.get("month"), report.user_limits.get("day")
        lines.append(
            f"• Your budgets: monthly {usd(month_limit)}, daily {usd(day_limit)}"
            if month_limit is not None or day_limit is not None
            else "• You have no personal budget."
        )
    if report.by_model:
        lines.append("*By model*" + ("" if admin else " (yours)"))
        lines.extend(f"• `{model}`: {usd(cost)}" for model, cost in report.by_model[:10])
    if report.by_user:
        lines.append("*By person*" if admin else "*You*")
        lines.extend(f"• <@{user}>: {usd(cost)}" for user, cost in report.by_user[:20] if user != "?")
    if not report.by_model:
        lines.append(
            "No model calls yet this month." if admin else "You have made no model calls this month."
        )
    if admin:
        lines.append(
            "Change the budget with `/lucy budget <USD>` or `/lucy budget off` (`/lucy budget help`)."
        )
    return "\n".join(lines)


def budget_home_blocks(report: UsageReport) -> list[dict[str, Any]]:
    """The Home tab's budget section."""
    spent, limit = report.workspace_spent, report.workspace_limit
    line = (
        f"{usd(spent)} spent this month; no monthly budget."
        if limit is None
        else f"{usd(spent)} of {usd(limit)} this month{_bar(spent, limit)}."
    )
    top = ", ".join(f"{escape_mrkdwn(model)} {usd(cost)}" for model, cost in report.by_model[:3])
    return [
        {"type": "header", "text": {"type": "plain_text", "text": "Budget"}},
        section(line + (f"\nTop models: {top}" if top else "")),
    ]
