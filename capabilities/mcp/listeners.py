"""``/lucy mcp add|list|remove|refresh|risk`` (workspace admins only) and the token modal.

* ``add <name> <url>``: the URL must pass the reach check (``capabilities.mcp.client``); Lucy
  connects with the official SDK, lists the tools, stores the server for this workspace and
  answers with each tool, its description and its risk. ``--token`` first opens a modal; the
  token is encrypted at rest and never echoed, logged or shown again.
* ``list``, ``remove <name>``, ``refresh <name>``, ``risk <name> <tool> low|high``.

Who is an admin comes from Slack (``users.info``), never from the command's text; the modal's
submission is checked again. Adding and removing a server is audited (``mcp_server.added``,
``mcp_server.removed``, ``mcp_server.risk_set``), never with a token.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from capabilities.mcp import repository, rules, views
from capabilities.mcp.client import McpUnreachable, list_server
from capabilities.task.listeners.deps import ListenerDeps, clicker_of, listener_deps, modal_metadata
from capabilities.tools.egress import EgressGuard
from lucy.crypto import CryptoError
from lucy.db.repositories.ledger import record_user_change
from lucy.db.repositories.tenants import tenant_transaction, upsert_workspace
from lucy.logging import get_logger
from lucy.roles import is_admin
from lucy.slack.text import escape_mrkdwn

log = get_logger(__name__)

NOT_ADMIN = "Only a workspace admin can manage MCP servers."
NO_KEYS = (
    "A token must be stored encrypted, and this deployment has no LUCY_ENCRYPTION_KEYS; ask its operator."
)
ADD_USAGE = "Usage: `/lucy mcp add <name> <url> [--token]` (a name of lower-case letters, digits and -)"


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}


async def _admin(deps: ListenerDeps, client: AsyncWebClient, team: str, user: str) -> bool:
    profile = await deps.directory.get(client, team, user)
    return is_admin(profile.role if profile else None)


async def _audit(
    session: Any, workspace_id: uuid.UUID, user: str, verb: str, name: str, state: dict[str, Any]
) -> None:
    key = hashlib.sha256(f"mcp-server:{workspace_id}:{name}:{verb}:{uuid.uuid4()}".encode()).hexdigest()
    await record_user_change(
        session,
        workspace_id,
        user=user,
        entity_type="mcp_server",
        entity_id=name,
        verb=verb,
        state=state,
        key=key,
        removed=verb == "removed",
    )


async def add_server(deps: ListenerDeps, team: str, user: str, name: str, url: str, token: str | None) -> str:
    """Connect, list, store; the answer for the admin (plain words when it fails)."""
    shown = escape_mrkdwn(name)
    try:
        listing = await list_server(url, token, name, deps.settings, EgressGuard())
    except McpUnreachable as exc:
        return f"I could not add MCP server *{shown}*: {escape_mrkdwn(str(exc))}. Nothing was stored."
    keyring = repository.token_keyring(deps.settings) if token else None
    if token and keyring is None:
        return NO_KEYS
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        await repository.save_server(
            session=session,
            workspace_id=workspace_id,
            name=name,
            url=url,
            catalog=listing.as_catalog(),
            added_by=user,
        )
        if token and keyring is not None:
            await repository.store_token(
                session=session, workspace_id=workspace_id, name=name, token=token, keyring=keyring
            )
        server = await repository.get_server(session=session, workspace_id=workspace_id, name=name)
        state = {"url": url, "tools": [t["name"] for t in listing.tools], "token": bool(token)}
        await _audit(session, workspace_id, user, "added", name, state)
    log.info("mcp server added", server=name, tools=len(listing.tools), by=user)
    overrides = server.risk_overrides if server else {}
    headline = f"MCP server *{shown}* added: {len(listing.tools)} tools offered to Lucy in this workspace."
    return views.server_text(headline, name, listing.as_catalog(), overrides)


async def _add(
    ack: AsyncAck, deps: ListenerDeps, command: dict[str, Any], context: AsyncBoltContext, args: list[str]
) -> None:
    token = "--token" in args
    rest = [a for a in args if a != "--token"]
    if len(rest) != 2 or not rules.SERVER_NAME.match(rest[0]):
        await ack(_ephemeral(ADD_USAGE))
        return
    name, url = rest[0], rest[1].strip("<>")
    team, user = str(command["team_id"]), str(command["user_id"])
    if not token:
        await ack(_ephemeral(await add_server(deps, team, user, name, url, None)))
        return
    if repository.token_keyring(deps.settings) is None:
        await ack(_ephemeral(NO_KEYS))
        return
    await ack()
    try:
        await context.client.views_open(
            trigger_id=str(command.get("trigger_id") or ""),
            view=views.token_modal(name, url, str(command.get("channel_id") or "")),
        )
    except SlackApiError as exc:
        log.warning("could not open the MCP token modal", error=str(exc.response.get("error")))


async def on_token_submit(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    context: AsyncBoltContext,
    client: AsyncWebClient,
) -> None:
    """The token modal's Connect: the admin is checked again, then the server is added."""
    deps = listener_deps(context)
    team, user = clicker_of(body, context)
    metadata = modal_metadata(view)
    name, url, channel = (
        str(metadata.get("name") or ""),
        str(metadata.get("url") or ""),
        str(metadata.get("channel") or ""),
    )
    token = views.token_value(view)
    if not token or not rules.SERVER_NAME.match(name) or not url:
        await ack(response_action="errors", errors={"token": "Paste the server's token."})
        return
    if not await _admin(deps, client, team, user):
        await ack(response_action="errors", errors={"token": NOT_ADMIN})
        return
    await ack()
    answer = await add_server(deps, team, user, name, url, token)
    try:
        await client.chat_postEphemeral(channel=channel or user, user=user, text=answer)
    except SlackApiError:
        await client.chat_postMessage(channel=user, text=answer)


