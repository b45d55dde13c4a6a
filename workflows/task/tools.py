"""The tools Lucy offers the model: their schemas and the activities that run them.

Pure data (deterministic): the workflow reads it to build the ``tools`` list of each LLM call,
to validate the model's arguments and to pick the activity, timeout and retry policy of each
call. Which calls wait for a person is decided by :mod:`workflows.policy`, by what a call does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.tools.browser import BrowserActivities
    from activities.tools.composio import ComposioActivities
    from activities.tools.email import EmailActivities
    from activities.tools.files import FileActivities
    from activities.tools.gateway import GatewayActivities
    from activities.tools.proactive import ProactiveToolActivities
    from activities.tools.slack_history import SlackHistoryActivities
from lucy.contracts import redact_secrets

# The tool activities that may run long heartbeat while they work (activities.liveness): a dead
# worker is noticed after this long instead of after the step's start-to-close timeout.
TOOL_HEARTBEAT = timedelta(seconds=10)
# Composio actions and browser actions (a click, a form submit) cannot be resumed and carry no
# idempotency key: a heartbeat timeout while the first attempt still runs (an event-loop
# stall, a slow beat) makes Temporal run the step again. So they get a generous heartbeat
# timeout: a dead worker is still noticed well before the start-to-close timeout, and a stall
# of a few seconds does not run an action twice.
UNRESUMABLE_TOOL_HEARTBEAT = timedelta(seconds=60)


def _retry(attempts: int, *, non_retryable: tuple[str, ...] = ()) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=attempts,
        non_retryable_error_types=[
            "ToolBlocked",
            "ToolRejected",
            "ToolNotConfigured",
            "ToolUnavailable",
            *non_retryable,
        ],
    )


@dataclass(frozen=True)
class ToolDef:
    name: str
    description: str
    parameters: dict[str, Any]
    activity: Callable[..., Any]  # the activity method that runs it (by reference, not by name)
    timeout: timedelta
    retry: RetryPolicy
    heartbeat: timedelta | None = None
    # A short, secret-free description for the activity summary and the progress message.
    label: str = ""
    label_arg: str | None = None

    @property
    def required(self) -> tuple[str, ...]:
        """The arguments the schema requires (one source of truth: ``parameters``)."""
        return tuple(self.parameters.get("required", ()))

    @property
    def enums(self) -> dict[str, tuple[str, ...]]:
        """The arguments whose schema lists the allowed values."""
        props = self.parameters.get("properties", {})
        return {name: tuple(spec["enum"]) for name, spec in props.items() if "enum" in spec}

    def summary(self, args: dict[str, Any]) -> str:
        detail = str(args.get(self.label_arg, "")) if self.label_arg else ""
        detail = redact_secrets(" ".join(detail.split()))
        if len(detail) > 80:
            detail = detail[:77] + "..."
        return f"{self.label}: {detail}" if detail else self.label


def _schema(properties: dict[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


_S = {"type": "string"}

TOOLS: dict[str, ToolDef] = {
    t.name: t
    for t in (
        ToolDef(
            name="exec",
            description="Run a shell command on Lucy's workspace machine (OpenClaw gateway). "
            "Returns the combined output and exit code.",
            parameters=_schema(
                {
                    "command": _S,
                    "workdir": _S,
                    "timeout": {"type": "integer", "description": "seconds, default 60"},
                },
                ("command",),
            ),
            activity=GatewayActivities.invoke,
            timeout=timedelta(minutes=15),
            heartbeat=TOOL_HEARTBEAT,
            retry=_retry(3),
            label="gateway exec",
            label_arg="command",
        ),
        ToolDef(
            name="read_file",
            description="Read a text file on Lucy's workspace machine.",
            parameters=_schema({"path": _S}, ("path",)),
            activity=GatewayActivities.invoke,
            timeout=timedelta(seconds=60),
            heartbeat=TOOL_HEARTBEAT,
            retry=_retry(5),
            label="gateway read",
            label_arg="path",
        ),
        ToolDef(
            name="write_file",
            description="Create or overwrite a text file on Lucy's workspace machine.",
            parameters=_schema({"path": _S, "content": _S}, ("path", "content")),
            activity=GatewayActivities.invoke,
            timeout=timedelta(seconds=60),
            heartbeat=TOOL_HEARTBEAT,
            retry=_retry(5),
            label="gateway write",
            label_arg="path",
        ),
        ToolDef(
            name="edit_file",
            description="Replace exact text in a file on Lucy's workspace machine.",
            parameters=_schema(
                {"path": _S, "old_text": _S, "new_text": _S}, ("path", "old_text", "new_text")
            ),
            activity=GatewayActivities.invoke,
            timeout=timedelta(seconds=60),
            heartbeat=TOOL_HEARTBEAT,
            retry=_retry(5),
            label="gateway edit",
            label_arg="path",
        ),
        ToolDef(
            name="web_fetch",
            description="Fetch a web page and return its readable text.",
            parameters=_schema({"url": _S, "max_chars": {"type": "integer"}}, ("url",)),
            activity=GatewayActivities.invoke,
            timeout=timedelta(seconds=90),
            heartbeat=TOOL_HEARTBEAT,
            retry=_retry(4),
            label="web fetch",
            label_arg="url",
        ),
        ToolDef(
            name="browser",
            description="Drive a real browser (CamoFox). Actions: open {url}, navigate {url}, snapshot, "
            "click {ref}, type {ref, text, submit?}, close. Every action returns the page's "
            "accessibility snapshot, whose element refs (e.g. e12) click and type use.",
            parameters=_schema(
                {
                    "action": {
                        "type": "string",
                        "enum": ["open", "navigate", "snapshot", "click", "type", "close"],
                    },
                    "url": _S,
                    "ref": _S,
                    "text": _S,
                    "submit": {"type": "boolean"},
                },
                ("action",),
            ),
            activity=BrowserActivities.browse,
            timeout=timedelta(seconds=120),
            heartbeat=UNRESUMABLE_TOOL_HEARTBEAT,
            retry=_retry(3),
            label="browser",
            label_arg="action",
        ),
        ToolDef(
            name="composio_execute",
            description="Run a Composio integration action (e.g. GITHUB_CREATE_ISSUE) with its arguments, "
            "as the person you work for (through their own connected accounts).",
            parameters=_schema({"action": _S, "arguments": {"type": "object"}}, ("action",)),
            activity=ComposioActivities.execute,
            timeout=timedelta(seconds=120),
            heartbeat=UNRESUMABLE_TOOL_HEARTBEAT,
            retry=_retry(3),
            label="composio",
            label_arg="action",
        ),
        ToolDef(
            name="send_email",
            description="Send an email from Lucy's inbox (AgentMail).",
            parameters=_schema({"to": _S, "subject": _S, "text": _S, "html": _S}, ("to", "subject", "text")),
            activity=EmailActivities.send,
            timeout=timedelta(seconds=60),
            retry=_retry(3),
            label="email",
            label_arg="to",
        ),
        ToolDef(
            name="slack_history",
            description="Search earlier messages of this Slack thread or channel.",
            parameters=_schema(
                {
                    "query": _S,
                    "scope": {"type": "string", "enum": ["thread", "channel"]},
                    "limit": {"type": "integer"},
                },
                (),
            ),
            activity=SlackHistoryActivities.search,
            timeout=timedelta(seconds=30),
            heartbeat=TOOL_HEARTBEAT,
            retry=_retry(5),
            label="slack history",
            label_arg="query",
        ),
        ToolDef(
            name="create_file",
            description="Create a CSV, XLSX or PDF file and upload it to this thread. csv/xlsx take rows "
            "(first row = header); pdf takes content (text or simple HTML).",
            parameters=_schema(
                {
                    "format": {"type": "string", "enum": ["csv", "xlsx", "pdf"]},
                    "filename": _S,
                    "title": _S,
                    "rows": {"type": "array", "items": {"type": "array"}},
                    "content": _S,
                },
                ("format", "filename"),
            ),
            activity=FileActivities.create,
            timeout=timedelta(seconds=120),
            heartbeat=TOOL_HEARTBEAT,
            retry=_retry(4),
            label="file",
            label_arg="filename",
        ),
        ToolDef(
            name="schedule_task",
            description="Offer the requester a recurring task in this channel. It only shows them a "
            "confirmation: nothing is scheduled until they click Create. when: 'every weekday at 9:00', "
            "'every 2 hours', 'every monday at 10:00', 'every month on the 1st at 09:00' or a 5-field cron "
            "expression (their time zone). request: what to do each time, as they would ask it.",
            parameters=_schema({"when": _S, "request": _S}, ("when", "request")),
            activity=ProactiveToolActivities.schedule_task,
            timeout=timedelta(seconds=30),
            retry=_retry(4),
            label="schedule offer",
            label_arg="when",
        ),
        ToolDef(
            name="create_monitor",
            description="Offer the requester a monitor that checks something at a fixed interval and "
            "alerts this channel. It only shows them a confirmation: nothing exists until they click "
            "Create. every: 'every 15 minutes', 'every hour'. condition: 'health <url> [within 2000ms]', "
            "'metric <url> <json.path> <op> <number>', 'schedule <schedule id>' or 'ask [<url>] <yes/no "
            "question>' (yes = alert).",
            parameters=_schema({"every": _S, "condition": _S}, ("every", "condition")),
            activity=ProactiveToolActivities.create_monitor,
            timeout=timedelta(seconds=30),
            retry=_retry(4),
            label="monitor offer",
            label_arg="condition",
        ),
    )
}


def validate_arguments(tool: ToolDef, raw: str) -> tuple[dict[str, Any] | None, str | None]:
    """Parse and check the model's arguments; returns (arguments, None) or (None, an explanation
    the model can act on)."""
    try:
        args = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        return None, (
            f"the arguments were not valid JSON ({exc.msg} at position {exc.pos}); "
            f"call {tool.name} again with a JSON object"
        )
    if not isinstance(args, dict):
        return None, f"the arguments must be a JSON object, not {type(args).__name__}"
    missing = [name for name in tool.required if args.get(name) in (None, "")]
    if missing:
        return None, f"missing required argument(s): {', '.join(missing)}"
    properties = tool.parameters.get("properties", {})
    for name, value in args.items():
        kind = properties.get(name, {}).get("type")
        if kind == "string" and not isinstance(value, str):
            return None, f"argument {name!r} must be a string"
        if kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
            return None, f"argument {name!r} must be an integer"
    for name, allowed in tool.enums.items():
        if name in args and args[name] not in allowed:
            return None, f"argument {name!r} must be one of {', '.join(allowed)}"
    return args, None
