"""Who a mail is from and whether that is proven: the sender's one real address in the From
header, the mail's authentication results read for a positive, *aligned* pass, and whether the
mail was sent by a machine (an auto-responder, a list), which Lucy never answers.

**Address.** The From header is parsed with :func:`email.utils.getaddresses`; the address is the
angle-bracket one, never the display name (``"ceo@corp.com" <eve@evil.example>`` is from
``eve@evil.example``). A header with more than one address, or none that reads as
``local@domain.tld`` verbatim, gives no address: the sender is from outside and gets no reply.

**Authentication.** A sender counts as a workspace member only on positive, aligned evidence in
``Authentication-Results`` (RFC 8601): ``dmarc=pass`` with ``header.from`` the From domain, a
``dkim=pass`` whose ``header.d`` (or ``header.i``) domain is the From domain or a parent of it,
or an ``spf=pass`` whose ``smtp.mailfrom`` domain is the From domain (or a parent of it).
Nothing else proves it (no header, ``none``, ``neutral``, a pass for another domain): such mail
goes down the outsider path. A positive failure (``dmarc=fail``; SPF ``fail``/``softfail`` with
DKIM ``fail``/``none``; SPF may come from ``Received-SPF``) marks the sender forged and the mail is ignored.

Trust assumption: AgentMail passes the headers as one ``Dict[str, str]`` and we cannot check
the authserv-id of the ``Authentication-Results`` against a known host there; we trust the
``Authentication-Results`` that AgentMail's receiving MTA added (it replaces any the sender
wrote, as receiving MTAs do per RFC 8601 section 5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import getaddresses
from typing import Any

_ADDRESS = re.compile(
    r"^[^@\s<>()\[\]\\,;:\"]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$"
)
_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"^\s*(spf|dkim|dmarc)\s*=\s*([a-z]+)\b(.*)$", re.I | re.S)
_PROPERTY = re.compile(r"\b(header\.from|header\.d|header\.i|smtp\.mailfrom)\s*=\s*\"?([^\s\";]+)", re.I)
_FAILED = {"fail", "softfail", "permerror"}


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


def _header(headers: Any, name: str) -> list[str]:
    if not isinstance(headers, dict):
        return []
    values = [v for k, v in headers.items() if str(k).lower() == name]
    flat: list[str] = []
    for value in values:
        flat.extend(x for x in (value if isinstance(value, list) else [value]) if isinstance(x, str))
    return flat


def _aligned(domain: str, claimed: str) -> bool:
    """``claimed`` (a DKIM ``d=`` or SPF domain) is ``domain`` or a parent of it (not a TLD)."""
    claimed = claimed.rpartition("@")[2].strip(".").lower()
    return bool(domain) and "." in claimed and (domain == claimed or domain.endswith("." + claimed))


def verdict(headers: Any, address: str) -> Verdict:
    """Read ``Authentication-Results`` for the From address's domain (see the module doc)."""
    domain = address.rpartition("@")[2]
    results: list[tuple[str, str, dict[str, str]]] = []
    for header in _header(headers, "authentication-results"):
        text = header
        for _ in range(5):  # nested comments
            text = _COMMENT.sub(" ", text)
        for part in text.split(";")[1:]:  # the first part is the authserv-id
            match = _RESULT.match(part)
            if match:
                props = {k.lower(): v for k, v in _PROPERTY.findall(match.group(3))}
                results.append((match.group(1).lower(), match.group(2).lower(), props))
    for method, result, props in results:
        if result != "pass":
            continue
        if method == "dmarc" and props.get("header.from", "").lower() == domain and domain:
            return Verdict(proven=f"DMARC passed for {domain}")
        if method == "dkim" and any(_aligned(domain, props.get(k, "")) for k in ("header.d", "header.i")):
            return Verdict(proven=f"DKIM passed for {domain}")
        if method == "spf" and _aligned(domain, props.get("smtp.mailfrom", "")):
            return Verdict(proven=f"SPF passed for {domain}")
    first: dict[str, str] = {}
    for method, result, _ in results:
        first.setdefault(method, result)
    received_spf = " ".join(_header(headers, "received-spf")).strip().split(" ", 1)[0].lower()
    if received_spf:
        first.setdefault("spf", received_spf)
    if first.get("dmarc") == "fail":
        return Verdict(forged="DMARC failed for the sender's domain")
    if first.get("spf") in _FAILED and first.get("dkim") in ("fail", "none"):
        return Verdict(forged=f"SPF ({first['spf']}) and DKIM ({first['dkim']}) both failed")
    return Verdict()


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
