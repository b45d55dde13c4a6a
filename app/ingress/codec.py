"""The Temporal codec-server protocol on the ingress (``POST /codec/decode``, and
``/codec/encode`` only when it has a token of its own), so the Temporal UI and CLI can show
encrypted payloads to people allowed to see them."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from temporalio.api.common.v1 import Payload

from capabilities.task.listeners.deps import secret_text
from lucy import guard
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
    """``POST /codec/decode`` and, only with ``LUCY_TEMPORAL_CODEC_ENCODE_TOKEN`` set,
    ``/codec/encode``, with their CORS preflights. Decode takes the bearer token
    ``LUCY_TEMPORAL_CODEC_TOKEN`` (required outside development and tests); encode takes only
    its own token, in every environment (whoever can seal can forge a task's input). Any body
    that is not the protocol's is a 400 saying why, never a 500."""
    codec = EncryptionCodec(KeyRing.parse(secret_text(settings.security.encryption_keys)))
    origins = {o.strip() for o in settings.temporal.temporal_codec_cors_origins.split(",") if o.strip()}
    decode = _answerer(
        codec.decode,
        secret_text(settings.temporal.temporal_codec_token),
        origins,
        settings.core.is_development,
    )

    _route(app, "decode", decode, origins, "Open sealed payloads for the Temporal UI; others pass through.")
    encode_token = secret_text(settings.temporal.temporal_codec_encode_token)
    if encode_token is not None:
        encode = _answerer(codec.encode, encode_token, origins, False)
        _route(app, "encode", encode, origins, "Seal payloads (LUCY_TEMPORAL_CODEC_ENCODE_TOKEN only).")


def _route(
    app: FastAPI,
    action: str,
    answer: Callable[[Request], Awaitable[JSONResponse]],
    origins: set[str],
    summary: str,
) -> None:
    """``POST /codec/<action>`` and its CORS preflight (allowed origins only)."""

    async def preflight(request: Request) -> Response:
        return Response(status_code=204, headers=_cors(request, origins))

    app.add_api_route(
        f"/codec/{action}",
        answer,
        methods=["POST"],
        openapi_extra=_OPENAPI,
        response_class=JSONResponse,
        name=f"codec_{action}",
        description=summary,
    )
    app.add_api_route(f"/codec/{action}", preflight, methods=["OPTIONS"], status_code=204)


def _cors(request: Request, origins: set[str]) -> dict[str, str]:
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


def _answerer(
    convert: Callable[[list[Payload]], Awaitable[list[Payload]]],
    token: str | None,
    origins: set[str],
    open_without_token: bool,
) -> Callable[[Request], Awaitable[JSONResponse]]:
    """One codec operation behind its bearer ``token`` (none: open only if ``open_without_token``)."""

    async def answer(request: Request) -> JSONResponse:
        headers = _cors(request, origins)
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
            done = await convert(payloads)
        except guard.Refusal as refusal:
            return JSONResponse({"error": refusal.message}, status_code=refusal.status, headers=headers)
        except (ValueError, RecursionError, CryptoError) as exc:  # JSON, shape, base64, seal
            return JSONResponse({"error": str(exc)[:200]}, status_code=400, headers=headers)
        return JSONResponse(payloads_to_json(done), headers=headers)

    return answer
