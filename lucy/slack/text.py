"""The output pipeline for everything Lucy posts from a model: redact secrets, cap the size,
turn Markdown into Slack mrkdwn with every ``&``, ``<`` and ``>`` escaped, split what is too
long for one message.

Models answer in GitHub-flavoured Markdown; Slack renders its own dialect (``*bold*``,
``_italic_``, ``~strike~``, no headings or tables). Model output is untrusted: in Slack's
markup ``<!channel>`` pings a channel, ``<@U123>`` a person and ``<https://evil|https://okta>``
is a link whose label lies about its target. So the pipeline escapes ``&<>`` everywhere (code
included: Slack wants code escaped too), and the only ``<...>`` it emits is a bare link whose
visible text is its URL: ``[label](https://url)`` becomes ``label (<https://url>)``.

Everything runs in time linear in the input: text is converted line by line with simple
string operations, and the few regular expressions have no nested quantifiers, no
alternatives that compete for the same characters, and repeat a class that excludes their
own delimiter (possessively), so a failed attempt stops at the next delimiter. This module is
pure (standard library and :mod:`lucy.redact`), so workflows may import :func:`escape_mrkdwn`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from lucy.redact import redact_secrets

# Slack accepts up to 40,000 characters but collapses long messages behind "Show more" and
# recommends staying under 4,000; keep a margin for the continuation marker.
MESSAGE_LIMIT = 3_500
# Text beyond this many characters is not converted nor posted (Slack's own hard limit for
# one message's text); a visible marker says how much was left out.
INPUT_LIMIT = 40_000
# Redaction looks a little further than the cap, so that a secret cut by the cap is still
# recognised (and a truncated PEM block is masked to the end).
_REDACT_LIMIT = 2 * INPUT_LIMIT

# Private markers while a line is converted; removed from the input first. Bidirectional
# embeddings, overrides and isolates (which could show a link's URL reversed, or reorder code)
# are shown as visible markers instead.
_SLOT_OPEN, _SLOT_CLOSE, _BOLD_MARK = "\x01", "\x02", "\x03"
_CLEAN: dict[int, str | None] = {
    **dict.fromkeys(range(4)),
    **{cp: f"⟦U+{cp:04X}⟧" for cp in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))},
}
_SLOT = re.compile("\x01([0-9]++)\x02")

# Spans kept out of the emphasis conversion; each alternative starts with its own character
# (backtick, "!" or "[", "<", "h"), so at most one of them can match at any position.
_URL = r"https?://(?:[^\s()<>]|\([^\s()<>]*+\))++"  # one level of parentheses: Foo_(bar)
_PROTECTED = re.compile(
    r"(?P<code>`[^`\n]++`)"
    rf"|!?\[(?P<label>[^\[\]\n]*+)\]\((?P<url>{_URL})\)"
    r"|<(?P<aurl>https?://[^\s<>|]++)(?:\|(?P<alabel>[^<>\n]*+))?>"
    r"|(?P<bare>https?://[^\s<>*`]++)"
)
_BOLD_STARS = re.compile(r"\*\*(?=[^\s*])([^*\n]++)(?<=[^\s*])\*\*")
_BOLD_UNDERSCORES = re.compile(r"(?<!\w)__(?=[^\s_])([^_\n]++)(?<=[^\s_])__(?!\w)")
_ITALIC_STAR = re.compile(r"(?<![*\w])\*(?=[^\s*])([^*\n]++)(?<=[^\s*])\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=[^\s~])([^~\n]++)(?<=[^\s~])~~")
_FENCE_INFO = re.compile(r"[A-Za-z0-9_+#.-]{1,30}")  # a language tag after an opening fence


def escape_mrkdwn(text: str) -> str:
    """Escape untrusted text for interpolation into Lucy's own mrkdwn.

    Slack reads ``<...>`` as a mention (``<!channel>``, ``<@U123>``, ``<#C123>``) or a link
    (``<https://url|label>``), and ``&`` starts an entity. Escaping ``&``, ``<`` and ``>`` makes
    the text show literally: it can neither ping anyone nor fake a link. Formatting characters
    (``*``, ``_``, ``~``, backticks) are left alone.

    Args:
        text: a fragment that came from outside Lucy (a tool summary, a file name, the model's
            reason for a step).

    Returns:
        ``text`` with ``&``, ``<`` and ``>`` replaced by ``&amp;``, ``&lt;`` and ``&gt;``.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _percent_encode(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode())


def _link_target(url: str) -> str:
    # A URL cannot contain "<", ">" or whitespace (the patterns exclude them); "|" would start
    # a label, so it is percent-encoded, as is anything invisible (zero-width, bidi); "&" is
    # escaped as Slack asks.
    if not url.isprintable():
        url = "".join(c if c.isprintable() else _percent_encode(c) for c in url)
    return "<" + url.replace("&", "&amp;").replace("|", "%7C") + ">"


def _bare(url: str) -> str:
    return url.removeprefix("https://").removeprefix("http://").rstrip("/")


def _render_link(label: str, url: str) -> str:
    """``label (<url>)``: the visible text can never hide where the link goes (the label is
    converted like prose; it holds no ``[]``, so it holds no link of its own to label)."""
    target = _link_target(url)
    label = " ".join(label.split())
    if not label or _bare(label) == _bare(url):
        return target
    return f"{_inline(label)} ({target})"


def _render_protected(m: re.Match[str]) -> str:
    if m.group("code") is not None:
        return escape_mrkdwn(m.group("code"))
    if m.group("url") is not None:
        return _render_link(m.group("label"), m.group("url"))
    if m.group("aurl") is not None:
        return _render_link(m.group("alabel") or "", m.group("aurl"))
    return escape_mrkdwn(m.group("bare"))  # Slack links a bare URL itself, showing the URL


def _inline(text: str, *, bold: bool = True) -> str:
    """Convert one line's inline Markdown (no newline in ``text``) and escape it; with
    ``bold=False`` (a heading, already bold as a whole) bold markup is dropped."""
    slots: list[str] = []

    def protect(m: re.Match[str]) -> str:
        slots.append(_render_protected(m))
        return f"{_SLOT_OPEN}{len(slots) - 1}{_SLOT_CLOSE}"

    def strong(m: re.Match[str]) -> str:
        return f"{_BOLD_MARK}{m.group(1)}{_BOLD_MARK}"

    s = text
    if "`" in s or "[" in s or "<" in s or "http" in s:
        s = _PROTECTED.sub(protect, s)
    if "*" in s:
        s = _BOLD_STARS.sub(strong, s)
    if "__" in s:
        s = _BOLD_UNDERSCORES.sub(strong, s)
    if "*" in s:
        s = _ITALIC_STAR.sub(r"_\1_", s)
        s = _BOLD_STARS.sub(strong, s)  # **a *b* c**, now that the italics are done
    if "~~" in s:
        s = _STRIKE.sub(r"~\1~", s)
    s = escape_mrkdwn(s).replace(_BOLD_MARK, "*" if bold else "")
    if slots:
        s = _SLOT.sub(lambda m: slots[int(m.group(1))], s)
    return s


def _is_table_rule(stripped: str) -> bool:
    """``|---|:---:|`` (a table's rule line) or ``---`` (a thematic break): dropped."""
    if "-" not in stripped or stripped.strip("|:- \t"):
        return False
    shortest = 1 if "|" in stripped else 3
    cells = stripped.removeprefix("|").removesuffix("|").split("|")
    for cell in cells:
        core = cell.strip(" \t").removeprefix(":").removesuffix(":")
        if len(core) < shortest or core.strip("-"):
            return False
    return True


def _heading_text(body: str) -> str | None:
    """The text of an ATX heading (``## Title ##``), or None when ``body`` is not one."""
    level = len(body) - len(body.lstrip("#"))
    rest = body[level:]
    if not 1 <= level <= 6 or rest[:1] not in (" ", "\t") or not rest.strip():
        return None
    content = rest.strip(" \t")
    unclosed = content.rstrip("#")
    if unclosed and unclosed[-1] in (" ", "\t"):  # a closing sequence: "## Title ##"
        content = unclosed.rstrip(" \t")
    return content


def _convert_line(line: str) -> str | None:
    """One line of prose -> mrkdwn; None when the line is dropped (a table rule)."""
    if _is_table_rule(line.strip()):
        return None
    body = line.lstrip(" \t")
    indent = line[: len(line) - len(body)]
    if body.startswith("#"):
        heading = _heading_text(body)
        if heading is not None:  # Slack has no headings: bold, and no bold inside
            return indent + "*" + _inline(heading, bold=False) + "*"
    if body[:1] in ("-", "*", "+") and body[1:2] in (" ", "\t"):
        return indent + "• " + _inline(body[2:].lstrip(" \t"))
    return indent + _inline(body)


def _fence_marker(body: str) -> str | None:
    """The fence (```` ``` ```` or ``~~~``) that ``body`` (a line without indentation) opens."""
    for marker in ("```", "~~~"):
        if body.startswith(marker):
            return marker
    return None


def to_mrkdwn(markdown: str) -> str:
    """Convert Markdown to Slack mrkdwn in which nothing can ping or fake a link.

    Bold, italics, strike-through, bullets and headings (shown bold) are converted; a table's
    rule line is dropped; links become ``label (<url>)``; fenced and inline code are kept as
    they are, with ``&<>`` escaped like everything else. An unclosed fence is closed at the end.

    Args:
        markdown: the model's text, any length (linear time).

    Returns:
        The mrkdwn text.
    """
    out: list[str] = []
    fence: str | None = None  # the marker of the code block we are in
    for line in markdown.translate(_CLEAN).replace("\r\n", "\n").split("\n"):
        body = line.lstrip(" \t")
        if not body:  # a blank line (kept as it is inside code)
            out.append(line if fence is not None else "")
            continue
        indent = line[: len(line) - len(body)]
        if fence is not None:
            if body.startswith(fence) and not body.rstrip(" \t").strip(fence[0]):
                out.append(indent + "```")  # the closing fence
                fence = None
            else:
                out.append(escape_mrkdwn(line))
            continue
        marker = _fence_marker(body)
        if marker is None:
            converted = _convert_line(line)
            if converted is not None:
                out.append(converted)
            continue
        info = body.lstrip(marker[0]).strip(" \t")
        if marker[0] == "`" and "```" in info:  # ```code``` on one line: code as it is
            out.append(escape_mrkdwn(line))
        elif not info or _FENCE_INFO.fullmatch(info):  # Slack shows no language tag: drop it
            out.append(indent + "```")
            fence = marker
        else:  # code on the opening line itself
            out.append(indent + "```" + escape_mrkdwn(info))
            fence = marker
    if fence is not None:
        out.append("```")
    return "\n".join(out)


def _whole_end(window: str) -> int:
    """The longest prefix of ``window`` (escaped mrkdwn) that ends neither inside a ``<...>``
    (link, mention, date) nor inside an entity (``&amp;``)."""
    end = len(window)
    opened = window.rfind("<")
    if opened >= 0 and window.find(">", opened) < 0:
        end = opened
    amp = window.rfind("&", max(end - 5, 0), end)  # an entity has at most 5 characters: &amp;
    if amp >= 0 and ";" not in window[amp:end]:
        end = amp
    return end


def _hard_cut(window: str) -> int:
    """Where to cut a window with no space or newline: not inside a link, nor an entity."""
    return _whole_end(window) or len(window)


def fit(text: str, limit: int, *, marker: str = "…") -> str:
    """Escaped mrkdwn cut to at most ``limit`` characters, the limit Slack applies to what it
    receives (so after escaping: one ``&`` is five characters). The cut never falls inside an
    entity or a ``<...>`` link, mention or date, and ``marker`` says something was cut.

    Args:
        text: mrkdwn whose untrusted parts are already escaped (:func:`escape_mrkdwn`).
        limit: Slack's limit for the field (3,000 for a section's text, 300 for a confirm...).
        marker: appended when the text was cut.

    Returns:
        ``text`` when it fits, else its longest whole prefix followed by ``marker``.
    """
    if len(text) <= limit:
        return text
    head = text[: max(limit - len(marker), 0)]
    return head[: _whole_end(head)] + marker


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split mrkdwn into messages that each fit Slack's recommended length.

    Cuts at a paragraph, then a line, then a word boundary (a cut inside a word avoids links
    and ``&...;`` entities); a code block cut in two is closed at the end of one part and
    reopened in the next.

    Args:
        text: converted mrkdwn (see :func:`to_mrkdwn`).
        limit: the most characters in one part.

    Returns:
        The parts, in order; ``[text]`` when it fits.
    """
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
            cut = _hard_cut(window)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip("\n ")
        if head.count("```") % 2 == 1:  # inside a code block: close it here, reopen in the next part
            head += "\n```"
            rest = "```\n" + rest
        parts.append(head)
    if rest:
        parts.append(rest)
    return parts


def _cap(text: str, limit: int) -> tuple[str, int]:
    """``text`` cut to at most ``limit`` characters (at a line end when one is near) and how
    many characters were cut."""
    if len(text) <= limit:
        return text, 0
    head = text[:limit]
    cut = head.rfind("\n", limit - 2_000)
    if cut < 0:
        cut = head.rfind(" ", limit - 200)
    if cut > 0:
        head = head[:cut]
    return head, len(text) - len(head)


def prepare(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """The whole pipeline for a model's text: redact, cap, convert, split.

    Secrets are masked first; text beyond :data:`INPUT_LIMIT` characters is cut and a line
    ``[… N characters not shown …]`` says so; the rest is converted by :func:`to_mrkdwn` (so no
    special mention, user or channel mention, or labelled link can come out, whatever the
    input) and split by :func:`split_message`. Linear in ``len(text)``.

    Args:
        text: the model's Markdown.
        limit: the most characters in one message.

    Returns:
        The messages to post, in order; never an empty list.
    """
    beyond = max(len(text) - _REDACT_LIMIT, 0)
    head, cut = _cap(redact_secrets(text[:_REDACT_LIMIT]), INPUT_LIMIT)
    converted = to_mrkdwn(head).strip()
    omitted = cut + beyond
    if omitted:
        converted += f"\n\n[… {omitted:,} characters not shown …]"
    return split_message(converted.strip() or "(no text)", limit)


def slack_date(moment: datetime, *, style: str = "{date_short_pretty} at {time}") -> str:
    """A date Slack shows in each reader's own time zone; where Slack cannot render it, the
    fallback text shows it in UTC."""
    return f"<!date^{int(moment.timestamp())}^{style}|{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC>"


def who_may_decide(approvers: list[str]) -> str:
    """The people who may decide an approval, as Slack mentions (verified Slack ids only)."""
    if approvers:
        return " or ".join(f"<@{a}>" for a in approvers) + " or a workspace admin"
    return "a workspace admin"


def who_may_approve(approvers: list[str], *, owner_only: bool = False) -> str:
    """Who may approve a pending step, for the progress line and ``/lucy status``: the
    requester alone when the step acts on their own account (``owner_only``), else
    :func:`who_may_decide`."""
    if owner_only and approvers:
        return f"<@{approvers[0]}> alone (it acts on their own account)"
    return who_may_decide(approvers)


def who_may_decide_own(requester: str) -> str:
    """Who may decide an approval of a step on the requester's own account (``owner_only``):
    only they may approve; they or a workspace admin may reject."""
    return (
        f"Who may approve: only <@{requester}> (it acts on their own account); "
        "they or a workspace admin may reject"
    )
