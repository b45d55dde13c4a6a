"""A real browser through CamoFox, the REST browser server of github.com/jo-inc/camofox-browser.

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

What the activity does with them: a stale page (409, or 422 ``snapshot_then_retry``) -> a fresh
snapshot returned with ``ok=False`` so the model can pick a new ref; a gone tab (410, 404 on a
tab, ``recovery: create_new_tab``) -> a new tab at the last url (``state["url"]``), then
snapshot/navigate are retried once, while click/type return the new page's snapshot with
``ok=False`` rather than acting blind on refs of a page that was rebuilt. Connection errors,
timeouts, 408/429/5xx -> retryable ``ToolRetryable``; 401/403 and other 4xx -> ``ToolRejected``.
Every action except ``close`` answers with the page's snapshot so the model sees the page.
The per-task state (``tab_id``, ``url``) travels in ``ToolRequest.state``/``ToolResult.state``.

Egress: every URL Lucy asks CamoFox to open (``open``, ``navigate``, a reopened tab) is checked
first by the :class:`~activities.egress.EgressGuard`, and every page URL CamoFox reports (after
open, navigate, click, type and in each snapshot) is checked before anything of the page is
used. A page that landed somewhere refused (a redirect, a link to an internal address) has its
tab closed (best effort) and the call raises ``EgressDenied`` without the snapshot.

Identity: CamoFox keeps one browser context (cookies, storage) per ``userId``. Lucy's is one per
workspace and requester (:func:`browser_user_id`), so one person's logged-in sessions are never
used for another person's task; ``sessionKey`` is the task's workflow id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.egress import EGRESS_DENIED, EgressGuard
from activities.http_errors import retry_after, transport_error
from lucy.contracts import ErrorType, ToolRequest, ToolResult, truncate_output
from lucy.settings import ToolSettings

ACTIONS = ("open", "navigate", "snapshot", "click", "type", "close")
_HTTP_TIMEOUT = httpx.Timeout(90.0, connect=10.0)
_MESSAGE_LIMIT = 300
PAGE_CHANGED = "The page changed; here is a fresh snapshot:"
HEARTBEAT_INTERVAL = 1.0

T = TypeVar("T")


def _reject(message: str) -> NoReturn:
    raise ApplicationError(message, type=ErrorType.TOOL_REJECTED, non_retryable=True)


class _TabGone(Exception):
    """CamoFox no longer has the tab (410, 404 on a tab, or ``recovery: create_new_tab``)."""


class _Denied(Exception):
    """A page URL CamoFox reported is refused by the egress guard; ``error`` is what to raise."""

    def __init__(self, error: ApplicationError) -> None:
        super().__init__(error.message)
        self.error = error


class _PageChanged(Exception):
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


async def _heartbeating(call: Awaitable[T]) -> T:
    """Await ``call`` while heartbeating every second: a slow page load stays cancellable and
    within the activity's heartbeat timeout."""
    activity.heartbeat()
    task = asyncio.ensure_future(call)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_INTERVAL)
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})


@dataclass(frozen=True)
class _Args:
    action: str
    url: str | None = None
    ref: str | None = None
    text: str | None = None
    submit: bool = False


def _parse_args(arguments: Any) -> _Args:
    if not isinstance(arguments, dict):
        _reject("browser: arguments must be a JSON object")
    action = arguments.get("action")
    if action not in ACTIONS:
        _reject(f"browser needs 'action', one of {', '.join(ACTIONS)} (got {action!r})")
    url = arguments.get("url")
    if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
        _reject("browser: 'url' must be an http:// or https:// URL")
    if action in ("open", "navigate") and not url:
        _reject(f"browser {action} needs 'url'")
    ref = arguments.get("ref")
    if action in ("click", "type") and (not isinstance(ref, str) or not ref.strip()):
        _reject(f"browser {action} needs 'ref', an element ref from the snapshot such as \"e12\"")
    text = arguments.get("text")
    if action == "type" and not isinstance(text, str):
        _reject("browser type needs 'text' (a string)")
    submit = arguments.get("submit", False)
    if not isinstance(submit, bool):
        _reject("browser: 'submit' must be true or false")
    return _Args(
        action=action,
        url=url or None,
        ref=ref.strip() if isinstance(ref, str) else None,
        text=text if isinstance(text, str) else None,
        submit=submit,
    )


def browser_user_id(request: ToolRequest) -> str:
    """The CamoFox ``userId`` (browser profile: cookies, storage) for a task's request.

    Args:
        request: The tool request; its ``workspace_id`` and ``slack_user_id`` are set by the
            workflow from the task, never by the model.

    Returns:
        ``"<workspace>:<slack user>"``; a task with no requester (an inbound email, a
        webhook) gets a profile of its own, ``"<workspace>:task:<workflow id>"``.
    """
    workspace = request.workspace_id or "lucy"
    if request.slack_user_id:
        return f"{workspace}:{request.slack_user_id}"
    return f"{workspace}:task:{request.workflow_id or 'unknown'}"


