"""The console's HTTP routes, mounted on the ingress by ``lucy dev`` (development only).

Slack's side, which Lucy calls: ``/console/api/<method>`` (the Web API, ``LUCY_SLACK_API_URL``),
``/console/upload/v1/<file>`` (external uploads), ``/console/response/<name>`` (response_url).
The browser's side: ``/console`` (the page), ``/console/feed`` (what one member sees in one
channel, rendered server-side and escaped), ``/console/stream`` (server-sent events: a number
that moves on every change), ``/console/files/<id>`` (downloads) and ``POST /console/send |
click | home | modal`` (JSON only, so another site cannot post them from a form).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from app.devtools.console.backend import BOT_USER_ID
from app.devtools.console.blocks import blocks as render_blocks
from app.devtools.console.blocks import message_body
from app.devtools.console.render import esc
from app.devtools.console.workspace import CHANNELS, MEMBERS, TEAM_ID, Console, ConsoleError, dm_channel
from lucy.settings import DEVELOPMENT_ENVS

STREAM_SECONDS = 3.0  # how long one server-sent-events response lasts before the browser reconnects
_ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


class ConsoleRefused(RuntimeError):
    """The console exists only in development and test."""


def refuse_outside_development(env: str) -> None:
    if env not in DEVELOPMENT_ENVS:
        raise ConsoleRefused(f"the local Slack console is for development only, not LUCY_ENV={env}")


LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def only_this_machine(request: Request) -> None:
    """Refuse a request addressed to any other host name (a DNS-rebinding page in the browser
    names its own host; the console answers only to ``localhost``)."""
    if request.url.hostname not in LOCAL_HOSTS:
        raise HTTPException(status_code=403, detail="the console answers only on localhost")


def _asset(name: str) -> str:
    return resources.files("app.devtools.console").joinpath("static", name).read_text(encoding="utf-8")


async def _params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json") and raw:
            params.update(json.loads(raw))
        elif raw:
            params.update(dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)))
    return params


def _json_body_required(request: Request) -> None:
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise ConsoleError("send JSON")


def feed(console: Console, user: str, channel: str) -> dict[str, Any]:
    """What ``user`` sees in ``channel``: messages (rendered), their ephemerals, the assistant
    status of each thread, their Home tab and their open modal."""
    backend, room = console.backend, console.channel(user, channel)
    names = console.name
    messages = []
    for m in backend.messages.get(channel, []):
        files = [{"id": f["id"], "name": f.get("name"), "size": f.get("size")} for f in m.get("files") or []]
        author = m.get("user") or ""
        messages.append(
            {
                "ts": m["ts"],
                "thread_ts": m.get("thread_ts"),
                "user": author,
                "author": names(author) or author,
                "bot": author == BOT_USER_ID,
                "html": message_body(m, names),
                "files": files,
            }
        )
    ephemerals = [
        {"ts": e.get("message_ts"), "thread_ts": e.get("thread_ts"), "html": message_body(e, names)}
        for e in backend.ephemerals
        if e["user"] == user and e["channel"] == channel
    ]
    statuses = {thread: s for (ch, thread), s in backend.statuses.items() if ch == channel and s}
    home = backend.views.get(user)
    opened = console.modal_for(user)
    modal = None
    if opened is not None:
        view = opened["view"]
        modal = {
            "title": esc((view.get("title") or {}).get("text") or ""),
            "submit": esc((view.get("submit") or {}).get("text") or "Submit"),
            "html": render_blocks(view.get("blocks"), names),
        }
    return {
        "version": backend.version,
        "channel": room,
        "messages": sorted(messages, key=lambda m: float(m["ts"])),
        "ephemerals": ephemerals,
        "statuses": statuses,
        "home": render_blocks(home.get("blocks"), names) if home else None,
        "modal": modal,
    }


def console_router(console: Console, *, env: str, labels: list[str]) -> APIRouter:
    """The routes; refuses to exist outside development and test."""
    refuse_outside_development(env)
    router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(only_this_machine)])
    _add_slack_side(router, console.backend)
    _add_pages(router, labels)
    _add_feed(router, console)
    _add_actions(router, console)
    return router


def _add_slack_side(router: APIRouter, backend: Any) -> None:
    """Slack's side, which Lucy calls: the Web API, external uploads and response_url."""

    @router.api_route("/api/{method}", methods=["GET", "POST"])
    async def web_api(method: str, request: Request) -> Response:
        params = await _params(request)
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else params.get("token")
        status, body, headers = backend.call(method, params, token)
        return JSONResponse(body, status_code=status, headers=headers)

    @router.post("/upload/v1/{file_id}")
    async def upload(file_id: str, request: Request) -> Response:
        if not backend.upload_bytes(file_id, await request.body()):
            return Response("Not Found", status_code=404, media_type="text/plain")
        return Response(f"OK - {len(backend.pending_uploads[file_id]['content'])}", media_type="text/plain")

    @router.post("/response/{name}")
    async def response_url(name: str, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return Response("invalid_payload", status_code=400, media_type="text/plain")
        backend.respond(name, body if isinstance(body, dict) else {})
        return Response("ok", media_type="text/plain")


def _add_pages(router: APIRouter, labels: list[str]) -> None:
    """The browser's page, its static assets and the workspace it shows."""

    @router.get("")
    async def page() -> Response:
        return HTMLResponse(_asset("console.html"), headers=_HEADERS)

    @router.get("/static/{name}")
    async def asset(name: str) -> Response:
        if name not in _ASSETS:
            return Response("Not Found", status_code=404, media_type="text/plain")
        return Response(_asset(name), media_type=_ASSETS[name], headers=_HEADERS)

    @router.get("/workspace")
    async def workspace() -> dict[str, Any]:
        return {
            "team": TEAM_ID,
            "bot": BOT_USER_ID,
            "members": MEMBERS,
            "channels": CHANNELS,
            "dms": {m["id"]: dm_channel(m["id"]) for m in MEMBERS},
            "labels": labels,
        }


def _add_feed(router: APIRouter, console: Console) -> None:
    """What the browser reads: the feed, its change stream and shared files."""
    backend = console.backend

    @router.get("/feed")
    async def get_feed(user: str, channel: str) -> Response:
        try:
            return JSONResponse(feed(console, user, channel), headers={"Cache-Control": "no-store"})
        except ConsoleError as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)

    @router.get("/stream")
    async def stream(request: Request) -> StreamingResponse:
        """Server-sent events: the workspace's version whenever it moves. Each response ends after
        a few seconds and the browser reconnects at once, naming the last version it saw
        (``Last-Event-ID``), so nothing is missed and Ctrl-C never waits for an open tab."""
        try:
            seen = int(request.headers.get("last-event-id") or -1)
        except ValueError:
            seen = -1
        return StreamingResponse(
            _changes(request, backend, seen),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store"},
        )

    @router.get("/files/{file_id}")
    async def download(file_id: str) -> Response:
        shared = backend.files.get(file_id)
        if shared is None:
            return Response("Not Found", status_code=404, media_type="text/plain")
        name = "".join(c for c in str(shared["name"]) if c.isalnum() or c in "._-") or "file"
        headers = {"Content-Disposition": f'attachment; filename="{name}"', **_HEADERS}
        return Response(shared["content"], media_type="application/octet-stream", headers=headers)


