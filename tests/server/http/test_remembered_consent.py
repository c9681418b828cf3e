"""Consent is remembered per user, client and scope, as Spring Authorization Server remembers it: the page comes
back for a scope not yet allowed, on ``prompt=consent``, and after the user denied (which withdraws it all).

A module of its own: one server for these tests alone, so what alice allowed here cannot leak into other tests.
"""

from __future__ import annotations

import httpx
from tests.server.browser import Browser, hidden_fields, query_of
from tests.server.configs import CONSENT_CLIENT, CONSENT_REDIRECT


def consent_request(scope: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": CONSENT_CLIENT,
        "redirect_uri": CONSENT_REDIRECT,
        "scope": scope,
        "state": "s",
        **extra,
    }


async def answer(browser: Browser, page: httpx.Response, action: str) -> httpx.Response:
    assert page.status_code == 200, page.text
    assert "Allow access?" in page.text
    return await browser.http.post("/oauth2/authorize", data={**hidden_fields(page.text), "consent_action": action})


async def test_consent_is_asked_once_per_scope_again_on_prompt_consent_and_after_a_denial(browser: Browser) -> None:
    await browser.code_for()  # signed in as alice

    # First time: the page; once approved, the same request goes straight through, also with prompt=none.
    approved = await answer(browser, await browser.authorize(consent_request("openid")), "approve")
    assert "code" in query_of(approved.headers["location"])
    assert "code" in query_of((await browser.authorize(consent_request("openid"))).headers["location"])
    silent = await browser.authorize(consent_request("openid", prompt="none"))
    assert "code" in query_of(silent.headers["location"])

    # A scope not allowed yet: the page again (prompt=none: consent_required), then both are remembered.
    silent = await browser.authorize(consent_request("openid profile", prompt="none"))
    assert query_of(silent.headers["location"])["error"] == "consent_required"
    await answer(browser, await browser.authorize(consent_request("openid profile")), "approve")
    assert "code" in query_of((await browser.authorize(consent_request("profile"))).headers["location"])

    # prompt=consent asks whatever was allowed before.
    forced = await browser.authorize(consent_request("openid", prompt="consent"))
    assert forced.status_code == 200
    assert "Allow access?" in forced.text

    # Denying withdraws everything allowed so far.
    denied = await answer(browser, forced, "deny")
    assert query_of(denied.headers["location"])["error"] == "access_denied"
    again = await browser.authorize(consent_request("openid"))
    assert again.status_code == 200
    assert "Allow access?" in again.text