async def _simple(deps: ListenerDeps, team: str, user: str, verb: str, args: list[str]) -> str:
    """``list``, ``remove``, ``refresh`` and ``risk``: the answer for the admin."""
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        if verb == "list":
            return views.list_text(await repository.list_servers(session=session, workspace_id=workspace_id))
        name = args[0] if args else ""
        server = await repository.get_server(session=session, workspace_id=workspace_id, name=name)
        if server is None:
            return f"No MCP server named *{escape_mrkdwn(name)}*. `/lucy mcp list` shows them."
        if verb == "remove":
            await repository.remove_server(session=session, workspace_id=workspace_id, name=name)
            await _audit(session, workspace_id, user, "removed", name, {"url": server.url})
            return f"MCP server *{escape_mrkdwn(name)}* removed: its tools are no longer offered."
        if verb == "risk":
            return await _risk(session, workspace_id, user, server, args)
    return await _refresh(deps, workspace_id, server)


async def _risk(
    session: Any, workspace_id: uuid.UUID, user: str, server: repository.ServerRow, args: list[str]
) -> str:
    tool, risk = args[1], args[2].lower()
    if tool not in {t["name"] for t in server.catalog.get("tools") or []}:
        return f"MCP server *{escape_mrkdwn(server.name)}* offers no tool `{escape_mrkdwn(tool)}`."
    await repository.set_risk(
        session=session, workspace_id=workspace_id, name=server.name, tool=tool, risk=risk
    )
    await _audit(session, workspace_id, user, "risk_set", server.name, {"tool": tool, "risk": risk})
    return f"`{escape_mrkdwn(rules.offered_name(server.name, tool))}` is now {views.RISK_WORDS[risk]}."


async def _refresh(deps: ListenerDeps, workspace_id: uuid.UUID, server: repository.ServerRow) -> str:
    shown = escape_mrkdwn(server.name)
    async with tenant_transaction(deps.sessions, workspace_id) as session:
        try:
            token = await repository.read_token(
                session=session,
                workspace_id=workspace_id,
                name=server.name,
                keyring=repository.token_keyring(deps.settings),
            )
        except CryptoError:
            return f"The token of *{shown}* cannot be decrypted; add the server again with `--token`."
    try:
        listing = await list_server(server.url, token, server.name, deps.settings, EgressGuard())
    except McpUnreachable as exc:
        return f"I could not refresh *{shown}*: {escape_mrkdwn(str(exc))}. Its last list of tools stays."
    async with tenant_transaction(deps.sessions, workspace_id) as session:
        await repository.save_catalog(
            session=session, workspace_id=workspace_id, name=server.name, catalog=listing.as_catalog()
        )
    headline = f"MCP server *{shown}* refreshed: {len(listing.tools)} tools."
    return views.server_text(headline, server.name, listing.as_catalog(), server.risk_overrides)


def _valid(verb: str, args: list[str]) -> bool:
    if verb == "list":
        return not args
    if verb in ("remove", "refresh"):
        return len(args) == 1
    return len(args) == 3 and args[2].lower() in (rules.LOW, rules.HIGH)


USAGES = {
    "list": "Usage: `/lucy mcp list`",
    "remove": "Usage: `/lucy mcp remove <name>`",
    "refresh": "Usage: `/lucy mcp refresh <name>`",
    "risk": "Usage: `/lucy mcp risk <name> <tool> low|high`",
}


def on_mcp(verb: str) -> Any:
    """The listener of ``/lucy mcp <verb>`` (``rest`` is what follows the verb)."""

    async def listener(ack: AsyncAck, rest: str, command: dict[str, Any], context: AsyncBoltContext) -> None:
        deps = listener_deps(context)
        team, user = str(command["team_id"]), str(command["user_id"])
        if not await _admin(deps, context.client, team, user):
            await ack(_ephemeral(NOT_ADMIN))
            return
        args = rest.split()
        if verb == "add":
            await _add(ack, deps, command, context, args)
        elif not _valid(verb, args):
            await ack(_ephemeral(USAGES[verb]))
        else:
            await ack(_ephemeral(await _simple(deps, team, user, verb, args)))

    return listener


def register(app: AsyncApp) -> None:
    app.view(views.MODAL_CALLBACK_ID)(on_token_submit)
