"""The opening every client-authenticated endpoint shares (token, introspection, revocation): read the bounded form
and authenticate its client with whichever method it used (RFC 6749 2.3, RFC 7523)."""

from __future__ import annotations

from starlette.requests import Request

from tokensmith.server.core.client_auth import authenticate_client
from tokensmith.server.core.grants.base import AuthenticatedClient, TokenRequest
from tokensmith.server.http.forms import read_client_form
from tokensmith.server.http.runtime import Runtime


async def authenticated_client(request: Request, form: TokenRequest, rt: Runtime) -> AuthenticatedClient:
    """The client that sent ``form``; raises OAuthError (400, or 401 invalid_client)."""
    return await authenticate_client(
        request.headers.get("authorization"),
        form,
        rt.ctx.config,
        rt.secrets,
        assertions=rt.ctx.client_assertions,
    )


async def client_form(request: Request, rt: Runtime) -> tuple[TokenRequest, AuthenticatedClient]:
    """The request's form and its authenticated client; raises OAuthError."""
    form = await read_client_form(request, rt.ctx.config.max_request_bytes)
    return form, await authenticated_client(request, form, rt)
