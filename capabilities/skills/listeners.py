"""Members add and manage skills: ``/lucy skill add|show|remove|disable|enable``, ``/lucy
skills``, the Add skill modal (``/lucy skill add`` with no text, or App Home's button) and
``/lucy settings skills admins-only|everyone`` (admins). Every change writes a new version.

A skill is instructions only because a member wrote it: it is created here, from a person's
own command or modal, never from mail, pages or tool output (no tool creates skills).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError

from capabilities.skills import repository as skills
from capabilities.skills import views
from capabilities.skills.contracts import (
    SAVE_ACTION_ID,
    SKILL_DRAFT_WORKFLOW_NAME,
    DraftInput,
    draft_workflow_id,
)
from capabilities.skills.format import SkillRefused, parse_skill
from capabilities.task.listeners.clicks import caller
from capabilities.task.listeners.deps import ListenerDeps, clicker_of, listener_deps
from capabilities.task.repository import get_task
from lucy.contracts.ids import belongs_to_team
from lucy.contracts.priority import interactive_priority
from lucy.db.models import User
from lucy.db.repositories.tenants import update_workspace_settings, upsert_workspace, workspace_settings
from lucy.logging import get_logger
from lucy.roles import is_admin
from lucy.slack.modals import submitted

log = get_logger(__name__)

WHO_ADDS = "skills_add"  # workspace setting: "admins-only" or "everyone" (the default)
WHO_ADDS_VALUES = ("admins-only", "everyone")
ADMINS_ONLY = "Only a workspace admin can add or change skills here (`/lucy settings skills admins-only`)."
GUESTS = "Guests can't add or change skills."
NOT_ADMIN = "Only a workspace admin can choose who adds skills."
NOT_STARTED = "I couldn't start the draft just now, so nothing was drafted. Please try again in a minute."
CHANGES = {"remove": "removed", "disable": "disabled", "enable": "enabled"}


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": text}


def command_text(command: dict[str, Any], words: int) -> str:
    """The command's text after its first ``words`` words, line breaks kept, with Slack's
    escaping of ``&``, ``<`` and ``>`` undone (a SKILL.md is pasted as written)."""
    raw = str(command.get("text") or "").lstrip()
    for _ in range(words):
        parts = raw.split(maxsplit=1)
        raw = parts[1] if len(parts) > 1 else ""
    return raw.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


async def refusal(deps: ListenerDeps, client: AsyncWebClient, team: str, user: str) -> str | None:
    """Why ``user`` may not add or change skills, or None when they may."""
    who = await caller(deps, client, team, user)
    if who.role == "guest":
        return GUESTS
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        settings = await workspace_settings(session=session, workspace_id=workspace_id)
    if settings.get(WHO_ADDS) == "admins-only" and not is_admin(who.role):
        return ADMINS_ONLY
    return None


async def save(deps: ListenerDeps, team: str, user: str, text: str) -> str:
    """Parse and store a SKILL.md as a new version; the answer, or the reason it was refused.
    Raises :class:`SkillRefused` for a malformed file."""
    skill = parse_skill(text)
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        row = await skills.add_skill(session, workspace_id, skill, by=user)
        answer = views.added_text(row)
    log.info("skill added", skill=skill.name, version=row.version, by=user)
    return answer


async def on_skill_add(ack: AsyncAck, rest: str, command: dict[str, Any], context: AsyncBoltContext) -> None:
    """``/lucy skill add <SKILL.md>``; with no text, the Add skill modal."""
    deps, team, user = listener_deps(context), str(command["team_id"]), str(command["user_id"])
    text = command_text(command, 2)
    refused = await refusal(deps, context.client, team, user)
    if refused:
        await ack(_ephemeral(refused))
        return
    if not text.strip():
        await ack()
        await _open_modal(context.client, str(command.get("trigger_id") or ""), views.add_modal())
        return
    try:
        await ack(_ephemeral(await save(deps, team, user, text)))
    except SkillRefused as exc:
        await ack(_ephemeral(f"I can't add that skill. {exc}\n{views.FORMAT_HINT}"))


async def _open_modal(client: AsyncWebClient, trigger_id: str, view: dict[str, Any]) -> str:
    """Open ``view``; its id ("" when Slack refused)."""
    try:
        opened = await client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        log.warning("could not open the skill modal", error=str(exc.response.get("error")))
        return ""
    return str((opened.get("view") or {}).get("id") or "")


async def on_skills_command(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
    """``/lucy skills``: every skill with its version, who added it and whether it is enabled."""
    deps = listener_deps(context)
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=str(command["team_id"]))
        rows = await skills.current_skills(session, workspace_id)
        text = views.skills_text(rows)
    await ack(_ephemeral(text))


async def on_skill_show(ack: AsyncAck, rest: str, command: dict[str, Any], context: AsyncBoltContext) -> None:
    """``/lucy skill show <name>``: the skill's front matter and instructions."""
    deps, name = listener_deps(context), rest.strip().lower()
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=str(command["team_id"]))
        row = await skills.newest(session, workspace_id, name)
        text = views.show_text(row) if row is not None and not row.removed else _no_such(name)
    await ack(_ephemeral(text))


