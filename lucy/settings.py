"""Lucy's settings: one ``Settings`` made of nested groups, every variable prefixed ``LUCY_``.

Precedence, highest first: process environment > ``.env`` > ``keys.json`` > default.
Secrets are ``SecretStr`` so they never print by accident. A malformed value raises
``SettingsError`` whose message is one line naming the variable.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    NoDecode,
)

from lucy.settings_sources import ENV_PREFIX, SettingsError, SettingsGroup, variable_of

DEFAULT_DATABASE_URL = "postgresql+asyncpg://lucy:lucy@localhost:5432/lucy"
# The environments that may run without production's checks (lucy.production); every other
# LUCY_ENV (staging, production) must pass them.
DEVELOPMENT_ENVS = frozenset({"development", "test"})


def _check_url(value: str, name: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value


class CoreSettings(SettingsGroup):
    env: Literal["development", "test", "staging", "production"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    data_dir: Path = Path(".lucy")
    # More Host names (comma list, e.g. a tunnel's) besides localhost/127.0.0.1 that development answers.
    dev_allowed_hosts: str = ""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @property
    def allowed_hosts(self) -> list[str]:
        """The Host names the ingress answers to in development."""
        extra = [h.strip() for h in self.dev_allowed_hosts.split(",") if h.strip()]
        return ["localhost", "127.0.0.1", *extra]

    @property
    def is_development(self) -> bool:
        """Development or test: the only environments spared production's checks."""
        return self.env in DEVELOPMENT_ENVS


class SlackSettings(SettingsGroup):
    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    # Minimum seconds between two of Lucy's posts in one channel (per worker).
    slack_channel_min_interval: float = Field(default=1.0, ge=0)

    @field_validator("slack_api_url")
    @classmethod
    def _url(cls, v: str) -> str:
        v = _check_url(v, "slack_api_url")
        return v if v.endswith("/") else v + "/"

    def missing_for_events(self) -> list[str]:
        """Variables still needed before Slack events can be accepted over HTTP."""
        missing = []
        if self.slack_signing_secret is None:
            missing.append("LUCY_SLACK_SIGNING_SECRET")
        if self.slack_bot_token is None:
            missing.append("LUCY_SLACK_BOT_TOKEN")
        return missing


