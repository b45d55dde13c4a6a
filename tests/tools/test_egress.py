"""The egress guard as a unit: a fixed resolver, no DNS, no network."""

from __future__ import annotations

import asyncio
import ipaddress
import time

import pytest
from temporalio.exceptions import ApplicationError

from capabilities.tools.egress import (
    EGRESS_DENIED,
    EgressGuard,
    StaticResolver,
    is_public_address,
    system_resolver,
)

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"

DNS = {
    "example.com": [PUBLIC_V4, PUBLIC_V6],
    "www.example.org": [PUBLIC_V4],
    "xn--mnchen-3ya.example": [PUBLIC_V4],  # münchen.example
    "rebind.example.net": ["10.0.0.5"],  # a public name that points inside
    "half.example.net": [PUBLIC_V4, "192.168.1.20"],  # one public, one private address
    "mapped.example.net": ["::ffff:10.0.0.1"],  # an AAAA record carrying a private IPv4
    "v6only.example.net": [PUBLIC_V6],
    "junk.example.net": ["not-an-address"],
}


@pytest.fixture
def resolver() -> StaticResolver:
    return StaticResolver(DNS)


@pytest.fixture
def guard(resolver: StaticResolver) -> EgressGuard:
    return EgressGuard(resolver, timeout=1.0)


# --------------------------------------------------------------------------- allowed


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://example.com/path?q=1#top", "example.com"),
        ("HTTP://EXAMPLE.com./", "example.com"),
        ("https://example.com:8443/", "example.com"),
        ("http://www.example.org", "www.example.org"),
        ("https://münchen.example/", "xn--mnchen-3ya.example"),
        ("https://v6only.example.net/", "v6only.example.net"),
        (f"http://{PUBLIC_V4}/", PUBLIC_V4),
        (f"https://[{PUBLIC_V6}]:443/", PUBLIC_V6),
    ],
)
async def test_public_urls_are_allowed(guard: EgressGuard, url: str, host: str):
    verdict = await guard.check(url)
    assert verdict.allowed, verdict.reason
    assert verdict.host == host
    assert verdict.addresses
    assert await guard.require(url) == verdict


# --------------------------------------------------------------------------- literal addresses


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # loopback, in every form a browser accepts
        ("http://127.0.0.1/", "127.0.0.1"),
        ("http://127.0.0.1:8233/namespaces", "127.0.0.1"),
        ("http://127.1/", "127.0.0.1"),
        ("http://2130706433/", "127.0.0.1"),
        ("http://0x7f000001/", "127.0.0.1"),
        ("http://0x7f.1/", "127.0.0.1"),
        ("http://0177.0.0.1/", "127.0.0.1"),
        ("http://%31%32%37.0.0.1/", "127.0.0.1"),
        ("http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11/", "127.0.0.1"),  # fullwidth
        ("http://[::1]/", "::1"),
        ("http://[::1]:5432/", "::1"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
        ("http://[::ffff:7f00:1]/", "::ffff:127.0.0.1"),
        ("http://[::127.0.0.1]/", "::7f00:1"),
        ("http://0.0.0.0:8080/", "0.0.0.0"),
        ("http://0/", "0.0.0.0"),
        ("http://[::]/", "::"),
        # cloud metadata (link-local)
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://[::ffff:169.254.169.254]/", "::ffff:169.254.169.254"),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254"),
        # private ranges
        ("http://10.1.2.3/", "10.1.2.3"),
        ("http://172.16.0.1/", "172.16.0.1"),
        ("http://172.31.255.254/", "172.31.255.254"),
        ("http://192.168.1.1/", "192.168.1.1"),
        ("http://100.64.0.1/", "100.64.0.1"),  # CGNAT
        ("http://198.18.0.1/", "198.18.0.1"),  # benchmarking
        ("http://240.0.0.1/", "240.0.0.1"),  # reserved
        ("http://255.255.255.255/", "255.255.255.255"),
        ("http://224.0.1.1/", "224.0.1.1"),  # multicast
        ("http://[fc00::1]/", "fc00::1"),  # unique local
        ("http://[fd12:3456:789a::1]/", "fd12:3456:789a::1"),
        ("http://[fe80::1]/", "fe80::1"),  # link-local
        ("http://[ff02::1]/", "ff02::1"),  # multicast
        ("http://[::ffff:10.0.0.1]/", "::ffff:10.0.0.1"),
        ("http://[2002:7f00:1::]/", "2002:7f00:1::"),  # 6to4 around 127.0.0.1
        ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe"),  # NAT64 around 169.254.169.254
    ],
)
async def test_internal_addresses_are_refused_in_any_form(
    guard: EgressGuard, resolver: StaticResolver, url: str, shown: str
):
    verdict = await guard.check(url)
    assert not verdict.allowed
    assert verdict.reason == f"it resolves to a private or internal address ({shown})"
    assert resolver.lookups == []  # a literal address is judged without any lookup


