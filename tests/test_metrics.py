"""GET /metrics: Prometheus text with Slack, start, LLM and visibility figures."""

from __future__ import annotations

import asyncio
import re

from lucy.contracts import task_workflow_id
from tests.conftest import Lucy, mention_event, new_team


def _value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_metrics_count_events_starts_and_llm_calls(lucy: Lucy):
    before = (await lucy.http.get("/metrics")).text
    team = new_team()
    event = mention_event(team=team, text="metrics please")
    assert (await lucy.post_event(event)).status_code == 200
    assert (await lucy.post_event(event, headers={"X-Slack-Retry-Num": "1"})).status_code == 200
    assert (await lucy.post_event(event, signed=False)).status_code == 401
    ev = event["event"]
    await asyncio.wait_for(
        lucy.client.get_workflow_handle(task_workflow_id(team, ev["channel"], ev["ts"])).result(), 30
    )
    response = await lucy.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("lucy_slack_events_total", type="event:app_mention", outcome="ok") == 2
    assert delta("lucy_slack_events_total", type="event:app_mention", outcome="401") == 1
    assert delta("lucy_workflow_starts_total", outcome="started") == 1
    assert delta("lucy_workflow_starts_total", outcome="duplicate") == 1
    assert delta("lucy_slack_ack_seconds_count", type="event:app_mention") == 3
    # the intent classification and the answer
    assert delta("lucy_llm_request_seconds_count", provider="127.0.0.1", outcome="ok") == 2
    assert re.search(r"^lucy_active_tasks \d", after, re.M)
    assert re.search(r"^lucy_pending_approvals \d", after, re.M)
