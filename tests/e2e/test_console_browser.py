"""The console in a real browser: Debian's Chromium, headless, driven over the DevTools protocol
(aiohttp's WebSocket client; no browser is downloaded). Alice mentions Lucy and sees the
approval; she switches to Bob, an admin, who clicks Approve; the message changes to "Approved
by", the answer arrives in the thread, and ``/lucy tasks`` shows the ephemeral list. Skipped,
saying why, when ``chromium`` is not installed (``python3 run.py test`` installs it as root),
except under ``LUCY_REQUIRE_BROWSER=1``, where that fails. With
``LUCY_CONSOLE_SCREENSHOT=<path>`` the final state is saved there (docs/console.png)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lucy.devservers import free_port
from tests.conftest import eventually
from tests.e2e.conftest import Browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI (.ci/run) requires the browser; elsewhere a missing one skips this test, saying why.
REQUIRED = os.environ.get("LUCY_REQUIRE_BROWSER") == "1"
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not REQUIRED,
    reason="no chromium (apt-get install chromium; run.py test installs it)",
)


class Page:
    """One tab, over the DevTools protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self._ids = ws, itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        async for msg in self.ws:
            data = json.loads(msg.data)
            if data.get("id") == ident:
                if "error" in data:
                    raise AssertionError(f"{method}: {data['error']}")
                return data.get("result") or {}
        raise AssertionError("the browser went away")

    async def js(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def text(self, selector: str) -> str:
        return str(await self.js(f"(document.querySelector({json.dumps(selector)}) || {{}}).innerText || ''"))


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    assert CHROMIUM is not None, "LUCY_REQUIRE_BROWSER=1 but chromium is not installed"
    port = free_port()
    args = [
        CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-dev-shm-usage", f"--remote-debugging-port={port}", f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1400,900", "about:blank",
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
    try:
        async with aiohttp.ClientSession() as session:

            async def target() -> str | None:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
                        pages = [t for t in await r.json() if t.get("type") == "page"]
                        return pages[0]["webSocketDebuggerUrl"] if pages else None
                except aiohttp.ClientError:
                    return None

            url = await eventually(target, "chromium's DevTools endpoint", timeout=30)
            async with session.ws_connect(url, max_msg_size=2**26) as ws:
                tab = Page(ws)
                await tab.send("Page.enable")
                yield tab
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _contains(page: Page, selector: str, needle: str) -> bool:
    return needle in await page.text(selector)


async def test_mention_approve_as_admin_answer_and_tasks_in_a_real_browser(browser: Browser, page: Page):
    await page.send(
        "Page.navigate", url=f"http://localhost:{browser.port}/console#user=U0ALICE&channel=C0GENERAL"
    )
    await eventually(lambda: _contains(page, "#channel-title", "#general"), "the console to load", timeout=30)
    assert "DEMO model" in await page.text("#labels")

    # Alice mentions Lucy; the thread opens and the approval appears in it.
    await page.js(
        "(() => { const t = document.getElementById('message'); t.value = '@lucy run uptime';"
        " t.form.requestSubmit(); })()"
    )
    await eventually(lambda: _contains(page, "#thread-messages", "Approve"), "the approval", timeout=60)
    assert "uptime" in await page.text("#thread-messages")

    # She switches to Bob (an admin), who clicks Approve in the same thread.
    await page.js(
        "(() => { const s = document.getElementById('as-user'); s.value = 'U0BOB';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    await eventually(lambda: _contains(page, "#thread-messages", "Approve"), "Bob's view of the thread")
    clicked = await page.js(
        "(() => { const b = [...document.querySelectorAll('#thread-messages button')]"
        ".find((b) => b.textContent === 'Approve'); if (b) b.click(); return !!b; })()"
    )
    assert clicked
    await eventually(
        lambda: _contains(page, "#thread-messages", "Approved by @bob"), "Approved by", timeout=60
    )
    await eventually(
        lambda: _contains(page, "#thread-messages", "demo gateway: nothing was executed"),
        "the answer",
        timeout=60,
    )
    assert "Approve\n" not in await page.text("#thread-messages")

    # Back to Alice: /lucy tasks, the list only she sees.
    await page.js(
        "(() => { const s = document.getElementById('as-user'); s.value = 'U0ALICE';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    await page.js(
        "(() => { const t = document.getElementById('message'); t.value = '/lucy tasks'; t.form.requestSubmit(); })()"
    )
    await eventually(
        lambda: _contains(page, "#timeline", "Only visible to you"), "the ephemeral list", timeout=30
    )
    assert "Your recent tasks" in await page.text("#timeline")

    await asyncio.sleep(0.3)  # let the last frame paint
    shot = await page.send("Page.captureScreenshot", format="png")
    out = Path(os.environ.get("LUCY_CONSOLE_SCREENSHOT") or "/dev/null")
    if out != Path("/dev/null"):
        out.write_bytes(base64.b64decode(shot["data"]))