async def test_the_refusal_is_a_non_retryable_egress_denied_error_in_plain_words(guard: EgressGuard):
    with pytest.raises(ApplicationError) as info:
        await guard.require("http://169.254.169.254/")
    err = info.value
    assert err.type == EGRESS_DENIED == "EgressDenied"
    assert err.non_retryable is True
    assert err.message == (
        "Lucy may not open http://169.254.169.254/: it resolves to a private or internal address "
        "(169.254.169.254)"
    )


# --------------------------------------------------------------------------- internal names


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/",
        "http://LOCALHOST.:8080/",
        "http://api.localhost/",
        "http://temporal-ui:8080/namespaces/default/workflows",
        "http://temporal:7233/",
        "http://postgres:5432/",
        "http://camofox:9377/tabs",
        "http://lucy-worker/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://host.docker.internal:5432/",
        "http://printer.local/",
        "http://db.localdomain/",
        "http://router.home.arpa/",
        "http://api.default.svc/",
        "http://web.default.svc.cluster.local/",
        "http://nas.lan/",
    ],
)
async def test_names_that_can_only_be_internal_are_refused_without_a_lookup(
    guard: EgressGuard, resolver: StaticResolver, url: str
):
    verdict = await guard.check(url)
    assert not verdict.allowed
    assert "is an internal name" in verdict.reason
    assert resolver.lookups == []


async def test_a_compose_service_name_message_names_the_host(guard: EgressGuard):
    verdict = await guard.check("http://temporal-ui:8080/")
    assert verdict.message().startswith(
        "Lucy may not open http://temporal-ui:8080/: temporal-ui is an internal name"
    )


# --------------------------------------------------------------------------- resolution


async def test_a_public_name_that_resolves_to_a_private_address_is_refused(guard: EgressGuard):
    verdict = await guard.check("https://rebind.example.net/admin")
    assert not verdict.allowed
    assert verdict.addresses == ("10.0.0.5",)
    assert verdict.message() == (
        "Lucy may not open https://rebind.example.net/admin: it resolves to a private or internal "
        "address (10.0.0.5)"
    )


async def test_every_address_must_be_public(guard: EgressGuard):
    verdict = await guard.check("https://half.example.net/")
    assert not verdict.allowed
    assert verdict.reason == "it resolves to a private or internal address (192.168.1.20)"
    assert set(verdict.addresses) == {PUBLIC_V4, "192.168.1.20"}


async def test_an_ipv4_mapped_dns_answer_is_judged_by_its_ipv4_address(guard: EgressGuard):
    verdict = await guard.check("https://mapped.example.net/")
    assert not verdict.allowed
    assert verdict.reason == "it resolves to a private or internal address (::ffff:10.0.0.1)"


async def test_a_name_that_does_not_resolve_is_refused(guard: EgressGuard, resolver: StaticResolver):
    verdict = await guard.check("https://nope.example.com/")
    assert not verdict.allowed
    assert verdict.reason == "could not resolve nope.example.com"
    assert resolver.lookups == ["nope.example.com"]


async def test_a_resolver_answer_that_is_not_an_address_is_refused(guard: EgressGuard):
    verdict = await guard.check("https://junk.example.net/")
    assert not verdict.allowed
    assert "not an IP address" in verdict.reason


async def test_an_empty_resolver_answer_is_refused():
    async def nothing(host: str) -> list[str]:
        return []

    verdict = await EgressGuard(nothing).check("https://example.com/")
    assert verdict.reason == "could not resolve example.com"


async def test_a_slow_lookup_times_out_and_is_refused():
    async def hangs(host: str) -> list[str]:
        await asyncio.sleep(30)
        return [PUBLIC_V4]

    started = time.monotonic()
    verdict = await EgressGuard(hangs, timeout=0.05).check("https://example.com/")
    assert time.monotonic() - started < 2
    assert not verdict.allowed
    assert verdict.reason == "could not resolve example.com (the lookup timed out)"


