"""message-service (port 8082): ``GET /message`` for tokens aimed at ``message-service`` with ``message.read``.

Built only on :mod:`tokensmith.resource`: the validator checks issuer, signature, audience and expiry (401 per
RFC 6750 otherwise); ``require_scopes`` answers 403 ``insufficient_scope`` without ``message.read``. Its metadata
(RFC 9728) is at ``/.well-known/oauth-protected-resource``, named in ``resource_metadata`` of every refusal. In the
DPoP variant (``dpop=True``) it takes DPoP-bound tokens only, each with a proof by the key it is bound to (RFC 9449).

With ``transaction-tokens`` configured, ``GET /message/transaction`` is a workload inside the trust domain: it takes
a Transaction Token in the ``Txn-Token`` header instead (:class:`tokensmith.resource.TransactionTokenValidator`).
"""

# No `from __future__ import annotations`: FastAPI must see the dependency objects the handlers close over.

from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from tokensmith.demo.service_app import resource_server_app
from tokensmith.demo.settings import MessageServiceSettings, WorkloadTransactionTokens
from tokensmith.resource import (
    TXN_TOKEN_HEADER,
    DPoPChecker,
    DPoPMode,
    Principal,
    TransactionTokenError,
    TransactionTokenValidator,
    ValidatorUnavailable,
)
from tokensmith.resource.fastapi import publish_resource_metadata, require_scopes

HTTP_TIMEOUT_SECONDS = 5.0
REALM = "message-service"


def greeting(principal: Principal) -> str:
    """What message-service says: to whom, and through whom when a service acts on the user's behalf."""
    text = f"Hello {principal.subject}, from message-service"
    if principal.act:
        text += f" (via {principal.act[0].subject}, acting for you)"
    return text


def create_message_service(
    settings: MessageServiceSettings, transport: httpx.AsyncBaseTransport | None = None, *, dpop: bool = False
) -> FastAPI:
    # trust_env=False: keys come from the authorization server on this machine, whatever proxy the environment names.
    http = httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS, trust_env=False, transport=transport)
    validator = settings.jwt.validator(http=http)
    # 401 invalid_token for a bad token, 403 insufficient_scope naming the scope without message.read (RFC 6750 3.1).
    # The DPoP variant takes bound tokens only, on every route and in the metadata it publishes.
    checker = DPoPChecker() if dpop else None
    dpop_mode: DPoPMode = "required" if dpop else "off"
    can_read = require_scopes(
        settings.required_scope,
        validator=validator,
        realm=REALM,
        dpop=dpop_mode,
        dpop_checker=checker,
    )

    app = resource_server_app("message-service", http)
    if settings.protected_resource_metadata is not None:
        publish_resource_metadata(app, settings.protected_resource_metadata, dpop_checker=checker, dpop=dpop_mode)

    @app.get("/message", response_class=PlainTextResponse)
    async def message(principal: Annotated[Principal, Depends(can_read)]) -> str:
        return greeting(principal)

    if settings.transaction_tokens is not None:
        _transaction_route(app, settings, settings.transaction_tokens, http)
    return app


def _transaction_route(
    app: FastAPI, settings: MessageServiceSettings, txn: WorkloadTransactionTokens, http: httpx.AsyncClient
) -> None:
    validator = TransactionTokenValidator(
        issuer=settings.jwt.issuer_uri,
        trust_domain=txn.trust_domain,
        jwks_uri=settings.jwt.jwk_set_uri,
        algorithms=settings.jwt.jws_algorithms,
        leeway=settings.jwt.leeway,
        http=http,
    )

    @app.get("/message/transaction")
    async def transaction_message(request: Request) -> Response:
        try:
            token = await validator.from_headers(request.headers.getlist(TXN_TOKEN_HEADER))
            token.require_scopes(txn.required_scope)
        except TransactionTokenError as error:
            return JSONResponse(error.to_dict(), status_code=error.status_code, headers={"Cache-Control": "no-store"})
        except ValidatorUnavailable:
            body = {"error": "temporarily_unavailable", "error_description": "tokens cannot be checked right now"}
            return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
        return PlainTextResponse(f"Hello {token.subject}, from message-service (transaction {token.txn})")
