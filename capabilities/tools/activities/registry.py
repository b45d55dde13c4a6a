"""Every tool Lucy has, one line each, in the order the model is offered them.

Adding a tool: declare its :class:`~capabilities.tools.spec.ToolSpec` next to its activity, and
add it here. The workflow, the policy, the context and approvals activities and the worker read
this registry (as ``registry.TOOLS``, at call time); a name that is not here is refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from capabilities.delegate.activities import DELEGATE_SPEC
from capabilities.mcp.activities import tool_spec
from capabilities.memory.activities import tools as memory
from capabilities.skills.activities import USE_SKILL
from capabilities.tools.activities import browser, composio, email, files, gateway, proactive, slack_history
from capabilities.tools.contracts import WorkspaceTool
from capabilities.tools.spec import Registry

TOOLS = Registry(
    [
        gateway.EXEC,
        gateway.READ_FILE,
        gateway.WRITE_FILE,
        gateway.EDIT_FILE,
        gateway.WEB_FETCH,
        browser.BROWSER,
        composio.COMPOSIO_EXECUTE,
        email.SEND_EMAIL,
        slack_history.SLACK_HISTORY,
        files.CREATE_FILE,
        proactive.SCHEDULE_TASK,
        proactive.CREATE_MONITOR,
        DELEGATE_SPEC,
        memory.REMEMBER,
        memory.RECALL,
        memory.FORGET,
        USE_SKILL,
    ]
)


def for_task(workspace_tools: Iterable[WorkspaceTool]) -> Registry:
    """The tools of one task: every tool above, plus its workspace's own (MCP servers'), read
    from the task's context. A workspace tool never replaces one of Lucy's."""
    extra = [tool_spec(t) for t in workspace_tools if t.name not in TOOLS]
    return TOOLS.with_tools(*extra) if extra else TOOLS
