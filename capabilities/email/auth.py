"""Who a mail is from and whether that is proven: the sender's one real address in the From
header, the mail's authentication results read for a positive, *aligned* pass, and whether the
mail was sent by a machine (an auto-responder, a list), which Lucy never answers.

**Address.** The From header is parsed with :func:`email.utils.getaddresses`; the address is the
angle-bracket one, never the display name (``"ceo@corp.com" <eve@evil.example>`` is from
``eve@evil.example``). A header with more than one address, or none that reads as
``local@domain.tld`` verbatim, gives no address: the sender is from outside and gets no reply.

**Authentication.** A sender counts as a workspace member only on positive, aligned evidence in
the *receiving service's own* ``Authentication-Results`` (RFC 8601): the topmost such header
whose authserv-id is one of ``LUCY_EMAIL_TRUSTED_AUTHSERV_IDS`` (a sender can write any
``Authentication-Results`` below it; those, and any with another authserv-id, are never read).
In that one header: ``dmarc=pass`` with ``header.from`` the From domain, a ``dkim=pass`` whose
``header.d`` (or ``header.i``) domain is the From domain or a parent of it, or an ``spf=pass``
whose ``smtp.mailfrom`` domain is the From domain (or a parent of it) proves it, unless any
result in the same header failed (``fail``, ``softfail``, ``permerror``): a failure wins over a
pass. No trusted header, ``none``, ``neutral`` or a pass for another domain proves nothing:
such mail goes down the outsider path. ``dmarc=fail``, or SPF failing with DKIM ``fail`` or
``none``, in the trusted header marks the sender forged and the mail is ignored.

Headers arrive as AgentMail's JSON object: a name may appear in any case, more than once, or
with a list of values (topmost first); folded values are unfolded, comments dropped (quoted
strings kept). The parser is ours: the maintained RFC 8601 parsers on PyPI (``authres``,
``dkimpy``, ``authheaders`` on top of them) ship no wheels, and this project installs wheels
only; AgentMail's webhook does not carry the raw message, so DKIM cannot be verified here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import getaddresses
from typing import Any

_ADDRESS = re.compile(
    r"^[^@\s<>()\[\]\\,;:\"]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$"
)
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_INSTANCES = re.compile(r"\r?\n(?![ \t])")
_RESULT = re.compile(r"^\s*([a-z0-9_-]+)\s*(?:/\s*\d+\s*)?=\s*([a-z]+)\b(.*)$", re.I | re.S)
_PROPERTY = re.compile(r"\b([a-z0-9_-]+\.[a-z0-9_-]+)\s*=\s*(\"(?:[^\"\\]|\\.)*\"|[^\s;]+)", re.I)
_FAILED = {"fail", "softfail", "permerror"}
DEFAULT_TRUSTED_AUTHSERV_IDS = ("mx.agentmail.to",)


def trusted_ids(setting: str | tuple[str, ...] | list[str]) -> frozenset[str]:
    """The authserv-ids from ``LUCY_EMAIL_TRUSTED_AUTHSERV_IDS`` (a comma list), lower case."""
    items = setting.split(",") if isinstance(setting, str) else setting
    return frozenset(i.strip().lower() for i in items if i.strip())


def sender_address(sender: str) -> str:
    """The From header's one real address, lower case; "" when there is not exactly one clear
    address (several, none, malformed)."""
    found = [address for _, address in getaddresses([sender]) if address]
    if len(found) != 1:
        return ""
    address = found[0].strip().lower()
    if not _ADDRESS.match(address) or address not in sender.lower():
        return ""
    return address


@dataclass(frozen=True)
class Verdict:
    """What the mail's authentication results say about its From domain."""

    forged: str = ""  # why the sender is positively forged ("" when nothing says so)
    proven: str = ""  # the aligned pass that proves the From domain ("" when none does)


@dataclass(frozen=True)
class _Result:
    method: str
    result: str
    props: dict[str, str]


def _header(headers: Any, name: str) -> list[str]:
    """Every instance of header ``name`` in AgentMail's ``headers`` object, topmost first: keys
    in any case, list values, and values holding several unfolded instances are split."""
    if not isinstance(headers, dict):
        return []
    values = [v for k, v in headers.items() if str(k).lower() == name]
    flat: list[str] = []
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                flat.extend(x for x in _INSTANCES.split(item.strip()) if x.strip())
    return flat


