"""FastAPI dependencies: ``Depends(require_token())`` and ``Depends(require_scopes("message.read", dpop="allowed"))``.

They reuse the principal the :class:`BearerTokenMiddleware` put in ``request.state``; without the middleware they
validate the ``Authorization`` header themselves with the given validator, or ``app.state.token_validator``.
``dpop`` ("off" by default, "allowed" or "required") says whether the route takes DPoP-bound tokens
(``Authorization: DPoP`` with a ``DPoP`` proof, RFC 9449), checked by the given :class:`DPoPChecker` or
``app.state.dpop_checker``; a DPoP-bound token sent as Bearer is always refused. Refusals are ``HTTPException``
with the RFC 6750 / RFC 9449 ``WWW-Authenticate`` header. FastAPI is imported only here.

:func:`publish_resource_metadata` serves the resource's metadata (RFC 9728) and puts it in
``app.state.resource_metadata``, so that every refusal names its URL in ``resource_metadata``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from tokensmith.resource.bearer import TokenVerifier
from tokensmith.resource.dpop import DPoPChecker, DPoPMode, authenticate, bound_jkt
from tokensmith.resource.errors import BearerTokenError, InsufficientScope, MissingToken, ValidatorUnavailable
from tokensmith.resource.metadata import METADATA_CACHE_CONTROL, ProtectedResourceMetadata
from tokensmith.resource.middleware import PRINCIPAL_KEY, request_uri, www_authenticate
from tokensmith.resource.principal import Principal

VALIDATOR_STATE_KEY = "token_validator"
DPOP_CHECKER_STATE_KEY = "dpop_checker"
METADATA_STATE_KEY = "resource_metadata"


def publish_resource_metadata(
    app: FastAPI,
    metadata: ProtectedResourceMetadata,
    *,
    dpop_checker: DPoPChecker | None = None,
    dpop: DPoPMode = "off",
) -> None:
    """Serve ``metadata`` at its well-known paths (RFC 9728 3), with the DPoP fields for ``dpop`` "allowed" or
    "required" (give the checker the routes use), and name its URL in the challenges of :func:`require_token`
    and :func:`require_scopes`."""
    if dpop != "off" and dpop_checker is None:
        raise ValueError(f'dpop="{dpop}" needs a dpop_checker')
    document = metadata.document(dpop_checker, dpop)

    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse(document, headers={"Cache-Control": METADATA_CACHE_CONTROL})

    for path in metadata.paths():
        app.add_route(path, endpoint, methods=["GET", "HEAD"], include_in_schema=False)
    setattr(app.state, METADATA_STATE_KEY, metadata)


def _http_error(
    error: BearerTokenError, realm: str | None, checker: DPoPChecker | None, mode: DPoPMode, request: Request
) -> HTTPException:
    metadata = getattr(request.app.state, METADATA_STATE_KEY, None)
    challenge = www_authenticate(
        error,
        realm,
        checker,
        mode,
        request.headers.get("authorization"),
        resource_metadata=metadata.url if isinstance(metadata, ProtectedResourceMetadata) else None,
    )
    return HTTPException(
        status_code=error.status_code,
        detail=error.to_dict(),
        headers={"WWW-Authenticate": challenge, **error.headers()},
    )


def require_token(
    validator: TokenVerifier | None = None,
    *,
    realm: str | None = None,
    dpop: DPoPMode = "off",
    dpop_checker: DPoPChecker | None = None,
) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency giving the handler the validated :class:`Principal` (401 when there is none)."""

    async def principal(request: Request) -> Principal:
        checker = dpop_checker or getattr(request.app.state, DPOP_CHECKER_STATE_KEY, None)
        if dpop != "off" and checker is None:
            raise RuntimeError(f'dpop="{dpop}" needs a DPoPChecker: pass dpop_checker or set app.state.dpop_checker')
        found = request.scope.get("state", {}).get(PRINCIPAL_KEY)
        if isinstance(found, Principal):
            if dpop == "required" and bound_jkt(found.claims) is None:
                error = MissingToken("this resource needs a DPoP-bound token (Authorization: DPoP) with a DPoP proof")
                raise _http_error(error, realm, checker, dpop, request)
            return found
        verifier = validator or getattr(request.app.state, VALIDATOR_STATE_KEY, None)
        if verifier is None:
            raise RuntimeError(
                "require_token() needs a validator: pass one, set app.state.token_validator, "
                "or add BearerTokenMiddleware"
            )
        try:
            found = await authenticate(
                verifier,
                checker if dpop != "off" else None,
                dpop,
                authorization=request.headers.get("authorization"),
                proofs=request.headers.getlist("dpop"),
                method=request.method,
                uri=lambda c: request_uri(c, request.scope),
            )
        except BearerTokenError as error:
            raise _http_error(error, realm, checker, dpop, request) from None
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
    *scopes: str,
    validator: TokenVerifier | None = None,
    realm: str | None = None,
    dpop: DPoPMode = "off",
    dpop_checker: DPoPChecker | None = None,
) -> Callable[[Request, Principal], Awaitable[Principal]]:
    """A dependency giving the principal when its token grants every one of ``scopes`` (403 otherwise)."""
    # A default, not Annotated: with postponed annotations FastAPI could not resolve a local name in the hint.
    authenticated = Depends(require_token(validator, realm=realm, dpop=dpop, dpop_checker=dpop_checker))

    async def scoped(request: Request, principal: Principal = authenticated) -> Principal:
        if not principal.has_scopes(*scopes):
            checker = dpop_checker or getattr(request.app.state, DPOP_CHECKER_STATE_KEY, None)
            raise _http_error(InsufficientScope(scopes), realm, checker, dpop, request)
        return principal

    return scoped
