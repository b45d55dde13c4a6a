"""What a production (or staging) Lucy refuses to start with: one clear line per problem.

``lucy worker`` and ``lucy ingress`` run these checks in every ``LUCY_ENV`` but development and
test (staging is held to production's standard) and stop (exit 2) if any fails, before they
connect anything. They cover what would quietly weaken
Lucy's promises:

* payloads in Temporal unencrypted, or no key to encrypt them (and to sign clicks) with;
* no token guarding the codec endpoint that decrypts payloads for the Temporal UI, or the
  same token for the one that seals them;
* plaintext gRPC to a Temporal server on another host (unless the operator says the network
  in between is private: ``LUCY_TEMPORAL_ALLOW_PLAINTEXT``);
* a well-known default database password;
* an application database role that is a superuser or has BYPASSRLS (row-level security,
  Lucy's tenant isolation, would not apply to it);
* a CamoFox browser server reachable without a key;
* (ingress over HTTP) no Slack signing secret.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lucy.crypto import CryptoError, KeyRing
from lucy.settings import Settings

DEFAULT_PASSWORDS = frozenset({"", "lucy", "lucy_app", "postgres", "password", "changeme", "secret", "admin"})
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def settings_problems(settings: Settings, *, role: str, http_ingress: bool = False) -> list[str]:
    """Configuration problems, one line each (``role`` is ``worker`` or ``ingress``)."""
    problems: list[str] = []
    keys = settings.security.encryption_keys
    try:
        KeyRing.parse(keys.get_secret_value() if keys else None)
    except CryptoError as exc:
        problems.append(
            f"LUCY_ENCRYPTION_KEYS: {exc} (outside development, payloads are encrypted and clicks "
            "signed with it)"
        )
    temporal = settings.temporal
    if not temporal.temporal_encrypt_payloads:
        problems.append(
            "LUCY_TEMPORAL_ENCRYPT_PAYLOADS: must be true outside development: task texts, tool output and "
            "answers would be stored readable in Temporal"
        )
    if temporal.temporal_codec_token is None:
        problems.append(
            "LUCY_TEMPORAL_CODEC_TOKEN: required outside development, so that only people holding it "
            "can have payloads decrypted for the Temporal UI"
        )
    encode = temporal.temporal_codec_encode_token
    if encode is not None and encode == temporal.temporal_codec_token:
        problems.append(
            "LUCY_TEMPORAL_CODEC_ENCODE_TOKEN: must differ from LUCY_TEMPORAL_CODEC_TOKEN: whoever may "
            "read payloads must not be able to seal new ones"
        )
    host = temporal.temporal_address.rpartition(":")[0].lower()
    if not temporal.uses_tls and host not in LOCAL_HOSTS and not temporal.temporal_allow_plaintext:
        problems.append(
            f"LUCY_TEMPORAL_ADDRESS: plaintext gRPC to {temporal.temporal_address}, not on this host; "
            "turn on TLS (LUCY_TEMPORAL_TLS, an API key or the mTLS paths), or set "
            "LUCY_TEMPORAL_ALLOW_PLAINTEXT=true if the network in between is private"
        )
    database = settings.database
    for name, secret in (
        ("LUCY_DATABASE_URL", database.database_url),
        ("LUCY_DATABASE_MIGRATION_URL", database.database_migration_url),
    ):
        if secret is not None and _password(secret.get_secret_value()) in DEFAULT_PASSWORDS:
            problems.append(f"{name}: uses a well-known default password; set a strong one")
    if settings.tools.camofox_api_key is None:
        problems.append(
            "LUCY_CAMOFOX_API_KEY: required outside development, so that the browser server only takes "
            "Lucy's requests (start CamoFox with the same CAMOFOX_ACCESS_KEY)"
        )
    if role == "ingress" and http_ingress and settings.slack.slack_signing_secret is None:
        problems.append("LUCY_SLACK_SIGNING_SECRET: required to verify Slack's requests over HTTP")
    return problems


async def database_problems(engine: AsyncEngine) -> list[str]:
    """Problems with the application role: superuser or BYPASSRLS defeat row-level security."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT current_user AS name, rolsuper, rolbypassrls "
                    "FROM pg_roles WHERE rolname = current_user"
                )
            )
        ).one()
    problems = []
    if row.rolsuper:
        problems.append(
            f"LUCY_DATABASE_URL: the role {row.name!r} is a superuser, so row-level security does not apply "
            "to it; connect as the application role (lucy_app)"
        )
    elif row.rolbypassrls:
        problems.append(
            f"LUCY_DATABASE_URL: the role {row.name!r} has BYPASSRLS, so row-level security does not apply "
            "to it; connect as the application role (lucy_app)"
        )
    return problems


async def refuse_insecure(
    settings: Settings, engine: AsyncEngine, *, role: str, http_ingress: bool = False
) -> list[str]:
    """Every problem of a production or staging start (empty in development and test)."""
    if settings.core.is_development:
        return []
    problems = settings_problems(settings, role=role, http_ingress=http_ingress)
    try:
        problems += await database_problems(engine)
    except Exception as exc:  # cannot tell: say so, never start blind
        problems.append(f"LUCY_DATABASE_URL: cannot check the database role ({exc.__class__.__name__})")
    return problems
