"""Where settings come from besides the environment and ``.env``: ``keys.json``, in the original
system's nested layout or as flat ``LUCY_*`` keys (see :mod:`lucy.settings`); and the base of
every settings group (:class:`SettingsGroup`), which reads them in that order."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "LUCY_"


# keys.json as the original system wrote it (nested by provider) -> our field names.
_KEYS_JSON_PATHS: dict[tuple[str, str], str] = {
    ("openclaw_lucy", "gateway_token"): "openclaw_api_key",
    ("openclaw_lucy", "openrouter_api_key"): "openrouter_api_key",
    ("composio", "api_key"): "composio_api_key",
    ("agentmail", "api_key"): "agentmail_api_key",
    ("slack", "bot_token"): "slack_bot_token",
    ("slack", "app_token"): "slack_app_token",
    ("slack", "signing_secret"): "slack_signing_secret",
}


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming the variable."""


class KeysJsonSource(PydanticBaseSettingsSource):
    """Reads ``keys.json`` (path from ``LUCY_KEYS_FILE``, default ``./keys.json``).

    Accepts the original nested layout (``{"openclaw_lucy": {"gateway_token": ...}}``) and
    flat ``{"LUCY_SLACK_BOT_TOKEN": ...}`` keys.
    """

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self._values: dict[str, Any] = {}
        if path.is_file():
            try:
                raw = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise SettingsError(
                    f"keys.json at {path} is not valid JSON ({exc.__class__.__name__})"
                ) from None
            self._values = _flatten_keys_json(raw)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __repr__(self) -> str:
        return f"KeysJsonSource({sorted(self._values)})"

    def __call__(self) -> dict[str, Any]:
        names = set(self.settings_cls.model_fields)
        return {k: v for k, v in self._values.items() if k in names and v not in (None, "")}


def _flatten_keys_json(raw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(raw, dict):
        return out
    for key, value in raw.items():
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                name = _KEYS_JSON_PATHS.get((key, sub))
                if name:
                    out[name] = sub_value
        elif isinstance(key, str) and key.upper().startswith(ENV_PREFIX):
            out[key[len(ENV_PREFIX) :].lower()] = value
    return out


def env_or_dotenv(name: str) -> str | None:
    """A variable from the process environment, else from ``.env`` (None: set in neither)."""
    if name in os.environ:
        return os.environ[name]
    env_file = Path(".env")
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == name:
                return value.strip().strip("'\"")
    return None


def variable_of(fields: dict[str, FieldInfo], field: str) -> str:
    """The ``LUCY_*`` variable behind ``field``: for a renamed setting, the name that is set."""
    info = fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices):
        names = [str(a) for a in alias.choices if str(a).startswith(ENV_PREFIX)]
        return next((n for n in names if env_or_dotenv(n) is not None), names[0])
    return f"{ENV_PREFIX}{field.upper()}"


class SettingsGroup(BaseSettings):
    """Base of every settings group: flat ``LUCY_<FIELD>`` names, same sources."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_ignore_empty=True,  # `LUCY_X=` (as in .env.example) means "not set"
        frozen=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        keys_path = Path(env_or_dotenv("LUCY_KEYS_FILE") or "keys.json")
        return (init_settings, env_settings, dotenv_settings, KeysJsonSource(settings_cls, keys_path))
