"""Nothing from outside vanishes ([trust2] item 3): mail Lucy ignores by itself (automatic,
forged, from outside) is counted in App Home for the last 7 days, per workspace. Through signed
``POST /webhooks/agentmail`` deliveries and a signed ``app_home_opened`` event; the real ingress
and PostgreSQL (RLS); the fake Slack records the published view."""

from __future__ import annotations

import json
import uuid
from typing import Any

from lucy.slack.limits import view_problems
from tests.conftest import Lucy
from tests.email.test_email import (  # noqa: F401  (fixtures used by name)
    BOB,
    EVE,
    _bound_workspace,
    _channels,
    _deliver,
    settings,
)
from tests.fakes.agentmail import message_received
from tests.fakes.slack import FakeSlack

FORGED = {"Authentication-Results": "mx.agentmail.to; dmarc=fail (p=reject) header.from=example.com"}


async def _ignored(lucy: Lucy, inbox: str, **mail: Any) -> None:
    thread = f"thr_{uuid.uuid4().hex}"
    event = message_received(inbox_id=inbox, thread_id=thread, message_id=f"<{thread}>", **mail)
    assert (await _deliver(lucy, event)).json()["status"] == "ignored"


async def _home(lucy: Lucy, fake_slack: FakeSlack, team: str) -> dict[str, Any]:
    opened = {
        "team_id": team,
        "api_app_id": "A0LUCY",
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:12].upper()}",
        "event_time": 1,
        "event": {"type": "app_home_opened", "user": BOB, "channel": "D0BOB", "tab": "home"},
    }
    fake_slack.views.pop(BOB, None)
    assert (await lucy.post_event(opened)).status_code == 200
    view: dict[str, Any] = fake_slack.views[BOB]
    assert view_problems(view) == []
    return view


async def test_home_counts_the_mail_lucy_ignored_by_kind_for_its_own_workspace_only(
    lucy: Lucy, fake_slack: FakeSlack
):
    team, inbox = await _bound_workspace(lucy.engine)
    assert "Mail Lucy ignored" not in json.dumps(await _home(lucy, fake_slack, team))  # none: no section

    await _ignored(lucy, inbox, headers={"Auto-Submitted": "auto-replied"})
    await _ignored(lucy, inbox, headers={"List-Id": "<team.lists.example.com>"})
    await _ignored(lucy, inbox, authenticated=False, headers=FORGED)
    await _ignored(lucy, inbox, sender=EVE)
    other_team, other_inbox = await _bound_workspace(lucy.engine)
    await _ignored(lucy, other_inbox, authenticated=False, headers=FORGED)

    shown = json.dumps(await _home(lucy, fake_slack, team))
    assert "Mail Lucy ignored in the last 7 days" in shown
    assert "2 automatic" in shown and "1 forged" in shown and "1 from outside" in shown
    other = json.dumps(await _home(lucy, fake_slack, other_team))
    assert "0 automatic" in other and "1 forged" in other and "0 from outside" in other
