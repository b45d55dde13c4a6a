"""docker-compose.yml and the Slack manifest, checked by reading them (no Docker engine here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_every_service_with_health_and_order(compose: dict):
    services = compose["services"]
    for name in ("postgres", "temporal", "temporal-ui", "camofox", "lucy-worker", "lucy-ingress", "migrate"):
        assert name in services, name
    assert services["postgres"]["image"] == "postgres:16"
    for name in ("postgres", "temporal", "camofox", "lucy-ingress"):
        assert "healthcheck" in services[name], name
    assert services["camofox"]["ports"] == ["9377:9377"]
    # Temporal is Postgres-backed.
    assert services["temporal"]["environment"]["DB"].startswith("postgres")
    assert services["temporal"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Migrations run before the app starts.
    assert "lucy db upgrade" in " ".join(services["migrate"]["command"])
    assert "lucy db partitions" in " ".join(services["migrate"]["command"])
    init = (ROOT / "docker" / "postgres-init.sql").read_text()
    assert "CREATE ROLE lucy_app LOGIN" in init and "lucy_app_rw" in init
    for app in ("lucy-worker", "lucy-ingress"):
        assert services[app]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        env = services[app]["environment"]
        assert env["LUCY_TEMPORAL_ADDRESS"] == "temporal:7233"
        assert env["LUCY_DATABASE_URL"].startswith("postgresql+asyncpg://lucy_app:")  # not the owner
        assert env["LUCY_DATABASE_MIGRATION_URL"].startswith("postgresql+asyncpg://lucy:")
    assert services["lucy-ingress"]["command"][:2] == ["lucy", "ingress"]
    setup = " ".join(services["temporal-setup"]["command"])
    for sa in (
        "LucyWorkspace",
        "LucyUser",
        "LucyChannel",
        "LucyThread",
        "LucyStatus",
        "LucyIntent",
        "LucySource",
    ):
        assert sa in setup


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="docker compose client not installed",
)
def test_docker_compose_config_validates():
    done = subprocess.run(["docker", "compose", "config", "-q"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_slack_manifest_points_everything_at_slack_events():
    manifest = yaml.safe_load((ROOT / "slack-app-manifest.yaml").read_text())
    settings = manifest["settings"]
    url = settings["event_subscriptions"]["request_url"]
    assert url.endswith("/slack/events")
    assert settings["interactivity"]["request_url"] == url
    assert settings["interactivity"]["is_enabled"] is True
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/lucy" and command["url"] == url
    events = set(settings["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.im", "app_home_opened", "assistant_thread_started"} <= events
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # What the code calls: chat.postMessage, conversations.replies/history (idempotent posting).
    assert {"app_mentions:read", "chat:write", "im:history", "channels:history", "commands"} <= scopes
    assert {"users:read", "assistant:write"} <= scopes  # users.info, assistant.threads.*
