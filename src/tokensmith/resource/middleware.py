"""Pure ASGI middleware: authenticate every HTTP request with its bearer token, or answer per RFC 6750.

The validated :class:`Principal` is put in ``scope["state"]["principal"]`` (``request.state.principal`` in
Starlette and FastAPI). Refusals are 401 with ``WWW-Authenticate: Bearer ...`` (no error code when the token is
missing, RFC 6750 3.1), 503 when keys cannot be obtained. It needs no web framework.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

from tokensmith.resource.bearer import TokenVerifier, bearer_token
from tokensmith.resource.errors import BearerTokenError, MissingToken, ValidatorUnavailable

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PRINCIPAL_KEY = "principal"


class BearerTokenMiddleware:
    """``required=False`` lets requests without a token through (with no principal); a bad token is still refused.
    Paths in ``public_paths`` (exact matches, e.g. a health check) are never checked."""

    def __init__(
        self,
        app: ASGIApp,
        validator: TokenVerifier,
        *,
        realm: str | None = None,
        required: bool = True,
        public_paths: Collection[str] = (),
    ) -> None:
        self.app = app
        self.validator = validator
        self.realm = realm
        self.required = required
        self.public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in self.public_paths:
            await self.app(scope, receive, send)
            return
        try:
            token = bearer_token(_header(scope, b"authorization"))
            principal = await self.validator.validate(token)
        except MissingToken as error:
            if not self.required:
                await self.app(scope, receive, send)
                return
            await self._refuse(scope, send, error.status_code, error.to_dict(), error.www_authenticate(self.realm))
            return
        except BearerTokenError as error:
            await self._refuse(scope, send, error.status_code, error.to_dict(), error.www_authenticate(self.realm))
            return
        except ValidatorUnavailable:
            body = {"error": "temporarily_unavailable", "error_description": "tokens cannot be checked right now"}
            await self._refuse(scope, send, 503, body, None)
            return
        scope.setdefault("state", {})[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, status: int, body: dict[str, str], challenge: str | None) -> None:
        if scope["type"] == "websocket":
            # Closing before accepting makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        payload = json.dumps(body).encode("utf-8")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode("ascii")),
            (b"cache-control", b"no-store"),
        ]
        if challenge is not None:
            headers.append((b"www-authenticate", challenge.encode("latin-1")))
        if status == 503:
            headers.append((b"retry-after", b"5"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None
