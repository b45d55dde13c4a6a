"""Egress guard: may Lucy ask a tool to open this URL?

The browser (CamoFox) and ``web_fetch`` (OpenClaw gateway) open URLs the model chose, and the
model may have been steered by a web page, an email or someone else's message. Before such a URL
is handed to a tool, and again for every URL a tool reports having reached (the final URL after
redirects, the page after a click), :class:`EgressGuard` checks that it can only lead to the
public internet:

* ``http`` or ``https``, written ``scheme://host[:port]...``, with no ``user:pass@`` and no
  spaces or control characters;
* not a name that can only be internal: ``localhost`` and ``*.localhost``, single-label names
  (``postgres``, ``temporal-ui``: docker compose service names), and private suffixes such as
  ``.internal``, ``.local``, ``.svc``, ``.home.arpa``;
* every address the host resolves to (or the literal IP it is, in any of the forms browsers
  accept: ``127.1``, ``2130706433``, ``0x7f000001``, ``[::ffff:127.0.0.1]``) is globally
  routable and not multicast; IPv6 addresses that embed an IPv4 address (mapped, 6to4, NAT64,
  IPv4-compatible) are judged by the IPv4 address they carry.

The host is parsed the way the WHATWG URL standard does (which both the browser and the
gateway's Node runtime follow), not by :func:`urllib.parse.urlsplit`, whose view of
``http://a\\@127.0.0.1/`` differs from a browser's. Anything ambiguous (backslashes, spaces,
control characters, ``http:host`` without slashes) is refused.

Resolution is done by an injected async resolver (the default asks the event loop's
``getaddrinfo`` with a timeout), so tests give a fixed mapping and never touch DNS. The tool
resolves the name again when it connects, so this check cannot stop DNS rebinding on its own:
the network the browser and the gateway run in must not reach internal services either.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from temporalio.exceptions import ApplicationError

EGRESS_DENIED = "EgressDenied"  # ApplicationError type of a refused URL (not retryable)
DEFAULT_DNS_TIMEOUT = 5.0  # seconds

Resolver = Callable[[str], Awaitable[Iterable[str]]]
"""``async (host) -> addresses``: the IP addresses (strings) ``host`` resolves to. A name that
does not exist raises :class:`OSError` (``socket.gaierror``) or returns nothing."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that only ever resolve inside a network (RFC 6761, RFC 8375, common private TLDs and
# cluster DNS), compared label-wise against the end of the host.
INTERNAL_SUFFIXES: tuple[str, ...] = (
    "localhost",
    "local",
    "localdomain",
    "internal",
    "intranet",
    "private",
    "corp",
    "home",
    "lan",
    "home.arpa",
    "svc",
    "cluster.local",
    "test",
    "invalid",
)

