"""What loading a skill changes in a running task (pure workflow code).

The ``use_skill`` activity returns the skill's body to the model and, in the task's tool state,
which version it loaded (``skill``), its ``allowed-tools`` (``skill_tools``, JSON, ``null`` for
none) and its ``model-tier`` (``skill_tier``). :func:`loaded` then narrows the task's tools to
the intersection of every loaded skill's list (``skill_allowed``; a skill never adds a tool: the
list only filters what the task offers), applies the tier and sets the ``LucySkill`` search
attribute. Approvals are untouched: every call still goes through the policy.
"""

from __future__ import annotations

import json

from temporalio import workflow

from capabilities.task.contracts.task import TaskState
from lucy.contracts.ids import SA_SKILL
from lucy.contracts.llm import ModelTier

SKILL_PATCH = "skills-use-skill"
USE_SKILL = "use_skill"
USED, TOOLS, TIER = "skill", "skill_tools", "skill_tier"  # set by the use_skill activity
ALLOWED = "skill_allowed"  # set here: the tools every loaded skill allows (JSON list)


def restrict(state: TaskState, names: list[str]) -> list[str]:
    """``names`` limited to what the loaded skills allow (all of them when no skill limits)."""
    raw = state.tool_state.get(ALLOWED)
    if raw is None:
        return names
    allowed = set(json.loads(raw))
    return [n for n in names if n in allowed]


def loaded(state: TaskState) -> None:
    """A ``use_skill`` call succeeded: apply the skill's tool list and tier, mark the task."""
    used = state.tool_state.get(USED)
    if not used or not workflow.patched(SKILL_PATCH):
        return
    tools = json.loads(state.tool_state.get(TOOLS) or "null")
    if isinstance(tools, list):
        before = state.tool_state.get(ALLOWED)
        kept = set(json.loads(before)) if before is not None else None
        state.tool_state[ALLOWED] = json.dumps([t for t in tools if kept is None or t in kept])
    tier = state.tool_state.get(TIER) or ""
    if tier in {t.value for t in ModelTier}:
        state.tier = ModelTier(tier)
    workflow.upsert_search_attributes([SA_SKILL.value_set(used)])
