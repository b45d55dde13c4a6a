"""The Temporal codec-server protocol on the ingress (``POST /codec/encode`` and ``/decode``),
so the Temporal UI and CLI can show encrypted payloads to people allowed to see them."""

from __future__ import annotations

import binascii
import hmac
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from lucy.codec import EncryptionCodec, payloads_from_json, payloads_to_json
from lucy.crypto import CryptoError, KeyRing
from lucy.settings import Settings


def add_codec_server(app: FastAPI, settings: Settings) -> None:
    """``POST /codec/encode`` and ``/codec/decode``: the Temporal codec-server protocol, so the
    Temporal UI and CLI can show encrypted payloads to people allowed to see them. A bearer
    token (``LUCY_TEMPORAL_CODEC_TOKEN``) is required outside development and tests."""
    codec = EncryptionCodec(KeyRing.parse(_secret(settings.security.encryption_keys)))
    token = _secret(settings.temporal.temporal_codec_token)
    origins = {o.strip() for o in settings.temporal.temporal_codec_cors_origins.split(",") if o.strip()}
    open_without_token = settings.core.env in ("development", "test")

    def cors(request: Request) -> dict[str, str]:
        origin = request.headers.get("origin", "")
        if origin not in origins:
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type, Authorization, X-Namespace",
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }

    @app.options("/codec/{action}")
    async def codec_preflight(action: str, request: Request) -> Response:
        return Response(status_code=204, headers=cors(request))

    @app.post("/codec/{action}")
    async def codec_endpoint(action: str, request: Request) -> JSONResponse:
        headers = cors(request)
        if action not in ("encode", "decode"):
            return JSONResponse({"error": "unknown codec action"}, status_code=404, headers=headers)
        if token is None and not open_without_token:
            return JSONResponse(
                {"error": "set LUCY_TEMPORAL_CODEC_TOKEN to serve the codec endpoint"},
                status_code=403,
                headers=headers,
            )
        given = request.headers.get("authorization", "")
        if token is not None and not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return JSONResponse({"error": "unauthorized"}, status_code=401, headers=headers)
        try:
            payloads = payloads_from_json(await request.json())
            done = await (codec.encode(payloads) if action == "encode" else codec.decode(payloads))
        except (ValueError, RecursionError, CryptoError, binascii.Error) as exc:
            return JSONResponse({"error": str(exc)[:200]}, status_code=400, headers=headers)
        return JSONResponse(payloads_to_json(done), headers=headers)


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None
