"""The Bolt app: Lucy's listeners, and a middleware that hands each one its dependencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from app.ingress.listeners import register
from capabilities.task.listeners.deps import CONTEXT_KEY, IngressDeps, ListenerDeps
from capabilities.task.listeners.directory import UserDirectory
from capabilities.task.listeners.start import TaskStarter
from lucy.signing import claim_signer


def build_bolt_app(deps: IngressDeps, *, socket_mode: bool = False) -> AsyncApp | None:
    """The Bolt app with Lucy's listeners, or None when Slack is not configured.

    Socket Mode needs no signing secret (Slack authenticates the WebSocket with the app
    token); over HTTP every request's signature is verified.
    """
    slack = deps.settings.slack
    if slack.slack_bot_token is None or (not socket_mode and slack.slack_signing_secret is None):
        return None
    secret = slack.slack_signing_secret.get_secret_value() if slack.slack_signing_secret else ""
    client = AsyncWebClient(
        token=slack.slack_bot_token.get_secret_value(), base_url=slack.slack_api_url, timeout=10
    )
    app = AsyncApp(
        client=client,
        signing_secret=secret,
        process_before_response=True,
        request_verification_enabled=not socket_mode,
    )

    directory = UserDirectory()
    signer = claim_signer(deps.settings)

    async def inject(context: Any, next: Callable[[], Awaitable[Any]]) -> Any:
        temporal = await deps.temporal()
        context[CONTEXT_KEY] = ListenerDeps(
            starter=TaskStarter(
                temporal=temporal,
                sessions=deps.sessions,
                task_queue=deps.settings.temporal.temporal_task_queue,
                limits=deps.settings.limits,
                budgets=deps.settings.budget,
            ),
            temporal=temporal,
            sessions=deps.sessions,
            directory=directory,
            signer=signer,
            settings=deps.settings,
        )
        return await next()

    app.middleware(inject)
    register(app)
    return app
