"""The ``/lucy`` slash command.

Its subcommands are declared once, in :data:`TABLE` (name, arguments, one line of help, who
may run it, handler; a group such as ``settings`` has sub-words of its own): the help, a
group's usage error and the dispatch are generated from it (:mod:`app.ingress.command_table`).
Subcommands answer only the caller (ephemeral). Anything else is a request and starts a task
in the channel; an empty command gets help, never an error. What the answers look like is
:mod:`capabilities.task.views.home`'s; whether a task is running is Temporal's.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from app.ingress.command_table import CommandCall, Handler, Subcommand, Who, dispatch, help_lines
from app.ingress.task_commands import (
    approvals_command,
    cancel_command,
    ephemeral,
    status_command,
    tasks_command,
)
from capabilities.budgets import listeners as budgets
from capabilities.budgets.rules import BUDGET_USAGE
from capabilities.email.listeners import commands as email_commands
from capabilities.mcp import listeners as mcp
from capabilities.memory import listeners as memory
from capabilities.proactive.listeners import monitors, patterns, schedules
from capabilities.proactive.views import schedules as schedule_views
from capabilities.skills import listeners as skills
from capabilities.task.listeners.deps import listener_deps
from capabilities.task.listeners.directory import UNVERIFIED, requester_role
from capabilities.task.listeners.events import DEACTIVATED
from capabilities.task.listeners.start import WORKSPACE_REMOVED, SlackMessage
from capabilities.triggers.listeners import commands as trigger_commands
from lucy.contracts.ids import (
    TaskSource,
    command_workflow_id,
)
from lucy.db.repositories.tenants import WorkspaceRemoved


async def _help(call: CommandCall) -> None:
    await call.ack(ephemeral(HELP))


Listener = Callable[[AsyncAck, str, dict[str, Any], AsyncBoltContext], Awaitable[None]]
BareListener = Callable[[AsyncAck, dict[str, Any], AsyncBoltContext], Awaitable[None]]


def _with_args(listener: Listener) -> Handler:
    async def handle(call: CommandCall) -> None:
        await listener(call.ack, call.rest, call.command, call.context)

    return handle


def _bare(listener: BareListener) -> Handler:
    return _with_args(lambda ack, _rest, command, context: listener(ack, command, context))


def _alone(name: str, help_text: str, listener: BareListener, *, listed: bool = True) -> Subcommand:
    """A word that takes nothing after it (``/lucy skills``; ``/lucy skills for x`` is a request)."""
    return Subcommand(name, help_text, _bare(listener), takes_args=False, listed=listed)


def _admin(name: str, help_text: str, listener: Listener, *, usage: str = "") -> Subcommand:
    """A word only admins may use, its arguments passed to ``listener``."""
    return Subcommand(name, help_text, _with_args(listener), usage=usage, who=Who.ADMIN)


def _budget_word(name: str, help_text: str) -> Subcommand:
    """``/lucy budget off`` or ``/lucy budget default``: the workspace's budget (admins)."""
    return Subcommand(
        name, help_text, _with_args(budgets.on_budget_change(name)), who=Who.ADMIN, takes_args=False
    )