def _no_such(name: str) -> str:
    shown = name if views.NAME.match(name) else "that name"
    return f"There is no skill `{shown}` in this workspace (`/lucy skills` lists them)."


def on_skill_change(word: str) -> Any:
    """``/lucy skill remove|disable|enable <name>``: a new version saying so."""

    async def handle(ack: AsyncAck, rest: str, command: dict[str, Any], context: AsyncBoltContext) -> None:
        deps, name = listener_deps(context), rest.strip().lower()
        team, user = str(command["team_id"]), str(command["user_id"])
        refused = await refusal(deps, context.client, team, user)
        if refused:
            await ack(_ephemeral(refused))
            return
        async with deps.sessions.begin() as session:
            workspace_id = await upsert_workspace(session=session, slack_team_id=team)
            row = await skills.change_skill(session, workspace_id, name, CHANGES[word], by=user)
            text = views.changed_text(row) if row is not None else _no_such(name)
        log.info("skill changed", skill=name, change=CHANGES[word], by=user, done=row is not None)
        await ack(_ephemeral(text))

    return handle


async def on_skills_setting(
    ack: AsyncAck, arg: str, command: dict[str, Any], context: AsyncBoltContext
) -> None:
    """``/lucy settings skills admins-only|everyone`` (admins only)."""
    deps, value = listener_deps(context), arg.strip().lower()
    team, user = str(command["team_id"]), str(command["user_id"])
    if value not in WHO_ADDS_VALUES:
        await ack(_ephemeral("Usage: `/lucy settings skills admins-only|everyone`"))
        return
    if not is_admin((await caller(deps, context.client, team, user)).role):
        await ack(_ephemeral(NOT_ADMIN))
        return
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        await update_workspace_settings(session=session, workspace_id=workspace_id, values={WHO_ADDS: value})
    who = "only workspace admins" if value == "admins-only" else "every member"
    await ack(_ephemeral(f"Done: {who} can add and change skills."))


