"""The CamoFox REST client for one browser call: the task's tab, its pages and their URLs.

The API as its ``server.js``, ``lib/auth.js``, ``lib/browser-errors.js`` and README define it
(v1.14):

* ``POST /tabs {userId, sessionKey, url?}`` -> ``{tabId, url}``; tabs are grouped per
  ``userId`` (one browser context: cookies) and ``sessionKey`` (one conversation or task).
* ``GET /tabs/:tabId/snapshot?userId=`` -> ``{url, snapshot, refsCount, truncated, totalChars,
  hasMore, nextOffset}``: an accessibility tree whose interactive lines carry refs,
  ``- link "Docs" [e1]``.
* ``POST /tabs/:tabId/navigate {userId, url}`` -> ``{ok, tabId, url, refsAvailable}``;
  ``POST /tabs/:tabId/click {userId, ref}`` -> ``{ok, url, refsAvailable}``;
  ``POST /tabs/:tabId/type {userId, ref, text, pressEnter?}`` -> ``{ok}``;
  ``DELETE /tabs/:tabId?userId=`` -> ``{ok}`` (also when the tab is already gone).
* ``Authorization: Bearer <key>`` on every route when the server runs with
  ``CAMOFOX_ACCESS_KEY`` (401 otherwise); we send ``LUCY_CAMOFOX_API_KEY`` when it is set.
* Errors are ``{error, code?, retryable?, recovery?}``: ``409`` page changed during the action
  and ``422`` ``stale_refs`` (both ``recovery: snapshot_then_retry``); ``410`` tab gone (crashed,
  timed out, browser restarted; ``recovery: create_new_tab``) and ``404 Tab not found`` for a tab
  the server reaped after inactivity; ``503`` with ``recovery: create_new_tab`` for a stuck tab
  it destroyed; ``429`` tab limit; ``502 {recoverable: false}`` for a bad TLS certificate.

Every page URL CamoFox reports is checked by the egress guard before anything of the page is
used (:meth:`CamoFoxTab.reached`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NoReturn

import httpx
from temporalio.exceptions import ApplicationError

from capabilities.tools.activities.http_errors import heartbeating, retry_after, transport_error
from capabilities.tools.egress import EGRESS_DENIED, EgressGuard
from lucy.contracts.errors import ErrorType
from lucy.settings import ToolSettings

_HTTP_TIMEOUT = httpx.Timeout(90.0, connect=10.0)
_MESSAGE_LIMIT = 300
PAGE_CHANGED = "The page changed; here is a fresh snapshot:"


def reject(message: str) -> NoReturn:
    raise ApplicationError(message, type=ErrorType.TOOL_REJECTED, non_retryable=True)


class TabGone(Exception):
    """CamoFox no longer has the tab (410, 404 on a tab, or ``recovery: create_new_tab``)."""


class Denied(Exception):
    """A page URL CamoFox reported is refused by the egress guard; ``error`` is what to raise."""

    def __init__(self, error: ApplicationError) -> None:
        super().__init__(error.message)
        self.error = error


class PageChanged(Exception):
    """The page changed under a ref (409, or 422 ``snapshot_then_retry``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@dataclass(frozen=True)
class BrowserArgs:
    action: str
    url: str | None = None
    ref: str | None = None
    text: str | None = None
    submit: bool = False


@dataclass
class CamoFoxTab:
    """One call's view of CamoFox: who we are (``userId``, ``sessionKey``) and the task's tab."""

    http: httpx.AsyncClient
    settings: ToolSettings
    egress: EgressGuard
    user_id: str
    session_key: str
    state: dict[str, str] = field(default_factory=dict)

    # ----------------------------------------------------------------- HTTP

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        key = self.settings.camofox_api_key
        secret = key.get_secret_value() if key is not None else ""
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        try:
            response = await heartbeating(
                self.http.request(
                    method,
                    f"{self.settings.camofox_url}{path}",
                    json=body,
                    params=params,
                    headers=headers,
                    timeout=_HTTP_TIMEOUT,
                )
            )
        except httpx.TransportError as exc:  # timeouts included
            raise transport_error(exc, "the browser") from None
        status = response.status_code
        data = _json(response)
        if status < 300:
            if not data and response.content:
                reject("the browser answered with something that is not JSON")
            return data
        message = str(data.get("error") or response.text or f"HTTP {status}")[:_MESSAGE_LIMIT]
        if secret:
            message = message.replace(secret, "[redacted]")
        on_tab = path.startswith("/tabs/")
        if on_tab and (status == 410 or status == 404 or data.get("recovery") == "create_new_tab"):
            raise TabGone(message)
        if status == 409 or (status == 422 and data.get("recovery") == "snapshot_then_retry"):
            raise PageChanged(message)
        if status in (401, 403):
            reject(f"the browser refused Lucy's access key (HTTP {status}); check LUCY_CAMOFOX_API_KEY")
        if (status in (408, 429) or status >= 500) and data.get("recoverable") is not False:
            raise ApplicationError(
                f"the browser is unavailable (HTTP {status}): {message}",
                type=ErrorType.TOOL_RETRYABLE,
                next_retry_delay=retry_after(response),
            )
        reject(f"the browser refused: {message}")

    # ----------------------------------------------------------------- egress

    async def reached(self, url: Any, *, via: str | None) -> None:
        """Check a page URL CamoFox reports; raises :class:`Denied` when it is refused."""
        if not isinstance(url, str) or not url:
            return
        try:
            await self.egress.require_reported(url, reached_from=via)
        except ApplicationError as exc:
            if exc.type != EGRESS_DENIED:
                raise
            raise Denied(exc) from None

    async def discard(self) -> None:
        """Best effort: close the tab (it shows a refused page) and forget it."""
        try:
            await self.close()
        except (ApplicationError, TabGone, PageChanged):
            pass
        self.state.pop("tab_id", None)
        self.state.pop("url", None)

    # ----------------------------------------------------------------- tab operations

    @property
    def tab_id(self) -> str | None:
        return self.state.get("tab_id") or None

    async def open(self, url: str | None) -> None:
        body: dict[str, Any] = {"userId": self.user_id, "sessionKey": self.session_key}
        if url:
            await self.egress.require(url)
            body["url"] = url
        data = await self.request("POST", "/tabs", body=body)
        tab_id = data.get("tabId")
        if not isinstance(tab_id, str) or not tab_id:
            reject("the browser opened a tab but gave no tab id")
        self.state["tab_id"] = tab_id
        await self.reached(data.get("url"), via=url)
        new_url = data.get("url") or url
        if isinstance(new_url, str) and new_url:
            self.state["url"] = new_url

    async def reopen(self) -> str:
        """A new tab at the last url (the old one is gone); returns that url."""
        url = self.state.get("url")
        self.state.pop("tab_id", None)
        await self.open(url)
        return url or "a blank page"

    async def snapshot(self) -> str:
        tab_id = self.tab_id
        assert tab_id is not None
        data = await self.request("GET", f"/tabs/{tab_id}/snapshot", params={"userId": self.user_id})
        url = data.get("url")
        await self.reached(url, via=self.state.get("url"))
        if isinstance(url, str) and url:
            self.state["url"] = url
        text = str(data.get("snapshot") or "(the page has no accessible content)")
        out = f"Page: {url or self.state.get('url', '')}\n{text}"
        if data.get("hasMore"):
            total = data.get("totalChars", "?")
            out += f"\n[the browser cut this snapshot at {len(text)} of {total} characters]"
        return out

    async def navigate(self, url: str) -> None:
        await self.egress.require(url)
        tab_id = self.tab_id
        assert tab_id is not None
        data = await self.request(
            "POST",
            f"/tabs/{tab_id}/navigate",
            body={"userId": self.user_id, "url": url, "sessionKey": self.session_key},
        )
        await self.reached(data.get("url"), via=url)
        self.state["url"] = str(data.get("url") or url)

    async def act(self, args: BrowserArgs) -> None:
        tab_id = self.tab_id
        assert tab_id is not None
        if args.action == "click":
            data = await self.request(
                "POST", f"/tabs/{tab_id}/click", body={"userId": self.user_id, "ref": args.ref}
            )
        else:
            data = await self.request(
                "POST",
                f"/tabs/{tab_id}/type",
                body={"userId": self.user_id, "ref": args.ref, "text": args.text, "pressEnter": args.submit},
            )
        await self.reached(data.get("url"), via=self.state.get("url"))
        if isinstance(data.get("url"), str) and data["url"]:
            self.state["url"] = data["url"]

    async def close(self) -> None:
        tab_id = self.tab_id
        if tab_id is not None:
            try:
                await self.request("DELETE", f"/tabs/{tab_id}", params={"userId": self.user_id})
            except TabGone:
                pass
        self.state.pop("tab_id", None)
        self.state.pop("url", None)

    async def page_changed(self, message: str) -> str:
        """What the model sees when its ref no longer fits the page: a fresh snapshot."""
        return f"{PAGE_CHANGED}\n{await self.fresh_snapshot()}\n\n(the browser said: {message})"

    async def fresh_snapshot(self) -> str:
        """A snapshot, reopening the tab once if it is gone."""
        try:
            return await self.snapshot()
        except TabGone:
            url = await self.reopen()
            return f"(the tab had closed, so it was reopened at {url})\n" + await self.snapshot()
