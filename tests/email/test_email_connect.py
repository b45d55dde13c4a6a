"""``/lucy email connect`` binds an inbox atomically, to one workspace at most, and only an inbox
of Lucy's own AgentMail organisation: signed slash commands to the real ingress app, the binding
in PostgreSQL, the inbox looked up on the fake AgentMail server through the ``agentmail`` SDK."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.conftest import Lucy, new_team
from tests.email.test_email import settings  # noqa: F401  (AgentMail configured against the fake)
from tests.fakes.agentmail import FakeAgentMail


async def _bound_to(lucy: Lucy, inbox: str) -> list[str]:
    """The teams whose workspace holds ``inbox`` (any case), read across tenants."""
    async with lucy.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT slack_team_id FROM workspaces WHERE lower(settings->>'email_inbox') = lower(:i)"),
            {"i": inbox},
        )
        return [r.slack_team_id for r in rows]


async def _connect(lucy: Lucy, inbox: str, team: str, user: str = "UADMIN1") -> str:
    return str((await lucy.command(f"email connect {inbox}", team=team, user=user)).json()["text"])


async def test_an_inbox_outside_lucys_agentmail_organisation_is_refused(
    lucy: Lucy, fake_agentmail: FakeAgentMail
):
    team = new_team()
    inbox = f"{team.lower()}@agentmail.to"
    refused = await _connect(lucy, inbox, team)
    assert "isn't one of Lucy's AgentMail inboxes" in refused and not refused.startswith("Done")
    assert fake_agentmail.lookups == [inbox] and await _bound_to(lucy, inbox) == []

    fake_agentmail.inboxes.add(inbox)
    fake_agentmail.fail(503)
    unsure = await _connect(lucy, inbox, team)
    assert "couldn't check that inbox with AgentMail" in unsure and await _bound_to(lucy, inbox) == []
    assert fake_agentmail.api_key not in refused + unsure

    assert (await _connect(lucy, inbox.upper(), team)).startswith("Done")
    assert await _bound_to(lucy, inbox) == [team]


async def test_two_workspaces_connecting_one_inbox_at_once_bind_it_to_exactly_one(
    lucy: Lucy, fake_agentmail: FakeAgentMail
):
    first, second = new_team(), new_team()
    inbox = f"shared-{first.lower()}@agentmail.to"
    fake_agentmail.inboxes.add(inbox)
    answers = await asyncio.gather(
        _connect(lucy, inbox, first, "UADMIN1"), _connect(lucy, inbox.upper(), second, "UADMIN2")
    )
    [winner] = [team for team, said in zip((first, second), answers, strict=True) if said.startswith("Done")]
    [loser] = [said for said in answers if not said.startswith("Done")]
    assert "already bound to another workspace" in loser
    assert first not in loser and second not in loser  # which workspace holds it is not said
    assert await _bound_to(lucy, inbox) == [winner]

    again = await _connect(lucy, inbox, winner, "UADMIN1" if winner == first else "UADMIN2")
    assert again.startswith("Done") and await _bound_to(lucy, inbox) == [winner]  # idempotent
