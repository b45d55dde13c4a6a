"""The ``delegate`` tool's spec and its activity, ``tools.delegate``: it checks the model's
sub-tasks against the task's own tools and returns them normalised. The plan is thereby fixed in
the task's history (a replay or a retried attempt gets the same sub-tasks, and a later change to
the rules never changes a fan-out in flight); the workflow then starts the children itself
(:mod:`capabilities.delegate.workflow`). Pure and idempotent."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity

from capabilities.delegate.contracts import DELEGATE, OFFERED, PARAMETERS, dump, parse_subtasks
from capabilities.tools.contracts import ToolRequest, ToolResult
from capabilities.tools.deps import ToolDeps
from capabilities.tools.spec import ToolSpec, retry


class DelegateActivities:
    @activity.defn(name="tools.delegate")
    async def check(self, request: ToolRequest) -> ToolResult:
        """The sub-tasks, checked and normalised (JSON), or ``ok=False`` with what is wrong."""
        offered = [t for t in request.state.get(OFFERED, "").split(",") if t]
        subtasks, problem = parse_subtasks(request.arguments, offered)
        if problem is not None:
            return ToolResult(output=problem, ok=False)
        return ToolResult(output=dump(subtasks))


def _build(deps: ToolDeps) -> DelegateActivities:
    return DelegateActivities()


DELEGATE_SPEC = ToolSpec(
    name=DELEGATE,
    description=(
        "Split a big request into independent sub-tasks that run in parallel, each as its own "
        "agent with a subset of your tools, and get each one's result back. Use it only when "
        "the parts do not depend on each other. A sub-task cannot delegate further."
    ),
    parameters=PARAMETERS,
    activity=DelegateActivities.check,
    build=_build,
    timeout=timedelta(seconds=10),
    retry=retry(3),
    label="delegate",
    trusted_output=True,  # the children's results are marked untrusted where they come back
)
