"""Two consecutive tool steps with the same summary (the model reads the same file twice): the
progress message and the history of such a run (replayed by tests/workflows/test_replay.py,
also as recorded by the worker before the live plan: lucy_task_same_tool_twice_old_worker)."""

from __future__ import annotations

import asyncio

from lucy.contracts.ids import task_workflow_id
from tests.conftest import Lucy, mention_event, new_team, record_history
from tests.fakes.gateway import FakeGateway
from tests.fakes.llm import FakeLlm
from tests.fakes.slack import FakeSlack


async def test_the_same_tool_step_twice(
    lucy: Lucy, fake_slack: FakeSlack, fake_llm: FakeLlm, fake_gateway: FakeGateway
):
    fake_gateway.files["/srv/notes.txt"] = "remember the milk"
    fake_llm.then(content="", tool_calls=[("read_file", '{"path": "/srv/notes.txt"}')])
    fake_llm.then(content="", tool_calls=[("read_file", '{"path": "/srv/notes.txt"}')])
    fake_llm.then(content="It says: remember the milk.")
    team = new_team()
    event = mention_event(team=team, text="read /srv/notes.txt twice")
    ev = event["event"]
    workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
    assert (await lucy.post_event(event)).status_code == 200
    result = await asyncio.wait_for(lucy.client.get_workflow_handle(workflow_id).result(), 30)
    assert result["status"] == "completed"
    assert [r["path"] for r in fake_gateway.invoked("read")] == ["/srv/notes.txt", "/srv/notes.txt"]
    await record_history(lucy, workflow_id, "lucy_task_same_tool_twice")
