"""Every tool Lucy has, one line each, in the order the model is offered them.

Adding a tool: declare its :class:`~capabilities.tools.spec.ToolSpec` next to its activity, and
add it here. The workflow, the policy, the context and approvals activities and the worker read
this registry (as ``registry.TOOLS``, at call time); a name that is not here is refused.
"""

from __future__ import annotations

from capabilities.delegate.activities import DELEGATE_SPEC
from capabilities.memory.activities import tools as memory
from capabilities.skills.activities import USE_SKILL
from capabilities.tools.activities import browser, composio, email, files, gateway, proactive, slack_history
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
