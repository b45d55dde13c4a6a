"""A task's own side of delegation: whether it offers ``delegate`` (tool-use requests, from the
``delegate-subtasks`` patch on; a sub-task never does: its context leaves the tool out), and how
a sub-task starts: no intent classification (it is tool use, at the tier the parent chose), and
the parent's view of the policy (untrusted content seen, the sites the requester named)."""

from __future__ import annotations

from temporalio import workflow

from capabilities.delegate.contracts import DELEGATE, DELEGATE_PATCH
from capabilities.task.contracts.task import TaskInput, TaskState
from capabilities.task.workflow import models
from capabilities.task.workflow.recorder import StepRecorder
from lucy.contracts.ids import TaskIntent


def offer(state: TaskState, tools: list[str]) -> list[str]:
    """``tools`` without ``delegate`` unless this is a tool-use request on a patched run."""
    if DELEGATE not in tools:
        return tools
    if state.intent == TaskIntent.TOOL_USE and workflow.patched(DELEGATE_PATCH):
        return tools
    return [t for t in tools if t != DELEGATE]


async def intent(task: TaskInput, state: TaskState, recorder: StepRecorder) -> TaskIntent:
    """The request's intent: classified, except a sub-task's (tool use)."""
    if task.delegation is None:
        return await models.classify(task, state, recorder)
    state.intent = TaskIntent.TOOL_USE
    return TaskIntent.TOOL_USE


def inherit(task: TaskInput, state: TaskState) -> None:
    """A sub-task keeps the tier it was started at and the parent's policy view: its request is
    the parent's model's words, so the sites it names are not the requester's."""
    d = task.delegation
    if d is None:
        return
    state.tier = task.model_tier
    state.known_hosts = list(d.known_hosts)
    state.untrusted_seen = state.untrusted_seen or d.untrusted_seen
