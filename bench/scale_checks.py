"""Nothing lost, nothing done twice: every task of a scale-out run checked against three records
that do not share a writer.

* **Slack** (the fake's record): exactly one answer in the task's channel; exactly one approval
  request posted for a task that asked for one, none for the others.
* **The gateway** (the fake's record): each approved command ran exactly once, and nothing else ran.
* **PostgreSQL** (as the superuser, across tenants): exactly one ``tasks`` row per workflow id,
  ``completed``; no other task in the run's workspaces; for a command, one ``approved`` approval
  and one completed ``tool_use`` step.
* **Temporal** (visibility and ``describe``): each workflow completed; no task workflow of the
  run's workspaces still running.

A task short of something is *lost*, one with something twice (or an extra task) *duplicated*.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

import asyncpg
from temporalio.client import Client, WorkflowExecutionStatus

from bench.scale_load import Task, answers, approval_posts
from lucy.contracts.ids import TASK_WORKFLOW_NAME
from tests.fakes.gateway import FakeGateway
from tests.fakes.slack import FakeSlack


@dataclass
class Verdict:
    """Counts per check; ``problems`` names each task that failed one (the first few)."""

    tasks: int = 0
    unchecked: int = 0  # commands never acknowledged: the person saw Slack's error
    answered: int = 0
    lost: set[str] = field(default_factory=set)
    duplicated: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.answered == self.tasks and not self.lost and not self.duplicated

    def short(self, task: Task, what: str) -> None:
        self._note(self.lost, task.workflow_id, what)

    def twice(self, task_or_id: Task | str, what: str) -> None:
        wid = task_or_id if isinstance(task_or_id, str) else task_or_id.workflow_id
        self._note(self.duplicated, wid, what)

    def _note(self, into: set[str], wid: str, what: str) -> None:
        into.add(wid)
        self.counts[what] += 1
        if len(self.problems) < 20:
            self.problems.append(f"{what}: {wid}")

    def lines(self) -> list[str]:
        out = [
            f"tasks {self.tasks}, answered {self.answered}, lost {len(self.lost)}, "
            f"duplicated {len(self.duplicated)}; commands never acknowledged (the person saw "
            f"Slack's error, so not checked): {self.unchecked}"
        ]
        out += [f"  {what}: {n}" for what, n in sorted(self.counts.items())]
        out += [f"  {p}" for p in self.problems]
        return out


def check_slack(verdict: Verdict, slack: FakeSlack, tasks: list[Task]) -> None:
    for task in tasks:
        said = len(answers(slack, task.channel))
        if said == 1:
            verdict.answered += 1
        elif said == 0:
            verdict.short(task, "no answer in Slack")
        else:
            verdict.twice(task, f"{said} answers in Slack")
        asked = approval_posts(slack, task.channel)
        if asked != int(task.approval):
            (verdict.twice if asked > 1 else verdict.short)(task, f"{asked} approval requests posted")


def check_gateway(verdict: Verdict, gateway: FakeGateway, tasks: list[Task]) -> None:
    ran = Counter(gateway.commands())
    expected = {t.command: t for t in tasks if t.approval}
    for command, task in expected.items():
        if ran[command] == 0:
            verdict.short(task, "approved command never ran")
        elif ran[command] > 1:
            verdict.twice(task, f"command ran {ran[command]} times")
    for command in set(ran) - set(expected):
        verdict.twice(f"(gateway) {command}", "a command nobody approved ran")


_ROWS = """
SELECT t.workflow_id, t.status::text,
       (SELECT count(*) FROM approvals a WHERE a.task_id = t.id AND a.status::text = 'approved'),
       (SELECT count(*) FROM task_steps s WHERE s.task_id = t.id AND s.kind::text = 'tool_use'),
       (SELECT count(*) FROM task_steps s WHERE s.task_id = t.id AND s.kind::text = 'tool_use'
          AND s.status::text <> 'completed')
FROM tasks t JOIN workspaces w ON w.id = t.workspace_id
WHERE w.slack_team_id = ANY($1::text[])
"""


async def check_database(verdict: Verdict, admin_url: str, tasks: list[Task], known: set[str]) -> None:
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch(_ROWS, sorted({t.team for t in tasks}))
    finally:
        await conn.close()
    by_id: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        by_id.setdefault(row[0], []).append(row)
    for task in tasks:
        found = by_id.pop(task.workflow_id, [])
        if len(found) != 1:
            (verdict.twice if found else verdict.short)(task, f"{len(found)} task rows")
            continue
        _, status, approved, tool_steps, unfinished = found[0]
        if status != "completed":
            verdict.short(task, f"task row {status}")
        if unfinished:  # the retry found the command sent by a dead worker: "it may have run"
            verdict.counts["tool steps not completed (a retry said the command may have run)"] += 1
        if task.approval and (approved, tool_steps) != (1, 1):
            (verdict.twice if max(approved, tool_steps) > 1 else verdict.short)(
                task, f"{approved} approvals, {tool_steps} tool steps recorded"
            )
    for extra in set(by_id) - known:
        verdict.twice(extra, "a task row nobody asked for")


async def check_temporal(verdict: Verdict, client: Client, tasks: list[Task]) -> None:
    gate = asyncio.Semaphore(16)

    async def status(task: Task) -> WorkflowExecutionStatus | None:
        async with gate:
            try:
                return (await client.get_workflow_handle(task.workflow_id).describe()).status
            except Exception:  # not found: the start never reached Temporal
                return None

    for task, st in zip(tasks, await asyncio.gather(*(status(t) for t in tasks)), strict=True):
        if st != WorkflowExecutionStatus.COMPLETED:
            verdict.short(task, f"workflow {st.name if st else 'missing'}")
    teams = " OR ".join(
        f"WorkflowId STARTS_WITH 'lucy-task-{team}-'" for team in sorted({t.team for t in tasks})
    )
    total = await client.count_workflows(f"WorkflowType = '{TASK_WORKFLOW_NAME}' AND ({teams})")
    if total.count > len(tasks):
        verdict.twice("(temporal)", f"{total.count - len(tasks)} task workflows nobody asked for")


async def verify(
    client: Client, slack: FakeSlack, gateway: FakeGateway, admin_url: str, tasks: list[Task]
) -> Verdict:
    """Every check, over every task of the run."""
    # A command Slack got no answer for (an ingress died holding it): Slack showed the person
    # an error and never resends it; a row it left is closed by maintenance.reconcile_claims.
    visible = {
        t.workflow_id for t in tasks if t.kind == "command" and not t.acked and not answers(slack, t.channel)
    }
    checked = [t for t in tasks if t.workflow_id not in visible]
    verdict = Verdict(tasks=len(checked), unchecked=len(visible))
    check_slack(verdict, slack, checked)
    check_gateway(verdict, gateway, checked)
    await check_database(verdict, admin_url, checked, {t.workflow_id for t in tasks})
    await check_temporal(verdict, client, checked)
    return verdict
