"""What a passing Spring call looks like, and failure messages that name the call, the answer and the logs."""

from __future__ import annotations

import json
from typing import Any

import httpx
from tests.interop.spring_apps import SpringApp


def explain(what: str, response: httpx.Response, *apps: SpringApp) -> str:
    """A failure message naming the call, Spring's answer, and the tail of each involved app's log."""
    lines = [
        f"{what}: {response.request.method} {response.request.url} -> HTTP {response.status_code}",
        f"WWW-Authenticate: {response.headers.get('www-authenticate')}",
        f"body: {response.text[:1000]}",
    ]
    for app in apps:
        lines.append(f"--- {app.label} log ---\n{app.log_tail(25)}")
    return "\n".join(lines)


def message_of(what: str, response: httpx.Response, *apps: SpringApp) -> dict[str, Any]:
    assert response.status_code == 200, explain(what, response, *apps)
    body: dict[str, Any] = json.loads(response.text)
    return body


def assert_exchanged_for_message_service(body: dict[str, Any], context: str) -> None:
    """What the Spring message-service saw: the user, audience message-service, authority SCOPE_message.read."""
    assert body["sub"] == "baeldung", context
    assert body["aud"] == ["message-service"], context
    assert "SCOPE_message.read" in body["authorities"], context
