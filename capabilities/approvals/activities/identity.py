"""Who really clicked: the worker's check of a signed click before the workflow counts it.

The ``decide_approval`` and ``cancel`` updates carry a claim signed by the ingress (see
:mod:`lucy.signing`). ``identity.verify`` checks the signature, the claim's age and that it
comes from the task's own workspace, then asks Slack (``users.info``, with the bot token) who
the person is: their role, whether they are a guest or from another organisation, whether
their account is deactivated. The workflow's policy decides with that answer, never with
anything the click itself says about the clicker's powers.

A claim that fails is answered with ``Actor.problem`` set (the click then does not count);
Slack being briefly unreachable is a retryable error (the workflow retries a few times, then
tells the clicker to try again).
"""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio import activity
from temporalio.exceptions import ApplicationError

from capabilities.approvals.contracts import Actor, ActorCheck
from capabilities.task.activities.slack import slack_error
from lucy.contracts.errors import ErrorType
from lucy.roles import role_of
from lucy.signing import Claim, ClaimSigner


class IdentityActivities:
    def __init__(self, slack: AsyncWebClient | None, signer: ClaimSigner) -> None:
        self._slack = slack
        self._signer = signer

    @activity.defn(name="identity.verify")
    async def verify(self, check: ActorCheck) -> Actor:
        """The verified clicker, or ``Actor(problem=...)`` when the claim does not hold."""
        problem = self._claim_problem(check)
        if problem is not None:
            activity.logger.warning("a click was refused before it counted", extra={"why": problem})
            return Actor(slack_user_id=check.slack_user_id, problem=problem, role="guest")
        if self._slack is None:
            return Actor(slack_user_id=check.slack_user_id, problem="Slack is not configured", role="guest")
        try:
            response = await self._slack.users_info(user=check.slack_user_id)
        except SlackApiError as exc:
            error = slack_error(exc, "users.info")
            if error.non_retryable:
                return Actor(
                    slack_user_id=check.slack_user_id, problem="Slack does not know this user", role="guest"
                )
            raise error from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApplicationError(
                f"Slack users.info: unreachable ({exc.__class__.__name__})", type=ErrorType.SLACK_RETRYABLE
            ) from None
        user = response.get("user") or {}
        return Actor(
            slack_user_id=check.slack_user_id,
            role=role_of(user, check.expected_team_id),
            deleted=bool(user.get("deleted")),
        )

    def _claim_problem(self, check: ActorCheck) -> str | None:
        if not check.expected_team_id or check.slack_team_id != check.expected_team_id:
            return "the click came from another workspace"
        claim = Claim(
            kind=check.kind,
            workflow_id=check.workflow_id,
            subject=check.subject,
            verdict=check.verdict,
            slack_user_id=check.slack_user_id,
            slack_team_id=check.slack_team_id,
            issued_at=check.issued_at,
        )
        return self._signer.verify(claim, check.signature, now=datetime.now(UTC))
