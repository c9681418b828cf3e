"""The opening every client-authenticated endpoint shares (token, introspection, revocation): read the bounded
form, then authenticate the client with whichever method it used (RFC 6749 2.3, RFC 7523)."""

from __future__ import annotations

from starlette.requests import Request

from tokensmith.server.client_assertion import client_assertion_verifier
from tokensmith.server.client_auth import authenticate_client
from tokensmith.server.endpoints.forms import read_token_request
from tokensmith.server.endpoints.runtime import Runtime
from tokensmith.server.grants.base import AuthenticatedClient, TokenRequest


async def read_client_request(request: Request, rt: Runtime) -> tuple[TokenRequest, AuthenticatedClient]:
    """The request's form and its authenticated client; raises OAuthError (400, or 401 invalid_client)."""
    form = await read_token_request(request, rt.ctx.config.max_request_bytes)
    client = await authenticate_client(
        request.headers.get("authorization"),
        form,
        rt.ctx.config,
        rt.secrets,
        assertions=client_assertion_verifier(rt.ctx),
    )
    return form, client
