"""The console in a real browser: Debian's Chromium, headless, driven by Playwright for Python
(its driver ships in the wheel; no browser is downloaded: ``executable_path`` names Debian's).
Alice mentions Lucy and sees the approval; she switches to Bob, an admin, who clicks Approve; the
message changes to "Approved by", the answer arrives in the thread, and ``/lucy tasks`` shows the
ephemeral list. Skipped, saying why, when ``chromium`` is not installed (``python3 run.py test``
installs it as root), except under ``LUCY_REQUIRE_BROWSER=1``, where that fails. With
``LUCY_CONSOLE_SCREENSHOT=<path>`` the final state is saved there (docs/console.png)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect

from tests.fixtures.console import Browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI (.ci/run) requires the browser; elsewhere a missing one skips this test, saying why.
REQUIRED = os.environ.get("LUCY_REQUIRE_BROWSER") == "1"
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not REQUIRED,
    reason="no chromium (apt-get install chromium; run.py test installs it)",
)
# Playwright adds --headless itself; the machine's network is closed, so Chromium calls nowhere.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SECONDS = 1000  # Playwright's timeouts are in milliseconds


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    assert CHROMIUM is not None, "LUCY_REQUIRE_BROWSER=1 but chromium is not installed"
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield await chromium.new_page(viewport={"width": 1400, "height": 900})
        finally:
            await chromium.close()


async def _send(page: Page, text: str) -> None:
    await page.locator("#message").fill(text)
    await page.locator("#composer").get_by_role("button", name="Send").click()


async def test_mention_approve_as_admin_answer_and_tasks_in_a_real_browser(browser: Browser, page: Page):
    thread, timeline = page.locator("#thread-messages"), page.locator("#timeline")
    await page.goto(f"http://localhost:{browser.port}/console#user=U0ALICE&channel=C0GENERAL")
    await expect(page.locator("#channel-title")).to_contain_text("#general", timeout=30 * SECONDS)
    assert "DEMO model" in await page.locator("#labels").inner_text()

    # Alice mentions Lucy; the thread opens and the approval appears in it.
    await _send(page, "@lucy run uptime")
    await expect(thread).to_contain_text("Approve", timeout=60 * SECONDS)
    assert "uptime" in await thread.inner_text()

    # She switches to Bob (an admin), who clicks Approve in the same thread.
    await page.locator("#as-user").select_option("U0BOB")
    await thread.get_by_role("button", name="Approve", exact=True).click(timeout=20 * SECONDS)
    await expect(thread).to_contain_text("Approved by @bob", timeout=60 * SECONDS)
    await expect(thread).to_contain_text("demo gateway: nothing was executed", timeout=60 * SECONDS)
    assert "Approve\n" not in await thread.inner_text()

    # Back to Alice: /lucy tasks, the list only she sees.
    await page.locator("#as-user").select_option("U0ALICE")
    await _send(page, "/lucy tasks")
    await expect(timeline).to_contain_text("Only visible to you", timeout=30 * SECONDS)
    assert "Your recent tasks" in await timeline.inner_text()

    shot = await page.screenshot()
    out = os.environ.get("LUCY_CONSOLE_SCREENSHOT")
    if out:
        Path(out).write_bytes(shot)