async def _changes(request: Request, backend: Any, seen: int) -> AsyncIterator[str]:
    """The events of one stream response: each new version, until it lasted STREAM_SECONDS."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_SECONDS
    yield "retry: 300\n\n"
    while not await request.is_disconnected() and (left := deadline - loop.time()) > 0:
        now = backend.version if seen != backend.version else await backend.wait_change(seen, left)
        if now != seen:
            yield f"id: {now}\ndata: {now}\n\n"
            seen = now


async def _send(console: Console, user: str, body: Any) -> Any:
    return await console.send(
        user, str(body.get("channel")), str(body.get("text") or ""), body.get("thread_ts") or None
    )


async def _click(console: Console, user: str, body: Any) -> Any:
    return await console.click(
        user,
        str(body.get("where")),
        block=int(body.get("block")),
        element=str(body.get("element")),
        channel=str(body.get("channel") or ""),
        ts=str(body.get("ts") or ""),
    )


async def _home(console: Console, user: str, body: Any) -> Any:
    return await console.open_home(user)


async def _submit(console: Console, user: str, body: Any) -> Any:
    return await console.submit(user, body.get("values") or {})


async def _close(console: Console, user: str, body: Any) -> Any:
    console.close_modal(user)
    return {"ok": True}


# The browser's actions: path -> what it does (JSON bodies only).
_ACTIONS = {
    "/send": _send,
    "/click": _click,
    "/home": _home,
    "/modal/submit": _submit,
    "/modal/close": _close,
}


async def _act(console: Console, request: Request, action: Any) -> Response:
    try:
        _json_body_required(request)
        body = json.loads(await request.body())
        result = await action(console, str(body.get("user") or ""), body)
    except (ConsoleError, ValueError, TypeError) as exc:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
    return JSONResponse(result)


def _add_actions(router: APIRouter, console: Console) -> None:
    """``POST /console/send | click | home | modal/submit | modal/close``."""
    for path, action in _ACTIONS.items():
        router.add_api_route(path, _action_route(console, action), methods=["POST"])


def _action_route(console: Console, action: Any) -> Any:
    async def act(request: Request) -> Response:
        return await _act(console, request, action)

    return act