PREFIX = "/lucy"
TABLE: tuple[Subcommand, ...] = (
    Subcommand("tasks", "your recent tasks", tasks_command, takes_args=False),
    Subcommand("status", "where a task is (default: your latest)", status_command, usage="[task id]"),
    Subcommand("cancel", "stop a task (default: your latest running one)", cancel_command, usage="[task id]"),
    Subcommand("approvals", "approvals waiting for you", approvals_command, takes_args=False),
    Subcommand(
        "schedule",
        "a recurring task (`/lucy schedules` lists them)",
        usage='"every weekday at 9:00" <request>',
        bare=_bare(schedules.on_schedule_modal),
        otherwise=_with_args(schedules.on_schedule_command),
        usage_reply=schedule_views.USAGE,
        words=(
            Subcommand(
                "backfill",
                "re-run a schedule's missed window (dates or times in your time zone)",
                _with_args(schedules.on_backfill_command),
                usage="<schedule id> <from> <to>",
            ),
        ),
    ),
    _alone("schedules", "your schedules", schedules.on_schedules_command, listed=False),
    Subcommand(
        "monitor",
        "watch something and alert here (`/lucy monitors`)",
        _with_args(monitors.on_monitor_command),
        usage='"every 15 minutes" health <url>',
    ),
    _alone("monitors", "your monitors", monitors.on_monitors_command, listed=False),
    _alone("patterns", "what I noticed you ask regularly", patterns.on_patterns_command),
    _alone(
        "usage",
        "this month's spend against the budget (`/lucy budget help`: admins set it)",
        budgets.on_usage_command,
    ),
    Subcommand(
        "budget",
        "show or set the budget",
        usage="[<USD>|off|default]",
        listed=False,
        bare=_bare(budgets.on_usage_command),
        otherwise=_with_args(budgets.on_budget_change()),
        usage_reply=BUDGET_USAGE,
        words=(
            _alone("help", "how budgets are set", budgets.on_budget_help),
            _admin(
                "user",
                "every user's default budget, or one person's (admins)",
                budgets.on_budget_change("user"),
                usage="[@someone] daily|monthly <USD>|off|default",
            ),
            _budget_word("off", "no workspace budget (admins)"),
            _budget_word("default", "the deployment's workspace budget again (admins)"),
        ),
    ),
    _alone("skills", "this workspace's skills", skills.on_skills_command),
    Subcommand(
        "skill",
        "add or manage a skill (a SKILL.md)",
        words=(
            Subcommand(
                "add", "add a skill (no text: a form)", _with_args(skills.on_skill_add), usage="[SKILL.md]"
            ),
            Subcommand("show", "a skill's instructions", _with_args(skills.on_skill_show), usage="<name>"),
            *(
                Subcommand(word, f"{word} a skill", _with_args(skills.on_skill_change(word)), usage="<name>")
                for word in ("remove", "disable", "enable")
            ),
        ),
    ),
    Subcommand(
        "email",
        "the email inbox that brings work here (`/lucy email connect <inbox>`: admins)",
        bare=_bare(email_commands.on_email_show),
        usage_reply=email_commands.USAGE,
        words=(
            _admin(
                "connect",
                "bind an AgentMail inbox of Lucy's organisation to this workspace (admins)",
                email_commands.on_email_connect,
                usage="<inbox>",
            ),
        ),
    ),
    Subcommand(
        "webhook",
        "signed webhooks that start tasks (admins: `create`, `list`, `delete`)",
        usage="list",
        who=Who.ADMIN,
        usage_reply=trigger_commands.USAGE,
        words=(
            _admin(
                "create",
                "a URL and a secret; a signed POST starts a task here from the template (admins)",
                trigger_commands.on_webhook_create,
                usage="<name> <request template>",
            ),
            Subcommand(
                "list",
                "the workspace's webhooks, never their secrets (admins)",
                _with_args(trigger_commands.on_webhook_list),
                who=Who.ADMIN,
                takes_args=False,
            ),
            _admin(
                "delete",
                "remove a webhook: its URL stops starting tasks (admins)",
                trigger_commands.on_webhook_delete,
                usage="<name>",
            ),
        ),
    ),
    Subcommand(
        "memory",
        "what I remember about you and in this channel",
        bare=_bare(memory.on_memory_list),
        words=(
            Subcommand(
                "forget",
                "forget a memory (yours; admins: any), or all of yours",
                _with_args(memory.on_memory_forget),
                usage="<id>|all",
            ),
        ),
    ),
    Subcommand(
        "mcp",
        "this workspace's MCP servers and the tools they give Lucy (admins)",
        who=Who.ADMIN,
        words=(
            _admin(
                "add",
                "connect a server and offer its tools",
                mcp.on_mcp("add"),
                usage="<name> <url> [--token]",
            ),
            _admin("list", "the servers, their tools and risks", mcp.on_mcp("list")),
            _admin("remove", "stop offering a server's tools", mcp.on_mcp("remove"), usage="<name>"),
            _admin("refresh", "list a server's tools again", mcp.on_mcp("refresh"), usage="<name>"),
            _admin(
                "risk",
                "override the risk the server's annotations gave a tool",
                mcp.on_mcp("risk"),
                usage="<name> <tool> low|high",
            ),
        ),
    ),
    Subcommand(
        "settings",
        "mail, skills and channel settings (admins); your `patterns`",
        who=Who.ADMIN,
        words=(
            _admin(
                "email-channel",
                "where mail to the inbox is announced",
                email_commands.on_email_channel_setting,
                usage="#channel",
            ),
            _admin(
                "email-outsiders",
                "whether mail from outside senders becomes work",
                email_commands.on_email_outsiders_setting,
                usage="ignore|accept",
            ),
            _admin(
                "skills",
                "who may add and change skills",
                skills.on_skills_setting,
                usage="admins-only|everyone",
            ),
            Subcommand(
                "patterns",
                "whether I look for requests you repeat and offer to schedule them (yours only)",
                _with_args(patterns.on_patterns_setting),
                usage="on|off",
            ),
            _admin(
                "patterns-channel",
                "whether I look for recurring requests in this channel",
                patterns.on_channel_setting,
                usage="on|off",
            ),
        ),
    ),
    Subcommand("help", "this message", _help),
)
HELP = "\n".join(
    [
        "*Lucy* — your AI coworker. Every request is a durable task.",
        f"• `{PREFIX} <request>` — ask me something; I answer in this channel",
        *help_lines(TABLE, prefix=PREFIX),
        f"`{PREFIX} schedule help`, `{PREFIX} webhook help` and the like show a command's words in full.",
        "You can also @mention me in a channel or send me a DM.",
    ]
)


