"""The delegate tool's pure rules (capabilities.delegate.contracts): sub-tasks checked against
the task's own tools, and a sub-task's context limited by its delegation."""

from __future__ import annotations

from capabilities.delegate.contracts import MAX_SUBTASKS, dump, load, parse_subtasks, sub_context
from capabilities.task.contracts.task import Delegation, TaskContext
from capabilities.tools.contracts import WorkspaceTool
from lucy.contracts.llm import ModelTier

OWN = ["exec", "read_file", "delegate"]


def test_sub_tasks_get_the_tasks_own_tools_by_default_and_never_delegate():
    subs, problem = parse_subtasks({"subtasks": [{"title": "  A \n title ", "request": "do a"}]}, OWN)
    assert problem is None
    assert subs[0].title == "A title" and subs[0].tools == ["exec", "read_file"] and subs[0].tier is None
    assert load(dump(subs)) == subs


def test_a_tool_the_task_does_not_have_is_refused_with_words_the_model_can_act_on():
    _, problem = parse_subtasks({"subtasks": [{"title": "A", "request": "a", "tools": ["browser"]}]}, OWN)
    assert problem == "sub-task 1: it may only use your own tools (exec, read_file), not browser"
    _, problem = parse_subtasks({"subtasks": [{"title": "A", "request": "a", "tools": ["delegate"]}]}, OWN)
    assert problem is not None and "not delegate" in problem


def test_malformed_sub_tasks_are_refused():
    too_many = [{"title": str(n), "request": "x"} for n in range(MAX_SUBTASKS + 1)]
    cases = {
        "subtasks must be a non-empty list": {"subtasks": []},
        f"at most {MAX_SUBTASKS} sub-tasks": {"subtasks": too_many},
        "sub-task 1: title must be a non-empty string": {"subtasks": [{"title": " ", "request": "x"}]},
        "sub-task 2: request must be": {"subtasks": [{"title": "a", "request": "x"}, {"title": "b"}]},
        "sub-task 1: tier must be one of": {"subtasks": [{"title": "a", "request": "x", "tier": "huge"}]},
        "sub-task 1: must be an object": {"subtasks": ["just text"]},
        "sub-task 1: request is over": {"subtasks": [{"title": "a", "request": "x" * 5000}]},
    }
    for expected, args in cases.items():
        subs, problem = parse_subtasks(args, OWN)
        assert subs == [] and problem is not None and problem.startswith(expected), (expected, problem)


def test_a_sub_tasks_context_keeps_its_tools_its_slice_and_the_parents_approval_rule():
    ctx = TaskContext(task_id="t", available_tools=OWN, max_steps=12, channel_requires_approval=False)
    d = Delegation(
        parent_workflow_id="p",
        index=1,
        of=2,
        title="A",
        tools=["read_file"],
        max_steps=3,
        requires_approval=True,
    )
    limited = sub_context(ctx, d, 4)
    assert limited.available_tools == ["read_file"] and limited.max_steps == 3
    assert limited.channel_requires_approval  # e.g. a task from email: every call waits for a person
    assert sub_context(ctx, None, 2) == TaskContext(
        task_id="t", available_tools=OWN, max_steps=12, delegate_max_parallel=2
    )
    assert d.label == "Sub-task 1 of 2: A"
    assert parse_subtasks({"subtasks": [{"title": "a", "request": "x", "tier": "fast"}]}, OWN)[0][0].tier == (
        ModelTier.FAST
    )


def test_a_sub_task_gets_only_the_workspace_tools_it_was_given():
    def mcp_tool(name: str) -> WorkspaceTool:
        return WorkspaceTool(
            name=f"mcp__ops__{name}", description=name, parameters={}, server="ops", tool=name
        )

    ctx = TaskContext(
        task_id="t", available_tools=OWN, workspace_tools=[mcp_tool("weather"), mcp_tool("deploy")]
    )
    d = Delegation(parent_workflow_id="p", index=1, of=1, title="A", tools=["mcp__ops__weather"], max_steps=3)
    limited = sub_context(ctx, d, 4)
    assert [t.name for t in limited.workspace_tools] == ["mcp__ops__weather"]
    assert limited.available_tools == []
    assert sub_context(ctx, None, 4).workspace_tools == ctx.workspace_tools  # the task itself keeps all
