"""Transaction Tokens at the edge of a trust domain (draft-ietf-oauth-transaction-tokens).

The workload that receives an external call (with the user's access token) asks the Transaction Token Service for
a Transaction Token (:class:`TransactionTokenMinter`, a token exchange with ``requested_token_type``
``urn:ietf:params:oauth:token-type:txn_token``), then sends it on every call it makes inside the trust domain in
the ``Txn-Token`` header (:class:`TransactionTokenAuth`). A workload further down forwards the token it received,
unchanged. Transaction Tokens are never cached: each belongs to one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping, Sequence
from typing import Any

import httpx

from tokensmith.client.exchanger import TokenExchanger
from tokensmith.client.grant import ACCESS_TOKEN_TYPE, IssuedToken, token_exchange_form

TXN_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:txn_token"
TXN_TOKEN_HEADER = "Txn-Token"


class TransactionTokenMinter:
    """Requests Transaction Tokens for ``trust_domain`` through the token-exchange ``registration`` of
    ``exchanger`` (the workload's client authentication is that registration's)."""

    def __init__(self, exchanger: TokenExchanger, *, registration: str, trust_domain: str) -> None:
        self.exchanger = exchanger
        self.registration = registration
        self.trust_domain = trust_domain

    async def mint(
        self,
        subject_token: str,
        *,
        scope: str | Sequence[str],
        subject_token_type: str = ACCESS_TOKEN_TYPE,
        request_context: Mapping[str, Any] | None = None,
        request_details: Mapping[str, Any] | None = None,
    ) -> IssuedToken:
        """A new Transaction Token for one transaction of ``subject_token``'s subject. ``request_context`` (the
        request's environment) and ``request_details`` (its parameters) are sent as JSON objects; the service
        decides what of them goes into ``rctx`` and ``tctx``."""
        form = token_exchange_form(
            self.exchanger.registration(self.registration),
            subject_token,
            subject_token_type=subject_token_type,
            requested_token_type=TXN_TOKEN_TYPE,
            audience=self.trust_domain,
            scope=scope,
        )
        if request_context is not None:
            form["request_context"] = json.dumps(dict(request_context), separators=(",", ":"))
        if request_details is not None:
            form["request_details"] = json.dumps(dict(request_details), separators=(",", ":"))
        return await self.exchanger.request(self.registration, form)

    async def replace(self, txn_token: str, *, scope: str | Sequence[str]) -> IssuedToken:
        """A replacement of ``txn_token`` (same transaction, same subject) with a scope no wider than its own."""
        return await self.mint(txn_token, scope=scope, subject_token_type=TXN_TOKEN_TYPE)


class TransactionTokenAuth(httpx.Auth):
    """Sends ``token`` in the ``Txn-Token`` header of every request; pass it as ``auth=`` (and the ``Authorization``
    of the call, if any, as a header), or use :func:`txn_token_headers`."""

    def __init__(self, token: str | IssuedToken) -> None:
        self.token = token.access_token if isinstance(token, IssuedToken) else token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[TXN_TOKEN_HEADER] = self.token
        yield request


def txn_token_headers(token: str | IssuedToken) -> dict[str, str]:
    """``{"Txn-Token": token}``: to forward a received Transaction Token unchanged, or to send a minted one."""
    return {TXN_TOKEN_HEADER: token.access_token if isinstance(token, IssuedToken) else token}


__all__ = ["TXN_TOKEN_HEADER", "TXN_TOKEN_TYPE", "TransactionTokenAuth", "TransactionTokenMinter", "txn_token_headers"]
