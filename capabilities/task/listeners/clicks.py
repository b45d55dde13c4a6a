"""Who asks (for schedules and monitors), and answering a click on their buttons wherever the
button was.

In a message (the ephemeral confirmation or list), the answer replaces it through the click's
``response_url``, and a refusal is added beside it, only for the clicker. In App Home there is no
``response_url``: the Home tab is published again (showing the change), and a refusal or an
error reaches the clicker as a DM from Lucy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncRespond
from slack_bolt.kwargs_injection.async_args import AsyncArgs
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from capabilities.budgets.rules import defaults_from
from capabilities.proactive.standing import Caller
from capabilities.task.listeners.deps import ListenerDeps, clicker_of, listener_deps
from capabilities.task.listeners.home import publish_home
from lucy.logging import get_logger

log = get_logger(__name__)


async def caller(deps: ListenerDeps, client: AsyncWebClient, team: str, user: str) -> Caller:
    profile = await deps.directory.get(client, team, user)
    return Caller(
        slack_team_id=team,
        slack_user_id=user,
        role=profile.role if profile else None,
        timezone=(profile.timezone if profile and profile.timezone else "UTC"),
    )


def ephemeral(text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A slash command's answer that only the caller sees."""
    answer: dict[str, Any] = {"response_type": "ephemeral", "text": text}
    if blocks is not None:
        answer["blocks"] = blocks
    return answer


@dataclass(frozen=True)
class Click:
    body: dict[str, Any]
    respond: AsyncRespond
    client: AsyncWebClient
    deps: ListenerDeps
    team: str
    user: str

    @classmethod
    def of(cls, args: AsyncArgs) -> Click:
        """The click a Bolt listener was given (who clicked: Slack's own ids in the payload)."""
        team, user = clicker_of(args.body, args.context)
        return cls(args.body, args.respond, args.client, listener_deps(args.context), team, user)

    @property
    def in_home(self) -> bool:
        return (self.body.get("container") or {}).get("type") == "view"

    async def done(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """The change happened: say so where the button was."""
        if self.in_home:
            await self._republish_home()
            return
        if blocks is None:
            await self.respond(text=text, replace_original=True)
        else:
            await self.respond(text=text, blocks=blocks, replace_original=True)

    async def refused(self, text: str) -> None:
        """It did not happen, and why: only for the clicker."""
        if not self.in_home:
            await self.respond(text=text, replace_original=False, response_type="ephemeral")
            return
        try:
            await self.client.chat_postMessage(channel=self.user, text=text)
        except SlackApiError as exc:
            log.warning("could not tell a Home click's refusal", error=str(exc.response.get("error")))

    async def _republish_home(self) -> None:
        profile = await self.deps.directory.get(self.client, self.team, self.user)
        role = profile.role if profile else None
        await publish_home(
            self.client,
            self.deps.sessions,
            self.team,
            self.user,
            role=role,
            budgets=defaults_from(self.deps.settings.budget),
        )
