"""FastAPI dependencies: ``Depends(require_token())`` and ``Depends(require_scopes("message.read"))``.

They reuse the principal the :class:`BearerTokenMiddleware` put in ``request.state``; without the middleware they
validate the ``Authorization`` header themselves with the given validator, or ``app.state.token_validator``.
Refusals are ``HTTPException`` with the RFC 6750 ``WWW-Authenticate`` header. FastAPI is imported only here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, HTTPException, Request

from tokensmith.resource.bearer import TokenVerifier, bearer_token
from tokensmith.resource.errors import BearerTokenError, InsufficientScope, ValidatorUnavailable
from tokensmith.resource.middleware import PRINCIPAL_KEY
from tokensmith.resource.principal import Principal

VALIDATOR_STATE_KEY = "token_validator"


def _http_error(error: BearerTokenError, realm: str | None) -> HTTPException:
    return HTTPException(
        status_code=error.status_code,
        detail=error.to_dict(),
        headers={"WWW-Authenticate": error.www_authenticate(realm)},
    )


def require_token(
    validator: TokenVerifier | None = None, *, realm: str | None = None
) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency giving the handler the validated :class:`Principal` (401 when there is none)."""

    async def principal(request: Request) -> Principal:
        found = request.scope.get("state", {}).get(PRINCIPAL_KEY)
        if isinstance(found, Principal):
            return found
        verifier = validator or getattr(request.app.state, VALIDATOR_STATE_KEY, None)
        if verifier is None:
            raise RuntimeError(
                "require_token() needs a validator: pass one, set app.state.token_validator, "
                "or add BearerTokenMiddleware"
            )
        try:
            found = await verifier.validate(bearer_token(request.headers.get("authorization")))
        except BearerTokenError as error:
            raise _http_error(error, realm) from None
        except ValidatorUnavailable:
            raise HTTPException(
                status_code=503,
                detail={"error": "temporarily_unavailable", "error_description": "tokens cannot be checked right now"},
                headers={"Retry-After": "5"},
            ) from None
        request.scope.setdefault("state", {})[PRINCIPAL_KEY] = found
        return found

    return principal


def require_scopes(
    *scopes: str, validator: TokenVerifier | None = None, realm: str | None = None
) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency giving the principal when its token grants every one of ``scopes`` (403 otherwise)."""
    # A default, not Annotated: with postponed annotations FastAPI could not resolve a local name in the hint.
    authenticated = Depends(require_token(validator, realm=realm))

    async def scoped(principal: Principal = authenticated) -> Principal:
        if not principal.has_scopes(*scopes):
            raise _http_error(InsufficientScope(scopes), realm)
        return principal

    return scoped
