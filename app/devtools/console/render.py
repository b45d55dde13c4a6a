"""Block Kit and mrkdwn to HTML for the console, escaped: nothing in a message becomes markup.

Text from Slack is already entity-encoded (``&amp; &lt; &gt;``) and its special tokens are the
``<...>`` sequences: mentions ``<@U…>``, channels ``<#C…|name>``, ``<!here>``, dates
``<!date^epoch^format^link|fallback>`` and links ``<url|label>``. Each token is rendered on its
own (a link only for ``http``, ``https`` and ``mailto``), the rest is decoded then escaped with
:func:`html.escape`, and only then are ``*bold*``, ``_italic_``, ``~strike~``, code and quotes
applied, so no character of the text can open a tag or an attribute.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Names = Callable[[str], str | None]  # a user or channel id -> its name, if known

_TOKEN = re.compile(r"<([^<>\n]+)>")
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")
_BOLD = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?!\s)([^~\n]+?)(?<!\s)~(?![\w~])")
_EMOJI = re.compile(r":([a-z0-9_+\-]+):")
EMOJI = {
    "white_check_mark": "✅",
    "heavy_check_mark": "✔️",
    "x": "❌",
    "no_entry": "⛔",
    "no_entry_sign": "🚫",
    "warning": "⚠️",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "alarm_clock": "⏰",
    "lock": "🔒",
    "robot_face": "🤖",
    "mag": "🔍",
    "gear": "⚙️",
    "bell": "🔔",
    "rotating_light": "🚨",
    "large_green_circle": "🟢",
    "large_blue_circle": "🔵",
    "large_orange_circle": "🟠",
    "large_yellow_circle": "🟡",
    "raised_hand": "✋",
    "red_circle": "🔴",
    "page_facing_up": "📄",
    "paperclip": "📎",
    "stopwatch": "⏱️",
    "thinking_face": "🤔",
    "wave": "👋",
    "tada": "🎉",
    "memo": "📝",
    "calendar": "📆",
    "information_source": "\u2139\ufe0f",
    "arrows_counterclockwise": "🔄",
    "pause_button": "⏸️",
    "arrow_forward": "▶️",
    "wastebasket": "🗑️",
    "hammer_and_wrench": "🛠️",
    "speech_balloon": "💬",
    "eyes": "👀",
}
_SAFE_SCHEMES = ("http://", "https://", "mailto:")
_DATE_FORMATS = {
    "date_num": "%Y-%m-%d",
    "date": "%B %d, %Y",
    "date_short": "%b %d, %Y",
    "date_long": "%A, %B %d, %Y",
    "date_pretty": "%B %d, %Y",
    "date_short_pretty": "%b %d, %Y",
    "date_long_pretty": "%A, %B %d, %Y",
    "time": "%H:%M",
    "time_secs": "%H:%M:%S",
}


def esc(text: Any) -> str:
    """Escape for HTML text and double-quoted attributes."""
    return html.escape(str(text), quote=True)


def _decode(text: str) -> str:
    """Slack's three entities back to characters (they are escaped again on output)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _no_names(_: str) -> str | None:
    return None


def _date(body: str) -> str:
    """``!date^1700000000^{date_short} at {time}^https://link|fallback``, in UTC."""
    main, _, fallback = body.partition("|")
    parts = main.split("^")
    try:
        when = datetime.fromtimestamp(int(parts[1]), UTC)
        template = parts[2]
    except (IndexError, ValueError, OverflowError, OSError):
        return esc(_decode(fallback or body))

    def fill(match: re.Match[str]) -> str:
        fmt = _DATE_FORMATS.get(match.group(1))
        return when.strftime(fmt) if fmt else match.group(0)

    shown = re.sub(r"\{(\w+)\}", fill, _decode(template))
    return f'<time datetime="{esc(when.isoformat())}" title="{esc(when.isoformat())}">{esc(shown)} UTC</time>'


def link(url: str, label: str | None = None) -> str:
    """An anchor for a safe URL; anything else is shown as text."""
    shown = esc(label if label else url)
    if not url.lower().startswith(_SAFE_SCHEMES):
        return shown
    return f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer">{shown}</a>'


def _token(body: str, names: Names) -> str:
    target, _, label = body.partition("|")
    if target.startswith("@"):
        uid = target[1:]
        return (
            f'<span class="mention" data-user="{esc(uid)}">@{esc(_decode(label) or names(uid) or uid)}</span>'
        )
    if target.startswith("#"):
        cid = target[1:]
        return f'<span class="mention">#{esc(_decode(label) or names(cid) or cid)}</span>'
    if target.startswith("!date^"):
        return _date(body)
    if target.startswith("!subteam^"):
        return f'<span class="mention">@{esc(_decode(label) or target[9:])}</span>'
    if target.startswith("!"):
        return f'<span class="mention">@{esc(_decode(label) or target[1:])}</span>'
    return link(_decode(target), _decode(label) if label else None)


def _inline(text: str, names: Names) -> str:
    """One line's worth of mrkdwn (no code fences) to HTML."""
    pieces: list[str] = []

    def keep(rendered: str) -> str:
        pieces.append(rendered)
        return f"\x00{len(pieces) - 1}\x00"

    text = text.replace("\x00", "")
    text = re.sub(r"`([^`\n]+)`", lambda m: keep(f"<code>{esc(_decode(m.group(1)))}</code>"), text)
    text = _TOKEN.sub(lambda m: keep(_token(m.group(1), names)), text)
    out = esc(_decode(text))
    out = _BOLD.sub(r"<b>\1</b>", out)
    out = _ITALIC.sub(r"<i>\1</i>", out)
    out = _STRIKE.sub(r"<s>\1</s>", out)
    out = _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), out)
    return _PLACEHOLDER.sub(lambda m: pieces[int(m.group(1))], out)


def mrkdwn(text: str | None, names: Names = _no_names) -> str:
    """Slack mrkdwn to HTML: code fences, quotes, line breaks and the inline rules above."""
    out: list[str] = []
    for index, part in enumerate(str(text or "").split("```")):
        if index % 2:
            out.append(f"<pre>{esc(_decode(part.strip(chr(10))))}</pre>")
            continue
        lines: list[str] = []
        quote: list[str] = []
        for line in part.split("\n"):
            if line.startswith(("&gt;", ">")):
                quote.append(_inline(line.removeprefix("&gt;").removeprefix(">").lstrip(), names))
                continue
            if quote:
                lines.append("<blockquote>" + "<br>".join(quote) + "</blockquote>")
                quote = []
            lines.append(_inline(line, names))
        if quote:
            lines.append("<blockquote>" + "<br>".join(quote) + "</blockquote>")
        out.append("<br>".join(lines).replace("</blockquote><br>", "</blockquote>"))
    return "".join(out)


def text_object(obj: Any, names: Names = _no_names) -> str:
    """A Block Kit text object (``mrkdwn`` or ``plain_text``)."""
    if not isinstance(obj, dict):
        return esc(obj or "")
    if obj.get("type") == "mrkdwn":
        return mrkdwn(obj.get("text"), names)
    return esc(obj.get("text") or "").replace("\n", "<br>")
