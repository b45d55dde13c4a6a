"""Blocks Slack refuses lose nothing on ingress paths either: App Home (``views.publish``)
falls back to a view of plain words, and the schedule modal's confirmation
(``chat.postEphemeral``) to its text alone, in the channel. Through the real ingress, with the
fake Slack refusing the first call as Slack does (``invalid_arguments`` for a view,
``invalid_blocks`` for a message)."""

from __future__ import annotations

import json

from tests.conftest import Lucy, eventually, new_team
from tests.fakes.slack import FakeSlack
from tests.proactive.test_schedule_offers import _submission
from tests.proactive.test_schedules import CHANNEL
from tests.proactive.test_schedules import _forget as forget_schedules


def _home_opened(team: str, user: str) -> dict:
    return {
        "token": "legacy",
        "team_id": team,
        "api_app_id": "A0LUCY",
        "type": "event_callback",
        "event_id": f"EvHOMEREFUSED{team}",
        "event_time": 1,
        "event": {"type": "app_home_opened", "user": user, "channel": "D0REFUSED", "tab": "home"},
    }


async def test_a_refused_home_view_is_published_in_plain_words(lucy: Lucy, fake_slack: FakeSlack):
    team, user = new_team(), "U0REFUSED"
    fake_slack.fail("views.publish", error="invalid_arguments")
    assert (await lucy.post_event(_home_opened(team, user))).status_code == 200
    view = await eventually(lambda: fake_slack.views.get(user), "a Home view")
    first, second = fake_slack.calls_to("views.publish")[-2:]
    assert first.params["view"] != second.params["view"]  # the full view, then the plain one
    shown = json.dumps(view)
    assert view["type"] == "home" and "`/lucy tasks`" in shown and "`/lucy approvals`" in shown


async def test_a_refused_confirmation_is_shown_as_text_in_the_channel(lucy: Lucy, fake_slack: FakeSlack):
    team = new_team()
    try:
        await lucy.command("schedule", team=team, channel=CHANNEL)
        modal = (await eventually(lambda: fake_slack.modals, "the modal"))[-1]["view"]
        fake_slack.fail("chat.postEphemeral", error="invalid_blocks")
        good = _submission(
            modal, team=team, user="U0ALICE", what="post the metrics", when="every day at 9:00", where=CHANNEL
        )
        assert (await lucy.post_form({"payload": json.dumps(good)})).status_code == 200
        (offered,) = await eventually(lambda: fake_slack.ephemerals, "the confirmation")
        assert (offered["channel"], offered["user"]) == (CHANNEL, "U0ALICE")
        assert offered["text"].startswith("Schedule this task?") and not offered.get("blocks")
        assert not [
            c for c in fake_slack.calls_to("chat.postMessage") if c.params.get("channel") == "U0ALICE"
        ]
    finally:
        await forget_schedules(lucy.client, lucy.engine, team)
