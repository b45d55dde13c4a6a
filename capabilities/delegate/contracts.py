"""The ``delegate`` tool's contract: its name, its arguments (a list of sub-tasks), how they are
checked against the task's own tools, and the limits of a fan-out. Pure: the workflow and the
activity both read it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from capabilities.task.contracts.task import Delegation, TaskContext
from lucy.contracts.llm import ModelTier

DELEGATE = "delegate"  # the tool's name, as the model sees it
DELEGATE_PATCH = "delegate-subtasks"  # LucyTaskWorkflow offers and runs the tool from this patch on
MAX_SUBTASKS = 8  # sub-tasks in one call
MAX_TITLE_CHARS = 80
MAX_REQUEST_CHARS = 4_000
RESULT_CHARS = 3_000  # of one sub-task's answer given back to the model
SUMMARY_CHARS = 200
OFFERED = "offered"  # the check's ToolRequest.state: the task's own tools, comma-separated
TIERS = (ModelTier.FAST, ModelTier.DEFAULT, ModelTier.FRONTIER, ModelTier.CODE)

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "subtasks": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_SUBTASKS,
            "items": {
                "type": "object",
                "properties": {
                    "title": {"type": "string", "description": "a short name for the sub-task"},
                    "request": {"type": "string", "description": "what the sub-task must do, in full"},
                    "tools": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "the tools it may use (a subset of yours; default: all of yours)",
                    },
                    "tier": {"type": "string", "enum": [t.value for t in TIERS]},
                },
                "required": ["title", "request"],
            },
        }
    },
    "required": ["subtasks"],
}


@dataclass(frozen=True)
class SubTask:
    """One sub-task, checked: its tools are a subset of the task's own (never ``delegate``)."""

    title: str
    request: str
    tools: list[str] = field(default_factory=list)
    tier: ModelTier | None = None


def parse_subtasks(args: dict[str, Any], offered: list[str]) -> tuple[list[SubTask], str | None]:
    """The sub-tasks of a ``delegate`` call, or ([], what is wrong, in words the model can act on)."""
    raw = args.get("subtasks")
    if not isinstance(raw, list) or not raw:
        return [], "subtasks must be a non-empty list of {title, request, tools?, tier?}"
    if len(raw) > MAX_SUBTASKS:
        return [], f"at most {MAX_SUBTASKS} sub-tasks in one call (got {len(raw)})"
    own = [t for t in offered if t != DELEGATE]
    out: list[SubTask] = []
    for n, item in enumerate(raw, 1):
        sub, problem = _one(item, own)
        if sub is None:
            return [], f"sub-task {n}: {problem}"
        out.append(sub)
    return out, None


def _one(item: Any, own: list[str]) -> tuple[SubTask | None, str | None]:
    if not isinstance(item, dict):
        return None, "must be an object with title and request"
    title, request = item.get("title"), item.get("request")
    if not isinstance(title, str) or not title.strip():
        return None, "title must be a non-empty string"
    if not isinstance(request, str) or not request.strip():
        return None, "request must be a non-empty string"
    if len(request) > MAX_REQUEST_CHARS:
        return None, f"request is over {MAX_REQUEST_CHARS} characters"
    tools = item.get("tools")
    if tools is None:
        tools = own
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        return None, "tools must be a list of tool names"
    foreign = [t for t in tools if t not in own]
    if foreign:
        return None, f"it may only use your own tools ({', '.join(own) or 'none'}), not {', '.join(foreign)}"
    tier = item.get("tier")
    if tier is not None and tier not in [t.value for t in TIERS]:
        return None, f"tier must be one of {', '.join(t.value for t in TIERS)}"
    name = " ".join(title.split())[:MAX_TITLE_CHARS]
    return SubTask(name, request.strip(), list(dict.fromkeys(tools)), ModelTier(tier) if tier else None), None


def dump(subtasks: list[SubTask]) -> str:
    """The checked sub-tasks as the activity's output (JSON), read back by :func:`load`."""
    return json.dumps([asdict(s) for s in subtasks])


def load(text: str) -> list[SubTask]:
    return [
        SubTask(d["title"], d["request"], list(d["tools"]), ModelTier(d["tier"]) if d["tier"] else None)
        for d in json.loads(text)
    ]


def sub_context(ctx: TaskContext, delegation: Delegation | None, max_parallel: int) -> TaskContext:
    """A task's context as its delegation limits it: a sub-task is offered only the tools it was
    given, Lucy's and its workspace's alike (never ``delegate``: depth 1), and has only its slice
    of the parent's steps."""
    if delegation is None:
        return replace(ctx, delegate_max_parallel=max_parallel)
    return replace(
        ctx,
        available_tools=[t for t in ctx.available_tools if t in delegation.tools and t != DELEGATE],
        workspace_tools=[t for t in ctx.workspace_tools if t.name in delegation.tools],
        max_steps=max(1, min(ctx.max_steps, delegation.max_steps)),
        channel_requires_approval=ctx.channel_requires_approval or delegation.requires_approval,
        delegate_max_parallel=max_parallel,
    )
