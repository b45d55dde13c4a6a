"""What one tool is, in one place: the :class:`ToolSpec` type and the :class:`Registry` of them.

Each tool declares its spec in its own module, next to the activity that runs it; the registry
module (:mod:`capabilities.tools.activities.registry`) lists them. The workflow (what the model is offered,
how a call runs), the policy (risk, egress, trusted output), the context activity (which tools
are configured), the approvals activity (the audit action) and the worker (which activities to
register) all read the registry. Pure and deterministic: workflows import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from temporalio.common import RetryPolicy

from lucy.contracts.llm import ToolSchema
from lucy.contracts.risk import Risk
from lucy.redact import redact_secrets

if TYPE_CHECKING:
    from capabilities.tools.deps import ToolDeps

# The tool activities that may run long heartbeat while they work (capabilities.tools.activities.liveness): a
# dead
# worker is noticed after this long instead of after the step's start-to-close timeout.
TOOL_HEARTBEAT = timedelta(seconds=10)
# Composio actions and browser actions (a click, a form submit) cannot be resumed and carry no
# idempotency key: a heartbeat timeout while the first attempt still runs (an event-loop
# stall, a slow beat) makes Temporal run the step again. So they get a generous heartbeat
# timeout: a dead worker is still noticed well before the start-to-close timeout, and a stall
# of a few seconds does not run an action twice.
UNRESUMABLE_TOOL_HEARTBEAT = timedelta(seconds=60)

# Requirements that are not a setting of ``Settings.tools``: a Slack bot client, and CamoFox
# answering its health check. Every other name in ``ToolSpec.requires`` is a field of
# ``Settings.tools`` that must be set (not None, not False).
NEEDS_SLACK = "slack"
NEEDS_BROWSER = "browser"

STRING: dict[str, Any] = {"type": "string"}


def retry(attempts: int, *, non_retryable: tuple[str, ...] = ()) -> RetryPolicy:
    """A tool step's retry policy: backoff up to 30 s, never retrying a refusal."""
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


def schema(properties: dict[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    """The JSON schema of a tool's arguments, as the model sees it."""
    return {"type": "object", "properties": properties, "required": list(required)}


def host_of(url: str) -> str:
    """The lower-case host of ``url``; "" when there is none or when the URL is ambiguous
    (a backslash, whitespace, control characters or credentials, which browsers and Python
    parse differently): an unknown host, so the call waits for a person."""
    text = url.strip()
    if any(c in text for c in "\\ \t\r\n@") or any(ord(c) < 32 for c in text):
        return ""
    try:
        return (urlsplit(text).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


@dataclass(frozen=True)
class RiskContext:
    """What a risk function may consider besides the call's arguments."""

    untrusted_seen: bool = False
    known_hosts: tuple[str, ...] = ()


def low_risk(args: dict[str, Any], context: RiskContext) -> Risk:
    return Risk.LOW


def high_risk(args: dict[str, Any], context: RiskContext) -> Risk:
    return Risk.HIGH


def no_egress(args: dict[str, Any]) -> str | None:
    return None


@dataclass(frozen=True)
class ToolSpec:
    """One tool: what the model sees, how its activity runs, and what policy needs to know."""

    name: str
    description: str
    parameters: dict[str, Any]
    activity: Callable[..., Any]  # the activity method that runs it (by reference, not by name)
    build: Callable[[ToolDeps], object]  # the worker builds the activity's instance with this
    timeout: timedelta
    retry: RetryPolicy
    heartbeat: timedelta | None = None
    # A short, secret-free description for the activity summary and the progress message.
    label: str = ""
    label_arg: str | None = None
    risk: Callable[[dict[str, Any], RiskContext], Risk] = low_risk  # pure: by what the call does
    egress_host: Callable[[dict[str, Any]], str | None] = no_egress  # the host a call reaches
    trusted_output: bool = False  # its output is Lucy's own (not content from outside)
    acts_for_requester: bool = False  # it acts on the requester's own connected accounts
    acts_on: str = "something outside"  # what a medium-risk call acts on (the approval's reason)
    requires: tuple[str, ...] = ()  # settings (or NEEDS_*) without which it is not offered
    audit_action: str = "tool_execution"  # the approvals row's action_type

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
        """The step's one-line label (Temporal UI, progress message), redacted and short."""
        detail = str(args.get(self.label_arg, "")) if self.label_arg else ""
        detail = redact_secrets(" ".join(detail.split()))
        if len(detail) > 80:
            detail = detail[:77] + "..."
        return f"{self.label}: {detail}" if detail else self.label


class Registry(Mapping[str, ToolSpec]):
    """The tools by name, in the order they are offered. Immutable: :meth:`with_tools` returns a
    new registry (how tools known only at run time, per workspace, will join)."""

    def __init__(self, specs: Iterable[ToolSpec]) -> None:
        self._specs: dict[str, ToolSpec] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"tool {spec.name!r} is registered twice")
            self._specs[spec.name] = spec

    def __getitem__(self, name: str) -> ToolSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def with_tools(self, *specs: ToolSpec) -> Registry:
        return Registry([*self._specs.values(), *specs])

    def schemas(self, names: Iterable[str]) -> list[ToolSchema]:
        """What the model is shown of the tools ``names`` (each must be registered)."""
        return [
            ToolSchema(name=n, description=self[n].description, parameters=self[n].parameters) for n in names
        ]

    def available(self, met: Callable[[str], bool]) -> list[str]:
        """The tools whose every requirement ``met`` says is met, in order."""
        return [spec.name for spec in self.values() if all(met(need) for need in spec.requires)]

    def audit_action(self, name: str) -> str:
        """The approvals action type of tool ``name`` (``tool_execution`` when it is none)."""
        spec = self._specs.get(name)
        return spec.audit_action if spec is not None else "tool_execution"

    def activities(self, deps: ToolDeps) -> list[Any]:
        """Every tool activity, bound to an instance built once per ``build`` function."""
        instances: dict[Callable[[ToolDeps], object], object] = {}
        bound: dict[tuple[int, str], Any] = {}
        for spec in self.values():
            instance = instances.get(spec.build)
            if instance is None:
                instance = instances[spec.build] = spec.build(deps)
            bound.setdefault(
                (id(instance), spec.activity.__name__), getattr(instance, spec.activity.__name__)
            )
        return list(bound.values())
