"""A service protected by tokensmith.resource with DPoP (RFC 9449), for third-party DPoP clients to call.

``GET /whoami`` answers what the service understood of the caller (subject, client, audience, scope, ``cnf``, the
scheme used); bearer and DPoP-bound tokens are both taken ("allowed"), so that a DPoP-bound token sent as Bearer is
refused because of its binding, not because of the scheme. With ``nonces`` every proof must carry this service's
``DPoP-Nonce`` (RFC 9449 9): the first call of a client gets ``use_dpop_nonce``.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tokensmith import jose
from tokensmith.resource import BearerTokenMiddleware, DPoPChecker, Principal, TokenValidator

NONCE_LIFETIME_S = 300.0


async def whoami(request: Request) -> JSONResponse:
    principal: Principal = request.state.principal
    scheme = request.headers.get("authorization", "").split(" ", 1)[0]
    return JSONResponse(
        {
            "sub": principal.subject,
            "client_id": principal.client_id,
            "aud": list(principal.audience),
            "scope": sorted(principal.scopes),
            "cnf": principal.claims.get("cnf"),
            "act": principal.claims.get("act"),
            "scheme": scheme,
        }
    )


def dpop_resource_app(issuer: str, audiences: Sequence[str], *, nonces: bool) -> Starlette:
    """The service trusting ``issuer`` for tokens aimed at any of ``audiences``."""
    validator = TokenValidator(issuer=issuer, audience=audiences, required_typ="at+jwt")
    nonce_source = jose.DPoPNonceSource(secrets.token_bytes(32), NONCE_LIFETIME_S) if nonces else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await validator.aclose()

    app = Starlette(routes=[Route("/whoami", whoami)], lifespan=lifespan)
    app.add_middleware(
        BearerTokenMiddleware, validator=validator, dpop_checker=DPoPChecker(nonces=nonce_source), dpop="allowed"
    )
    return app