async def on_add_button(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
    """App Home's Add skill button: the modal."""
    await ack()
    await _open_modal(context.client, str(body.get("trigger_id") or ""), views.add_modal())


async def on_add_submit(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
) -> None:
    """Save skill: a malformed file stays in the modal with the reason; a good one is saved and
    confirmed in the member's DM with Lucy."""
    deps = listener_deps(context)
    team, user = clicker_of(body, context)
    text = submitted(view, views.ADD_BLOCK, views.ADD_INPUT)
    refused = await refusal(deps, context.client, team, user)
    try:
        answer = refused or await save(deps, team, user, text)
    except SkillRefused as exc:
        await ack(response_action="errors", errors={views.ADD_BLOCK: str(exc)[:1500]})
        return
    if refused:
        await ack(response_action="errors", errors={views.ADD_BLOCK: refused})
        return
    await ack()
    try:
        await context.client.chat_postMessage(channel=user, text=answer)
    except SlackApiError as exc:
        log.warning("skill saved; the confirmation was not posted", error=str(exc.response.get("error")))


async def _requester_of(deps: ListenerDeps, team: str, workflow_id: str) -> tuple[str, str] | None:
    """(workspace id, the requester's Slack id) of the task ``workflow_id`` of ``team``, or None."""
    if not belongs_to_team(workflow_id, team):
        return None
    async with deps.sessions.begin() as session:
        workspace_id = await upsert_workspace(session=session, slack_team_id=team)
        row = await get_task(session=session, workspace_id=workspace_id, workflow_id=workflow_id)
        requester = await session.get(User, row.requester_id) if row and row.requester_id else None
    return (str(workspace_id), requester.slack_user_id) if requester is not None else None


async def on_save_click(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
    """Save as skill under an answer: the requester gets a modal at once ("drafting…"), and
    ``LucySkillDraftWorkflow`` fills it with the draft (one model call); saved only on submit."""
    await ack()
    deps, (team, user) = listener_deps(context), clicker_of(body, context)
    workflow_id = str(((body.get("actions") or [{}])[0]).get("value") or "")
    trigger = str(body.get("trigger_id") or "")
    task = await _requester_of(deps, team, workflow_id)
    refused = await refusal(deps, context.client, team, user)
    if task is None or task[1] != user or refused:
        why = refused or "Only the person who asked for this task can save it as a skill."
        await _open_modal(context.client, trigger, views.notice_modal(why))
        return
    view_id = await _open_modal(context.client, trigger, views.loading_modal())
    if not view_id:
        return
    try:
        await deps.temporal.start_workflow(
            SKILL_DRAFT_WORKFLOW_NAME,
            DraftInput(
                workspace_id=task[0], task_workflow_id=workflow_id, view_id=view_id, slack_user_id=user
            ),
            id=draft_workflow_id(team, view_id),
            task_queue=deps.settings.temporal.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            priority=interactive_priority(team),
        )
    except RPCError as exc:
        log.warning("skill draft not started", error=exc.__class__.__name__)
        await context.client.views_update(view_id=view_id, view=views.notice_modal(NOT_STARTED))
        return
    log.info("skill draft started", workflow_id=workflow_id, view_id=view_id)


MAX_UPLOAD_BYTES = 64_000


def skill_file(event: dict[str, Any]) -> dict[str, Any] | None:
    """The SKILL.md among a message's files (a name ending in ``SKILL.md``), if any."""
    files = event.get("files") or []
    return next((f for f in files if str(f.get("name") or "").lower().endswith("skill.md")), None)


async def _download(client: AsyncWebClient, file_id: str) -> str:
    """The text of an uploaded file, read with the bot token (``files.info``, then its private
    URL, only on Slack's own hosts); :class:`SkillRefused` when it cannot be read."""
    try:
        info = (await client.files_info(file=file_id)).get("file") or {}
    except SlackApiError as exc:
        raise SkillRefused(f"I couldn't read the file from Slack ({exc.response.get('error')}).") from None
    url = str(info.get("url_private_download") or info.get("url_private") or "")
    slack_hosts = {"files.slack.com", urlsplit(client.base_url).hostname}
    if urlsplit(url).hostname not in slack_hosts or int(info.get("size") or 0) > MAX_UPLOAD_BYTES:
        raise SkillRefused(f"The file is not a SKILL.md I can read (at most {MAX_UPLOAD_BYTES:,} bytes).")
    async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as http:
        try:
            response = await http.get(url, headers={"Authorization": f"Bearer {client.token}"})
        except httpx.HTTPError:
            raise SkillRefused("I couldn't download the file from Slack just now; try again.") from None
    if response.status_code != 200 or len(response.content) > MAX_UPLOAD_BYTES:
        raise SkillRefused("I couldn't download the file from Slack; try again.")
    try:
        return response.content.decode("utf-8")
    except UnicodeDecodeError:
        raise SkillRefused("The file is not UTF-8 text.") from None


async def on_skill_upload(event: dict[str, Any], team: str, context: AsyncBoltContext) -> None:
    """A SKILL.md uploaded in Lucy's DM: added like ``/lucy skill add``; the answer in the DM."""
    deps, client = listener_deps(context), context.client
    user, channel, found = str(event["user"]), str(event["channel"]), skill_file(event)
    assert found is not None
    answer = await refusal(deps, client, team, user)
    if answer is None:
        try:
            answer = await save(deps, team, user, await _download(client, str(found.get("id") or "")))
        except SkillRefused as exc:
            answer = f"I can't add that skill. {exc}"
    try:
        await client.chat_postMessage(channel=channel, text=answer)
    except SlackApiError as exc:
        log.warning("skill upload answered nowhere", error=str(exc.response.get("error")))


def register(app: AsyncApp) -> None:
    app.view(views.ADD_CALLBACK)(on_add_submit)
    app.action(views.ADD_BUTTON)(on_add_button)
    app.action(SAVE_ACTION_ID)(on_save_click)
