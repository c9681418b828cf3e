"""The app's last line of defence: an unexpected exception becomes server_error JSON, never a stack trace."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokensmith.server.app import http_error, unexpected_error


async def boom(request: Request) -> Response:
    raise RuntimeError("secret internal detail")


async def test_unexpected_exception_is_server_error_json() -> None:
    app = Starlette(
        routes=[Route("/boom", boom)], exception_handlers={HTTPException: http_error, Exception: unexpected_error}
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/boom")
        missing = await http.get("/missing")
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    assert response.headers["cache-control"] == "no-store"
    assert missing.status_code == 404
    assert missing.json()["error"] == "invalid_request"