@dataclass
class _Browser:
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
            response = await _heartbeating(
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
                _reject("the browser answered with something that is not JSON")
            return data
        message = str(data.get("error") or response.text or f"HTTP {status}")[:_MESSAGE_LIMIT]
        if secret:
            message = message.replace(secret, "[redacted]")
        on_tab = path.startswith("/tabs/")
        if on_tab and (status == 410 or status == 404 or data.get("recovery") == "create_new_tab"):
            raise _TabGone(message)
        if status == 409 or (status == 422 and data.get("recovery") == "snapshot_then_retry"):
            raise _PageChanged(message)
        if status in (401, 403):
            _reject(f"the browser refused Lucy's access key (HTTP {status}); check LUCY_CAMOFOX_API_KEY")
        if (status in (408, 429) or status >= 500) and data.get("recoverable") is not False:
            raise ApplicationError(
                f"the browser is unavailable (HTTP {status}): {message}",
                type=ErrorType.TOOL_RETRYABLE,
                next_retry_delay=retry_after(response),
            )
        _reject(f"the browser refused: {message}")

    # ----------------------------------------------------------------- egress

    async def reached(self, url: Any, *, via: str | None) -> None:
        """Check a page URL CamoFox reports; raises :class:`_Denied` when it is refused."""
        if not isinstance(url, str) or not url:
            return
        try:
            await self.egress.require_reported(url, reached_from=via)
        except ApplicationError as exc:
            if exc.type != EGRESS_DENIED:
                raise
            raise _Denied(exc) from None

    async def discard(self) -> None:
        """Best effort: close the tab (it shows a refused page) and forget it."""
        try:
            await self.close()
        except (ApplicationError, _TabGone, _PageChanged):
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
            _reject("the browser opened a tab but gave no tab id")
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

    async def act(self, args: _Args) -> None:
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
            except _TabGone:
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
        except _TabGone:
            url = await self.reopen()
            return f"(the tab had closed, so it was reopened at {url})\n" + await self.snapshot()


class BrowserActivities:
    """The ``browser`` tool: open, navigate, snapshot, click, type, close on CamoFox."""

    def __init__(self, http: httpx.AsyncClient, settings: ToolSettings, *, egress: EgressGuard) -> None:
        self._http = http
        self._settings = settings
        self._egress = egress

    @activity.defn(name="tools.browser")
    async def browse(self, request: ToolRequest) -> ToolResult:
        """One browser action for a task; returns the page's snapshot and the updated tab state."""
        if request.tool != "browser":
            _reject(f"the browser activity runs only the tool 'browser', not {request.tool!r}")
        args = _parse_args(request.arguments)
        browser = _Browser(
            http=self._http,
            settings=self._settings,
            egress=self._egress,
            user_id=browser_user_id(request),
            session_key=request.workflow_id or "lucy",
            state={k: v for k, v in request.state.items() if k in ("tab_id", "url") and v},
        )
        try:
            output, ok = await self._run(browser, args)
        except _Denied as denied:
            await browser.discard()
            raise denied.error from None
        except _TabGone as exc:  # gone again right after reopening: let Temporal retry
            raise ApplicationError(
                f"the browser keeps losing the tab: {exc}", type=ErrorType.TOOL_RETRYABLE
            ) from None
        except _PageChanged as exc:
            _reject(f"the browser refused: {exc.message}")
        text, truncated = truncate_output(output)
        return ToolResult(output=text, ok=ok, truncated=truncated, state=dict(browser.state))

    async def _run(self, browser: _Browser, args: _Args) -> tuple[str, bool]:
        if args.action == "close":
            had_tab = browser.tab_id is not None
            await browser.close()
            return ("Closed the tab." if had_tab else "No tab was open."), True

        if args.action in ("open", "navigate"):
            assert args.url is not None
            if browser.tab_id is None:
                await browser.open(args.url)
            else:
                try:
                    await browser.navigate(args.url)
                except _TabGone:
                    browser.state.pop("tab_id", None)
                    await browser.open(args.url)
                except _PageChanged as exc:
                    return await browser.page_changed(exc.message), False
            return await browser.fresh_snapshot(), True

        if browser.tab_id is None:
            url = args.url or browser.state.get("url")
            if not url:
                _reject("no browser tab is open: use the action 'open' with a url first")
            await browser.open(url)
            snapshot = await browser.snapshot()
            if args.action == "snapshot":
                return snapshot, True
            return (
                f"There was no open tab, so I opened {url}. Pick a ref from this snapshot and try again:\n"
                f"{snapshot}",
                False,
            )

        if args.action == "snapshot":
            return await browser.fresh_snapshot(), True

        try:
            await browser.act(args)
        except _TabGone:
            url = await browser.reopen()
            return (
                f"The tab had closed, so I reopened {url}; its refs may have changed and the "
                f"{args.action} was not done. Here is a fresh snapshot:\n{await browser.snapshot()}",
                False,
            )
        except _PageChanged as exc:
            return await browser.page_changed(exc.message), False
        return await browser.fresh_snapshot(), True
