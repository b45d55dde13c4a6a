"""Secret redaction: mask tokens, keys and passwords wherever they appear in a text.

Shared by the log redaction, the output pipeline (everything Lucy posts) and the activity
summaries that workflows write into Temporal. Workflows import it through
:mod:`lucy.contracts`, inside Temporal's workflow sandbox, so this module is pure: standard
library only, deterministic, no I/O, no environment.

Every pattern runs in linear time. Each one starts with a fixed literal (``sk-``, ``AKIA``,
``-----BEGIN``...), most repeat a character class only once and possessively (``++``: no
backtracking into it), and those that scan a run of token characters refuse to start inside
such a run (a look-behind for the same class), so a long run is scanned once, not once per
position. PEM blocks are found with :meth:`str.find`, not with a lazy ``.*?`` over the text.
A rule whose literal is absent from the text is skipped without running its pattern.

What is masked (replaced by ``[redacted]``):

* Slack tokens ``xox?-`` (``xoxb-``, ``xoxp-``, ``xoxa-``, ``xoxc-``, ``xoxe-``...),
  ``xoxe.xoxp-``, ``xapp-``, and Slack webhook and workflow-trigger URLs (the part after
  ``https://hooks.slack.com/services/``);
* ``sk-...`` keys (OpenAI, OpenRouter, Anthropic), Stripe secret and restricted keys
  (``sk_live_``, ``sk_test_``, ``rk_live_``, ``rk_test_``; publishable ``pk_`` keys are public
  and left alone), GitHub tokens (``ghp_``, ``gho_``, ``ghu_``, ``ghs_``, ``ghr_``,
  ``github_pat_``), Google API keys (``AIza`` + 35), AWS access key ids (``AKIA``/``ASIA``... +
  16) and the value after ``aws_secret_access_key`` / ``SecretAccessKey``;
* JSON Web Tokens (``eyJ...``.``...``.``...``);
* PEM private keys, from ``-----BEGIN ... PRIVATE KEY-----`` to the next ``-----END ...-----``
  line, or to the end of the text when the block is truncated;
* the credentials of ``Bearer <token>`` and ``Basic <base64>`` (any case), the whole value of an
  ``Authorization:`` / ``Proxy-Authorization:`` header (to the end of the line, a quote or a
  backslash), and the ``user:password`` of a URL (``scheme://user:password@host``).

Deliberate over-redaction: an ``Authorization:`` value is masked whatever it is, to the end of
the line or the closing quote (also in prose: "authorization: ask your admin"); a URL's
``user:password`` is masked together with the user name; ``Bearer`` followed by one space (the
header's spelling) masks any word of 8 or more characters, as the first version did, so
"Bearer authentication" at the start of a sentence loses its second word. Deliberate
under-redaction: after any other spelling of ``bearer`` a word that reads like prose (letters
only, shorter than 20, no capital after the first letter: "bearer tokens") is kept, and after
``basic`` only a base64 ``user:password`` (or a long token-like word) is masked, so "basic
understanding" and "Basic HTTPS/TLS" survive.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable

__all__ = ["REDACTED", "redact_secrets"]

REDACTED = "[redacted]"

# What replaces a match; group 1, when a rule keeps a prefix, is the prefix kept
# ("Authorization: ", "aws_secret_access_key=").
_Replace = Callable[[re.Match[str]], str]


def _mask(_: re.Match[str]) -> str:
    return REDACTED


def _mask_after_prefix(m: re.Match[str]) -> str:
    return m.group(1) + REDACTED


_TOKEN_SYMBOLS = frozenset("0123456789._~+/=-")


def _looks_like_token(word: str) -> bool:
    """Whether the word after ``bearer`` is a credential rather than prose ("bearer tokens")."""
    if len(word) >= 20 or any(c in _TOKEN_SYMBOLS for c in word):
        return True
    return not word[1:].islower()  # a capital after the first letter: "AbCdEfGhIj"


def _mask_bearer(m: re.Match[str]) -> str:
    # "Bearer " exactly (the header's spelling) masks any 8+ characters, as it always did.
    if m.group(1) == "Bearer " or _looks_like_token(m.group(2)):
        return m.group(1) + REDACTED
    return m.group(0)


def _mask_basic(m: re.Match[str]) -> str:
    word = m.group(2)
    try:
        decoded = binascii.a2b_base64(word, strict_mode=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if b":" in decoded or (len(word) >= 16 and _looks_like_token(word)):  # user:password
        return m.group(1) + REDACTED
    return m.group(0)


# Each rule: the lower-case literals one of which any match contains (a rule whose literals
# are all absent from the text is skipped: a fast ``in`` check instead of a regex scan), the
# pattern, and what replaces a match.
_RULES: tuple[tuple[tuple[str, ...], re.Pattern[str], _Replace], ...] = (
    # Slack tokens (bot, user, app-level, configuration and refresh, rotated) and app tokens.
    (
        ("xox", "xapp-"),
        re.compile(r"(?<![A-Za-z0-9])(?:xox[a-z](?:\.xox[a-z])?|xapp)-[A-Za-z0-9-]++"),
        _mask,
    ),
    # Slack incoming webhooks and workflow triggers: the path is the secret.
    (
        ("hooks.slack.com/",),
        re.compile(r"(hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9_/-]++"),
        _mask_after_prefix,
    ),
    # OpenAI / OpenRouter / Anthropic style keys.
    (("sk-",), re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{8,}+"), _mask),
    # Stripe secret and restricted keys.
    (("k_live_", "k_test_"), re.compile(r"(?<![A-Za-z0-9])[sr]k_(?:live|test)_[A-Za-z0-9]{8,}+"), _mask),
    # GitHub personal, OAuth, user-to-server, server-to-server and refresh tokens.
    (
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{20,}+|github_pat_[A-Za-z0-9_]{20,}+)"),
        _mask,
    ),
    # Google API keys.
    (("aiza",), re.compile(r"(?<![A-Za-z0-9_-])AIza[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])"), _mask),
    # AWS access key ids (long-term, temporary and the other unique-id prefixes).
    (
        ("akia", "asia", "abia", "acca", "agpa", "aida", "aipa", "anpa", "anva", "apka", "aroa"),
        re.compile(
            r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA)"
            r"[A-Z0-9]{16}(?![A-Za-z0-9])"
        ),
        _mask,
    ),
    # AWS secret access keys, after their name: aws_secret_access_key=..., "SecretAccessKey": "...",
    # aws configure set aws_secret_access_key ....
    (
        ("secretaccess", "secret_access", "secret-access"),
        re.compile(
            r"((?i:secret[_-]?access[_-]?key)\\?[\"']?(?:[ \t]*+[:=]|[ \t])[ \t]*+\\?[\"']?)"
            r"[A-Za-z0-9/+=]{16,}+"
        ),
        _mask_after_prefix,
    ),
    # JSON Web Tokens: header.payload.signature (the signature may be empty: alg "none").
    (
        ("eyj",),
        re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]*+"),
        _mask,
    ),
    # Authorization headers: the whole value, to the end of the line or the closing quote.
    (
        ("authorization",),
        re.compile(
            r"(?<![A-Za-z0-9])((?i:(?:proxy-)?authorization)\\?[\"']?[ \t]*+[:=][ \t]*+\\?[\"']?)"
            r"[^\"'\\\r\n]++"
        ),
        _mask_after_prefix,
    ),
    # Bearer and Basic credentials, in any case, wherever they appear.
    (
        ("bearer",),
        re.compile(r"(?<![A-Za-z0-9])((?i:bearer)[ \t]++)([A-Za-z0-9._~+/=-]{8,}+)"),
        _mask_bearer,
    ),
    (
        ("basic",),
        re.compile(r"(?<![A-Za-z0-9])((?i:basic)[ \t]++)([A-Za-z0-9+/=]{8,}+)(?![A-Za-z0-9._~-])"),
        _mask_basic,
    ),
    # URL credentials: scheme://user:password@host (the user info ends at the authority's last "@").
    (("://",), re.compile(r"(?<=://)[^/\s:@\"'<>]*+:[^/\s\"'<>]*@"), lambda _: REDACTED + "@"),
)


_PEM_BEGIN = "-----BEGIN "
_PEM_END = "-----END "
_PEM_DASHES = "-----"
_PEM_LABEL_SPAN = 64 + len(_PEM_DASHES)  # a label ("RSA PRIVATE KEY") and its closing dashes


def _redact_pem(text: str) -> str:
    """Mask PEM private key blocks; a block without its END line is masked to the end."""
    if _PEM_BEGIN not in text:
        return text
    out: list[str] = []
    kept = 0  # text[kept:] is not in ``out`` yet
    search = 0
    while True:
        begin = text.find(_PEM_BEGIN, search)
        if begin < 0:
            break
        label_start = begin + len(_PEM_BEGIN)
        label_end = text.find(_PEM_DASHES, label_start, label_start + _PEM_LABEL_SPAN)
        label = text[label_start:label_end] if label_end >= 0 else ""
        if "PRIVATE KEY" not in label or "\n" in label:
            search = label_start  # a certificate, a public key, or not PEM at all: keep it
            continue
        out.append(text[kept:begin])
        out.append(REDACTED)
        end = text.find(_PEM_END, label_end + len(_PEM_DASHES))
        if end < 0:  # truncated: the rest of the text is key material
            return "".join(out)
        end_label_start = end + len(_PEM_END)
        end_dashes = text.find(_PEM_DASHES, end_label_start, end_label_start + _PEM_LABEL_SPAN)
        kept = search = end_dashes + len(_PEM_DASHES) if end_dashes >= 0 else end_label_start
    out.append(text[kept:])
    return "".join(out)


def redact_secrets(text: str) -> str:
    """Mask anything in ``text`` that looks like a token, key, private key or password.

    Args:
        text: any text: a log line, a shell command, a JSON blob, a model answer.

    Returns:
        ``text`` with every secret replaced by :data:`REDACTED` and everything else kept.
        Runs in time linear in ``len(text)``.
    """
    text = _redact_pem(text)
    lowered = text.lower()
    for needles, pattern, replace in _RULES:
        if any(needle in lowered for needle in needles):
            text = pattern.sub(replace, text)
    return text