class LlmSettings(SettingsGroup):
    openrouter_api_key: SecretStr | None = None
    openrouter_base_url: str = "https://openrouter.ai/api/v1"
    openclaw_model: str = "google/gemini-2.5-flash"
    # Seconds to wait for the model's answer; LUCY_OPENCLAW_READ_TIMEOUT is its old name.
    llm_read_timeout: float = Field(
        default=120.0,
        gt=0,
        validation_alias=AliasChoices(
            "llm_read_timeout", f"{ENV_PREFIX}LLM_READ_TIMEOUT", f"{ENV_PREFIX}OPENCLAW_READ_TIMEOUT"
        ),
    )
    model_tier_fast: str = "google/gemini-2.5-flash"
    model_tier_default: str = "moonshotai/kimi-k2.5"
    model_tier_code: str = "minimax/minimax-m2.5"
    model_tier_research: str = "google/gemini-3-flash-preview"
    model_tier_document: str = "moonshotai/kimi-k2.5"
    model_tier_frontier: str = "google/gemini-3.1-pro-preview"
    # A second OpenAI-compatible provider, tried when every tier of the primary one failed.
    llm_fallback_base_url: str | None = None
    llm_fallback_api_key: SecretStr | None = None
    llm_fallback_model: str | None = None
    # Show answers in Slack as the model writes them (one streaming message in the thread);
    # false: the answer is posted when it is complete, as before.
    llm_streaming: bool = True
    # Memory (docs/memory.md): the recall cap in tokens; embeddings make retrieval hybrid.
    memory_recall_max_tokens: int = Field(default=600, ge=0, le=20_000)
    memory_embeddings_base_url: str | None = None  # OpenAI-compatible POST {url}/embeddings
    memory_embeddings_api_key: SecretStr | None = None
    memory_embeddings_model: str = "text-embedding-3-small"

    @field_validator("openrouter_base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_url(v, "openrouter_base_url").rstrip("/")

    @field_validator("llm_fallback_base_url", "memory_embeddings_base_url")
    @classmethod
    def _fallback_url(cls, v: str | None) -> str | None:
        return _check_url(v, "an optional base URL").rstrip("/") if v else None

    @property
    def fallback_configured(self) -> bool:
        return bool(self.llm_fallback_base_url and self.llm_fallback_api_key and self.llm_fallback_model)

    def model_for_tier(self, tier: str) -> str:
        """The model configured for a tier name (``fast``, ``default``, ...)."""
        value = getattr(self, f"model_tier_{tier}", None)
        if not isinstance(value, str):
            raise ValueError(f"unknown model tier {tier!r}")
        return value


class ToolSettings(SettingsGroup):
    openclaw_base_url: str = "http://localhost:18791"
    openclaw_api_key: SecretStr | None = None
    camofox_url: str = "http://localhost:9377"
    camofox_api_key: SecretStr | None = None
    composio_api_key: SecretStr | None = None
    composio_base_url: str = "https://backend.composio.dev/api/v3"
    agentmail_api_key: SecretStr | None = None
    agentmail_base_url: str = "https://api.agentmail.to/v0"
    agentmail_domain: str = "agentmail.to"
    agentmail_enabled: bool = False
    # The Svix endpoint secret (whsec_...) that POST /webhooks/agentmail verifies; unset: 503.
    agentmail_webhook_secret: SecretStr | None = None
    # Attachments of an inbound mail a task may read: per file, and all of one mail together.
    email_attachment_max_bytes: int = Field(default=10_000_000, ge=0)
    email_attachments_total_max_bytes: int = Field(default=25_000_000, ge=0)
    # Comma list of the authserv-ids whose Authentication-Results prove a sender (AgentMail's MX).
    email_trusted_authserv_ids: str = "mx.agentmail.to"
    # Per-workspace MCP servers (docs/mcp.md): host:port list that may be loopback or private.
    mcp_allowed_hosts: str = Field(
        default="", pattern=r"^\s*((\[[0-9A-Fa-f:.]+\]|[^,\s:\[\]]+):\d+\s*,?\s*)*$"
    )
    mcp_connect_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    mcp_call_timeout_seconds: float = Field(default=60.0, gt=0, le=900)
    mcp_max_schema_bytes: int = Field(default=16_000, ge=256, le=200_000)  # a bigger schema is skipped
    mcp_max_tools_per_server: int = Field(default=64, ge=1, le=512)

    @field_validator("openclaw_base_url", "camofox_url", "composio_base_url", "agentmail_base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_url(v, "url").rstrip("/")


class DatabaseSettings(SettingsGroup):
    # The application's role: neither owner nor superuser, so row-level security applies to it.
    database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    # The schema owner's URL for `lucy db` (migrations, partitions, key rotation); default: database_url.
    database_migration_url: SecretStr | None = None
    # Months of cost_log / audit_log / webhook_deliveries kept by `lucy db partitions`.
    database_retention_months: int = Field(default=24, ge=1)
    # The connection budget of one process (docs/postgres.md): at most pool_size + max_overflow
    # connections; a caller waits pool_timeout seconds for one, then its activity fails and is
    # retried; a connection older than pool_recycle seconds is replaced (-1: never).
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    database_pool_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    database_pool_recycle_seconds: int = Field(default=1800, ge=-1)
    # The URL points at PgBouncer in transaction pooling mode: no prepared statement outlives its
    # transaction (docs/postgres.md#pgbouncer).
    database_pgbouncer: bool = False

    @field_validator("database_url", "database_migration_url")
    @classmethod
    def _scheme(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith(
            ("postgresql+asyncpg://", "postgresql://", "postgres://")
        ):
            raise ValueError("must be a postgresql:// or postgresql+asyncpg:// URL")
        return v

    @property
    def async_url(self) -> str:
        """The application URL with the asyncpg driver, whatever scheme was configured."""
        return _asyncpg(self.database_url.get_secret_value())

    @property
    def migration_url(self) -> str:
        """The schema owner's URL (falls back to the application URL)."""
        url = self.database_migration_url or self.database_url
        return _asyncpg(url.get_secret_value())


def _asyncpg(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


class TemporalSettings(SettingsGroup):
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "lucy-tasks"
    temporal_api_key: SecretStr | None = None
    temporal_tls: bool = False
    temporal_tls_client_cert_path: Path | None = None
    temporal_tls_client_key_path: Path | None = None
    temporal_tls_server_ca_cert_path: Path | None = None
    # Prometheus endpoints of a worker process: the Temporal SDK's runtime metrics, and Lucy's
    # own (LLM latency...). 0 turns one off. `lucy dev` serves Lucy's on the ingress /metrics.
    temporal_metrics_port: int = Field(default=9464, ge=0, le=65535)
    worker_metrics_port: int = Field(default=9465, ge=0, le=65535)
    # Both worker metrics ports (no authentication) listen here: 0.0.0.0 only where only Prometheus reaches.
    worker_metrics_host: str = "127.0.0.1"
    # Encrypt every workflow/activity payload with LUCY_ENCRYPTION_KEYS (AES-256-GCM). The
    # ingress then serves a codec endpoint (/codec/decode) for the Temporal UI, guarded by the token.
    temporal_encrypt_payloads: bool = False
    temporal_codec_token: SecretStr | None = None
    # POST /codec/encode only with a token of its own: whoever can seal can forge a task's input.
    temporal_codec_encode_token: SecretStr | None = None
    temporal_codec_cors_origins: str = "http://localhost:8233"
    # Production refuses plaintext gRPC to a Temporal that is not on this host, unless the
    # operator says the network in between is private (docker compose's internal network).
    temporal_allow_plaintext: bool = False
    # Worker Versioning (docs/design.md#changing-a-workflow): with a build id, the worker joins the
    # Worker Deployment ``temporal_worker_deployment`` as that version, and every task stays
    # pinned to the version that started it.
    temporal_worker_deployment: str = "lucy"
    temporal_worker_build_id: str | None = None
    # Per queue role (docs/scaling.md): workflow tasks at once, and activities at once on the
    # workflows queue (records), Q-llm, Q-tools and Q-slack, in one worker process.
    worker_workflow_concurrency: int = Field(default=100, ge=1)
    worker_records_concurrency: int = Field(default=20, ge=1)
    worker_llm_concurrency: int = Field(default=50, ge=1)
    worker_tools_concurrency: int = Field(default=20, ge=1)
    worker_slack_concurrency: int = Field(default=20, ge=1)
    # false: activities stay on the workflows' queue (one process serving all; eager dispatch).
    worker_split_queues: bool = True
    # Seconds between returns of the worker's freed heap to the OS (app/memory_trim.py); 0: never.
    worker_memory_trim_seconds: float = Field(default=10.0, ge=0)

    @field_validator("temporal_address")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"must be host:port, got {v!r}")
        return v

    @property
    def uses_tls(self) -> bool:
        return bool(
            self.temporal_tls or self.temporal_tls_client_cert_path or self.temporal_api_key is not None
        )


class LimitSettings(SettingsGroup):
    """Protection at ingress: token buckets per user and per workspace (requests per minute)."""

    rate_limit_user_per_minute: float = Field(default=20, gt=0)
    rate_limit_workspace_per_minute: float = Field(default=300, gt=0)
    # The task engine: how long an approval waits before it is rejected as expired, and how many
    # LLM steps one task may take before Lucy stops and says so (a runaway-loop guard).
    approval_ttl_hours: float = Field(default=24, gt=0)
    agent_max_steps: int = Field(default=12, ge=1, le=200)
    # Sub-tasks (the delegate tool, docs/delegate.md): how many of one task's run at once.
    delegate_max_parallel: int = Field(default=4, ge=1, le=32)
    # Schedules: the shortest time between two runs of one schedule, in seconds (15 minutes).
    schedule_min_interval: float = Field(default=900, ge=1)


class ModelPrice(BaseModel):
    """USD per million tokens, as providers list them."""

    model_config = {"frozen": True}

    input: float = Field(ge=0, le=10_000)
    output: float = Field(ge=0, le=10_000)


class BudgetSettings(SettingsGroup):
    """USD budgets (see docs/budgets.md): the defaults where an admin set nothing (unset: no
    budget), prices for providers that do not report cost, and how a call is estimated."""

    budget_workspace_monthly_usd: Decimal | None = Field(default=None, ge=0, le=10_000_000)
    budget_user_monthly_usd: Decimal | None = Field(default=None, ge=0, le=10_000_000)
    budget_user_daily_usd: Decimal | None = Field(default=None, ge=0, le=10_000_000)
    # Per model, USD per million tokens: {"vendor/model": {"input": 0.5, "output": 1.5}}.
    llm_prices: Annotated[dict[str, ModelPrice], NoDecode] = Field(default_factory=dict)
    # The price assumed when estimating a call on OpenRouter (which reports the actual cost)
    # for a model the table does not list, per million tokens, input and output alike.
    budget_estimate_usd_per_mtok: float = Field(default=15.0, gt=0, le=10_000)
    # The completion length assumed when a call sets no max_tokens.
    budget_estimate_max_tokens: int = Field(default=4_096, ge=1, le=1_000_000)
    # The shortest answer a call is made for when a budget is nearly used up (max_tokens then
    # shrinks to the room left, down to this); with less room the call is refused.
    budget_min_answer_tokens: int = Field(default=256, ge=1, le=1_000_000)
    # A hold not settled by then (the worker died mid-call) is given back by maintenance.
    budget_reservation_ttl_seconds: int = Field(default=900, ge=60, le=86_400)

    @field_validator("llm_prices", mode="before")
    @classmethod
    def _prices(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                return json.loads(v)
            except ValueError:
                raise ValueError(
                    'must be JSON: {"vendor/model": {"input": <USD/M tokens>, "output": <USD/M tokens>}}'
                ) from None
        return v


class SecuritySettings(SettingsGroup):
    encryption_keys: SecretStr | None = None
    # Bearer token for the ingress's GET /metrics. Without it, /metrics is served only in
    # development and test; production keeps it off the public port.
    metrics_token: SecretStr | None = None


class Settings(BaseModel):
    """All of Lucy's settings, grouped. Build it with :func:`load_settings` or :func:`get_settings`."""

    model_config = {"frozen": True}

    core: CoreSettings
    slack: SlackSettings
    llm: LlmSettings
    tools: ToolSettings
    database: DatabaseSettings
    temporal: TemporalSettings
    security: SecuritySettings
    limits: LimitSettings
    budget: BudgetSettings = Field(default_factory=BudgetSettings)


_GROUPS: dict[str, type[SettingsGroup]] = {
    "core": CoreSettings,
    "slack": SlackSettings,
    "llm": LlmSettings,
    "tools": ToolSettings,
    "database": DatabaseSettings,
    "temporal": TemporalSettings,
    "security": SecuritySettings,
    "limits": LimitSettings,
    "budget": BudgetSettings,
}


def load_settings(**overrides: Any) -> Settings:
    """Read every group from its sources.

    Args:
        **overrides: field values by field name (``slack_bot_token=...``), highest precedence.

    Raises:
        SettingsError: one line naming the first malformed variable.
    """
    groups: dict[str, Any] = {}
    for name, cls in _GROUPS.items():
        mine = {k: v for k, v in overrides.items() if k in cls.model_fields}
        try:
            groups[name] = cls(**mine)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err.get("loc") else "?"
            msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            raise SettingsError(f"{variable_of(cls.model_fields, field)}: {msg}") from None
    unknown = set(overrides) - {f for cls in _GROUPS.values() for f in cls.model_fields}
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return Settings(**groups)


def all_variable_names() -> list[str]:
    """Every ``LUCY_*`` variable Lucy reads (used to check ``.env.example``)."""
    return [f"{ENV_PREFIX}{f.upper()}" for cls in _GROUPS.values() for f in cls.model_fields]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
