"""Pure ASGI middleware: authenticate every HTTP request with its access token, or answer per RFC 6750 / RFC 9449.

The validated :class:`Principal` is put in ``scope["state"]["principal"]`` (``request.state.principal`` in
Starlette and FastAPI). Refusals are 401 with ``WWW-Authenticate: Bearer ...`` (no error code when the token is
missing, RFC 6750 3.1), and a ``DPoP algs=...`` challenge when DPoP is on; 503 when keys cannot be obtained. It
needs no web framework.

With a :class:`DPoPChecker`, ``dpop`` says what the app accepts: ``"allowed"`` (the default then: bearer tokens
and DPoP-bound tokens with their proofs), ``"required"`` (DPoP only) or ``"off"``. A DPoP-bound token sent as
Bearer is always refused.

With ``metadata`` (a :class:`ProtectedResourceMetadata`) it also answers the resource's metadata URL (RFC 9728,
without a token) and names that URL in ``resource_metadata`` of every challenge.
"""

from __future__ import annotations

from collections.abc import Collection

from tokensmith.resource.asgi import ASGIApp, Receive, Scope, Send, header, header_values, send_json
from tokensmith.resource.bearer import TokenVerifier
from tokensmith.resource.dpop import DPoPChecker, DPoPMode, authenticate
from tokensmith.resource.errors import BearerTokenError, MissingToken, ValidatorUnavailable
from tokensmith.resource.metadata import ProtectedResourceMetadata, ProtectedResourceMetadataApp

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
        dpop_checker: DPoPChecker | None = None,
        dpop: DPoPMode | None = None,
        metadata: ProtectedResourceMetadata | None = None,
    ) -> None:
        self.app = app
        self.validator = validator
        self.realm = realm
        self.required = required
        self.public_paths = frozenset(public_paths)
        self.dpop_checker = dpop_checker
        self.dpop: DPoPMode = dpop or ("allowed" if dpop_checker is not None else "off")
        if self.dpop != "off" and dpop_checker is None:
            raise ValueError(f'dpop="{self.dpop}" needs a dpop_checker')
        self.metadata_url = metadata.url if metadata is not None else None
        self.metadata_app = ProtectedResourceMetadataApp(metadata, dpop_checker, self.dpop) if metadata else None
        self.metadata_paths = frozenset(metadata.paths()) if metadata is not None else frozenset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.metadata_app is not None and scope["type"] == "http" and scope.get("path") in self.metadata_paths:
            await self.metadata_app(scope, receive, send)
            return
        if scope["type"] not in ("http", "websocket") or scope.get("path") in self.public_paths:
            await self.app(scope, receive, send)
            return
        authorization = header(scope, b"authorization")
        try:
            principal = await authenticate(
                self.validator,
                self.dpop_checker,
                self.dpop,
                authorization=authorization,
                proofs=header_values(scope, b"dpop"),
                method=scope.get("method", "GET"),
                uri=lambda checker: request_uri(checker, scope),
            )
        except MissingToken as error:
            if not self.required:
                await self.app(scope, receive, send)
                return
            await self._refuse(scope, send, error, authorization)
            return
        except BearerTokenError as error:
            await self._refuse(scope, send, error, authorization)
            return
        except ValidatorUnavailable:
            body = {"error": "temporarily_unavailable", "error_description": "tokens cannot be checked right now"}
            await _send_json(scope, send, 503, body, [(b"retry-after", b"5")])
            return
        scope.setdefault("state", {})[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, error: BearerTokenError, authorization: str | None) -> None:
        challenge = www_authenticate(
            error, self.realm, self.dpop_checker, self.dpop, authorization, resource_metadata=self.metadata_url
        )
        headers = [(b"www-authenticate", challenge.encode("latin-1"))]
        headers += [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in error.headers().items()
        ]
        await _send_json(scope, send, error.status_code, error.to_dict(), headers)


def www_authenticate(
    error: BearerTokenError,
    realm: str | None,
    checker: DPoPChecker | None,
    mode: DPoPMode,
    authorization: str | None,
    *,
    resource_metadata: str | None = None,
) -> str:
    """The challenge for ``error`` on a route in ``mode`` (shared with the FastAPI dependencies); with
    ``resource_metadata`` (RFC 9728 5.1) naming the resource's metadata URL."""
    if mode == "off" or checker is None:
        return error.www_authenticate(realm, resource_metadata=resource_metadata)
    used_dpop = (authorization or "").strip()[:5].lower() == "dpop "
    return error.www_authenticate(
        realm,
        dpop_algs=checker.algs,
        dpop_only=mode == "required",
        used_dpop=used_dpop,
        resource_metadata=resource_metadata,
    )


def request_uri(checker: DPoPChecker, scope: Scope) -> str:
    """The URI of the request as its client addressed it (for ``htu``)."""
    host = header(scope, b"host")
    return checker.request_uri(
        scheme=scope.get("scheme", "http"), host=host, root_path=scope.get("root_path", ""), path=scope.get("path", "/")
    )


async def _send_json(
    scope: Scope, send: Send, status: int, body: dict[str, str], extra: list[tuple[bytes, bytes]]
) -> None:
    if scope["type"] == "websocket":
        # Closing before accepting makes the server answer the handshake with 403.
        await send({"type": "websocket.close", "code": 1008})
        return
    await send_json(send, status, body, extra)
