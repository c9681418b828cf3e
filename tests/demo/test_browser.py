"""End to end in a real browser: Debian's chromium driven by Playwright against the four services on free ports.

Log in, follow the link, read the message and both tokens' claims from the page, try the delegation variant,
log out. The screenshots in docs/screenshots/ are taken here: written there with TOKENSMITH_UPDATE_SCREENSHOTS=1
(`make screenshots`), else to a temporary directory, so that running the tests leaves the working tree alone.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page, async_playwright
from tests.support.components import missing_component

from tokensmith.demo.runner import DemoSystem

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
UPDATE_SCREENSHOTS_ENV = "TOKENSMITH_UPDATE_SCREENSHOTS"
TIMEOUT_MS = 15_000


@pytest_asyncio.fixture(loop_scope="session")
async def page() -> AsyncIterator[Page]:
    if shutil.which(str(CHROMIUM)) is None:  # absent or not executable
        missing_component(f"{CHROMIUM} is not installed (Debian package chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            new_page = await context.new_page()
            new_page.set_default_timeout(TIMEOUT_MS)
            yield new_page
            await context.close()
        finally:
            await browser.close()


async def _claims(page: Page, section: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(await page.locator(f"#{section} pre.claims").inner_text())
    return claims


Shot = Callable[[str], Awaitable[None]]


@pytest.fixture
def shot(page: Page, tmp_path_factory: pytest.TempPathFactory) -> Shot:
    """Screenshot the page as ``name``: into docs/screenshots/ when asked to update them, else a temporary
    directory (the screenshots are still taken, so a page that cannot be captured fails the test either way)."""
    directory = DOCS_SCREENSHOTS if os.environ.get(UPDATE_SCREENSHOTS_ENV) == "1" else tmp_path_factory.mktemp("shots")

    async def take(name: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(directory / name), full_page=True)
        assert (directory / name).stat().st_size > 0

    return take


async def test_log_in_read_the_message_and_both_tokens_then_log_out(
    demo_system: DemoSystem, page: Page, shot: Shot
) -> None:
    topology = demo_system.topology

    # The client app sends the browser to the authorization server's login page.
    await page.goto(topology.client_url + "/")
    assert page.url.startswith(topology.issuer + "/login")
    await shot("1-login.png")

    # A wrong password: the page says so and nobody is logged in.
    await page.fill("#username", "baeldung")
    await page.fill("#password", "wrong")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#login-error")
    assert page.url.startswith(topology.issuer)
    await shot("2-wrong-password.png")

    # The right one: back at the client app, which shows the subject and the authorized party.
    await page.fill("#username", "baeldung")
    await page.fill("#password", "password")
    await page.click("button[type=submit]")
    await page.wait_for_url(topology.client_url + "/")
    assert await page.inner_text("#subject") == "baeldung"
    assert await page.inner_text("#azp") == "messaging-client"
    await shot("3-logged-in.png")

    # The article's link: user-service exchanges the token and message-service answers.
    await page.click("#message-link")
    await page.wait_for_selector("#message")
    assert await page.inner_text("#message") == "Hello baeldung, from message-service"
    assert "Token Exchange Client!" in await page.inner_text("#article")
    original = await _claims(page, "original-token")
    exchanged = await _claims(page, "exchanged-token")
    assert original["sub"] == exchanged["sub"] == "baeldung"
    assert original["aud"] == "user-service"
    assert exchanged["aud"] == "message-service"
    assert "message.read" in exchanged["scope"]
    assert exchanged["client_id"] == "message-service"
    assert "act" not in exchanged
    await shot("4-message.png")

    # Delegation: the exchanged token names user-service as the actor.
    await page.goto(topology.client_url + "/")
    await page.click("#delegation-link")
    await page.wait_for_selector("#message")
    delegated = await _claims(page, "exchanged-token")
    assert delegated["sub"] == "baeldung"
    assert delegated["act"]["sub"] == "user-service"
    assert "user-service" in await page.inner_text("#message")
    await shot("5-delegation.png")

    # Log out: the session ends at the authorization server too, so the next visit asks for the login again.
    await page.click("#logout")
    await page.wait_for_selector("#logged-out")
    assert page.url == topology.client_url + "/logged-out"
    await shot("6-logged-out.png")
    await page.goto(topology.client_url + "/")
    assert page.url.startswith(topology.issuer + "/login")


async def test_the_dpop_variant_shows_the_cnf_of_both_tokens(dpop_demo_system: DemoSystem, page: Page) -> None:
    """`tokensmith demo --dpop`: the same clicks; both tokens are bound, each to its own holder's key."""
    topology = dpop_demo_system.topology
    await page.goto(topology.client_url + "/")
    await page.fill("#username", "baeldung")
    await page.fill("#password", "password")
    await page.click("button[type=submit]")
    await page.wait_for_url(topology.client_url + "/")
    assert "bound to this app's key" in await page.inner_text("#dpop")

    await page.click("#message-link")
    await page.wait_for_selector("#message")
    assert await page.inner_text("#message") == "Hello baeldung, from message-service"
    assert await page.inner_text("#dpop") == "DPoP-bound"
    original = await _claims(page, "original-token")
    exchanged = await _claims(page, "exchanged-token")
    shown_original = json.loads(await page.locator("#original-token code.cnf").inner_text())
    shown_exchanged = json.loads(await page.locator("#exchanged-token code.cnf").inner_text())
    assert shown_original == original["cnf"]
    assert shown_exchanged == exchanged["cnf"]
    assert original["cnf"]["jkt"] != exchanged["cnf"]["jkt"]  # the client app's key, then user-service's
    assert exchanged["aud"] == "message-service"

    await page.goto(topology.client_url + "/")
    await page.click("#delegation-link")
    await page.wait_for_selector("#message")
    delegated = await _claims(page, "exchanged-token")
    assert delegated["act"]["sub"] == "user-service"
    assert delegated["cnf"] == exchanged["cnf"]
