"""`/lucy`'s command table, through the real ingress: the help it writes lists every
subcommand, a group's unknown sub-word gets the usage it writes, and what it says about who
may run a subcommand holds."""

from __future__ import annotations

from app.ingress.command_table import Who
from app.ingress.commands import TABLE
from capabilities.email.listeners.commands import SETTINGS_USAGE
from tests.conftest import Lucy, new_team

# The help as it was before the table wrote it: every line stays, word for word.
OLD_HELP_LINES = (
    "*Lucy* — your AI coworker. Every request is a durable task.",
    "• `/lucy <request>` — ask me something; I answer in this channel",
    "• `/lucy tasks` — your recent tasks",
    "• `/lucy status [task id]` — where a task is (default: your latest)",
    "• `/lucy cancel [task id]` — stop a task (default: your latest running one)",
    "• `/lucy approvals` — approvals waiting for you",
    '• `/lucy schedule "every weekday at 9:00" <request>` — a recurring task (`/lucy schedules` lists them)',
    '• `/lucy monitor "every 15 minutes" health <url>` — watch something and alert here (`/lucy monitors`)',
    "• `/lucy usage` — this month's spend against the budget (`/lucy budget help`: admins set it)",
    "• `/lucy email` — the email inbox that brings work here (`/lucy email connect <inbox>`: admins)",
    "• `/lucy webhook list` — signed webhooks that start tasks (admins: `create`, `list`, `delete`)",
    "• `/lucy help` — this message",
    "You can also @mention me in a channel or send me a DM.",
)


async def _say(lucy: Lucy, text: str, *, team: str, user: str = "U0ALICE") -> str:
    response = await lucy.command(text, team=team, user=user)
    assert response.status_code == 200 and response.json()["response_type"] == "ephemeral"
    return str(response.json()["text"])


async def test_help_names_every_subcommand_and_keeps_its_wording(lucy: Lucy):
    help_text = await _say(lucy, "help", team=new_team())
    lines = help_text.split("\n")
    assert [line for line in lines if line in OLD_HELP_LINES] == list(OLD_HELP_LINES)
    for entry in TABLE:
        assert f"`/lucy {entry.name}" in help_text, f"/lucy {entry.name} is missing from the help"
        for word in entry.words:
            assert word.invocation() in help_text, f"/lucy {entry.name} {word.name}"
    assert (
        "• `/lucy settings email-channel #channel | email-outsiders ignore|accept | skills admins-only|everyone | patterns on|off | patterns-channel on|off` — "
        in lines[-4]
    )


async def test_a_groups_unknown_word_gets_the_usage_and_starts_no_task(lucy: Lucy):
    team = new_team()
    for text in ("settings", "settings colour blue", "SETTINGS email-channelx #lucy"):
        usage = SETTINGS_USAGE
        assert await _say(lucy, text, team=team) == usage, text  # not "On it" (a task)


async def test_admin_subcommands_refuse_a_member(lucy: Lucy):
    team = new_team()
    valid_args = {
        "email-channel": "#lucy",
        "email-outsiders": "accept",
        "skills": "everyone",
        "webhook": "list",
        "list": "",
        "create": "deploys summarise the deploy",
        "delete": "deploys",
        "connect": "lucy@agentmail.to",  # refused as the shared inbox before AgentMail is asked
        # An admin's budget words leave no budget row behind (tests/budgets/test_budgets.py looks for
        # rows its admin wrote): `default` clears, and `budget default` runs after `budget off`.
        "user": "daily default",
        "off": "",
        "default": "",
        "add": "ops http://127.0.0.1:9/mcp",
        "remove": "ops",
        "refresh": "ops",
        "risk": "ops weather low",
        "patterns-channel": "on",
    }
    admin_only = [(e.name, None) for e in TABLE if e.who is Who.ADMIN and not e.words] + [
        (e.name, w.name) for e in TABLE for w in e.words if w.who is Who.ADMIN
    ]
    assert admin_only, "the table declares admin-only subcommands"
    for group, word in admin_only:
        text = " ".join(p for p in (group, word, valid_args[word or group]) if p)
        assert "Only a workspace admin" in await _say(lucy, text, team=team), text
        assert "Only a workspace admin" not in await _say(lucy, text, team=team, user="UADMIN1"), text
