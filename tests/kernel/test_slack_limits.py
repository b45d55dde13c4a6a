"""Every Block Kit builder, fed adversarial text, gives a payload Slack accepts: checked with
``slack_sdk.models`` and against the limits slack_sdk does not enforce (blocks per message and
view, section, field, header and confirm texts, button values), counted after escaping.

``BUILDERS`` names every builder; :func:`test_every_builder_is_covered` fails when a module of
``lucy.slack`` gains a public function that returns blocks and is not listed here.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from capabilities.approvals import views as exact_view
from capabilities.budgets import views as budgets
from capabilities.budgets.repository import UsageReport
from capabilities.email.repository import IgnoredMail
from capabilities.feedback import views as feedback
from capabilities.mcp import views as mcp_views
from capabilities.proactive.contracts.schedules import Recurrence, StandingAction
from capabilities.proactive.views import monitors, patterns, schedules, standing
from capabilities.skills import views as skills
from capabilities.skills.repository import SkillTrouble
from capabilities.task.views import blocks, home
from capabilities.task.views.plan import plan_chunks
from lucy.contracts.slack import PlanStep, ProgressView
from lucy.slack import limits, masking, modals
from lucy.slack.limits import block_problems, view_problems
from lucy.slack.text import fit, prepare

NOW = datetime.now(UTC)  # rendering only: any moment will do
EXPIRES = (NOW + timedelta(hours=1)).isoformat()
# What expands under escaping, hides text, or means something to mrkdwn / Markdown.
HOSTILE = "&<>&&<<>>|*_~`[]()!@#\n\t\u202e\u2066\u200b\u00a0 aZ9é😀"
TEXT = st.text(alphabet=st.sampled_from(HOSTILE) | st.characters(), max_size=1_500)
# Builders that return no blocks (or that carry only ids and constants), with the reason.
NOT_BLOCKS = {
    "schedules.draft_value": "parses a button value",
    "monitors.draft_value": "parses a button value",
    "standing.draft_value": "parses a button value",
    "schedules.modal_values": "reads a submitted modal",
    "plan.plan_chunks": "streaming chunks, not blocks",
    "feedback.feedback_block": "ids only (checked inside answer_blocks)",
    "blocks.approval_buttons": "ids only (checked inside approval_message)",
}


def _progress(s: str) -> Any:
    return blocks.progress_blocks(ProgressView(kind="waiting", workflow_id="wf", detail=s, approvers=["U1"]))


def _approval(s: str) -> Any:
    return blocks.approval_message(
        workflow_id="wf",
        approval_id="ap",
        tool=s[:40],
        arguments={s[:30]: s, "": s[:10]},
        attachment=None,
        risk=s[:20],
        because=s * 3,
        reason=s * 3,
        requester="U1",
        approvers=["U2", "U3"],
        expires_at=EXPIRES,
        subtask=s,  # a delegated sub-task's label: the model's title
    )


def _attachment(s: str) -> blocks.Attachment:
    return blocks.Attachment(name=s, sha256="0" * 64, size=len(s))


def _decided(s: str) -> Any:
    return blocks.decided_message(
        tool=s[:40], arguments={}, attachment=_attachment(s), decision=s, decided_by="U1", decided_at=EXPIRES
    )


def _pending(s: str, n: int = 1) -> list[home.PendingLine]:
    details = {"tool": s[:40], "arguments": {s[:30]: s[:2_000]}}
    return [
        home.PendingLine(
            workflow_id=f"wf{i}",
            approval_id=f"ap{i}",
            risk=s[:20],
            summary=s,
            expires_at=NOW,
            details=details,
        )
        for i in range(n)
    ]


def _schedule_line(s: str, i: int = 0) -> schedules.ScheduleLine:
    return schedules.ScheduleLine(
        schedule_id=f"s{i}",
        name=s,
        description=s,
        timezone=s[:50],
        owner_slack_id="U1",
        slack_channel_id="C1",
        active=i % 2 == 0,
        paused_reason=s,
        next_run_at=NOW,
        last_outcome="failed",
    )


def _monitor_line(s: str, i: int = 0) -> monitors.MonitorLine:
    return monitors.MonitorLine(
        monitor_id=f"h{i}",
        name=s,
        every="every hour",
        owner_slack_id="U1",
        slack_channel_id="C1",
        status=("active", "paused", "error")[i % 3],
        alert_state="alerting",
        error_reason=s,
        last_checked_at=NOW,
        last_evidence=s,
    )


def _report(s: str) -> UsageReport:
    models = [(s[:200], Decimal("1.5")), (s[200:400] or "m", Decimal(2))]
    return UsageReport(date.today(), Decimal(10), Decimal(3), Decimal(0), by_model=models)


def _home(s: str) -> Any:
    proactive = [
        *schedules.schedule_list([_schedule_line(s, i) for i in range(20)], admin_view=False, limit=5),
        *monitors.monitor_list([_monitor_line(s, i) for i in range(20)], admin_view=False, usage=s, limit=5),
        *budgets.budget_home_blocks(_report(s)),
    ]
    tasks = [home.TaskLine(workflow_id=f"wf{i}", status="running", request=s) for i in range(10)]
    usage = home.Usage(tasks_used=1, tasks_limit=2, model_calls=3, cost_usd=Decimal(1))
    ignored = IgnoredMail(automatic=len(s), forged=10**9, outside=1)
    return home.home_view(_pending(s, 36), tasks, usage, proactive, ignored)


def _recurrence(s: str) -> Recurrence:
    return Recurrence(text=s, cron="0 9 * * *", every_seconds=0, timezone=s[:60], description=s)


def _schedule_confirmation(s: str) -> Any:
    draft = {"request": s, "when": "every day at 9:00"}
    return schedules.confirmation(
        draft=draft, request=s, recurrence=_recurrence(s), channel="C1", next_runs=[NOW, NOW]
    )


def _monitor_confirmation(s: str) -> Any:
    return monitors.confirmation(
        draft={"condition": s}, kind=s[:30], description=s, every_seconds=900, channel="C1"
    )


def _delete_button(s: str) -> Any:
    button = {"type": "button", "action_id": "x", "text": {"type": "plain_text", "text": "Delete"}}
    button["value"] = "id"
    button["confirm"] = standing.delete_confirm("Delete this?", s, "will not run again.")
    return [{"type": "actions", "elements": [button]}]


def _standing_actions(s: str) -> Any:
    actions = standing.line_actions(schedules.VIEW, item_id="id", name=s, active=False)
    actions["elements"].append(standing.button(monitors.VIEW, "Run", StandingAction.RUN_NOW, "id"))
    return actions


def _pattern_line(s: str, i: int = 0) -> patterns.PatternLine:
    status = ("detected", "suggested", "accepted", "dismissed", s[:20])[i % 5]
    return patterns.PatternLine(
        description=s * 2,
        request=s * 3,
        slack_channel_id="C1",
        occurrences=i,
        status=status,
        offer_after=NOW if i % 2 else None,
    )


def _answer(s: str) -> Any:
    return feedback.answer_blocks(prepare(s * 3)[0], "wf")


# name -> (builds from adversarial text, a view rather than a message)
BUILDERS: dict[str, tuple[Callable[[str], Any], bool]] = {
    "blocks.progress_blocks": (_progress, False),
    "blocks.approval_message": (_approval, False),
    "blocks.decided_message": (_decided, False),
    "blocks.what_will_run": (lambda s: blocks.what_will_run(s[:40], {}, _attachment(s * 3)), False),
    "blocks.argument_blocks": (lambda s: blocks.argument_blocks({s[:40]: s, "": "x"}), False),
    "home.pending_blocks": (lambda s: home.pending_blocks(_pending(s)[0]), False),
    "home.pending_section": (lambda s: home.pending_section(_pending(s, 36)), False),
    "home.home_view": (_home, True),
    "home.plain_home_view": (lambda _s: home.plain_home_view(), True),
    "home.ignored_mail_blocks": (
        lambda s: home.ignored_mail_blocks(IgnoredMail(automatic=len(s), forged=10**12, outside=3)),
        False,
    ),
    "schedules.confirmation": (_schedule_confirmation, False),
    "schedules.schedule_list": (
        lambda s: schedules.schedule_list([_schedule_line(s, i) for i in range(30)], admin_view=True),
        False,
    ),
    "standing.listing": (
        lambda s: standing.listing(s[:100], [], empty=s * 3, command="/lucy schedules", limit=15),
        False,
    ),
    "standing.fields": (lambda s: [standing.fields(s * 3, s)], False),
    "standing.delete_confirm": (_delete_button, False),
    "standing.button": (lambda s: [_standing_actions(s)], False),
    "standing.line_actions": (lambda s: [_standing_actions(s)], False),
    "standing.confirmation_blocks": (
        lambda s: standing.confirmation_blocks(
            monitors.VIEW, draft={"id": "x"}, heading=s[:100], quoted=s, facts=[s * 3, s]
        ),
        False,
    ),
    "standing.standing_list": (
        lambda s: standing.standing_list(
            schedules.VIEW, [[limits.section(s)]] * 20, admin_view=True, empty=s * 3, limit=15
        ),
        False,
    ),
    "schedules.schedule_modal": (lambda s: schedules.schedule_modal("C1"), True),
    "modals.modal": (
        lambda s: modals.modal(
            "Title", [limits.section(s)], callback_id="cb", submit="OK", metadata={"s": s}
        ),
        True,
    ),
    "modals.text_input": (
        lambda s: modals.modal(
            "Title",
            [
                modals.text_input(
                    "b", s[:2000] or "-", {"type": "plain_text_input", "action_id": "v"}, hint=s or "-"
                )
            ],
        ),
        True,
    ),
    "mcp_views.token_modal": (lambda s: mcp_views.token_modal("ops", "https://x.example/" + s, "C1"), True),
    "monitors.confirmation": (_monitor_confirmation, False),
    "patterns.offer_blocks": (
        lambda s: patterns.offer_blocks(_schedule_confirmation(s), pattern_id="p" * 36, description=s * 3),
        False,
    ),
    "patterns.pattern_list": (
        lambda s: patterns.pattern_list([_pattern_line(s, i) for i in range(30)]),
        False,
    ),
    "monitors.monitor_list": (
        lambda s: monitors.monitor_list([_monitor_line(s, i) for i in range(30)], admin_view=True, usage=s),
        False,
    ),
    "monitors.line_section": (lambda s: [monitors.line_section(_monitor_line(s))], False),
    "budgets.budget_home_blocks": (lambda s: budgets.budget_home_blocks(_report(s * 3)), False),
    "feedback.answer_blocks": (_answer, False),
    "limits.section": (lambda s: [limits.section(s * 3)], False),
    "limits.sections": (lambda s: limits.sections(s * 9), False),
    "limits.context": (lambda s: [limits.context(s * 3)], False),
    "exact_view.checking_modal": (lambda s: exact_view.checking_modal(), True),
    "exact_view.refused_modal": (lambda s: exact_view.refused_modal(s * 3), True),
    "exact_view.decided_modal": (lambda s: exact_view.decided_modal(s * 3), True),
    "exact_view.exact_modal": (
        lambda s: exact_view.exact_modal(
            workflow_id="wf", approval_id="ap", tool=s[:40] * 3, arguments={s[:30]: s, "": s[:10]}
        ),
        True,
    ),
    "skills.add_modal": (lambda s: skills.add_modal(s * 3), True),
    "skills.loading_modal": (lambda s: skills.loading_modal(), True),
    "skills.notice_modal": (lambda s: skills.notice_modal(s * 3), True),
    "skills.home_blocks": (
        lambda s: skills.home_blocks(
            [SkillTrouble(name=s[:64], thumbs_down={str(i): i for i in range(40)}, failed={s[:9]: 3})] * 12
        ),
        False,
    ),
    "masking.exact_view_buttons": (lambda s: [masking.exact_view_buttons("wf" * 40, "ap" * 18)], False),
    "masking.decision_buttons": (
        lambda s: [masking.decision_buttons("wf" * 40, "ap" * 18, "lucy_approve", "Approve")],
        False,
    ),
}


def _problems(payload: Any, view: bool) -> list[str]:
    if view:
        return view_problems({"type": "home", **payload} if "type" not in payload else payload)
    return block_problems(payload)


@pytest.mark.parametrize("name", sorted(BUILDERS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=TEXT)
@example(s="&" * 1_500)
@example(s="<" * 1_500)
@example(s=">&<" * 500)
@example(s="a" * 1_500)
@example(s="")
def test_every_builder_gives_blocks_slack_accepts(name: str, s: str):
    build, view = BUILDERS[name]
    payload = build(s)
    assert _problems(payload, view) == [], f"{name} with {s[:40]!r}…"


def _public_builders() -> set[str]:
    """``module.function`` for each public function of lucy/slack/*.py returning dicts."""
    found = set()
    for path in Path(blocks.__file__).parent.glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and node.returns:
                if "dict[str, Any]" in ast.unparse(node.returns):
                    found.add(f"{path.stem}.{node.name}")
    return found


def test_every_builder_is_covered():
    missing = _public_builders() - set(BUILDERS) - set(NOT_BLOCKS)
    assert not missing, f"builders without a limits test: {sorted(missing)}"


def test_escaping_heavy_schedule_request_is_shown_in_full_over_several_sections():
    request = "&<>" * 500  # 1,500 characters: 6,500 once escaped
    shown = _schedule_confirmation(request)
    assert block_problems(shown) == []
    quoted = "".join(b["text"]["text"] for b in shown if b["type"] == "section" and "text" in b)
    assert quoted.count("&amp;&lt;&gt;") == 500  # nothing lost, nothing cut inside an entity


def test_home_with_36_pending_approvals_lists_five_then_counts_the_rest():
    view = _home("approve me")
    assert view_problems(view) == []
    buttons = [b for b in view["blocks"] if b.get("block_id", "").startswith("lucy_approval_")]
    assert len(buttons) == home.HOME_APPROVALS == 5
    texts = json.dumps(view["blocks"])
    assert "and 31 more waiting for you" in texts


def test_a_long_reason_and_host_are_capped_after_escaping_in_the_approval():
    shown = blocks.approval_message(
        workflow_id="wf",
        approval_id="ap",
        tool="web_fetch",
        arguments={"url": "https://example.com"},
        attachment=None,
        risk="high",
        because="it reaches " + "h&" * 1_525,  # a 3,050-character host
        reason="&" * 1_000,
        requester="U1",
        approvers=[],
        expires_at=EXPIRES,
    )
    assert block_problems(shown) == []
    texts = [b["text"]["text"] for b in shown if b["type"] == "section"]
    texts += [e["text"] for b in shown if b["type"] == "context" for e in b["elements"]]
    assert all(len(t) <= 3_000 and not t.endswith(("&", "&a", "&am", "&amp")) for t in texts)


def test_argument_names_are_never_empty_and_show_hidden_characters():
    (rich,) = blocks.argument_blocks({"": "a", "pa\u202eth": "b"})
    names = [e["elements"][0]["text"] for e in rich["elements"] if e["type"] == "rich_text_section"]
    assert names == ['""', "pa⟦U+202E⟧th"]


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("abc", 3, "abc"),
        ("abcdef", 4, "abc…"),
        ("a&amp;b", 4, "a…"),  # never "a&a…"
        ("ab <https://x.example|x> c", 10, "ab …"),  # never half a link
        ("&lt;&lt;", 7, "&lt;…"),
    ],
)
def test_fit_cuts_after_escaping_and_never_inside_an_entity_or_link(text: str, limit: int, expected: str):
    assert fit(text, limit) == expected


def test_plan_step_titles_are_capped_after_escaping():
    view = ProgressView(
        kind="running", workflow_id="wf", plan=[PlanStep(id="1", title="&" * 500, status="pending")]
    )
    (_, task) = plan_chunks(view)
    assert len(task["title"]) <= 120
