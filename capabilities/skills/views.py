"""How skills look in Slack: the answers to ``/lucy skills`` and ``/lucy skill ...``, the Add
skill modal (also the Save as skill draft) and the App Home lines. Every text is escaped and
fitted to Slack's limits after escaping."""

from __future__ import annotations

import re
from typing import Any

from capabilities.skills.repository import SkillTrouble
from lucy.db.models import SkillVersion
from lucy.slack.limits import SECTION_TEXT, context, section
from lucy.slack.modals import modal, text_input
from lucy.slack.text import escape_mrkdwn, fit

ADD_CALLBACK = "lucy_skill_add"  # the Add skill modal (and the Save as skill draft)
ADD_BLOCK, ADD_INPUT = "skill_md", "skill_md"
ADD_BUTTON = "lucy_skill_add_open"  # App Home's Add skill button
NAME = re.compile(r"^[a-z0-9-]{1,64}$")
INPUT_CHARS = 3_000  # a plain_text_input's max_length
ANSWER_CHARS = 3_900  # a slash command's ephemeral answer

FORMAT_HINT = (
    "A SKILL.md is YAML front matter between two `---` lines (`name`: lowercase letters, digits and "
    "hyphens; `description`; optional `allowed-tools` and `model-tier`), then the instructions."
)


def _state(row: SkillVersion) -> str:
    return "enabled" if row.enabled else "disabled"


def added_text(row: SkillVersion) -> str:
    verb = "Added" if row.change == "added" else "Updated"
    return fit(
        f"{verb} skill `{row.name}` (version {row.version}): {escape_mrkdwn(row.description)}", ANSWER_CHARS
    )


def changed_text(row: SkillVersion) -> str:
    what = {"enabled": "enabled", "disabled": "disabled", "removed": "removed"}[row.change]
    kept = " Its versions are kept." if row.change == "removed" else ""
    return f"Skill `{row.name}` {what} (version {row.version}).{kept}"


def skill_line(row: SkillVersion) -> str:
    return (
        f"• `{row.name}` v{row.version} ({_state(row)}), added by <@{row.added_by}>: "
        f"{escape_mrkdwn(fit(row.description, 200))}"
    )


def skills_text(rows: list[SkillVersion]) -> str:
    if not rows:
        return "This workspace has no skills yet. Add one with `/lucy skill add` (paste a SKILL.md)."
    return fit("*Skills of this workspace*\n" + "\n".join(skill_line(r) for r in rows), ANSWER_CHARS)


def show_text(row: SkillVersion) -> str:
    tools = ", ".join(row.allowed_tools) if row.allowed_tools is not None else "any the task may use"
    head = (
        f"*{row.name}* v{row.version} ({_state(row)}), added by <@{row.added_by}>\n"
        f"{escape_mrkdwn(row.description)}\nTools: {escape_mrkdwn(tools)}"
        + (f"\nModel tier: {row.model_tier}" if row.model_tier else "")
    )
    body = fit(escape_mrkdwn(row.body).replace("```", "'''"), ANSWER_CHARS - len(head) - 10)
    return f"{head}\n```{body}```"


def add_modal(initial: str = "", *, title: str = "Add skill") -> dict[str, Any]:
    """The modal where a member pastes or edits a SKILL.md; saved only on submit."""
    field: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": ADD_INPUT,
        "multiline": True,
        "max_length": INPUT_CHARS,
    }
    if initial:
        field["initial_value"] = initial[:INPUT_CHARS]
    blocks = [context(escape_mrkdwn(FORMAT_HINT)), text_input(ADD_BLOCK, "SKILL.md", field)]
    return modal(title, blocks, callback_id=ADD_CALLBACK, submit="Save skill")


def loading_modal(title: str = "Save as skill") -> dict[str, Any]:
    """Shown at once while the draft is written (Slack's trigger expires in 3 s)."""
    drafting = section("Drafting a SKILL.md from this task… this takes a few seconds.")
    return modal(title, [drafting], callback_id=ADD_CALLBACK)


def notice_modal(text: str, title: str = "Save as skill") -> dict[str, Any]:
    """A modal that only says something (why a draft is not made)."""
    return modal(title, [section(escape_mrkdwn(text))], close="Close")


def trouble_line(trouble: SkillTrouble) -> str:
    parts = []
    for label, counts in (("thumbs-down", trouble.thumbs_down), ("failed", trouble.failed)):
        if counts:
            ordered = sorted(counts, key=lambda v: int(v) if v.isdecimal() and v.isascii() else 0)
            versions = ", ".join(f"v{escape_mrkdwn(v)}" for v in ordered)
            parts.append(f"{sum(counts.values())} {label} (versions {versions})")
    return f":warning: Skill `{escape_mrkdwn(trouble.name)}`: " + "; ".join(parts)


def home_blocks(troubles: list[SkillTrouble]) -> list[dict[str, Any]]:
    """App Home's skills section: the Add skill button and the skills whose tasks go wrong."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "actions",
            "block_id": "lucy_skills",
            "elements": [
                {
                    "type": "button",
                    "action_id": ADD_BUTTON,
                    "text": {"type": "plain_text", "text": "Add skill"},
                    "value": "add",
                }
            ],
        }
    ]
    if troubles:
        lines = "\n".join(trouble_line(t) for t in troubles[:10])
        blocks.append(section(fit("*Skills to look at* (last 30 days)\n" + lines, SECTION_TEXT)))
    return blocks
