"""The Temporal codec-server protocol on the ingress (``POST /codec/encode`` and ``/decode``),
so the Temporal UI and CLI can show encrypted payloads to people allowed to see them."""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ingress import guard
from lucy.codec import CODEC_BODY_SCHEMA, EncryptionCodec, payloads_from_json, payloads_to_json
from lucy.crypto import CryptoError, KeyRing
from lucy.settings import Settings

# A UI page decodes one workflow's history in batches; Temporal caps one payload at 2 MB.
MAX_CODEC_BODY_BYTES = 8_000_000

_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
_OPENAPI = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": CODEC_BODY_SCHEMA}}},
    "responses": {
        "200": {
            "description": "the payloads",
            "content": {"application/json": {"schema": CODEC_BODY_SCHEMA}},
        },
        **{
            code: {"description": what, "content": {"application/json": {"schema": _ERROR}}}
            for code, what in (
                ("400", "not the protocol's body, or a payload this key ring did not seal"),
                ("401", "no or the wrong bearer token"),
                ("403", "no LUCY_TEMPORAL_CODEC_TOKEN is set outside development and test"),
                ("413", f"a body over {MAX_CODEC_BODY_BYTES} bytes"),
            )
        },
    },
}


def add_codec_server(app: FastAPI, settings: Settings) -> None:
    """``POST /codec/encode`` and ``/codec/decode``, with their CORS preflights. A bearer token
    (``LUCY_TEMPORAL_CODEC_TOKEN``) is required outside development and tests; any body that
    is not the protocol's is a 400 saying why, never a 500."""
    codec = EncryptionCodec(KeyRing.parse(_secret(settings.security.encryption_keys)))
    token = _secret(settings.temporal.temporal_codec_token)
    origins = {o.strip() for o in settings.temporal.temporal_codec_cors_origins.split(",") if o.strip()}
    open_without_token = settings.core.is_development

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

    async def answer(request: Request, *, encode: bool) -> JSONResponse:
        headers = cors(request)
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
            payloads = payloads_from_json(
                json.loads(await guard.read_body(request, limit=MAX_CODEC_BODY_BYTES))
            )
            done = await (codec.encode(payloads) if encode else codec.decode(payloads))
        except guard.Refusal as refusal:
            return JSONResponse({"error": refusal.message}, status_code=refusal.status, headers=headers)
        except (ValueError, RecursionError, CryptoError) as exc:  # JSON, shape, base64, seal
            return JSONResponse({"error": str(exc)[:200]}, status_code=400, headers=headers)
        return JSONResponse(payloads_to_json(done), headers=headers)

    @app.post("/codec/encode", openapi_extra=_OPENAPI, response_class=JSONResponse)
    async def codec_encode(request: Request) -> JSONResponse:
        """Seal payloads (the Temporal CLI's ``--codec-endpoint``)."""
        return await answer(request, encode=True)

    @app.post("/codec/decode", openapi_extra=_OPENAPI, response_class=JSONResponse)
    async def codec_decode(request: Request) -> JSONResponse:
        """Open sealed payloads for the Temporal UI; others pass through unchanged."""
        return await answer(request, encode=False)

    @app.options("/codec/{action}", status_code=204)
    async def codec_preflight(action: str, request: Request) -> Response:
        """The browser's CORS preflight: allowed origins only (LUCY_TEMPORAL_CODEC_CORS_ORIGINS)."""
        return Response(status_code=204, headers=cors(request))


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None
