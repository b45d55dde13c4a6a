"""A fake Composio API (v3): a real HTTP server on 127.0.0.1 speaking Composio's wire protocol.

* ``POST /api/v3.1/tools/execute/{tool_slug}`` with ``x-api-key`` (the path and header that
  ``composio_client.AsyncComposio.tools.execute`` of ``composio==0.30.0`` sends); JSON body
  ``{arguments, user_id?, connected_account_id?, version?, text?}``.
* 200 answers ``{"data", "successful", "error", "log_id"}`` (``successful: false`` when the
  integration itself failed); errors are ``{"error": {"message", "status", "request_id",
  "suggested_fix"?, "errors"?}}`` with the HTTP status (401 without a valid key, 404 for an
  unknown tool, 429 with ``Retry-After``).

Actions answer what was scripted for their slug (``results``), else echo their arguments.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import serve


@dataclass
class ComposioFault:
    status: int
    retry_after: float | None = None
    message: str | None = None
    times: int = 1


@dataclass
class ComposioCall:
    slug: str
    body: dict[str, Any]
    api_key: str | None


@dataclass
class FakeComposio:
    api_key: str = "ak_fake_composio_key_0123"
    calls: list[ComposioCall] = field(default_factory=list)
    # slug -> {"data": ...} or {"successful": False, "error": "..."}
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    known_slugs: set[str] | None = None  # None: every slug exists
    faults: list[ComposioFault] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v3"

    def reset(self) -> None:
        self.calls.clear()
        self.results.clear()
        self.faults.clear()
        self.known_slugs = None

    def fail(self, status: int, **kwargs: Any) -> None:
        self.faults.append(ComposioFault(status=status, **kwargs))

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/api/v3.1/tools/execute/{slug}", self._execute)
        self._runner, self.port = await serve(app, port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _error(self, status: int, message: str, **extra: Any) -> web.Response:
        body = {
            "error": {"message": message, "status": status, "request_id": f"req_{next(self._ids)}", **extra}
        }
        return web.json_response(body, status=status)

    async def _execute(self, request: web.Request) -> web.Response:
        slug = request.match_info["slug"]
        key = request.headers.get("x-api-key")
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.calls.append(ComposioCall(slug=slug, body=body if isinstance(body, dict) else {}, api_key=key))
        if key != self.api_key:
            return self._error(401, "Invalid API key", suggested_fix="Pass a valid API key in x-api-key")
        for fault in self.faults:
            if fault.times > 0:
                fault.times -= 1
                response = self._error(fault.status, fault.message or "Something went wrong")
                if fault.retry_after is not None:
                    response.headers["Retry-After"] = str(int(fault.retry_after))
                return response
        if not isinstance(body, dict):
            return self._error(400, "Validation error while processing request", errors=["body must be JSON"])
        if "arguments" in body and "text" in body:
            return self._error(
                400,
                "Validation error while processing request",
                errors=["Only one of 'text' or 'arguments' must be provided"],
            )
        if self.known_slugs is not None and slug not in self.known_slugs:
            return self._error(404, f"Tool {slug} not found", suggested_fix="Check the tool slug")
        scripted = self.results.get(slug)
        log_id = f"log_{next(self._ids)}"
        if scripted is not None and scripted.get("successful") is False:
            return web.json_response(
                {"data": {}, "successful": False, "error": scripted.get("error"), "log_id": log_id}
            )
        data = scripted["data"] if scripted is not None else {"echo": body.get("arguments") or {}}
        return web.json_response({"data": data, "successful": True, "error": None, "log_id": log_id})