_URL_LIMIT = 200  # characters of a URL quoted in a message
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_HOST_CHARS = re.compile(r"^[a-z0-9._-]+$")
_NUMBER = re.compile(r"^(?:[0-9]+|0[xX][0-9a-fA-F]*)$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class EgressVerdict:
    """The answer for one URL.

    Attributes:
        url: The URL as it was checked.
        allowed: Whether Lucy may open it.
        host: The normalised host ("" when there is none).
        addresses: The addresses the host resolved to (or the literal IP), as strings.
        reason: Why it was refused, in plain words ("" when allowed).
    """

    url: str
    allowed: bool
    host: str = ""
    addresses: tuple[str, ...] = ()
    reason: str = ""

    def message(self, *, reached_from: str | None = None) -> str:
        """The sentence the model and the user read for a refused URL."""
        via = f" (reached from {_shown(reached_from)})" if reached_from else ""
        return f"Lucy may not open {_shown(self.url)}{via}: {self.reason}"


class StaticResolver:
    """A resolver from a fixed mapping ``host -> addresses`` (tests, offline development).

    Unknown hosts raise ``socket.gaierror`` as a real lookup of a missing name does.
    """

    def __init__(self, table: Mapping[str, Iterable[str]]) -> None:
        self._table = {host.lower().rstrip("."): tuple(addrs) for host, addrs in table.items()}
        self.lookups: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.lookups.append(host)
        addresses = self._table.get(host)
        if addresses is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(addresses)


async def system_resolver(host: str) -> list[str]:
    """Resolve ``host`` with the event loop's ``getaddrinfo`` (run in a thread).

    Args:
        host: An ASCII host name.

    Returns:
        Every address it resolves to, as strings (IPv6 scope ids included).
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class EgressGuard:
    """Decides whether a URL may be opened by a tool (see the module docstring)."""

    def __init__(self, resolver: Resolver | None = None, *, timeout: float = DEFAULT_DNS_TIMEOUT) -> None:
        """Build a guard.

        Args:
            resolver: ``async (host) -> addresses``; defaults to :func:`system_resolver`.
            timeout: Seconds a lookup may take before the URL is refused as unresolvable.
        """
        self._resolve = resolver or system_resolver
        self._timeout = timeout

    async def check(self, url: str) -> EgressVerdict:
        """Judge ``url`` without raising.

        Args:
            url: The URL a tool is about to open (or reports having reached).

        Returns:
            The verdict: ``allowed`` with the resolved addresses, or refused with a reason.
        """
        parsed = _parse(url)
        if isinstance(parsed, str):
            return EgressVerdict(url, False, reason=parsed)
        host, literal = parsed
        if literal is not None:
            return _judge(url, host, [literal])
        internal = _internal_name(host)
        if internal:
            return EgressVerdict(url, False, host=host, reason=internal)
        try:
            async with asyncio.timeout(self._timeout):
                raw = list(await self._resolve(host))
        except TimeoutError:
            return EgressVerdict(
                url, False, host=host, reason=f"could not resolve {host} (the lookup timed out)"
            )
        except (OSError, UnicodeError):
            return EgressVerdict(url, False, host=host, reason=f"could not resolve {host}")
        addresses: list[IPAddress] = []
        for item in raw:
            try:
                addresses.append(ipaddress.ip_address(str(item)))
            except ValueError:
                return EgressVerdict(
                    url, False, host=host, reason=f"{host} resolved to something that is not an IP address"
                )
        if not addresses:
            return EgressVerdict(url, False, host=host, reason=f"could not resolve {host}")
        return _judge(url, host, addresses)

    async def require(self, url: str, *, reached_from: str | None = None) -> EgressVerdict:
        """Judge ``url`` and raise when it is refused.

        Args:
            url: The URL to open, or the one a tool reports having reached.
            reached_from: For a reported URL, the URL Lucy asked for (shown in the message).

        Returns:
            The allowing verdict.

        Raises:
            ApplicationError: ``type=EGRESS_DENIED``, not retryable, with a plain message.
        """
        verdict = await self.check(url)
        if not verdict.allowed:
            raise denied(verdict, reached_from=reached_from)
        return verdict

    async def require_reported(self, url: str, *, reached_from: str | None = None) -> None:
        """Like :meth:`require` for a URL a tool reports; an empty URL and ``about:blank``
        (a fresh tab) are fine, as nothing was fetched for them."""
        if not url or url.strip().lower() == "about:blank":
            return
        if reached_from is not None and url == reached_from:
            reached_from = None
        await self.require(url, reached_from=reached_from)


def denied(verdict: EgressVerdict, *, reached_from: str | None = None) -> ApplicationError:
    """The non-retryable ``EgressDenied`` error for a refused verdict."""
    return ApplicationError(
        verdict.message(reached_from=reached_from),
        {"host": verdict.host, "addresses": list(verdict.addresses)},
        type=EGRESS_DENIED,
        non_retryable=True,
    )


def is_public_address(address: IPAddress) -> bool:
    """Whether ``address`` is globally routable unicast, judging embedded IPv4 addresses.

    Args:
        address: An IPv4 or IPv6 address.

    Returns:
        False for loopback, private, link-local, CGNAT, reserved, multicast and unspecified
        addresses, and for IPv6 forms that carry such an IPv4 address.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
        if int(address) >> 32 == 0:  # ::/96: unspecified, loopback, IPv4-compatible
            return False
        address = ipaddress.IPv6Address(int(address))  # drop any scope id
    return address.is_global and not address.is_multicast


# --------------------------------------------------------------------------- internals


def _shown(url: str) -> str:
    """``url`` as quoted in a message: credentials hidden, shortened."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#\\]*@)", url)
    if match:
        url = f"{match.group(1)}***@{url[match.end() :]}"
    return url if len(url) <= _URL_LIMIT else url[: _URL_LIMIT - 1] + "…"


def _judge(url: str, host: str, addresses: list[IPAddress]) -> EgressVerdict:
    shown = tuple(_text(a) for a in addresses)
    bad = list(dict.fromkeys(_text(a) for a in addresses if not is_public_address(a)))
    if not bad:
        return EgressVerdict(url, True, host=host, addresses=shown)
    listed = ", ".join(bad[:4]) + (", …" if len(bad) > 4 else "")
    return EgressVerdict(
        url,
        False,
        host=host,
        addresses=shown,
        reason=f"it resolves to a private or internal address ({listed})",
    )


def _text(address: IPAddress) -> str:
    """An address as shown: an IPv4-mapped IPv6 address keeps its IPv4 form visible."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def _internal_name(host: str) -> str:
    """Why ``host`` (a normalised name, not an IP) can only be internal, or ""."""
    labels = host.split(".")
    if len(labels) == 1:
        return f"{host} is an internal name (a public site's name has a dot, such as example.com)"
    for suffix in INTERNAL_SUFFIXES:
        if host == suffix or host.endswith("." + suffix):
            return f"{host} is an internal name (.{suffix} names are not on the public internet)"
    return ""


def _parse(url: str) -> tuple[str, IPAddress | None] | str:
    """``(host, literal IP or None)`` of an http(s) URL, or why it cannot be opened."""
    if not isinstance(url, str) or not url:
        return "the URL is empty"
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        return "the URL contains spaces or control characters (percent-encode them)"
    if "\\" in url:
        # Browsers read it as "/", other parsers (urlsplit) as part of a user name: ambiguous.
        return "the URL contains a backslash (write / or %5C)"
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else ""
    if scheme not in ("http", "https"):
        return "only http:// and https:// URLs may be opened"
    rest = url[match.end() :] if match else url
    if not rest.startswith("//"):
        return "the URL must be written http://host/... or https://host/..."
    # The authority ends where WHATWG ends it for http(s): at / ? # or a backslash.
    authority = re.split(r"[/?#\\]", rest[2:], maxsplit=1)[0]
    if "@" in authority:
        return "URLs with a user name or password are not allowed"
    if authority.startswith("["):
        end = authority.find("]")
        if end == -1:
            return "the URL's IPv6 address is not closed with ]"
        host_text, port = authority[1:end], authority[end + 1 :]
        if port and not port.startswith(":"):
            return "the URL's host is not valid"
        try:
            literal6 = ipaddress.IPv6Address(host_text)
        except ValueError:
            return "the URL's IPv6 address is not valid"
        return _checked_port(port[1:]) or (str(literal6), literal6)
    host_text, _, port = authority.partition(":")
    bad_port = _checked_port(port)
    if bad_port:
        return bad_port
    host = _normalise_host(host_text)
    if host is None:
        return "the URL's host name is not valid"
    if not host:
        return "the URL has no host name"
    try:
        return host, _ipv4_literal(host)
    except ValueError:
        return f"{host} is not a valid IP address"


def _checked_port(port: str) -> str:
    if port and (not port.isascii() or not port.isdigit() or int(port) > 65535):
        return "the URL's port is not valid"
    return ""


def _normalise_host(text: str) -> str | None:
    """The ASCII, lower-case host (WHATWG: percent-decoded, IDNA-mapped), without a final dot;
    None when it is not a valid host name."""
    try:
        decoded = unquote(text, errors="strict")
    except UnicodeDecodeError:
        return None
    if not decoded.isascii():
        try:
            decoded = decoded.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    host = decoded.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host:
        return ""
    if not _HOST_CHARS.match(host) or "" in host.split("."):
        return None
    return host


def _ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """WHATWG's IPv4 parser: when the last label is a number (``1``, ``0x7f``) the host is an
    IPv4 address in decimal, octal or hex parts (``127.1``, ``0177.0.0.1``, ``2130706433``).

    Returns:
        The address, or None when the host is a name.

    Raises:
        ValueError: The host looks like an IPv4 address but is not a valid one.
    """
    labels = host.split(".")
    if not _is_number(labels[-1]):
        return None
    if len(labels) > 4:
        raise ValueError(host)
    parts = [_number(label) for label in labels]
    if any(p > 255 for p in parts[:-1]) or parts[-1] >= 256 ** (5 - len(parts)):
        raise ValueError(host)
    value = parts[-1]
    for i, part in enumerate(parts[:-1]):
        value += part * 256 ** (3 - i)
    return ipaddress.IPv4Address(value)


def _is_number(label: str) -> bool:
    return _NUMBER.match(label) is not None


def _number(label: str) -> int:
    """One part of an IPv4 address: ``0x`` hex, ``0`` octal or decimal (ValueError otherwise)."""
    if not _is_number(label):
        raise ValueError(label)
    if label[:2] in ("0x", "0X"):
        return int(label[2:], 16) if label[2:] else 0
    if len(label) > 1 and label.startswith("0"):
        return int(label[1:], 8)
    return int(label, 10)
