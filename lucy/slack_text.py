"""The output pipeline for everything Lucy posts: redact secrets, turn Markdown into Slack
mrkdwn, split what is too long for one message.

Models answer in GitHub-flavoured Markdown; Slack renders its own dialect (``*bold*``,
``_italic_``, ``<url|text>``, no headings or tables). Code blocks and inline code are left
exactly as they are.
"""

from __future__ import annotations

import re

from lucy.logging import redact_text

# Slack accepts up to 40,000 characters but collapses long messages behind "Show more" and
# recommends staying under 4,000; keep a margin for the continuation marker.
MESSAGE_LIMIT = 3_500

_FENCE = re.compile(r"(```.*?```)", re.S)
_INLINE_CODE = re.compile(r"(`[^`\n]+`)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_STAR = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
_BULLET = re.compile(r"^(\s*)[-*+]\s+", re.M)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", re.M)


def _convert_prose(text: str) -> str:
    parts = _INLINE_CODE.split(text)
    for i in range(0, len(parts), 2):  # even parts are outside inline code
        p = parts[i]
        p = _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", p)
        p = _HEADING.sub(lambda m: f"\x00{m.group(1)}\x00", p)  # bold, after italics are done
        p = _BOLD.sub(lambda m: f"\x00{m.group(2)}\x00", p)
        p = _ITALIC_STAR.sub(lambda m: f"_{m.group(1)}_", p)
        p = _STRIKE.sub(lambda m: f"~{m.group(1)}~", p)
        p = _BULLET.sub(lambda m: f"{m.group(1)}• ", p)
        p = _TABLE_RULE.sub("", p)
        parts[i] = p.replace("\x00", "*")
    return "".join(parts)


def to_mrkdwn(markdown: str) -> str:
    """Markdown -> Slack mrkdwn, leaving fenced and inline code untouched."""
    chunks = _FENCE.split(markdown)
    for i in range(0, len(chunks), 2):  # even chunks are outside code fences
        chunks[i] = _convert_prose(chunks[i])
    return "".join(chunks)


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split ``text`` into messages of at most ``limit`` characters, at paragraph, then line,
    then word boundaries; a code fence cut in two is closed and reopened."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    budget = limit - 8  # room to close and reopen a code fence
    while len(rest) > limit:
        window = rest[:budget]
        cut = max(window.rfind("\n\n"), 0)
        if cut < budget // 2:
            cut = window.rfind("\n")
        if cut < budget // 2:
            cut = window.rfind(" ")
        if cut <= 0:
            cut = budget
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip("\n ")
        if head.count("```") % 2 == 1:  # inside a code block: close it here, reopen in the next part
            head += "\n```"
            rest = "```\n" + rest
        parts.append(head)
    if rest:
        parts.append(rest)
    return parts


def prepare(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """The whole pipeline: redact, convert, split. Never returns an empty list."""
    converted = to_mrkdwn(redact_text(text)).strip()
    return split_message(converted or "(no text)", limit)
