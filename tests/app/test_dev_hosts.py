"""In development every route of the ingress answers only to this machine's names (a page on
another site that rebinds its DNS to 127.0.0.1 names its own host), not only ``/console``."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from app.ingress.app import IngressDeps, create_app
from lucy.crypto import KeyRing
from lucy.settings import load_settings
from tests.conftest import sign

ROUTES = [("GET", "/health"), ("GET", "/metrics"), ("POST", "/codec/decode"), ("POST", "/slack/events")]


async def _no_temporal() -> Client:
    raise ConnectionRefusedError("not needed")


def _app(engine: AsyncEngine, **overrides: object):
    settings = load_settings(
        temporal_encrypt_payloads=True,
        encryption_keys=KeyRing.new_key("k1"),
        slack_signing_secret="dev-hosts-secret",
        slack_bot_token="xoxb-dev-hosts",
        **overrides,
    )
    return create_app(IngressDeps(settings=settings, engine=engine, temporal=_no_temporal))


async def _status(app, method: str, path: str, host: str) -> int:
    body = (
        b'{"payloads": []}'
        if path.startswith("/codec")
        else b'{"type": "url_verification", "challenge": "c"}'
    )
    headers = {"Host": host, "Content-Type": "application/json"}
    if path == "/slack/events":
        headers.update(sign(body, secret="dev-hosts-secret"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        return (await http.request(method, path, content=body, headers=headers)).status_code


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_development_refuses_other_host_names_on_every_route(
    engine: AsyncEngine, method: str, path: str
):
    app = _app(engine, env="development")
    assert await _status(app, method, path, "rebound.evil.example") == 400
    for host in ("localhost:3000", "127.0.0.1:3000", "localhost"):
        assert await _status(app, method, path, host) == 200, host


async def test_a_named_host_is_allowed_when_configured(engine: AsyncEngine):
    app = _app(engine, env="development", dev_allowed_hosts="lucy-dev.tunnel.example")
    assert await _status(app, "GET", "/health", "lucy-dev.tunnel.example") == 200
    assert await _status(app, "GET", "/health", "rebound.evil.example") == 400