def _uncomment(text: str) -> str:
    """``text`` without RFC 5322 comments (nested; quoted strings and escapes kept)."""
    out, depth, quoted, escaped = [], 0, False, False
    for ch in text:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(ch)
            continue
        if ch == "\\":
            escaped = True
            if depth == 0:
                out.append(ch)
        elif quoted:
            quoted = ch != '"'
            out.append(ch)
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
            if depth == 0:
                out.append(" ")
        elif depth == 0:
            quoted = ch == '"'
            out.append(ch)
    return "".join(out)


def _split(text: str) -> list[str]:
    """``text`` cut at the semicolons outside quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in text:
        if ch == ";" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
    return [*parts, "".join(current)]


def parse_results(header: str) -> tuple[str, list[_Result]]:
    """One ``Authentication-Results`` value (RFC 8601): its authserv-id (lower case) and its
    ``method=result`` entries with their ``ptype.property=value`` properties."""
    parts = _split(_uncomment(_FOLD.sub(" ", header)))
    words = parts[0].split()
    authserv_id = words[0].lower() if words else ""
    results = []
    for part in parts[1:]:
        match = _RESULT.match(part)
        if match:
            props: dict[str, str] = {}
            for key, value in _PROPERTY.findall(match.group(3)):
                props.setdefault(key.lower(), value.strip('"'))
            results.append(_Result(match.group(1).lower(), match.group(2).lower(), props))
    return authserv_id, results


def _trusted_results(headers: Any, trusted: frozenset[str]) -> list[_Result] | None:
    """The results of the topmost ``Authentication-Results`` whose authserv-id is trusted."""
    for header in _header(headers, "authentication-results"):
        authserv_id, results = parse_results(header)
        if authserv_id in trusted:
            return results
    return None


def _aligned(domain: str, claimed: str) -> bool:
    """``claimed`` (a DKIM ``d=`` or SPF domain) is ``domain`` or a parent of it (not a TLD)."""
    claimed = claimed.rpartition("@")[2].strip(".").lower()
    return bool(domain) and "." in claimed and (domain == claimed or domain.endswith("." + claimed))


def _forged(results: list[_Result]) -> str:
    first: dict[str, str] = {}
    for r in results:
        if r.method == "dmarc" and r.result == "fail":
            return "DMARC failed for the sender's domain"
        first.setdefault(r.method, r.result)
    if first.get("spf") in _FAILED and first.get("dkim") in ("fail", "none"):
        return f"SPF ({first['spf']}) and DKIM ({first['dkim']}) both failed"
    return ""


def _proven(results: list[_Result], domain: str) -> str:
    if not domain or any(r.result in _FAILED for r in results):  # a failure wins over a pass
        return ""
    for r in results:
        if r.result != "pass":
            continue
        if r.method == "dmarc" and r.props.get("header.from", "").lower() == domain:
            return f"DMARC passed for {domain}"
        if r.method == "dkim" and any(_aligned(domain, r.props.get(k, "")) for k in ("header.d", "header.i")):
            return f"DKIM passed for {domain}"
        if r.method == "spf" and _aligned(domain, r.props.get("smtp.mailfrom", "")):
            return f"SPF passed for {domain}"
    return ""


def verdict(headers: Any, address: str, trusted: frozenset[str]) -> Verdict:
    """Read the trusted ``Authentication-Results`` for the From address's domain (see the
    module doc)."""
    results = _trusted_results(headers, trusted)
    if results is None:
        return Verdict()
    forged = _forged(results)
    if forged:
        return Verdict(forged=forged)
    return Verdict(proven=_proven(results, address.rpartition("@")[2]))


_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}


def automatic(headers: Any) -> str:
    """Why the mail was sent by a machine (RFC 3834 ``Auto-Submitted``, ``Precedence``, the
    common auto-responder headers, a mailing list), or "" for a person's mail."""
    auto = " ".join(_header(headers, "auto-submitted")).strip().lower()
    if auto and auto.split(";", 1)[0].strip() != "no":
        return f"the mail is auto-submitted ({auto.split(';', 1)[0].strip()[:40]})"
    precedence = " ".join(_header(headers, "precedence")).strip().lower()
    if precedence in _PRECEDENCE:
        return f"the mail has Precedence: {precedence}"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        if _header(headers, name):
            return f"the mail is an auto-reply ({name})"
    suppress = " ".join(_header(headers, "x-auto-response-suppress")).lower()
    if "all" in suppress.replace(",", " ").split() or "autoreply" in suppress:
        return "the mail is an auto-reply (X-Auto-Response-Suppress)"
    if _header(headers, "list-id") or _header(headers, "list-unsubscribe"):
        return "the mail comes from a mailing list"
    return ""
