"""The multi-process fault run, small (``bench/scale_out.py`` is the full one): 2 ``lucy ingress``
and 2 ``lucy worker`` processes on the suite's PostgreSQL and Temporal, 20 tasks sent as Slack
sends them (mentions, DMs, ``/lucy``), 4 of them running a command an admin approves with a
signed click; one worker SIGKILLed while tasks are in flight, then restarted, and one ingress
SIGKILLed for good (the requests it would have taken go to the other, as a load balancer sends them). Slack, the
gateway, PostgreSQL and Temporal must agree: every task answered once, every approved command
run once, nothing else."""

from __future__ import annotations

import asyncio
import math
import uuid

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from app.devservers import LocalPostgres
from bench.cluster import running_cluster
from bench.scale_checks import Verdict, check_slack, verify
from bench.scale_load import Driver, Phase, Task, answers, drive, make_tasks
from tests.conftest import eventually


# Five `lucy` processes start on 2 shared cores: give them more than the suite's 300 s when busy.
@pytest.mark.timeout(480)
async def test_a_worker_and_an_ingress_killed_mid_run_lose_and_repeat_nothing(
    postgres: LocalPostgres, temporal_env
):
    temporal = temporal_env.client.service_client.config.target_host
    tag = uuid.uuid4().hex[:6].upper()  # the suite's Temporal and database are shared
    tasks = make_tasks(tag, 20, teams=3, approval_every=5)
    assert {t.kind for t in tasks if t.approval} == {"mention", "dm", "command"}
    async with running_cluster(ingresses=2, queues=[None, None], servers=(postgres, temporal)) as cluster:
        driver = Driver(cluster.http, cluster.slack, [p.port for p in cluster.ingresses], wait_s=120)
        run = asyncio.create_task(drive(driver, Phase("test", tasks), concurrency=10))
        await eventually(lambda: sum(not math.isnan(t.answered_at) for t in tasks) >= 3, "first answers", 120)
        victim, dead_ingress = cluster.workers[0], cluster.ingresses[0]
        victim.kill()
        dead_ingress.kill()  # stays down: the requests it would take go to the other
        in_flight = sum(math.isnan(t.answered_at) for t in tasks)
        await asyncio.sleep(1)
        await cluster.restart(victim)
        phase = await asyncio.wait_for(run, 150)
        # A workflow records its end just after its answer; one whose worker was killed then
        # waits for a workflow task timeout first. Wait for them all (the verdict then sees any
        # that never end).
        await _all_closed(cluster.client, tasks, timeout=60)
        verdict = await verify(cluster.client, cluster.slack, cluster.gateway, cluster.admin_url, tasks)
        # The checks can fail: an answer posted twice and one never posted are both seen (over
        # the tasks the verdict checked: a command an ingress died holding has no answer).
        checked = [
            t
            for t in tasks
            if t.acked or t.kind != "command" or answers(cluster.slack, t.channel) or t in tasks[1:3]
        ]
        cluster.slack.add_message(tasks[1].channel, "You asked: once more", user="UBOTLUCY")
        cluster.slack.messages[tasks[2].channel].clear()
        tampered = Verdict(tasks=len(tasks))
        check_slack(tampered, cluster.slack, checked)

    assert in_flight > 0, "the worker died while tasks were still running"
    assert victim.kills == 1
    assert verdict.ok, "\n".join(verdict.lines())
    # A command an ingress died holding got Slack's error and is not resent (see scale_checks).
    assert verdict.tasks + verdict.unchecked == 20 and verdict.unchecked <= 1
    assert (verdict.answered, len(verdict.lost), len(verdict.duplicated)) == (verdict.tasks, 0, 0)
    assert phase.answered == verdict.tasks and driver.undelivered == 0
    assert driver.failovers > 0, "requests that met the dead ingress went to the other one"
    assert tampered.duplicated == {tasks[1].workflow_id} and tampered.lost == {tasks[2].workflow_id}
    ran, approved = cluster.gateway.commands(), {t.command for t in tasks if t.approval}
    assert (
        len(ran) == len(set(ran)) and set(ran) <= approved and len(ran) >= len(approved) - verdict.unchecked
    )


async def _all_closed(client: Client, tasks: list[Task], *, timeout: float) -> None:
    """Until no task's workflow is running (or ``timeout`` seconds)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if WorkflowExecutionStatus.RUNNING not in [await _status(client, t) for t in tasks]:
            return
        await asyncio.sleep(0.5)


async def _status(client: Client, task: Task) -> WorkflowExecutionStatus | None:
    try:
        return (await client.get_workflow_handle(task.workflow_id).describe()).status
    except RPCError:  # never started (a command an ingress died holding)
        return None
