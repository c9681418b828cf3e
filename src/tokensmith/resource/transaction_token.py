"""Transaction Tokens at a workload (draft-ietf-oauth-transaction-tokens): the ``Txn-Token`` HTTP header.

A workload inside a trust domain receives, next to (never instead of) its ``Authorization`` header, exactly one
Transaction Token in ``Txn-Token``. :class:`TransactionTokenValidator` checks it as the draft requires: the JWS
signature with the Transaction Token Service's published keys (a :class:`tokensmith.jose.RemoteKeySet`, through
:class:`~tokensmith.resource.validator.TokenValidator`), ``typ`` ``txntoken+jwt``, ``aud`` equal to this
workload's trust domain, ``exp``. The claims are then the app's: :class:`TransactionToken`.

:class:`TransactionTokenMiddleware` does this for an ASGI app and puts the token in
``scope["state"]["txn_token"]`` (``request.state.txn_token`` in Starlette and FastAPI). A refusal is
``401 {"error": "invalid_token", ...}``. Calls this workload makes downstream must forward the header unchanged
(``tokensmith.client.TransactionTokenAuth``).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from tokensmith.errors import description_text
from tokensmith.resource.asgi import ASGIApp, Receive, Scope, Send, header_values, send_json
from tokensmith.resource.errors import InvalidToken, ValidatorUnavailable
from tokensmith.resource.validator import Clock, TokenValidator

TXN_TOKEN_HEADER = "Txn-Token"
TXN_TOKEN_TYP = "txntoken+jwt"
STATE_KEY = "txn_token"


class TransactionTokenError(Exception):
    """The request's Transaction Token is missing or not acceptable (answer 401 with :meth:`to_dict`)."""

    status_code = 401

    def __init__(self, description: str) -> None:
        self.description = description_text(description)  # it may quote the token's claims
        super().__init__(self.description)

    def to_dict(self) -> dict[str, str]:
        return {"error": "invalid_token", "error_description": self.description}


class MissingTransactionToken(TransactionTokenError):
    def __init__(self) -> None:
        super().__init__(f"this call needs a Transaction Token in the {TXN_TOKEN_HEADER} header")


class InsufficientTransactionScope(TransactionTokenError):
    status_code = 403

    def __init__(self, required: Collection[str]) -> None:
        super().__init__(f"the Transaction Token's scope lacks {' '.join(sorted(required))}")

    def to_dict(self) -> dict[str, str]:
        return {"error": "insufficient_scope", "error_description": self.description}


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class TransactionToken:
    """A validated Transaction Token: who the transaction is for, what it is for, and its immutable context."""

    token: str = field(repr=False)  # forward this, unchanged, on downstream calls
    txn: str
    subject: str
    scopes: frozenset[str]
    # `req_wl`: the workload that requested the token.
    workload: str | None
    # `rctx` (the environment of the request) and `tctx` (the transaction's details).
    request_context: Mapping[str, Any]
    transaction_context: Mapping[str, Any]
    expires_at: float
    claims: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], token: str) -> TransactionToken:
        txn, sub, req_wl = claims.get("txn"), claims.get("sub"), claims.get("req_wl")
        if not isinstance(txn, str) or not txn or not isinstance(sub, str) or not sub:
            raise TransactionTokenError("the Transaction Token lacks 'txn' or 'sub'")
        return cls(
            token=token,
            txn=txn,
            subject=sub,
            scopes=frozenset(_strings(claims.get("scope"))),
            workload=req_wl if isinstance(req_wl, str) else None,
            request_context=_object(claims.get("rctx")),
            transaction_context=_object(claims.get("tctx")),
            expires_at=float(claims["exp"]),  # checked by the validator
            claims=claims,
        )

    def require_scopes(self, *required: str) -> None:
        missing = set(required) - self.scopes
        if missing:
            raise InsufficientTransactionScope(missing)


class TransactionTokenValidator:
    """Validates Transaction Tokens for one trust domain, signed by the Transaction Token Service ``issuer``
    (its keys from ``jwks_uri``, else from its discovery document)."""

    def __init__(
        self,
        *,
        issuer: str,
        trust_domain: str,
        algorithms: Sequence[str] = ("RS256", "ES256"),
        jwks_uri: str | None = None,
        leeway: float = 30.0,
        clock: Clock = time.time,
        http: httpx.AsyncClient | None = None,
        refresh_cooldown: float = 30.0,
        max_key_age: float = 300.0,
        timeout: float = 5.0,
    ) -> None:
        self.trust_domain = trust_domain
        self._jwt = TokenValidator(
            issuer=issuer,
            audience=trust_domain,
            algorithms=algorithms,
            jwks_uri=jwks_uri,
            leeway=leeway,
            required_typ=TXN_TOKEN_TYP,
            clock=clock,
            http=http,
            refresh_cooldown=refresh_cooldown,
            max_key_age=max_key_age,
            timeout=timeout,
        )

    async def validate(self, token: str) -> TransactionToken:
        """The claims of a valid Transaction Token; :class:`TransactionTokenError` otherwise,
        :class:`~tokensmith.resource.ValidatorUnavailable` while the service's keys cannot be had."""
        try:
            principal = await self._jwt.validate(token)
        except InvalidToken as exc:
            reason = exc.description or "the Transaction Token is not valid"
            raise TransactionTokenError(reason.replace("the token", "the Transaction Token", 1)) from None
        return TransactionToken.from_claims(principal.claims, token)

    async def from_headers(self, values: Sequence[str]) -> TransactionToken:
        """The Transaction Token of a request, given every value of its ``Txn-Token`` header."""
        if not values:
            raise MissingTransactionToken()
        if len(values) > 1 or "," in values[0]:
            raise TransactionTokenError(f"the {TXN_TOKEN_HEADER} header must carry exactly one Transaction Token")
        return await self.validate(values[0].strip())

    async def refresh_keys(self) -> bool:
        return await self._jwt.refresh_keys()

    async def aclose(self) -> None:
        await self._jwt.aclose()


class TransactionTokenMiddleware:
    """ASGI middleware: every HTTP request (but ``public_paths``) needs a valid ``Txn-Token``."""

    def __init__(
        self, app: ASGIApp, *, validator: TransactionTokenValidator, public_paths: Collection[str] = ()
    ) -> None:
        self.app = app
        self.validator = validator
        self.public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.public_paths:
            await self.app(scope, receive, send)
            return
        values = header_values(scope, TXN_TOKEN_HEADER.lower().encode())
        try:
            token = await self.validator.from_headers(values)
        except TransactionTokenError as error:
            await send_json(send, error.status_code, error.to_dict())
            return
        except ValidatorUnavailable:
            body = {"error": "temporarily_unavailable", "error_description": "tokens cannot be checked right now"}
            await send_json(send, 503, body)
            return
        scope.setdefault("state", {})[STATE_KEY] = token
        await self.app(scope, receive, send)


__all__ = [
    "STATE_KEY",
    "TXN_TOKEN_HEADER",
    "InsufficientTransactionScope",
    "MissingTransactionToken",
    "TransactionToken",
    "TransactionTokenError",
    "TransactionTokenMiddleware",
    "TransactionTokenValidator",
]
