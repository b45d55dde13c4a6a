"""``/lucy webhook create <name> <request template>`` (admins only): a signed inbound webhook
that starts a task in this channel from the template, with the POSTed JSON as context.

The answer (only to the admin) gives the URL path and the secret; the secret is derived from
``LUCY_ENCRYPTION_KEYS`` and the trigger id (:mod:`lucy.triggers`), never stored. Creating a
trigger with a name already used in the workspace replaces it (a new id and secret).
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext

from ingress.deps import listener_deps
from lucy import triggers
from lucy.db import repositories as repo
from lucy.logging import get_logger
from lucy.roles import is_admin
from lucy.slack.text import escape_mrkdwn

log = get_logger(__name__)

USAGE = (
    "Usage: `/lucy webhook create <name> <request template>` (admins): a URL and a secret; a POST "
    "signed with the secret starts a task here from the template, with the JSON body as context."
)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_TEMPLATE = 4000


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}


async def on_webhook_command(
    ack: AsyncAck, rest: str, command: dict[str, Any], context: AsyncBoltContext
) -> None:
    deps = listener_deps(context)
    team, user, channel = str(command["team_id"]), str(command["user_id"]), str(command["channel_id"])
    verb, _, args = rest.strip().partition(" ")
    name, _, template = args.strip().partition(" ")
    name, template = name.lower(), template.strip()
    if verb.lower() != "create" or not _NAME.match(name) or not template:
        await ack(_ephemeral(USAGE))
        return
    profile = await deps.directory.get(context.client, team, user)
    if not is_admin(profile.role if profile else None):
        await ack(_ephemeral("Only a workspace admin can create webhooks."))
        return
    keys = deps.settings.security.encryption_keys
    if keys is None or not keys.get_secret_value().strip():
        await ack(_ephemeral("Webhooks need LUCY_ENCRYPTION_KEYS on this deployment; ask its operator."))
        return
    trigger_id = triggers.new_trigger_id()
    async with deps.sessions.begin() as session:
        workspace_id = await repo.upsert_workspace(session=session, slack_team_id=team)
        await repo.upsert_user(session=session, workspace_id=workspace_id, slack_user_id=user)
        settings = await repo.webhooks.workspace_settings(session=session, workspace_id=workspace_id)
        existing = {
            k: v for k, v in (settings.get("webhook_triggers") or {}).items() if v.get("name") != name
        }
        existing[trigger_id] = {
            "name": name,
            "template": template[:MAX_TEMPLATE],
            "channel": channel,
            "created_by": user,
        }
        await repo.webhooks.update_workspace_settings(
            session=session, workspace_id=workspace_id, values={"webhook_triggers": existing}
        )
    secret = triggers.trigger_secrets(keys.get_secret_value(), trigger_id)[0]
    log.info("webhook trigger created", trigger_id=trigger_id, by=user)
    await ack(
        _ephemeral(
            f"Webhook *{escape_mrkdwn(name)}* created. POST JSON to `/webhooks/triggers/{trigger_id}` on "
            f"Lucy's public URL with headers `X-Lucy-Delivery` (a unique id), `X-Lucy-Timestamp` (Unix "
            'seconds) and `X-Lucy-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">` under the '
            f"secret `{secret}` (shown only now). Each delivery starts a task here."
        )
    )
