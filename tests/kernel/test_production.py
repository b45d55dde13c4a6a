"""A production Lucy refuses insecure settings at start, with one clear line each."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.devservers import LocalPostgres
from lucy.crypto import KeyRing
from lucy.production import database_problems, refuse_insecure, settings_problems
from lucy.settings import load_settings

ROOT = Path(__file__).parents[2]

SECURE = dict(
    env="production",
    database_url="postgresql+asyncpg://lucy_app:Str0ng-and-long@db.internal:5432/lucy",
    temporal_address="temporal.example.com:7233",
    temporal_tls=True,
    temporal_encrypt_payloads=True,
    temporal_codec_token="codec-token-0123456789",
    encryption_keys=KeyRing.new_key("k1"),
    camofox_api_key="camofox-key-0123456789",
    slack_signing_secret="signing-secret",
    slack_bot_token="xoxb-1",
)


def problems(**changes: object) -> list[str]:
    return settings_problems(load_settings(**{**SECURE, **changes}), role="ingress", http_ingress=True)


def test_a_secure_configuration_passes():
    assert problems() == []


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({"temporal_encrypt_payloads": False}, "LUCY_TEMPORAL_ENCRYPT_PAYLOADS"),
        ({"encryption_keys": None}, "LUCY_ENCRYPTION_KEYS"),
        ({"temporal_codec_token": None}, "LUCY_TEMPORAL_CODEC_TOKEN"),
        ({"temporal_tls": False}, "LUCY_TEMPORAL_ADDRESS"),
        ({"database_url": "postgresql+asyncpg://lucy_app:lucy_app@db:5432/lucy"}, "LUCY_DATABASE_URL"),
        ({"database_url": "postgresql://postgres:postgres@db/lucy"}, "LUCY_DATABASE_URL"),
        ({"database_migration_url": "postgresql://lucy:lucy@db/lucy"}, "LUCY_DATABASE_MIGRATION_URL"),
        ({"camofox_api_key": None}, "LUCY_CAMOFOX_API_KEY"),
        ({"slack_signing_secret": None}, "LUCY_SLACK_SIGNING_SECRET"),
    ],
)
def test_each_insecure_setting_is_one_clear_line(changes: dict, variable: str):
    found = problems(**changes)
    assert len(found) == 1 and found[0].startswith(f"{variable}:"), found
    assert "Str0ng-and-long" not in found[0]


@pytest.mark.parametrize("lucy_env", ["staging", "production"])
def test_every_environment_but_development_and_test_gets_the_production_checks(lucy_env: str):
    settings = load_settings(env=lucy_env, encryption_keys=None, temporal_encrypt_payloads=False)
    assert not settings.core.is_development
    found = asyncio.run(
        refuse_insecure(settings, create_async_engine("postgresql+asyncpg://x@127.0.0.1:1/x"), role="worker")
    )
    variables = {line.split(":")[0] for line in found}
    assert {"LUCY_ENCRYPTION_KEYS", "LUCY_TEMPORAL_ENCRYPT_PAYLOADS", "LUCY_DATABASE_URL"} <= variables


@pytest.mark.parametrize("lucy_env", ["development", "test"])
def test_development_and_test_skip_them(lucy_env: str):
    settings = load_settings(env=lucy_env, encryption_keys=None, temporal_encrypt_payloads=False)
    assert settings.core.is_development
    assert (
        asyncio.run(
            refuse_insecure(
                settings, create_async_engine("postgresql+asyncpg://x@127.0.0.1:1/x"), role="worker"
            )
        )
        == []
    )


def test_the_encode_token_must_differ_from_the_decode_token():
    assert problems(temporal_codec_encode_token="encode-token-0123456789") == []
    (found,) = problems(temporal_codec_encode_token=SECURE["temporal_codec_token"])
    assert found.startswith("LUCY_TEMPORAL_CODEC_ENCODE_TOKEN:") and "codec-token" not in found


def test_plaintext_temporal_is_fine_on_this_host_or_when_declared_private():
    assert problems(temporal_tls=False, temporal_address="localhost:7233") == []
    assert problems(temporal_tls=False, temporal_allow_plaintext=True) == []


async def test_a_superuser_application_role_is_refused(postgres: LocalPostgres):
    superuser = create_async_engine(postgres.superuser_url_for(postgres.database))
    app = create_async_engine(postgres.app_url)
    try:
        found = await database_problems(superuser)
        assert len(found) == 1 and "is a superuser" in found[0]
        assert await database_problems(app) == []
    finally:
        await superuser.dispose()
        await app.dispose()


async def test_a_bypassrls_application_role_is_refused(postgres: LocalPostgres):
    superuser = create_async_engine(postgres.superuser_url_for(postgres.database))
    name = f"lucy_bypass_{uuid.uuid4().hex[:8]}"
    try:
        async with superuser.begin() as conn:
            await conn.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD 'bypass-pw' NOSUPERUSER BYPASSRLS"))
        bypass = create_async_engine(make_url(postgres.app_url).set(username=name, password="bypass-pw"))
        try:
            found = await database_problems(bypass)
        finally:
            await bypass.dispose()
        assert len(found) == 1 and "has BYPASSRLS" in found[0] and name in found[0]
    finally:
        async with superuser.begin() as conn:
            await conn.execute(text(f"DROP ROLE IF EXISTS {name}"))
        await superuser.dispose()


@pytest.mark.parametrize("lucy_env", ["production", "staging"])
def test_lucy_worker_refuses_to_start_and_says_why(tmp_path: Path, postgres: LocalPostgres, lucy_env: str):
    env = {
        "PATH": "/usr/bin:/bin",
        "LUCY_ENV": lucy_env,
        "LUCY_DATABASE_URL": postgres.app_url,
        "LUCY_TEMPORAL_ADDRESS": "temporal.example.com:7233",
    }
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "worker"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    lines = [
        line
        for line in done.stderr.splitlines()
        if line.startswith(f"lucy: refusing to start in {lucy_env}:")
    ]
    variables = {line.split(": ")[2].split(":")[0] for line in lines}
    assert {
        "LUCY_ENCRYPTION_KEYS",
        "LUCY_TEMPORAL_ENCRYPT_PAYLOADS",
        "LUCY_TEMPORAL_CODEC_TOKEN",
        "LUCY_TEMPORAL_ADDRESS",
        "LUCY_DATABASE_URL",  # lucy_app:lucy_app is the embedded server's default password
        "LUCY_CAMOFOX_API_KEY",
    } <= variables, done.stderr
    assert "lucy_app@" not in done.stderr and "Traceback" not in done.stderr


def test_unencrypted_payloads_are_refused_in_strict_mode():
    from temporalio.api.common.v1 import Payload

    from lucy.codec import EncryptionCodec, UnencryptedPayload

    ring = KeyRing.parse(KeyRing.new_key("k1"))
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"x": 1}')
    assert asyncio.run(EncryptionCodec(ring).decode([plain])) == [plain]  # tolerant outside production
    with pytest.raises(UnencryptedPayload):
        asyncio.run(EncryptionCodec(ring, strict=True).decode([plain]))
    sealed = asyncio.run(EncryptionCodec(ring).encode([plain]))
    assert asyncio.run(EncryptionCodec(ring, strict=True).decode(sealed)) == [plain]


def test_failure_messages_are_encoded_with_payload_encryption():
    from temporalio.converter import DefaultFailureConverterWithEncodedAttributes

    from lucy.codec import data_converter

    ring = KeyRing.parse(KeyRing.new_key("k1"))
    assert isinstance(data_converter(ring).failure_converter, DefaultFailureConverterWithEncodedAttributes)
