"""``LucySkillDraftWorkflow``: Save as skill. Reads the finished task's request and the tool
steps that succeeded, asks the model once (``llm.chat``, budgeted like any call) for a SKILL.md,
and shows it in the requester's modal, which Slack opened at the click. Nothing is saved here:
the requester edits the draft and saves it with the modal's submit (the Add skill path). When
the model cannot answer, the modal shows a skeleton built from the request instead."""

from __future__ import annotations

import json
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    import capabilities.skills.contracts  # noqa: F401
    import lucy.contracts.llm  # noqa: F401
    from capabilities.skills.activities import SkillDraftActivities
    from capabilities.skills.contracts import SKILL_DRAFT_WORKFLOW_NAME, DraftInput, DraftSource, ShowDraft
    from capabilities.task.activities.llm import LlmActivities
    from capabilities.task.workflow import options
    from lucy.contracts.llm import ChatMessage, LlmRequest, ModelTier

READ_TIMEOUT = timedelta(seconds=30)
READ_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)
LLM_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_attempts=3)
DRAFT_PROMPT = (
    "Write a SKILL.md (the Agent Skills format) that lets an assistant do this kind of task again. "
    "Start with YAML front matter between two lines of ---: name (lowercase letters, digits and "
    "hyphens, at most 64 characters), description (one or two sentences: what the skill does and "
    "when to use it), and allowed-tools (a YAML list of the tools the steps used). Then the "
    "instructions in Markdown: the steps, general enough to reuse. Answer with the file only."
)


def source_text(source: DraftSource) -> str:
    steps = "\n".join(f"- {s}" for s in source.steps) or "- (no tool steps: answered directly)"
    return f"The request:\n{source.request}\n\nThe steps that succeeded:\n{steps}"


def skeleton(source: DraftSource) -> str:
    """A draft without the model: the request as the skill's instructions, for the person to edit."""
    words = [
        w for w in "".join(c if c.isalnum() else " " for c in source.request.lower()).split() if w.isascii()
    ]
    name = "-".join(words[:5])[:64].strip("-") or "my-skill"
    request = " ".join(source.request.split())[:300]
    steps = "\n".join(f"{i}. {s}" for i, s in enumerate(source.steps, 1)) or "1. Answer the request."
    return f"---\nname: {name}\ndescription: {json.dumps(request)}\n---\n# {name}\n\n{steps}\n"


def unfenced(text: str) -> str:
    """The model's answer without a Markdown code fence around the whole file."""
    lines = text.strip().split("\n")
    if len(lines) > 2 and lines[0].startswith("```") and lines[-1].strip() == "```":
        lines = lines[1:-1]
    return "\n".join(lines).strip()


@workflow.defn(name=SKILL_DRAFT_WORKFLOW_NAME)
class LucySkillDraftWorkflow:
    @workflow.run
    async def run(self, draft: DraftInput) -> str:
        source: DraftSource = await workflow.execute_activity_method(
            SkillDraftActivities.source,
            draft,
            start_to_close_timeout=READ_TIMEOUT,
            retry_policy=READ_RETRY,
            summary="read the task's request and steps",
        )
        try:
            llm = await workflow.execute_activity_method(
                LlmActivities.chat,
                LlmRequest(
                    messages=[
                        ChatMessage(role="system", content=DRAFT_PROMPT),
                        ChatMessage(role="user", content=source_text(source)),
                    ],
                    tier=ModelTier.DEFAULT,
                    max_tokens=1_500,
                    temperature=0.2,
                    workspace_id=draft.workspace_id,
                    user_id=source.user_id,
                ),
                start_to_close_timeout=options.LLM_TIMEOUT,
                heartbeat_timeout=options.LLM_HEARTBEAT,
                retry_policy=LLM_RETRY,
                summary="LLM call: draft a SKILL.md, default tier",
            )
            text, how = unfenced(llm.content) or skeleton(source), "drafted"
        except ActivityError:
            text, how = skeleton(source), "skeleton"
        await workflow.execute_activity_method(
            SkillDraftActivities.show,
            ShowDraft(view_id=draft.view_id, draft=text),
            start_to_close_timeout=options.SLACK_TIMEOUT,
            retry_policy=options.SLACK_RETRY,
            summary="slack: show the draft in the modal",
        )
        return how
