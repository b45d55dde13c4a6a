"""What the Save as skill draft exchanges: the click's input to ``LucySkillDraftWorkflow``, what
its activities read and show."""

from __future__ import annotations

from dataclasses import dataclass, field

SKILL_DRAFT_WORKFLOW_NAME = "LucySkillDraftWorkflow"
SAVE_ACTION_ID = "lucy_skill_save"  # the Save as skill button under an answer (value: the task id)


def draft_workflow_id(team_id: str, view_id: str) -> str:
    """One draft per opened modal (a redelivered click cannot start a second)."""
    return f"lucy-skill-draft-{team_id}-{view_id}"


@dataclass(frozen=True)
class DraftInput:
    workspace_id: str
    task_workflow_id: str  # the finished task the skill is drafted from
    view_id: str  # the modal showing "drafting…", updated with the draft
    slack_user_id: str  # the requester, who clicked


@dataclass(frozen=True)
class DraftSource:
    """The task's request and the tool steps that succeeded (tool: summary)."""

    request: str
    steps: list[str] = field(default_factory=list)
    user_id: str = ""  # users.id of the requester: whose budget the model call is held against


@dataclass(frozen=True)
class ShowDraft:
    view_id: str
    draft: str
