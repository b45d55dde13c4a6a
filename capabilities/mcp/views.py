"""What ``/lucy mcp`` shows: the token modal and the answers (each tool, its description and the
risk Lucy will use; the tools skipped and why). Everything from the server is escaped and cut
to Slack's limits after escaping; a token is never shown."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from capabilities.mcp import rules
from capabilities.mcp.repository import ServerRow
from lucy.slack.modals import modal, submitted, text_input
from lucy.slack.text import escape_mrkdwn, fit

MODAL_CALLBACK_ID = "lucy_mcp_token"
TEXT_LIMIT = 3_900
DESCRIPTION_SHOWN = 140
RISK_WORDS = {
    rules.LOW: "low: runs without asking",
    rules.HIGH: "high: waits for a person's approval",
}


def token_modal(name: str, url: str, channel: str) -> dict[str, Any]:
    """``/lucy mcp add <name> <url> --token``: one password-like field, never echoed back."""
    field = text_input(
        "token",
        f"Token for {name[:20]}",
        {"type": "plain_text_input", "action_id": "value", "max_length": 3000},
        hint="Sent only to this server as Authorization: Bearer; stored encrypted, never shown again.",
    )
    return modal(
        "MCP server token",
        [field],
        callback_id=MODAL_CALLBACK_ID,
        submit="Connect",
        metadata={"name": name, "url": url[:1500], "channel": channel},
    )


def token_value(view: dict[str, Any]) -> str:
    return submitted(view, "token").strip()


def _tool_lines(server: str, catalog: dict[str, Any], overrides: dict[str, Any]) -> list[str]:
    lines = []
    for tool in rules.workspace_tools(server, catalog, overrides):
        description = " ".join(str(tool.description).split("] ", 1)[-1].split())
        if len(description) > DESCRIPTION_SHOWN:
            description = description[: DESCRIPTION_SHOWN - 1] + "…"
        marked = " (set by an admin)" if tool.tool in overrides else ""
        lines.append(
            f"• `{escape_mrkdwn(tool.name)}`: {escape_mrkdwn(description)} — risk "
            f"{RISK_WORDS[tool.risk]}{marked}"
        )
    for skipped in catalog.get("skipped") or []:
        name, why = escape_mrkdwn(str(skipped.get("tool"))), escape_mrkdwn(str(skipped.get("why")))
        lines.append(f"• not offered: `{name}`: {why}")
    return lines


def server_text(headline: str, server: str, catalog: dict[str, Any], overrides: dict[str, Any]) -> str:
    """An answer about one server: ``headline`` (already escaped), then each tool."""
    lines = _tool_lines(server, catalog, overrides) or ["• it lists no tools"]
    return fit("\n".join([headline, *lines]), TEXT_LIMIT)


def list_text(servers: Iterable[ServerRow]) -> str:
    found = list(servers)
    if not found:
        return "No MCP servers yet. `/lucy mcp add <name> <url>` adds one (admins)."
    lines = [f"*MCP servers* ({len(found)}):"]
    for server in found:
        token = ", with a token" if server.has_token else ""
        count = len(server.catalog.get("tools") or [])
        lines.append(f"*{escape_mrkdwn(server.name)}* `{escape_mrkdwn(server.url)}`{token}: {count} tools")
        lines.extend(_tool_lines(server.name, server.catalog, server.risk_overrides))
    return fit("\n".join(lines), TEXT_LIMIT)
