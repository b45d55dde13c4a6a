"""The ``use_skill`` tool: the model loads one of the workspace's enabled skills by name and
gets its instructions. Low risk and trusted output: the text is a member's (a skill can only be
added by a member, never from mail, pages or tool output). It records on the task's row the
version it loaded; what loading changes in the task is :mod:`capabilities.skills.workflow`'s.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from capabilities.skills import repository as skills
from capabilities.skills import views
from capabilities.skills.contracts import DraftInput, DraftSource, ShowDraft
from capabilities.task.activities.slack import slack_error
from capabilities.tools.activities.http_errors import not_configured
from capabilities.tools.contracts import ToolRequest, ToolResult
from capabilities.tools.deps import ToolDeps
from capabilities.tools.spec import STRING, ToolSpec, retry, schema
from lucy.db.repositories.tenants import tenant_transaction


class SkillActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession] | None) -> None:
        self._sessions = sessions

    @activity.defn(name="tools.use_skill")
    async def use_skill(self, request: ToolRequest) -> ToolResult:
        """The body of the enabled skill ``name`` of the task's workspace (a read, plus the
        task row's ``skill`` column: the same value on a retry)."""
        if self._sessions is None:
            raise not_configured("use_skill: this worker has no database")
        name = str(request.arguments.get("name", "")).strip().lower()
        workspace_id = uuid.UUID(request.workspace_id)
        async with tenant_transaction(self._sessions, workspace_id) as session:
            enabled = await skills.current_skills(session, workspace_id, enabled_only=True)
            skill = next((s for s in enabled if s.name == name), None)
            if skill is not None:
                used = f"{skill.name}@{skill.version}"
                await skills.record_use(session, workspace_id, request.workflow_id, used)
        if skill is None:
            names = ", ".join(s.name for s in enabled) or "none"
            return ToolResult(
                output=f"There is no enabled skill named {name!r}. The enabled skills: {names}.",
                ok=False,
                state=dict(request.state),
            )
        limits = ""
        if skill.allowed_tools is not None:
            limits = "\n\nFrom now on this task may use only these tools: " + (
                ", ".join(skill.allowed_tools) or "none"
            )
        return ToolResult(
            output=(
                f"Skill {skill.name} (version {skill.version}), written by a member of this workspace. "
                f"Follow its instructions for this task:\n\n{skill.body}{limits}"
            ),
            state={
                **request.state,
                "skill": used,
                "skill_tools": json.dumps(skill.allowed_tools),
                "skill_tier": skill.model_tier or "",
            },
        )


def _build(deps: ToolDeps) -> SkillActivities:
    return SkillActivities(deps.sessions)


USE_SKILL = ToolSpec(
    name="use_skill",
    description=(
        "Load one of this workspace's skills by name: returns its instructions, to follow for "
        "this task. The skills and what each is for are listed in the system prompt."
    ),
    parameters=schema({"name": STRING}, ("name",)),
    activity=SkillActivities.use_skill,
    build=_build,
    timeout=timedelta(seconds=30),
    retry=retry(3),
    label="load skill",
    label_arg="name",
    trusted_output=True,
)


class SkillDraftActivities:
    """Save as skill: what the draft is made from, and showing it (reads and one Slack call)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], slack: AsyncWebClient | None) -> None:
        self._sessions = sessions
        self._slack = slack

    @activity.defn(name="skills.draft_source")
    async def source(self, draft: DraftInput) -> DraftSource:
        """The task's request and its tool steps that succeeded (their one-line summaries)."""
        workspace_id = uuid.UUID(draft.workspace_id)
        async with tenant_transaction(self._sessions, workspace_id) as session:
            found = await skills.task_and_steps(session, workspace_id, draft.task_workflow_id)
        if found is None:
            raise ApplicationError(
                "the task is not in this workspace", type="TaskNotFound", non_retryable=True
            )
        task, steps = found
        return DraftSource(
            request=(task.request_text or "")[:4_000],
            steps=[f"{s.name}: {str((s.input or {}).get('summary') or s.name)[:200]}" for s in steps][:30],
            user_id=str(task.requester_id or ""),
        )

    @activity.defn(name="skills.show_draft")
    async def show(self, show: ShowDraft) -> None:
        """The draft in the requester's modal; a modal they already closed is left alone."""
        if self._slack is None:
            raise ApplicationError("Slack is not configured", type="SlackNotConfigured", non_retryable=True)
        try:
            await self._slack.views_update(
                view_id=show.view_id, view=views.add_modal(show.draft, title="Save as skill")
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            if error in ("not_found", "view_not_found", "expired_trigger_id"):
                activity.logger.info("the draft's modal is closed", extra={"error": error})
                return
            raise slack_error(exc, "views.update") from None
