"""Every group of `/lucy` (``schedule``, ``budget``, ``email``, ``webhook``, ``settings``...) is
declared in the command table: the help lists each of its sub-words with their arguments, and
an unknown sub-word gets that group's usage, through a signed slash command to the real ingress."""

from __future__ import annotations

from app.ingress.command_table import usage_text
from app.ingress.commands import PREFIX, TABLE
from tests.conftest import Lucy, new_team

GROUPS = [entry for entry in TABLE if entry.group]


async def _say(lucy: Lucy, text: str, *, team: str, user: str = "U0ALICE") -> str:
    response = await lucy.command(text, team=team, user=user)
    assert response.status_code == 200 and response.json()["response_type"] == "ephemeral"
    return str(response.json()["text"])


def test_the_hand_parsed_commands_are_groups():
    assert {g.name for g in GROUPS} >= {"schedule", "budget", "email", "webhook", "settings"}
    assert all(g.words for g in GROUPS), "a group declares its sub-words"


async def test_help_lists_every_sub_word_of_every_group(lucy: Lucy):
    help_text = await _say(lucy, "help", team=new_team())
    for group in GROUPS:
        line = group.invocation(PREFIX)  # `/lucy settings email-channel #channel | email-outsiders ...`
        for word in group.words:
            shown = word.invocation(f"{PREFIX} {group.name}")
            inline = group.lists_words and f"`{line}`" in help_text and word.invocation() in line
            assert inline or f"`{shown}` — {word.help}" in help_text, f"{shown} is missing from the help"


async def test_an_unknown_sub_word_gets_the_groups_usage(lucy: Lucy):
    team = new_team()
    for group in GROUPS:
        usage = usage_text(group, prefix=PREFIX)
        for text in (f"{group.name} frobnicate", f"{group.name.upper()} frobnicate now"):
            answer = await _say(lucy, text, team=team)
            assert usage in answer, (text, answer)  # not "On it" (a task), not another group's
            assert "On it" not in answer
