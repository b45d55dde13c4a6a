"""Tasks driven through Lucy's ingress processes as Slack and people drive them: signed events
(mentions, DMs) and ``/lucy`` commands, alternating between the ingress processes like a load
balancer, retried as Slack retries; approvals clicked (a signed ``block_actions``) by an admin,
again when the click changed nothing; answers awaited in the fake Slack.

A connection a dead ingress refuses is sent on to the next one at once (a load balancer fails
over; Slack does not see it). An event not acknowledged otherwise (reset, no answer within 3 s,
an HTTP error) is delivered again as Slack delivers it: the same body with
``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason``, at once, after 1 minute and after 5 minutes.
Slack never retries a command or a click: a person clicks again when a click changed nothing
after a while.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from lucy.contracts.ids import command_workflow_id, task_workflow_id
from tests.conftest import block_actions_payload, dm_event, mention_event, sign
from tests.fakes.slack import FakeSlack

ACK_TIMEOUT_S = 3.0  # Slack gives up on a request after 3 s
SLACK_RETRY_DELAYS_S = (0.0, 60.0, 300.0)  # Slack retries an event at once, after 1 min, after 5
CLICK_WAIT_S = 20.0  # a person clicks again when nothing changed for this long
APPROVER = "UADMIN1"  # an admin of every workspace (the fake Slack's convention)
ANSWER_MARKERS = ("You asked:", "Here is what I got")  # DemoLlm's answers (tests/fakes/demo_llm.py)
KINDS = ("mention", "dm", "command")


class Undelivered(RuntimeError):
    """Slack gave up: every delivery of a request failed."""


@dataclass
class Task:
    """One request a person makes, what its workflow id must be, and how it went."""

    index: int
    kind: str  # mention | dm | command
    team: str
    user: str
    channel: str
    text: str
    approval: bool  # asks for ``exec``, which needs an admin's approval
    workflow_id: str
    body: bytes
    content_type: str
    sent_at: float = math.nan
    answered_at: float = math.nan
    acked: bool = False  # Slack got a 200 for the request (else the person saw Slack's error)
    clicks: int = 0

    @property
    def command(self) -> str:
        """The ``exec`` command this task runs once approved."""
        return self.text.removeprefix("run ")

    @property
    def seconds_to_answer(self) -> float:
        return self.answered_at - self.sent_at


def _command_form(team: str, user: str, channel: str, text: str, trigger: str) -> dict[str, str]:
    """``/lucy <text>``, form-encoded as Slack sends a slash command."""
    return {
        "team_id": team,
        "channel_id": channel,
        "user_id": user,
        "command": "/lucy",
        "text": text,
        "api_app_id": "A0LUCY",
        "response_url": "https://hooks.slack.invalid/commands/1",
        "trigger_id": trigger,
    }


def make_task(tag: str, index: int, *, teams: int, approval_every: int) -> Task:
    """Task ``index`` of a run tagged ``tag`` (letters and digits): kinds in turn, a channel of its
    own, every ``approval_every``-th one asking to run a command."""
    kind = KINDS[index % len(KINDS)]
    team, user = f"T{tag}{index % teams:02d}", f"U{tag}{index % 50:03d}"
    approval = approval_every > 0 and index % approval_every == 0
    text = f"run echo {tag}-{index}" if approval else f"question {tag}-{index}"
    ts = f"1700000000.{index:06d}"
    if kind == "command":
        channel, trigger = f"C{tag}{index:05d}", f"{index}.{tag}"
        wid = command_workflow_id(team, channel, trigger)
        body = urlencode(_command_form(team, user, channel, text, trigger)).encode()
        ctype = "application/x-www-form-urlencoded"
    else:
        channel = f"{'C' if kind == 'mention' else 'D'}{tag}{index:05d}"
        event = (
            mention_event(team=team, user=user, channel=channel, ts=ts, text=text)
            if kind == "mention"
            else dm_event(team=team, user=user, channel=channel, text=text, ts=ts, event_ts=ts)
        )
        wid, body, ctype = task_workflow_id(team, channel, ts), json.dumps(event).encode(), "application/json"
    return Task(index, kind, team, user, channel, text, approval, wid, body, ctype)


def make_tasks(tag: str, count: int, *, teams: int = 5, approval_every: int = 5) -> list[Task]:
    return [make_task(tag, i, teams=teams, approval_every=approval_every) for i in range(count)]


# --------------------------------------------------------------------------- the fake Slack's view


def _buttons(message: dict[str, Any]) -> set[str]:
    return {
        e.get("action_id", "")
        for b in message.get("blocks") or []
        if b.get("type") == "actions"
        for e in b.get("elements") or []
    }


def approval_posts(slack: FakeSlack, channel: str) -> int:
    """How many approval requests Lucy posted in ``channel`` (a decision later replaces the
    buttons, so the posts are counted in the fake's journal of calls)."""
    return sum(
        1
        for c in slack.calls_to("chat.postMessage")
        if c.params.get("channel") == channel and "lucy_approve" in json.dumps(c.params.get("blocks") or [])
    )


def answers(slack: FakeSlack, channel: str) -> list[dict[str, Any]]:
    """Lucy's answers in ``channel`` (one channel per task)."""
    return [m for m in slack.messages.get(channel, []) if any(k in m.get("text", "") for k in ANSWER_MARKERS)]


async def until(check: Callable[[], Any], within_s: float, every_s: float = 0.25) -> Any:
    """``check()`` once it is truthy, or None after ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while not (value := check()):
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(every_s)
    return value


# --------------------------------------------------------------------------- the driver


@dataclass
class Driver:
    """Sends requests to the ingress ports in turn; counts what Slack would see."""

    http: httpx.AsyncClient
    slack: FakeSlack
    ports: list[int]
    wait_s: float = 600.0  # how long a task may take before it counts as lost
    retries: int = 0  # deliveries Slack made again (X-Slack-Retry-Num)
    failovers: int = 0  # connections a dead replica refused, sent on to the next one
    undelivered: int = 0
    _turn: int = 0

    def _next_url(self) -> str:
        self._turn += 1
        return f"http://127.0.0.1:{self.ports[self._turn % len(self.ports)]}/slack/events"

    async def deliver(self, body: bytes, content_type: str, *, slack_retries: bool) -> bool:
        """One request, delivered as Slack would (see the module's docstring); whether it was
        acknowledged."""
        delays = SLACK_RETRY_DELAYS_S if slack_retries else ()
        reason = ""
        for attempt in range(len(delays) + 1):
            if attempt:
                self.retries += 1
                await asyncio.sleep(delays[attempt - 1])
            reason = await self._through_balancer(body, content_type, attempt, reason)
            if not reason:
                return True
            if reason == "http_timeout" and not slack_retries:
                return False  # it may have been handled; Slack shows an error, nobody resends it
        self.undelivered += 1
        raise Undelivered(reason)

    async def _through_balancer(self, body: bytes, content_type: str, attempt: int, reason: str) -> str:
        """One delivery through the load balancer: a replica that refuses the connection is
        skipped for the next one. Returns why it failed ("" when it was acknowledged)."""
        headers = {"Content-Type": content_type, **sign(body)}
        if attempt:
            headers |= {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": reason}
        for _ in range(3 * len(self.ports)):
            try:
                response = await self.http.post(
                    self._next_url(), content=body, headers=headers, timeout=ACK_TIMEOUT_S
                )
                return "" if response.status_code == 200 else "http_error"
            except httpx.ConnectError:
                self.failovers += 1  # never reached that replica
                await asyncio.sleep(0.1)
            except (httpx.TimeoutException, httpx.TransportError):
                return "http_timeout"
        return "connection_failed"

    async def run(self, task: Task) -> None:
        """Send ``task``, approve its command if it asks, wait for its answer."""
        task.sent_at = time.monotonic()
        try:
            task.acked = await self.deliver(
                task.body, task.content_type, slack_retries=task.kind != "command"
            )
        except Undelivered:
            return  # Slack gave up; the checks count it as lost
        if task.approval and not await self.approve(task):
            return
        if await until(
            lambda: answers(self.slack, task.channel), self.wait_s - (time.monotonic() - task.sent_at)
        ):
            task.answered_at = time.monotonic()

    async def approve(self, task: Task) -> bool:
        """Click Approve as an admin, again when the message still shows its buttons later."""
        shown = await until(lambda: _pending_approval(self.slack, task.channel), self.wait_s)
        while shown is not None:
            payload = block_actions_payload(
                shown, "lucy_approve", team=task.team, user=APPROVER, channel=task.channel
            )
            form = urlencode({"payload": json.dumps(payload)}).encode()
            try:
                await self.deliver(form, "application/x-www-form-urlencoded", slack_retries=False)
            except Undelivered:
                pass
            task.clicks += 1
            if await until(lambda: not _pending_approval(self.slack, task.channel), CLICK_WAIT_S):
                return True
            if time.monotonic() - task.sent_at > self.wait_s:
                return False
            shown = _pending_approval(self.slack, task.channel)
        return False


def _pending_approval(slack: FakeSlack, channel: str) -> dict[str, Any] | None:
    return next((m for m in slack.messages.get(channel, []) if "lucy_approve" in _buttons(m)), None)


@dataclass
class Phase:
    """Tasks driven with ``concurrency`` of them in flight at most, and the throughput."""

    name: str
    tasks: list[Task]
    started: float = 0.0
    ended: float = 0.0
    answered: int = 0
    times: list[float] = field(default_factory=list)

    @property
    def tasks_per_s(self) -> float:
        return self.answered / (self.ended - self.started) if self.ended > self.started else math.nan

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the seconds to answer (NaN for none)."""
        if not self.times:
            return math.nan
        s = sorted(self.times)
        return s[max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))]


async def drive(driver: Driver, phase: Phase, concurrency: int) -> Phase:
    """Run every task of ``phase``, ``concurrency`` at a time; fill in its figures."""
    gate = asyncio.Semaphore(concurrency)

    async def one(task: Task) -> None:
        async with gate:
            await driver.run(task)

    phase.started = time.monotonic()
    await asyncio.gather(*(one(t) for t in phase.tasks))
    done = [t for t in phase.tasks if not math.isnan(t.answered_at)]
    phase.ended = max((t.answered_at for t in done), default=time.monotonic())
    phase.answered, phase.times = len(done), [t.seconds_to_answer for t in done]
    return phase