async def test_the_system_resolver_reads_a_numeric_host_without_dns():
    assert set(await system_resolver("127.0.0.1")) == {"127.0.0.1"}


# --------------------------------------------------------------------------- malformed URLs


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/file", "only http:// and https:// URLs may be opened"),
        ("file:///etc/passwd", "only http:// and https:// URLs may be opened"),
        ("javascript:alert(1)", "only http:// and https:// URLs may be opened"),
        ("gopher://127.0.0.1:6379/_INFO", "only http:// and https:// URLs may be opened"),
        ("example.com", "only http:// and https:// URLs may be opened"),
        ("", "the URL is empty"),
        ("http:example.com", "the URL must be written http://host/... or https://host/..."),
        ("http:///127.0.0.1/", "the URL has no host name"),
        ("http://", "the URL has no host name"),
        ("http://:80/", "the URL has no host name"),
        ("http://exa mple.com/", "the URL contains spaces or control characters (percent-encode them)"),
        ("http://example.com\t/", "the URL contains spaces or control characters (percent-encode them)"),
        ("http://a\\@127.0.0.1/", "the URL contains a backslash (write / or %5C)"),
        ("https://evil.example\\@example.com/", "the URL contains a backslash (write / or %5C)"),
        ("http://example.com:99999/", "the URL's port is not valid"),
        ("http://example.com:80x/", "the URL's port is not valid"),
        ("http://[::1/", "the URL's IPv6 address is not closed with ]"),
        ("http://[not-v6]/", "the URL's IPv6 address is not valid"),
        ("http://exa!mple.com/", "the URL's host name is not valid"),
        ("http://a..b.com/", "the URL's host name is not valid"),
        ("http://1.2.3.4.5/", "1.2.3.4.5 is not a valid IP address"),
        ("http://09.1.1.1/", "09.1.1.1 is not a valid IP address"),
        ("http://256.1.1.1/", "256.1.1.1 is not a valid IP address"),
    ],
)
async def test_malformed_urls_are_refused(
    guard: EgressGuard, resolver: StaticResolver, url: str, reason: str
):
    verdict = await guard.check(url)
    assert not verdict.allowed
    assert verdict.reason == reason
    assert resolver.lookups == []


@pytest.mark.parametrize(
    "url",
    [
        "http://user:hunter2@example.com/",
        "http://user@example.com/",
        "https://example.com@127.0.0.1/",
        "http://127.0.0.1:80@example.com/",
    ],
)
async def test_urls_with_credentials_are_refused_and_the_password_is_not_repeated(
    guard: EgressGuard, url: str
):
    verdict = await guard.check(url)
    assert not verdict.allowed
    assert verdict.reason == "URLs with a user name or password are not allowed"
    assert "hunter2" not in verdict.message()
    assert "***@" in verdict.message()


async def test_a_long_url_is_shortened_in_the_message(guard: EgressGuard):
    verdict = await guard.check("http://10.0.0.1/" + "a" * 1000)
    assert len(verdict.message()) < 320
    assert verdict.message().endswith("(10.0.0.1)")


# --------------------------------------------------------------------------- reported URLs


async def test_a_reported_url_is_checked_and_names_where_it_came_from(guard: EgressGuard):
    await guard.require_reported("about:blank", reached_from="https://example.com/")
    await guard.require_reported("", reached_from="https://example.com/")
    await guard.require_reported("https://example.com/next", reached_from="https://example.com/")
    with pytest.raises(ApplicationError) as info:
        await guard.require_reported("http://10.0.0.7/admin", reached_from="https://example.com/go")
    assert info.value.type == EGRESS_DENIED
    assert info.value.message == (
        "Lucy may not open http://10.0.0.7/admin (reached from https://example.com/go): it resolves "
        "to a private or internal address (10.0.0.7)"
    )


@pytest.mark.parametrize(
    ("address", "public"),
    [
        (PUBLIC_V4, True),
        (PUBLIC_V6, True),
        ("8.8.8.8", True),
        ("::ffff:8.8.8.8", True),
        ("2002:808:808::", True),  # 6to4 around a public address
        ("127.0.0.1", False),
        ("::ffff:127.0.0.1", False),
        ("::8.8.8.8", False),  # IPv4-compatible: deprecated, never used on the internet
        ("fe80::1%eth0", False),
        ("224.0.0.251", False),
        ("ff0e::1", False),
    ],
)
def test_is_public_address(address: str, public: bool):
    assert is_public_address(ipaddress.ip_address(address)) is public
