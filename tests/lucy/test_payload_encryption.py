"""Encrypted payloads (``LUCY_TEMPORAL_ENCRYPT_PAYLOADS``): Temporal stores only ciphertext, the
task still runs end to end, and the ingress's codec endpoint decodes for those with the token."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from app.ingress.app import IngressDeps, create_app
from app.ingress.codec import MAX_CODEC_BODY_BYTES
from lucy import codec as codec_module
from lucy.codec import ENCODING, EncryptionCodec, data_converter, payload_keyring, payloads_to_json
from lucy.contracts.ids import task_workflow_id
from lucy.crypto import CryptoError, KeyRing
from tests.conftest import mention_event, new_team, running_lucy

KEY = KeyRing.new_key("k1")


def _encrypted_settings(
    settings,
    *,
    env: str = "test",
    codec_token: str | None = "codec-token-123",
    encode_token: str | None = None,
):
    """The test settings with payload encryption on (and a key, codec tokens, an environment)."""
    return settings.model_copy(
        update={
            "core": settings.core.model_copy(update={"env": env}),
            "temporal": settings.temporal.model_copy(
                update={
                    "temporal_encrypt_payloads": True,
                    "temporal_codec_token": SecretStr(codec_token) if codec_token else None,
                    "temporal_codec_encode_token": SecretStr(encode_token) if encode_token else None,
                }
            ),
            "security": settings.security.model_copy(update={"encryption_keys": SecretStr(KEY)}),
        }
    )


async def test_temporal_sees_only_ciphertext_and_the_task_still_runs(
    settings, temporal_env, engine, admin_engine, fake_slack, fake_llm
):
    enc = _encrypted_settings(settings)
    keyring = payload_keyring(enc)
    assert keyring is not None
    plain: Client = temporal_env.client
    sealed = await Client.connect(
        plain.service_client.config.target_host,
        namespace=plain.namespace,
        data_converter=data_converter(keyring),
    )
    fake_llm.then(content="The plan is safe with me.")
    async with running_lucy(enc, sealed, engine, admin_engine) as lucy:
        team = new_team()
        event = mention_event(team=team, text="my secret plan is xyzzy-42")
        assert (await lucy.post_event(event)).status_code == 200
        ev = event["event"]
        workflow_id = task_workflow_id(team, ev["channel"], ev["ts"])
        result = await asyncio.wait_for(sealed.get_workflow_handle(workflow_id).result(), 30)
        assert result["status"] == "completed"  # the sealed client decodes the result
    assert "safe with me" in fake_slack.posted(ev["channel"])[-1]["text"]

    history = await plain.get_workflow_handle(workflow_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    assert started.metadata["encoding"] == ENCODING
    raw = history.to_json()
    assert "xyzzy-42" not in raw and "safe with me" not in raw
    assert base64.b64encode(b"xyzzy-42").decode()[:8] not in raw
    (decoded,) = await EncryptionCodec(keyring).decode([started])
    assert b"xyzzy-42" in decoded.data


async def test_the_codec_endpoint_decodes_only_with_the_token(settings, engine):
    enc = _encrypted_settings(settings, env="production")
    keyring = payload_keyring(enc)
    assert keyring is not None
    codec = EncryptionCodec(keyring)
    from temporalio.api.common.v1 import Payload

    (sealed,) = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"hello"')])
    body = payloads_to_json([sealed, Payload(metadata={"encoding": b"json/plain"}, data=b'"plain"')])

    async def no_temporal():
        raise AssertionError("not needed")

    app = create_app(IngressDeps(settings=enc, engine=engine, temporal=no_temporal), serve_events=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
        assert (await http.post("/codec/decode", json=body)).status_code == 401
        wrong = await http.post("/codec/decode", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = await http.post(
            "/codec/decode",
            json=body,
            headers={"Authorization": "Bearer codec-token-123", "Origin": "http://localhost:8233"},
        )
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "http://localhost:8233"
        datas = [base64.b64decode(p["data"]) for p in ok.json()["payloads"]]
        assert datas == [b'"hello"', b'"plain"']  # the unencrypted one passes through
        tampered = json.loads(json.dumps(body))
        tampered["payloads"][0]["data"] = base64.b64encode(b"x" * 40).decode()
        bad = await http.post(
            "/codec/decode", json=tampered, headers={"Authorization": "Bearer codec-token-123"}
        )
        assert bad.status_code == 400 and "k1" in bad.json()["error"] and KEY.split(":")[1] not in bad.text
        preflight = await http.options("/codec/decode", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in preflight.headers
        # Sealed with the real key, but not a Temporal payload inside: a 400, not a 500.
        key_id, blob = keyring.encrypt_bytes(b"\xff\xff not a payload", aad=codec_module._AAD)
        odd = {
            "payloads": [
                {"metadata": {"encoding": _b64(ENCODING), "encryption-key-id": _b64(key_id.encode())}}
            ]
        }
        odd["payloads"][0]["data"] = _b64(blob)
        refused = await http.post(
            "/codec/decode", json=odd, headers={"Authorization": "Bearer codec-token-123"}
        )
        assert refused.status_code == 400 and "no Temporal payload" in refused.json()["error"]
        huge = await http.post(
            "/codec/decode",
            content=b'{"payloads": [' + b" " * (MAX_CODEC_BODY_BYTES + 1) + b"]}",
            headers={"Authorization": "Bearer codec-token-123", "Content-Type": "application/json"},
        )
        assert huge.status_code == 413
        assert (await http.get("/openapi.json")).status_code == 404  # no route map outside dev and test

    # Outside development, no token means no codec endpoint at all.
    open_app = create_app(
        IngressDeps(
            settings=_encrypted_settings(settings, env="production", codec_token=None),
            engine=engine,
            temporal=no_temporal,
        ),
        serve_events=False,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=open_app), base_url="http://x") as http:
        assert (await http.post("/codec/decode", json=body)).status_code == 403


def _no_temporal_app(settings, engine):
    async def no_temporal():
        raise AssertionError("not needed")

    return create_app(IngressDeps(settings=settings, engine=engine, temporal=no_temporal), serve_events=False)


PLAIN = payloads_to_json([Payload(metadata={"encoding": b"json/plain"}, data=b'{"resume": "forged"}')])


@pytest.mark.parametrize("env", ["test", "development", "staging", "production"])
async def test_encode_is_not_served_by_default(settings, engine, env):
    """Sealing is what a forger needs (a TaskInput the worker would trust), and the Temporal UI
    needs only decode: without LUCY_TEMPORAL_CODEC_ENCODE_TOKEN there is no /codec/encode."""
    app = _no_temporal_app(_encrypted_settings(settings, env=env), engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as http:
        for auth in ({}, {"Authorization": "Bearer codec-token-123"}):
            assert (await http.post("/codec/encode", json=PLAIN, headers=auth)).status_code == 404
        preflight = await http.options("/codec/encode", headers={"Origin": "http://localhost:8233"})
        assert preflight.status_code == 404
        decoded = await http.post(
            "/codec/decode", json=PLAIN, headers={"Authorization": "Bearer codec-token-123"}
        )
        assert decoded.status_code == 200 and decoded.json() == PLAIN  # the UI's half still works


async def test_encode_takes_only_its_own_token(settings, engine):
    enc = _encrypted_settings(settings, encode_token="encode-token-456")
    app = _no_temporal_app(enc, engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
        assert (await http.post("/codec/encode", json=PLAIN)).status_code == 401
        decode_token = {"Authorization": "Bearer codec-token-123"}
        assert (await http.post("/codec/encode", json=PLAIN, headers=decode_token)).status_code == 401
        encode_token = {"Authorization": "Bearer encode-token-456"}
        sealed = await http.post("/codec/encode", json=PLAIN, headers=encode_token)
        assert sealed.status_code == 200 and sealed.json() != PLAIN
        assert (await http.post("/codec/decode", json=sealed.json(), headers=encode_token)).status_code == 401
        opened = await http.post("/codec/decode", json=sealed.json(), headers=decode_token)
        assert opened.json() == PLAIN


def test_encryption_without_keys_is_refused_clearly(settings):
    enc = _encrypted_settings(settings)
    broken = enc.model_copy(update={"security": enc.security.model_copy(update={"encryption_keys": None})})
    with pytest.raises(CryptoError, match="LUCY_ENCRYPTION_KEYS is not set"):
        payload_keyring(broken)
    assert payload_keyring(settings) is None  # off by default


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
