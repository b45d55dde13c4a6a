"""What of a model's answer may be shown while it is still being written.

A streamed answer arrives in chunks; a secret can be split over two of them (``sk-or-v1-ab``
then ``cdef...``). :class:`StreamText` therefore never shows the raw text: it redacts the whole
answer so far with :func:`lucy.redact.redact_secrets` and shows only the part of the redacted
text that ends at a whitespace character, holding back the word still being written (the tail).
Every rule of the redactor either matches a run without whitespace (a token is shown only once
the whitespace after it has arrived, so it is seen whole) or keeps its prefix and masks what
follows it ("Bearer ", "Authorization: ", a PEM block masked to the end until its END line), so
the shown text is always a prefix of the redaction of the complete answer. If it ever is not
(the redactor changed its mind about text already shown), the stream stops growing and the
final message, posted over it, is the only thing that counts.

What is shown is escaped like every mrkdwn fragment (``&<>``): no ``<!channel>`` or ``<@U1>``
can come out of a live preview either. Slack reads ``markdown_text`` as Markdown, so a link
cannot be given a label either: ``](``, ``][`` and ``]:`` get a space (``[https://okta](https://
evil)`` shows as text, its URL visible). A chunk ends at whitespace, so no link is split over
two. What is sent stays within Slack's 12,000 characters for ``markdown_text``, counted after
escaping. Pure: standard library and :mod:`lucy.redact` only.
"""

from __future__ import annotations

from lucy.redact import redact_secrets
from lucy.slack.text import MESSAGE_LIMIT, escape_mrkdwn

# A preview stops growing here: the final message (posted over it) is split at MESSAGE_LIMIT.
PREVIEW_LIMIT = MESSAGE_LIMIT - 200
MARKDOWN_LIMIT = 12_000  # Slack's limit for markdown_text, after escaping
_LINK_JOINS = (("](", "] ("), ("][", "] ["), ("]:", "] :"))


def neutral(text: str) -> str:
    """``text`` as a live preview shows it: escaped, and with no Markdown link or label."""
    out = escape_mrkdwn(text)
    for join, apart in _LINK_JOINS:
        out = out.replace(join, apart)
    return out


def _fitting(text: str, room: int) -> str:
    """The longest prefix of ``text`` whose :func:`neutral` form is at most ``room`` long."""
    if len(neutral(text)) <= room:
        return text
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if len(neutral(text[:mid])) <= room:
            low = mid
        else:
            high = mid - 1
    return text[:low]


class StreamText:
    """The raw answer so far, and what of it has been (or may now be) shown."""

    def __init__(self, limit: int = PREVIEW_LIMIT) -> None:
        self._raw: list[str] = []
        self._shown = ""  # the redacted text shown so far (unescaped)
        self._sent = 0  # characters sent for it (escaped)
        self._last: tuple[str, int] = ("", 0)  # the last take: what was sent, for how much raw text
        self._limit = limit
        self.frozen = False  # the shown text is no longer a prefix of the redacted answer

    @property
    def raw(self) -> str:
        return "".join(self._raw)

    @property
    def shown(self) -> str:
        """The redacted text shown so far (not escaped)."""
        return self._shown

    def add(self, delta: str) -> None:
        if delta:
            self._raw.append(delta)

    def safe(self, *, final: bool = False) -> str:
        """The redacted answer up to the last whitespace (everything when ``final``)."""
        redacted = redact_secrets(self.raw)
        if final:
            return redacted
        cut = max(redacted.rfind(" "), redacted.rfind("\n"), redacted.rfind("\t"))
        return redacted[: cut + 1] if cut >= 0 else ""

    def unshow(self, escaped: str) -> None:
        """The last :meth:`take` (``escaped``) did not reach Slack: it is taken again next time."""
        sent, raw = self._last
        if escaped and escaped == sent:
            self._shown = self._shown[: len(self._shown) - raw]
            self._sent -= len(sent)
            self._last = ("", 0)

    def take(self, *, final: bool = False) -> str:
        """The escaped text to append now (empty when nothing new may be shown)."""
        if self.frozen:
            return ""
        safe = self.safe(final=final)
        if not safe.startswith(self._shown):
            self.frozen = True  # never show a different version of what was shown
            return ""
        safe = safe[: self._limit]
        new = _fitting(safe[len(self._shown) :], MARKDOWN_LIMIT - self._sent)
        if not new.strip():
            return ""  # whitespace only: wait for the next word
        self._shown += new
        sent = neutral(new)
        self._sent += len(sent)
        self._last = (sent, len(new))
        return sent
