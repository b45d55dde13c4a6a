"""A fake CamoFox browser server (github.com/jo-inc/camofox-browser REST API).

``POST /tabs {userId, sessionKey, url}`` -> ``{tabId, url}``; ``GET /tabs/:id/snapshot?userId=``
-> ``{url, snapshot, refsCount, truncated, totalChars, hasMore, nextOffset}``;
``POST /tabs/:id/navigate|click|type``; ``DELETE /tabs/:id?userId=``. A tiny page model: each
url has a title and elements, rendered as ``- link "Docs" [e1]``; clicking a link follows its
href, typing is recorded (``pressEnter`` on a search box goes to ``<url>?q=<text>``); ``redirects``
send a url opened, navigated to or clicked elsewhere, as a server redirect would. Errors in
CamoFox's shape ``{error, code, retryable, recovery}``; one-shot faults: 409 on the next click
(page changed), 410 on the next call for a tab (the tab is gone), any status (500...).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from aiohttp import web

from tests.fakes import serve


@dataclass
class Element:
    role: str  # link | button | textbox
    name: str
    href: str | None = None  # a link's target


@dataclass
class Page:
    title: str
    elements: list[Element] = field(default_factory=list)
    text: str = ""


@dataclass
class _Tab:
    id: str
    user_id: str
    session_key: str
    url: str


@dataclass
class _Fault:
    status: int
    action: str | None  # click, type, navigate, snapshot, open, close; None: any
    body: dict[str, Any]
    retry_after: float | None = None
    drop_tab: bool = False


def default_pages() -> dict[str, Page]:
    return {
        "https://example.com/": Page(
            "Example Domain",
            [
                Element("link", "Docs", "https://example.com/docs"),
                Element("textbox", "Search"),
                Element("button", "Go"),
            ],
            "This domain is for use in examples.",
        ),
        "https://example.com/docs": Page(
            "Docs", [Element("link", "Home", "https://example.com/"), Element("textbox", "Search docs")]
        ),
    }


@dataclass
class FakeCamoFox:
    access_key: str | None = None  # CAMOFOX_ACCESS_KEY: Bearer required on every route when set
    pages: dict[str, Page] = field(default_factory=default_pages)
    redirects: dict[str, str] = field(default_factory=dict)  # url -> where the tab lands
    tabs: dict[str, _Tab] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    clicks: list[tuple[str, str]] = field(default_factory=list)  # (tab id, ref)
    typed: list[dict[str, Any]] = field(default_factory=list)  # {tab, ref, text, pressEnter}
    opened: list[dict[str, Any]] = field(default_factory=list)  # bodies of POST /tabs
    closed: list[str] = field(default_factory=list)
    faults: list[_Fault] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.access_key = None
        self.pages = default_pages()
        self.redirects.clear()
        for items in (self.requests, self.clicks, self.typed, self.opened, self.closed, self.faults):
            items.clear()
        self.tabs.clear()

    # ------------------------------------------------------------------ fault injection

    def page_changed_on_next_click(self) -> None:
        self.faults.append(
            _Fault(
                409,
                "click",
                {
                    "error": "Page changed during click. Call snapshot to see the current state and "
                    "retry with current refs.",
                    "code": "page_changed",
                    "retryable": True,
                    "recovery": "snapshot_then_retry",
                },
            )
        )

    def tab_gone_on_next_call(self, action: str | None = None) -> None:
        """410 on the next call for a tab; the tab is dropped, as after a browser restart."""
        self.faults.append(
            _Fault(
                410,
                action,
                {
                    "error": "Tab no longer exists (browser was restarted). Create a new tab.",
                    "code": "browser_restarted",
                },
                drop_tab=True,
            )
        )

    def fail_next(
        self, status: int = 500, *, action: str | None = None, retry_after: float | None = None
    ) -> None:
        self.faults.append(
            _Fault(
                status, action, {"error": "Internal server error", "retryable": status >= 500}, retry_after
            )
        )

    # ------------------------------------------------------------------ server

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_post("/tabs", self._open)
        app.router.add_get("/tabs/{tab_id}/snapshot", self._snapshot)
        app.router.add_post("/tabs/{tab_id}/navigate", self._navigate)
        app.router.add_post("/tabs/{tab_id}/click", self._click)
        app.router.add_post("/tabs/{tab_id}/type", self._type)
        app.router.add_delete("/tabs/{tab_id}", self._close)
        self._runner, self.port = await serve(app, port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _begin(self, request: web.Request, action: str) -> tuple[dict[str, Any], web.Response | None]:
        body: dict[str, Any] = {}
        if request.can_read_body:
            body = await request.json()
        tab_id = request.match_info.get("tab_id")
        self.requests.append(
            {
                "action": action,
                "tab_id": tab_id,
                "body": body,
                "query": dict(request.query),
                "method": request.method,
            }
        )
        if self.access_key and request.headers.get("Authorization") != f"Bearer {self.access_key}":
            return body, web.json_response(
                {"error": "Unauthorized"}, status=401, headers={"WWW-Authenticate": 'Bearer realm="camofox"'}
            )
        for fault in list(self.faults):
            if fault.action in (None, action) and (tab_id is not None or fault.status != 410):
                self.faults.remove(fault)
                if fault.drop_tab and tab_id:
                    self.tabs.pop(tab_id, None)
                headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                return body, web.json_response(fault.body, status=fault.status, headers=headers)
        user_id = body.get("userId") or request.query.get("userId")
        if not user_id:
            return body, web.json_response({"error": "userId required"}, status=400)
        if tab_id is not None and action != "close":
            tab = self.tabs.get(tab_id)
            if tab is None or tab.user_id != user_id:
                return body, web.json_response({"error": "Tab not found"}, status=404)
        return body, None

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": True, "browserConnected": True})

    async def _open(self, request: web.Request) -> web.Response:
        body, error = await self._begin(request, "open")
        if error is not None:
            return error
        if not body.get("sessionKey"):
            return web.json_response({"error": "userId and sessionKey required"}, status=400)
        self.opened.append(body)
        url = body.get("url") or "about:blank"
        tab = _Tab(str(uuid.uuid4()), body["userId"], body["sessionKey"], self.redirects.get(url, url))
        self.tabs[tab.id] = tab
        return web.json_response({"tabId": tab.id, "url": tab.url})

    async def _snapshot(self, request: web.Request) -> web.Response:
        _, error = await self._begin(request, "snapshot")
        if error is not None:
            return error
        tab = self.tabs[request.match_info["tab_id"]]
        text = self.render(tab.url)
        return web.json_response(
            {
                "url": tab.url,
                "snapshot": text,
                "refsCount": len(self._page(tab.url).elements),
                "truncated": False,
                "totalChars": len(text),
                "hasMore": False,
                "nextOffset": None,
            }
        )

    async def _navigate(self, request: web.Request) -> web.Response:
        body, error = await self._begin(request, "navigate")
        if error is not None:
            return error
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return web.json_response({"error": "url or macro required"}, status=400)
        tab = self.tabs[request.match_info["tab_id"]]
        tab.url = self.redirects.get(url, url)
        return web.json_response({"ok": True, "tabId": tab.id, "url": tab.url, "refsAvailable": True})

    async def _click(self, request: web.Request) -> web.Response:
        body, error = await self._begin(request, "click")
        if error is not None:
            return error
        tab = self.tabs[request.match_info["tab_id"]]
        element = self._element(tab.url, body.get("ref"))
        if isinstance(element, web.Response):
            return element
        self.clicks.append((tab.id, str(body["ref"])))
        if element.role == "link" and element.href:
            tab.url = self.redirects.get(element.href, element.href)
        return web.json_response({"ok": True, "url": tab.url, "refsAvailable": True})

    async def _type(self, request: web.Request) -> web.Response:
        body, error = await self._begin(request, "type")
        if error is not None:
            return error
        tab = self.tabs[request.match_info["tab_id"]]
        if not isinstance(body.get("text"), str):
            return web.json_response({"error": "text is required"}, status=400)
        element = self._element(tab.url, body.get("ref"))
        if isinstance(element, web.Response):
            return element
        if element.role != "textbox":
            return web.json_response(
                {
                    "error": f"Element {element.role} is not fillable. Use click for buttons and other controls.",
                    "code": "element_not_actionable",
                    "retryable": False,
                    "recovery": "snapshot_then_retry",
                },
                status=422,
            )
        press_enter = bool(body.get("pressEnter") or body.get("submit"))
        self.typed.append(
            {"tab": tab.id, "ref": body["ref"], "text": body["text"], "pressEnter": press_enter}
        )
        if press_enter:
            landed = f"{tab.url.split('?')[0]}?q={quote_plus(body['text'])}"
            tab.url = self.redirects.get(landed, landed)
        return web.json_response({"ok": True})

    async def _close(self, request: web.Request) -> web.Response:
        _, error = await self._begin(request, "close")
        if error is not None:
            return error
        tab_id = request.match_info["tab_id"]
        if self.tabs.pop(tab_id, None) is not None:
            self.closed.append(tab_id)
        return web.json_response({"ok": True})

    # ------------------------------------------------------------------ page model

    def _page(self, url: str) -> Page:
        return self.pages.get(url) or self.pages.get(url.split("?")[0]) or Page(url)

    def render(self, url: str) -> str:
        """The accessibility snapshot of ``url`` as CamoFox renders it."""
        page = self._page(url)
        lines = [f'- heading "{page.title}" [level=1]']
        if page.text:
            lines.append(f"- paragraph: {page.text}")
        if "?q=" in url:
            lines.append(f'- paragraph: Results for "{url.split("?q=", 1)[1]}"')
        for i, element in enumerate(page.elements, start=1):
            lines.append(f'- {element.role} "{element.name}" [e{i}]')
        return "\n".join(lines)

    def _element(self, url: str, ref: Any) -> Element | web.Response:
        if not isinstance(ref, str) or not ref:
            return web.json_response({"error": "ref or selector required"}, status=400)
        elements = self._page(url).elements
        index = int(ref[1:]) if ref[:1] == "e" and ref[1:].isdigit() else 0
        if not 1 <= index <= len(elements):
            max_ref = f"e{len(elements)}" if elements else "none"
            return web.json_response(
                {
                    "error": f"Unknown ref: {ref} (valid refs: e1-{max_ref}, {len(elements)} total). "
                    "Refs reset after navigation - call snapshot first.",
                    "retryable": False,
                    "code": "stale_refs",
                    "recovery": "snapshot_then_retry",
                    "ref": ref,
                },
                status=422,
            )
        return elements[index - 1]
