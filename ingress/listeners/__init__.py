"""Bolt listeners, one module per kind, all registered here in one place."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from ingress.listeners import (
    actions,
    assistant,
    commands,
    email_outside,
    events,
    feedback,
    home,
    monitors,
    schedules,
)


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
    email_outside.register(app)
