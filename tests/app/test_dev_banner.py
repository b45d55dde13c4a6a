"""``lucy dev``'s banner says plainly that the gateway is shared, and shows no secret."""

from __future__ import annotations

from types import SimpleNamespace

from app.dev import banner
from lucy.settings import Settings

PG = SimpleNamespace(APP_USER="lucy_app", port=55432, database="lucy", user="lucy_owner")


def test_the_banner_says_the_gateway_is_shared_and_hides_its_key(settings: Settings):
    key = settings.tools.openclaw_api_key
    assert key is not None  # the test settings configure the fake gateway
    said = banner(settings, PG, 3000, 1.0)
    gateway = next(line for line in said.splitlines() if line.strip().startswith("Gateway"))
    assert "shared: every workspace and user" in gateway
    assert key.get_secret_value() not in said and "***" in said


def test_without_a_gateway_the_banner_does_not_mention_one(settings: Settings):
    no_gateway = settings.model_copy(
        update={"tools": settings.tools.model_copy(update={"openclaw_api_key": None})}
    )
    assert "Gateway" not in banner(no_gateway, PG, 3000, 1.0)
