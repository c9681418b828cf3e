"""The opening every client-authenticated endpoint shares (token, introspection, revocation): authenticate the
client of a bounded form POST with whichever method it used (RFC 6749 2.3, RFC 7523)."""

from __future__ import annotations

from tokensmith.server.core.client_auth import authenticate_client
from tokensmith.server.core.grants.base import AuthenticatedClient
from tokensmith.server.endpoints.direct import FormPost
from tokensmith.server.endpoints.runtime import Runtime


async def authenticated_client(post: FormPost, rt: Runtime) -> AuthenticatedClient:
    """The client that sent ``post``; raises OAuthError (400, or 401 invalid_client)."""
    return await authenticate_client(
        post.authorization,
        post.form,
        rt.ctx.config,
        rt.secrets,
        assertions=rt.ctx.client_assertions,
    )
