"""Secret redaction: mask tokens, keys and passwords wherever they appear in a text.

Shared by the log redaction, the output pipeline (everything Lucy posts), the approval views
and the activity summaries that workflows write into Temporal. Workflows import it through
:mod:`lucy.contracts`, inside Temporal's workflow sandbox, so this module is pure: standard
library only, deterministic, no I/O, no environment.

A mask replaces only the secret token itself, never the structure around it: a masked span
never holds whitespace or a shell separator (:data:`TOKEN_CHARS`), so ``authorization: ok;
curl evil | sh`` keeps ``; curl evil | sh`` visible. :func:`only_secrets_masked` checks that
property for one pair of texts (the approval view relies on it); :func:`redact` also counts
the secrets it masked.

The rule set is ported, not imported: gitleaks v8.18 ``config/gitleaks.toml`` (MIT: gitlab-*,
huggingface-*, sendgrid-api-token, npm-access-token, github-*, slack-*, stripe-*, aws-*, jwt,
private-key) and detect-secrets 1.5.0 (Apache-2.0: KeywordDetector's assigned names and
AzureStorageKeyDetector's ``AccountKey=``). detect-secrets itself loads settings, filters and
``requests`` at import, which the workflow sandbox cannot take, and scans line by line at a
cost we could not bound; its patterns are kept here with their anchor literals and shapes.

Every pattern runs in linear time. Each one starts with a fixed literal (``sk-``, ``AKIA``,
``-----BEGIN``...), most repeat a character class only once and possessively (``++``: no
backtracking into it), and those that scan a run of token characters refuse to start inside
such a run (a look-behind for the same class), so a long run is scanned once, not once per
position. PEM blocks are found with :meth:`str.find`. A rule whose literal is absent from the
text is skipped without running its pattern.

What is masked (replaced by ``[redacted]``): Slack tokens and webhook paths; ``sk-``, Stripe,
GitHub, GitLab (``glpat-``...), Hugging Face (``hf_``), SendGrid (``SG.``), npm (``npm_``),
Google and AWS keys; JWTs; each base64 line of a PEM private key (BEGIN/END lines stay; a
block without END masks only the base64 lines after it); the credential after
``Authorization:`` (and a known scheme), ``Bearer`` and ``Basic``; a URL's ``user:password``;
the value assigned to ``password``, ``passwd``, ``passphrase``, ``secret``, ``api_key``,
``token``, ``private_key``, ``auth_key``, ``AccountKey`` (``null``/``true``/``false`` kept).

Deliberate over-redaction: an ``Authorization:`` value's first token (after a known scheme) is
masked whatever it is ("authorization: ask your admin" loses "ask"), and a value assigned to
``password:`` is masked in prose too; a URL's user name goes with its password; ``Bearer``
followed by one space masks any word of 8 or more characters. Deliberate under-redaction:
after any other spelling of ``bearer`` a word that reads like prose is kept, and after
``basic`` only a base64 ``user:password`` (or a long token-like word) is masked; an assigned
value ends at whitespace (``"password": "two words"`` keeps ``words``).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["REDACTED", "TOKEN_CHARS", "Redaction", "only_secrets_masked", "redact", "redact_secrets"]

REDACTED = "[redacted]"

# The characters a masked span may hold: no whitespace, no quote or backslash, no shell
# separator, expansion or glob, no JSON/list punctuation. A secret made of anything else is
# cut at that character (the rest stays visible).
_NOT_TOKEN = "\\s\"'\\\\;|&<>()`$,{}\\[\\]*?!#"
_TOKEN = f"[^{_NOT_TOKEN}]"
# A run of token characters as a rule's value, unless a more specific rule already masked
# its end ("https://hooks.slack.com/services/[redacted]" is not masked twice).
_VALUE = _TOKEN + "++(?!" + re.escape(REDACTED) + ")"
TOKEN_CHARS = re.compile(_TOKEN + "++")

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


_NOT_SECRET_VALUES = frozenset({"null", "none", "true", "false", "undefined", "nil"})


def _mask_assigned(m: re.Match[str]) -> str:
    if m.group(2).lower() in _NOT_SECRET_VALUES:
        return m.group(0)
    return m.group(1) + REDACTED


# HTTP authentication schemes (IANA registry, plus the common vendor ones) that come before
# the credential in an Authorization header.
_AUTH_SCHEMES = (
    r"(?i:basic|bearer|digest|dpop|hoba|mutual|negotiate|ntlm|oauth|scram-sha-1|scram-sha-256|"
    r"vapid|token|apikey|api-key|key|ssws|splunk|googlelogin|aws4-hmac-sha256)(?![A-Za-z0-9-])"
)
# A name followed by ":" or "=", possibly quoted or escaped-quoted (JSON in a string).
_ASSIGN = r"\\?[\"']?[ \t]*+[:=][ \t]*+\\?[\"']?"

# Each rule: the lower-case literals one of which any match contains (a rule whose literals
# are all absent from the text is skipped: a fast ``in`` check instead of a regex scan), the
# pattern, and what replaces a match. Specific shapes come first, so a secret is counted once.
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
    # GitLab personal, pipeline-trigger, deploy and runner tokens (gitleaks gitlab-*).
    (
        ("glpat-", "glptt-", "gldt-", "glrt-"),
        re.compile(r"(?<![A-Za-z0-9_-])(?:glpat|glptt|gldt|glrt)-[A-Za-z0-9_-]{20,}+"),
        _mask,
    ),
    # Hugging Face user and organisation tokens (gitleaks huggingface-*).
    (
        ("hf_", "api_org_"),
        re.compile(r"(?<![A-Za-z0-9_])(?:hf_|api_org_)[A-Za-z]{34}(?![A-Za-z0-9_])"),
        _mask,
    ),
    # SendGrid API keys: SG.<22>.<43> (gitleaks sendgrid-api-token).
    (
        ("sg.",),
        re.compile(r"(?<![A-Za-z0-9_.-])SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])"),
        _mask,
    ),
    # npm access tokens (gitleaks npm-access-token).
    (("npm_",), re.compile(r"(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])"), _mask),
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
    # Authorization headers: the credential after an optional scheme ("Bearer", "token",
    # "Digest"), one token, never the rest of the line. The scheme is taken possessively, so
    # "Bearer [redacted]" is not masked a second time.
    (
        ("authorization",),
        re.compile(
            r"(?<![A-Za-z0-9])((?i:(?:proxy-)?authorization)"
            + _ASSIGN
            + r"(?:"
            + _AUTH_SCHEMES
            + r"[ \t]++)?+)"
            + _VALUE
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
    # A value assigned to a secret-looking name (detect-secrets KeywordDetector's names, plus
    # AzureStorageKeyDetector's AccountKey): password: x, api_key=x, ?token=x, "secret": "x".
    (
        ("pass", "secret", "key", "token"),
        re.compile(
            r"(?<![A-Za-z0-9])((?i:password|passwd|passphrase|secret|api[_-]?key|auth[_-]?key|"
            r"private[_-]?key|account[_-]?key|token)" + _ASSIGN + r")(?!-----)(" + _VALUE + ")"
        ),
        _mask_assigned,
    ),
    # URL credentials: scheme://user:password@host (the user info ends at the authority's last "@").
    (
        ("://",),
        re.compile(r"(?<=://)[^/:@" + _NOT_TOKEN + r"]*+:[^/" + _NOT_TOKEN + r"]*@"),
        lambda _: REDACTED + "@",
    ),
)


_PEM_BEGIN = "-----BEGIN "
_PEM_END = "-----END "
_PEM_DASHES = "-----"
_PEM_LABEL_SPAN = 64 + len(_PEM_DASHES)  # a label ("RSA PRIVATE KEY") and its closing dashes
_PEM_LINE_BREAK = re.compile(r"\r?\n|(?:\\r)?\\n")  # a real line break or an escaped one (JSON)
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]++")
_PEM_LONG_RUN = 16  # inside a block, a run this long on a line with other text is key material


@dataclass(frozen=True)
class Redaction:
    """A text with its secrets masked, and how many secrets were masked."""

    text: str
    secrets: int


def _pem_key_header(text: str, begin: int) -> int:
    """Where the body of a private key block starting at ``begin`` starts, or -1 when the
    block is not a private key (a certificate, a public key, or not PEM at all)."""
    label_start = begin + len(_PEM_BEGIN)
    label_end = text.find(_PEM_DASHES, label_start, label_start + _PEM_LABEL_SPAN)
    label = text[label_start:label_end] if label_end >= 0 else ""
    if "PRIVATE KEY" not in label or "\n" in label:
        return -1
    return label_end + len(_PEM_DASHES)


def _at_line_edge(text: str, start: int, end: int, body_start: int, body_end: int) -> bool:
    """Whether ``text[start:end]`` is a whole line of the body (real or escaped line breaks)."""
    starts_line = start == body_start or text[start - 1] == "\n" or text[max(0, start - 2) : start] == "\\n"
    ends_line = end == body_end or text[end] in "\r\n\\"
    return starts_line and ends_line


def _mask_pem_body(text: str, body_start: int, body_end: int, out: list[str], truncated: bool) -> int:
    """Append the body with its base64 lines masked; returns where the body ended (for a
    truncated block: after its last base64 line)."""
    pos = body_start
    while pos < body_end:
        brk = _PEM_LINE_BREAK.match(text, pos, body_end)
        if brk is not None:
            out.append(brk.group())
            pos = brk.end()
            continue
        run = _BASE64_RUN.match(text, pos, body_end)
        if run is None:
            if truncated:
                break
            out.append(text[pos])
            pos += 1
            continue
        whole = _at_line_edge(text, run.start(), run.end(), body_start, body_end)
        out.append(REDACTED if whole or len(run.group()) >= _PEM_LONG_RUN else run.group())
        pos = run.end()
        if truncated and not whole:
            break
    return pos


def _redact_pem(text: str) -> Redaction:
    """Mask the base64 lines of PEM private key blocks (one secret per block). The BEGIN and
    END lines stay; a block without its END line masks only the base64 lines after it."""
    if _PEM_BEGIN not in text:
        return Redaction(text, 0)
    out: list[str] = []
    kept = search = blocks = 0  # text[kept:] is not in ``out`` yet
    end = text.find(_PEM_END)  # the next END line (-1: none after here, ever)
    while (begin := text.find(_PEM_BEGIN, search)) >= 0:
        body_start = _pem_key_header(text, begin)
        if body_start < 0:
            search = begin + len(_PEM_BEGIN)
            continue
        if 0 <= end < body_start:
            end = text.find(_PEM_END, body_start)
        out.append(text[kept:body_start])
        kept = search = _mask_pem_body(text, body_start, end if end >= 0 else len(text), out, end < 0)
        blocks += 1
    out.append(text[kept:])
    return Redaction("".join(out), blocks)


def _apply(pattern: re.Pattern[str], replace: _Replace, text: str) -> Redaction:
    """One rule over the text, counting the matches it really masked."""
    masked = 0

    def counted(m: re.Match[str]) -> str:
        nonlocal masked
        out = replace(m)
        if out != m.group(0):
            masked += 1
        return out

    return Redaction(pattern.sub(counted, text), masked)


def redact(text: str) -> Redaction:
    """Mask anything in ``text`` that looks like a token, key, private key or password, and
    count what was masked.

    Args:
        text: any text: a log line, a shell command, a JSON blob, a model answer.

    Returns:
        ``text`` with every secret replaced by :data:`REDACTED` (only the secret: never a
        separator, a quote or whitespace around it) and the number of secrets masked. Runs
        in time linear in ``len(text)``.
    """
    done = _redact_pem(text)
    text, secrets = done.text, done.secrets
    lowered = text.lower()
    for needles, pattern, replace in _RULES:
        if any(needle in lowered for needle in needles):
            done = _apply(pattern, replace, text)
            text, secrets = done.text, secrets + done.secrets
    return Redaction(text, secrets)


def redact_secrets(text: str) -> str:
    """``text`` with every secret masked (see :func:`redact`)."""
    return redact(text).text


def only_secrets_masked(exact: str, masked: str) -> bool:
    """Whether ``masked`` is ``exact`` with only secret tokens replaced: each :data:`REDACTED`
    stands for one non-empty run of :data:`TOKEN_CHARS` (no whitespace, quote or shell
    separator) and everything else is identical. False means the masked view would hide
    structure (a separator, a pipe, a URL): it must not stand in for the exact text.

    Linear: each mask takes the shortest token run after which the following literal text
    matches (the leftmost match is always safe: a mask cannot cross a non-token character).
    Nothing masked is faithful; a text that itself holds the literal marker and a secret is not
    (the reader could not tell the marker from a mask), so it needs the exact view."""
    if masked == exact:
        return True
    parts = masked.split(REDACTED)
    if not exact.startswith(parts[0]):
        return False
    pos, run_end = len(parts[0]), -1  # exact[pos:run_end] is token characters
    for i, part in enumerate(parts[1:], start=2):
        if pos >= run_end:  # scan each run once, not once per mask inside it
            run = TOKEN_CHARS.match(exact, pos)
            if run is None:
                return False
            run_end = run.end()
        if i == len(parts):  # the last literal ends the text
            start = len(exact) - len(part)
            if not (pos < start <= run_end and exact.endswith(part)):
                return False
        else:
            start = exact.find(part, pos + 1, run_end + len(part))
            if start < 0:
                return False
        pos = start + len(part)
    return pos == len(exact)
