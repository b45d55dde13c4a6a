"""Lucy's task queues by role, named from the configured base queue Q
(``LUCY_TEMPORAL_TASK_QUEUE``): workflow tasks (and the activities that reach only PostgreSQL and
Temporal) on Q itself, LLM calls on ``Q-llm``, tools on ``Q-tools``, Slack I/O on ``Q-slack``.
Which activity runs on which role is decided in one place,
:mod:`capabilities.task.workflow.queues`; ``lucy worker --queues`` picks the roles one process
serves (docs/scaling.md)."""

from __future__ import annotations

from enum import StrEnum


class QueueRole(StrEnum):
    """A kind of work with a task queue, a worker Deployment and concurrency limits of its own."""

    WORKFLOWS = "workflows"
    LLM = "llm"
    TOOLS = "tools"
    SLACK = "slack"


ALL_ROLES: tuple[QueueRole, ...] = tuple(QueueRole)


def queue_name(base: str, role: QueueRole) -> str:
    """The task queue of ``role``: the base queue itself for workflows (every start, schedule
    and recorded history keeps its queue), ``<base>-<role>`` for the others."""
    return base if role is QueueRole.WORKFLOWS else f"{base}-{role.value}"


def parse_roles(text: str) -> tuple[QueueRole, ...]:
    """``"workflows,llm"`` -> the roles, in order, each once; an unknown or missing name raises
    :class:`ValueError` with one line naming it and the roles there are."""
    known = ", ".join(ALL_ROLES)
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not names:
        raise ValueError(f"--queues names no role (roles: {known})")
    roles: list[QueueRole] = []
    for name in names:
        if name not in QueueRole.__members__.values():
            raise ValueError(f"unknown queue role {name!r} in --queues (roles: {known})")
        role = QueueRole(name)
        if role not in roles:
            roles.append(role)
    return tuple(roles)
