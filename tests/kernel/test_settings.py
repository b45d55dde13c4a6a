"""Settings: LUCY_ names, precedence env > .env > keys.json > default, clear one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lucy.settings import SettingsError, all_variable_names, load_settings

ROOT = Path(__file__).parents[2]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in [*all_variable_names(), "LUCY_KEYS_FILE"]:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_defaults(workdir: Path):
    s = load_settings()
    assert s.slack.slack_api_url == "https://slack.com/api/"
    assert s.llm.openrouter_base_url == "https://openrouter.ai/api/v1"
    assert s.temporal.temporal_address == "localhost:7233"
    assert s.temporal.temporal_namespace == "default"
    assert s.temporal.temporal_task_queue == "lucy-tasks"
    assert s.slack.slack_bot_token is None
    assert s.slack.missing_for_events() == ["LUCY_SLACK_SIGNING_SECRET", "LUCY_SLACK_BOT_TOKEN"]


def test_precedence_env_over_dotenv_over_keys_json(workdir: Path, monkeypatch: pytest.MonkeyPatch):
    (workdir / "keys.json").write_text(
        json.dumps(
            {
                "openclaw_lucy": {"gateway_token": "gw-from-keys", "openrouter_api_key": "or-from-keys"},
                "composio": {"api_key": "composio-from-keys"},
                "LUCY_SLACK_BOT_TOKEN": "xoxb-from-keys",
            }
        )
    )
    (workdir / ".env").write_text(
        "LUCY_OPENROUTER_API_KEY=or-from-dotenv\nLUCY_SLACK_BOT_TOKEN=xoxb-from-dotenv\n"
    )
    monkeypatch.setenv("LUCY_SLACK_BOT_TOKEN", "xoxb-from-env")
    s = load_settings()
    assert s.slack.slack_bot_token is not None
    assert s.slack.slack_bot_token.get_secret_value() == "xoxb-from-env"
    assert s.llm.openrouter_api_key is not None
    assert s.llm.openrouter_api_key.get_secret_value() == "or-from-dotenv"
    assert s.tools.openclaw_api_key is not None
    assert s.tools.openclaw_api_key.get_secret_value() == "gw-from-keys"
    assert s.tools.composio_api_key is not None
    assert s.tools.composio_api_key.get_secret_value() == "composio-from-keys"


def test_secrets_do_not_print(workdir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LUCY_SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("LUCY_DATABASE_URL", "postgresql://lucy:hunter2@db:5432/lucy")
    s = load_settings()
    assert "xoxb-very-secret" not in repr(s) and "xoxb-very-secret" not in str(s)
    assert "hunter2" not in repr(s)
    assert s.database.async_url == "postgresql+asyncpg://lucy:hunter2@db:5432/lucy"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LUCY_TEMPORAL_ADDRESS", "no-port-here"),
        ("LUCY_OPENCLAW_READ_TIMEOUT", "soon"),
        ("LUCY_SLACK_API_URL", "ftp://slack"),
        ("LUCY_LOG_LEVEL", "LOUD"),
        ("LUCY_DATABASE_URL", "mysql://x"),
    ],
)
def test_malformed_setting_names_the_variable(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as exc:
        load_settings()
    message = str(exc.value)
    assert message.startswith(f"{name}:")
    assert "\n" not in message


def test_cli_stops_with_one_clear_line(workdir: Path):
    env = {"PATH": "/usr/bin:/bin", "LUCY_TEMPORAL_ADDRESS": "nonsense"}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=workdir,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("lucy: configuration error: LUCY_TEMPORAL_ADDRESS:")


def test_env_example_lists_every_setting():
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*(LUCY_[A-Z0-9_]+)=", text, re.M))
    missing = set(all_variable_names()) - listed
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_copied_to_dotenv_loads(workdir: Path):
    (workdir / ".env").write_text((ROOT / ".env.example").read_text())
    s = load_settings()
    assert s.slack.slack_bot_token is None
    assert s.slack.missing_for_events() == ["LUCY_SLACK_SIGNING_SECRET", "LUCY_SLACK_BOT_TOKEN"]
    assert s.temporal.temporal_tls_client_cert_path is None


def test_socket_ingress_runs_the_email_listener_on_the_api_key_alone(workdir: Path):
    from app.cli import runs_email_listener

    assert not runs_email_listener(load_settings(agentmail_enabled=True))
    assert runs_email_listener(load_settings(agentmail_api_key="am_key_0123", agentmail_enabled=False))


@pytest.mark.parametrize("name", ["LUCY_LLM_READ_TIMEOUT", "LUCY_OPENCLAW_READ_TIMEOUT"])
def test_the_llm_read_timeout_reads_its_name_and_its_old_one(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, name: str
):
    monkeypatch.delenv("LUCY_OPENCLAW_READ_TIMEOUT", raising=False)
    monkeypatch.setenv(name, "33.5")
    assert load_settings().llm.llm_read_timeout == 33.5
    assert load_settings(llm_read_timeout=7.0).llm.llm_read_timeout == 7.0
