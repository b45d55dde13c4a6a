"""A real browser through CamoFox, the REST browser server of github.com/jo-inc/camofox-browser.

The CamoFox API is in :mod:`capabilities.tools.activities.camofox`.

What the activity does with them: a stale page (409, or 422 ``snapshot_then_retry``) -> a fresh
snapshot returned with ``ok=False`` so the model can pick a new ref; a gone tab (410, 404 on a
tab, ``recovery: create_new_tab``) -> a new tab at the last url (``state["url"]``), then
snapshot/navigate are retried once, while click/type return the new page's snapshot with
``ok=False`` rather than acting blind on refs of a page that was rebuilt. Connection errors,
timeouts, 408/429/5xx -> retryable ``ToolRetryable``; 401/403 and other 4xx -> ``ToolRejected``.
Every action except ``close`` answers with the page's snapshot so the model sees the page.
The per-task state (``tab_id``, ``url``) travels in ``ToolRequest.state``/``ToolResult.state``.

Egress: every URL Lucy asks CamoFox to open (``open``, ``navigate``, a reopened tab) is checked
first by the :class:`~capabilities.tools.egress.EgressGuard`, and every page URL CamoFox reports (after
open, navigate, click, type and in each snapshot) is checked before anything of the page is
used. A page that landed somewhere refused (a redirect, a link to an internal address) has its
tab closed (best effort) and the call raises ``EgressDenied`` without the snapshot.

Identity: CamoFox keeps one browser context (cookies, storage) per ``userId``. Lucy's is one per
workspace and requester (:func:`browser_user_id`), so one person's logged-in sessions are never
used for another person's task; ``sessionKey`` is the task's workflow id.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from capabilities.tools.activities.camofox import (
    BrowserArgs,
    CamoFoxTab,
    Denied,
    PageChanged,
    TabGone,
    reject,
)
from capabilities.tools.activities.liveness import keeps_beating
from capabilities.tools.contracts import ToolRequest, ToolResult, truncate_output
from capabilities.tools.deps import ToolDeps
from capabilities.tools.egress import EgressGuard
from capabilities.tools.spec import (
    NEEDS_BROWSER,
    STRING,
    UNRESUMABLE_TOOL_HEARTBEAT,
    RiskContext,
    ToolSpec,
    host_of,
    retry,
    schema,
)
from lucy.contracts.errors import ErrorType
from lucy.contracts.risk import Risk
from lucy.settings import ToolSettings

ACTIONS = ("open", "navigate", "snapshot", "click", "type", "close")
_HTTP_TIMEOUT = httpx.Timeout(90.0, connect=10.0)
_MESSAGE_LIMIT = 300


def _parse_args(arguments: Any) -> BrowserArgs:
    if not isinstance(arguments, dict):
        reject("browser: arguments must be a JSON object")
    action = arguments.get("action")
    if action not in ACTIONS:
        reject(f"browser needs 'action', one of {', '.join(ACTIONS)} (got {action!r})")
    url = arguments.get("url")
    if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
        reject("browser: 'url' must be an http:// or https:// URL")
    if action in ("open", "navigate") and not url:
        reject(f"browser {action} needs 'url'")
    ref = arguments.get("ref")
    if action in ("click", "type") and (not isinstance(ref, str) or not ref.strip()):
        reject(f"browser {action} needs 'ref', an element ref from the snapshot such as \"e12\"")
    text = arguments.get("text")
    if action == "type" and not isinstance(text, str):
        reject("browser type needs 'text' (a string)")
    submit = arguments.get("submit", False)
    if not isinstance(submit, bool):
        reject("browser: 'submit' must be true or false")
    return BrowserArgs(
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


class BrowserActivities:
    """The ``browser`` tool: open, navigate, snapshot, click, type, close on CamoFox."""

    def __init__(self, http: httpx.AsyncClient, settings: ToolSettings, *, egress: EgressGuard) -> None:
        self._http = http
        self._settings = settings
        self._egress = egress

    @activity.defn(name="tools.browser")
    @keeps_beating
    async def browse(self, request: ToolRequest) -> ToolResult:
        """One browser action for a task; returns the page's snapshot and the updated tab state."""
        if request.tool != "browser":
            reject(f"the browser activity runs only the tool 'browser', not {request.tool!r}")
        args = _parse_args(request.arguments)
        browser = CamoFoxTab(
            http=self._http,
            settings=self._settings,
            egress=self._egress,
            user_id=browser_user_id(request),
            session_key=request.workflow_id or "lucy",
            state={k: v for k, v in request.state.items() if k in ("tab_id", "url") and v},
        )
        try:
            output, ok = await self._run(browser, args)
        except Denied as denied:
            await browser.discard()
            raise denied.error from None
        except TabGone as exc:  # gone again right after reopening: let Temporal retry
            raise ApplicationError(
                f"the browser keeps losing the tab: {exc}", type=ErrorType.TOOL_RETRYABLE
            ) from None
        except PageChanged as exc:
            reject(f"the browser refused: {exc.message}")
        text, truncated = truncate_output(output)
        return ToolResult(output=text, ok=ok, truncated=truncated, state=dict(browser.state))

    async def _run(self, browser: CamoFoxTab, args: BrowserArgs) -> tuple[str, bool]:
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
                except TabGone:
                    browser.state.pop("tab_id", None)
                    await browser.open(args.url)
                except PageChanged as exc:
                    return await browser.page_changed(exc.message), False
            return await browser.fresh_snapshot(), True

        if browser.tab_id is None:
            url = args.url or browser.state.get("url")
            if not url:
                reject("no browser tab is open: use the action 'open' with a url first")
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
        except TabGone:
            url = await browser.reopen()
            return (
                f"The tab had closed, so I reopened {url}; its refs may have changed and the "
                f"{args.action} was not done. Here is a fresh snapshot:\n{await browser.snapshot()}",
                False,
            )
        except PageChanged as exc:
            return await browser.page_changed(exc.message), False
        return await browser.fresh_snapshot(), True


# --------------------------------------------------------------------------- the tool


def _build(deps: ToolDeps) -> BrowserActivities:
    return BrowserActivities(deps.http, deps.settings.tools, egress=deps.egress)


def _risk(args: dict[str, Any], context: RiskContext) -> Risk:
    """Clicking and typing act on a page (a form submit acts on someone's behalf): medium."""
    return Risk.MEDIUM if args.get("action") in ("click", "type") else Risk.LOW


def _opened_host(args: dict[str, Any]) -> str | None:
    if args.get("action") in ("open", "navigate"):
        return host_of(str(args.get("url") or ""))
    return None


BROWSER = ToolSpec(
    name="browser",
    description="Drive a real browser (CamoFox). Actions: open {url}, navigate {url}, snapshot, "
    "click {ref}, type {ref, text, submit?}, close. Every action returns the page's "
    "accessibility snapshot, whose element refs (e.g. e12) click and type use.",
    parameters=schema(
        {
            "action": {"type": "string", "enum": list(ACTIONS)},
            "url": STRING,
            "ref": STRING,
            "text": STRING,
            "submit": {"type": "boolean"},
        },
        ("action",),
    ),
    activity=BrowserActivities.browse,
    build=_build,
    timeout=timedelta(seconds=120),
    heartbeat=UNRESUMABLE_TOOL_HEARTBEAT,
    retry=retry(3),
    label="browser",
    label_arg="action",
    risk=_risk,
    egress_host=_opened_host,
    acts_on="a web page",
    requires=(NEEDS_BROWSER,),
)
