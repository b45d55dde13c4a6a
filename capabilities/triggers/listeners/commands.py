"""``/lucy webhook create|list|delete`` (admins only): the workspace's signed inbound webhooks.
Each sub-word is an entry of ``/lucy``'s command table (:mod:`app.ingress.commands`), which
sends any other word to :data:`USAGE`.

* ``create <name> <request template>``: a webhook that starts a task in this channel from the
  template, with the POSTed JSON as context. The answer (only to the admin) gives the URL path
  and the secret; the secret is derived from ``LUCY_ENCRYPTION_KEYS`` and the trigger id
  (:mod:`capabilities.triggers.rules`), never stored. A name already used in the workspace is replaced (a new
  id and secret; the old URL stops working).
* ``list``: every webhook's name, URL path, channel, creator and template (shortened). Never a
  secret: secrets are not stored, and the list does not derive them.
* ``delete <name>``: removes it; its URL then answers 404 (and its deliveries stay recorded).

Creations and deletions are audited (``audit_log``: ``webhook_trigger.created`` /
``webhook_trigger.deleted``, the admin as actor, the trigger id as entity, never the secret).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext

from capabilities.task.listeners.deps import listener_deps
from capabilities.triggers import rules as triggers
from lucy.db.repositories.ledger import record_user_change
from lucy.db.repositories.tenants import (
    update_workspace_settings,
    upsert_user,
    upsert_workspace,
    workspace_settings,
)
from lucy.logging import get_logger
from lucy.roles import is_admin
from lucy.slack.text import escape_mrkdwn

log = get_logger(__name__)

USAGE = (
    "Usage: `/lucy webhook create <name> <request template>` (admins): a URL and a secret; a POST "
    "signed with the secret starts a task here from the template, with the JSON body as context. "
    "`/lucy webhook list` shows the workspace's webhooks; `/lucy webhook delete <name>` removes one."
)
TEMPLATE_SHOWN = 120
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_TEMPLATE = 4000


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}


async def on_webhook_create(
    ack: AsyncAck, rest: str, command: dict[str, Any], context: AsyncBoltContext
) -> None:
    """``/lucy webhook create <name> <request template>`` (admins only)."""
    name, _, template = rest.strip().partition(" ")
    name, template = name.lower(), template.strip()
    if not (_NAME.match(name) and template):
        await ack(_ephemeral(USAGE))
        return
    channel = str(command["channel_id"])
    await _as_admin(
        ack,
        command,
        context,
        "create",
        lambda deps, team, user: _create(deps, team, user, channel, name, template),
    )


async def on_webhook_list(
    ack: AsyncAck, rest: str, command: dict[str, Any], context: AsyncBoltContext
) -> None:
    """``/lucy webhook list`` (admins only; the table sends ``list`` with words after it to the usage)."""
    await _as_admin(ack, command, context, "list", lambda deps, team, _user: _list(deps, team))


async def on_webhook_delete(
    ack: AsyncAck, rest: str, command: dict[str, Any], context: AsyncBoltContext
) -> None:
    """``/lucy webhook delete <name>`` (admins only)."""
    name = rest.strip().lower()
    if not _NAME.match(name):
        await ack(_ephemeral(USAGE))
        return
    await _as_admin(ack, command, context, "delete", lambda deps, team, user: _delete(deps, team, user, name))


async def _as_admin(
    ack: AsyncAck,
    command: dict[str, Any],
    context: AsyncBoltContext,
    verb: str,
    run: Callable[[Any, str, str], Awaitable[str]],
) -> None:
    """``run`` for a workspace admin; anyone else is refused in plain words."""
    deps = listener_deps(context)
    team, user = str(command["team_id"]), str(command["user_id"])
    profile = await deps.directory.get(context.client, team, user)
    if not is_admin(profile.role if profile else None):
        await ack(_ephemeral(f"Only a workspace admin can {verb} webhooks."))
        return
    await ack(_ephemeral(await run(deps, team, user)))


async def _create(deps: Any, team: str, user: str, channel: str, name: str, template: str) -> str:
    keys = deps.settings.security.encryption_keys
    if keys is None or not keys.get_secret_value().strip():
        return "Webhooks need LUCY_ENCRYPTION_KEYS on this deployment; ask its operator."
    trigger_id = triggers.new_trigger_id()
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        await upsert_user(session=session, workspace_id=workspace_id, slack_user_id=user)
        settings = await workspace_settings(session=session, workspace_id=workspace_id)
        existing = {
            k: v for k, v in (settings.get("webhook_triggers") or {}).items() if v.get("name") != name
        }
        existing[trigger_id] = {
            "name": name,
            "template": template[:MAX_TEMPLATE],
            "channel": channel,
            "created_by": user,
        }
        await update_workspace_settings(
            session=session, workspace_id=workspace_id, values={"webhook_triggers": existing}
        )
        await _audit(session, workspace_id, team, user, "created", trigger_id, existing[trigger_id])
    secret = triggers.trigger_secrets(keys.get_secret_value(), trigger_id)[0]
    log.info("webhook trigger created", trigger_id=trigger_id, by=user)
    return (
        f"Webhook *{escape_mrkdwn(name)}* created. POST JSON to `/webhooks/triggers/{trigger_id}` on "
        f"Lucy's public URL with headers `X-Lucy-Delivery` (a unique id), `X-Lucy-Timestamp` (Unix "
        'seconds) and `X-Lucy-Signature: v2=<hex HMAC-SHA256 of "<timestamp>\\n<delivery id>\\n<body>">` '
        "under the "
        f"secret `{secret}` (shown only now). Each delivery starts a task here."
    )


async def _list(deps: Any, team: str) -> str:
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        settings = await workspace_settings(session=session, workspace_id=workspace_id)
    found = settings.get("webhook_triggers") or {}
    if not found:
        return "No webhooks yet. `/lucy webhook create <name> <request template>` makes one."
    lines = [f"*Webhooks* ({len(found)}); secrets are shown only when a webhook is created:"]
    for trigger_id, spec in sorted(found.items(), key=lambda kv: str(kv[1].get("name"))):
        template = " ".join(str(spec.get("template") or "").split())
        if len(template) > TEMPLATE_SHOWN:
            template = template[: TEMPLATE_SHOWN - 1] + "…"
        name = escape_mrkdwn(str(spec.get("name")))
        channel, creator = escape_mrkdwn(str(spec.get("channel"))), escape_mrkdwn(str(spec.get("created_by")))
        lines.append(
            f"• *{name}* `/webhooks/triggers/{escape_mrkdwn(trigger_id)}` → <#{channel}>, by <@{creator}>: "
            f"{escape_mrkdwn(template)}"
        )
    return "\n".join(lines)


async def _delete(deps: Any, team: str, user: str, name: str) -> str:
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        settings = await workspace_settings(session=session, workspace_id=workspace_id)
        found = dict(settings.get("webhook_triggers") or {})
        gone = {k: v for k, v in found.items() if v.get("name") == name}
        if not gone:
            return f"No webhook named *{escape_mrkdwn(name)}*. `/lucy webhook list` shows them."
        remaining = {k: v for k, v in found.items() if k not in gone}
        await update_workspace_settings(
            session=session, workspace_id=workspace_id, values={"webhook_triggers": remaining}
        )
        for trigger_id, spec in gone.items():
            await _audit(session, workspace_id, team, user, "deleted", trigger_id, spec)
    log.info("webhook trigger deleted", trigger_ids=sorted(gone), by=user)
    return f"Webhook *{escape_mrkdwn(name)}* deleted: its URL no longer starts tasks."


async def _audit(
    session: Any, workspace_id: Any, team: str, user: str, verb: str, trigger_id: str, spec: dict[str, Any]
) -> None:
    shown = {k: spec.get(k) for k in ("name", "channel", "created_by")}
    await record_user_change(
        session,
        workspace_id,
        user=user,
        entity_type="webhook_trigger",
        entity_id=trigger_id,
        verb=verb,
        state=shown,
        key=hashlib.sha256(f"webhook-trigger:{team}:{trigger_id}:{verb}".encode()).hexdigest(),
        removed=verb == "deleted",
    )
