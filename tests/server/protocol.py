"""Helpers for protocol tests that drive the core without HTTP."""

from __future__ import annotations

from typing import Any

from tokensmith.server.core.authorization import (
    issue_authorization_code,
    resolve_client_redirect,
    validate_authorization_request,
)
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.grants.base import AuthenticatedClient, TokenRequest, TokenResponse
from tokensmith.server.core.pkce import s256_challenge

VERIFIER = "v" * 20 + "-._~" + "0123456789ABCDEFGHIJKLMNOP"  # 50 unreserved characters


def form(**params: str | list[str]) -> TokenRequest:
    return TokenRequest(params={k: v if isinstance(v, list) else [v] for k, v in params.items()})


def as_client(ctx: ServerContext, client_id: str, method: str = "client_secret_basic") -> AuthenticatedClient:
    client = ctx.config.client_by_id(client_id)
    assert client is not None
    return AuthenticatedClient(config=client, method=method)


async def new_code(
    ctx: ServerContext,
    client_id: str,
    redirect_uri: str,
    *,
    subject: str = "alice",
    verifier: str | None = VERIFIER,
    **params: str | list[str],
) -> str:
    """Run an authorization request through validation and issue its code, as the authorize endpoint does."""
    query: dict[str, list[str]] = {
        "client_id": [client_id],
        "redirect_uri": [redirect_uri],
        "response_type": ["code"],
        **{k: v if isinstance(v, list) else [v] for k, v in params.items()},
    }
    if verifier is not None:
        query["code_challenge"] = [s256_challenge(verifier)]
        query["code_challenge_method"] = ["S256"]
    request = validate_authorization_request(query, resolve_client_redirect(query, ctx.config))
    now = ctx.clock()
    return await issue_authorization_code(ctx.store, request, subject=subject, auth_time=now, now=now)


async def grant(ctx: ServerContext, client: AuthenticatedClient, **params: Any) -> TokenResponse:
    request = form(**params)
    return await ctx.grants[params["grant_type"]](request, client, ctx)


async def redeem_code(
    ctx: ServerContext, code: str, client_id: str, redirect_uri: str, **params: str
) -> dict[str, Any]:
    """The token response (as JSON) to ``client_id``'s authorization code request for ``code`` (PKCE verifier
    :data:`VERIFIER`), with ``params`` added."""
    response = await grant(
        ctx,
        as_client(ctx, client_id),
        grant_type="authorization_code",
        code=code,
        redirect_uri=redirect_uri,
        code_verifier=VERIFIER,
        **params,
    )
    return response.to_dict()