async def on_lucy(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    """``/lucy ...``: subcommands answer the caller; anything else becomes a task."""
    try:
        await _lucy(ack, command, context)
    except WorkspaceRemoved:
        await ack(ephemeral(WORKSPACE_REMOVED))


async def _lucy(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    text = " ".join(str(command.get("text") or "").split())
    if not (command.get("team_id") and command.get("user_id") and command.get("channel_id")):
        await ack(ephemeral("Sorry, that command arrived incomplete. Please try again."))
        return
    found = dispatch(TABLE, text or "help", prefix=PREFIX)
    if found is not None:
        handler, rest = found
        await handler(CommandCall(ack=ack, command=command, context=context, text=text, rest=rest))
    else:
        await _request(ack, text, command, context)


async def _request(ack: AsyncAck, text: str, command: dict[str, Any], context: AsyncBoltContext) -> None:
    """Anything that is not a subcommand: a task, started in the channel."""
    deps = listener_deps(context)
    team, user, channel = str(command["team_id"]), str(command["user_id"]), str(command["channel_id"])
    profile = await deps.directory.get(context.client, team, user)
    if profile is not None and profile.deleted:
        await ack(ephemeral(DEACTIVATED))
        return
    outcome = await deps.starter.start(
        SlackMessage(
            team_id=team,
            user_id=user,
            channel_id=channel,
            channel_type="im" if channel.startswith("D") else "channel",
            ts="",
            thread_ts=None,
            text=text,
            source=TaskSource.COMMAND.value,
            role=requester_role(profile),
            workflow_id=command_workflow_id(team, channel, str(command.get("trigger_id") or uuid.uuid4())),
        )
    )
    if outcome.refused:
        await ack(ephemeral(outcome.refused))
    else:
        started = f"On it. I'll answer here. (task `{outcome.workflow_id}`)"
        await ack(ephemeral(started if profile is not None else f"{UNVERIFIED}\n{started}"))


def register(app: AsyncApp) -> None:
    app.command("/lucy")(on_lucy)
