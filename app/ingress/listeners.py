"""Bolt listeners, one module per kind, all registered here in one place."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from app.ingress import commands
from capabilities.email.listeners import outside_clicks as email_outside
from capabilities.feedback import listeners as feedback
from capabilities.mcp import listeners as mcp
from capabilities.proactive.listeners import monitors, patterns, schedules
from capabilities.skills import listeners as skills
from capabilities.task.listeners import actions, assistant, events, home


def register(app: AsyncApp) -> None:
    """Register every listener on ``app``."""
    events.register(app)
    commands.register(app)
    home.register(app)
    assistant.register(app)
    actions.register(app)
    feedback.register(app)
    schedules.register(app)
    monitors.register(app)
    patterns.register(app)
    email_outside.register(app)
    skills.register(app)
    mcp.register(app)
