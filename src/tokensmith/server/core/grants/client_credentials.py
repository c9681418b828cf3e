"""The client credentials grant (RFC 6749 4.4): a client acting on its own behalf. No refresh token, no ID token."""

from __future__ import annotations

from tokensmith.config.server import CLIENT_CREDENTIALS
from tokensmith.errors import invalid_scope, unauthorized_client
from tokensmith.server.core.context import GrantHandler, ServerContext
from tokensmith.server.core.grants.base import AuthenticatedClient, TokenRequest, TokenResponse
from tokensmith.server.core.grants.issuance import OPENID, new_grant_id, requested_audience, token_type


class ClientCredentialsGrant(GrantHandler):
    grant_type = CLIENT_CREDENTIALS

    async def __call__(self, request: TokenRequest, client: AuthenticatedClient, ctx: ServerContext) -> TokenResponse:
        if client.method == "none":
            raise unauthorized_client("the client_credentials grant needs a confidential client")
        registered = client.config.registration.scopes
        requested = request.scopes()
        if requested is None:
            # No scope asked for: every registered scope except `openid`, which only means something for a user.
            scope = tuple(s for s in registered if s != OPENID)
        else:
            refused = [s for s in requested if s not in registered or s == OPENID]
            if refused:
                raise invalid_scope(f"scope not allowed for this client: {' '.join(refused)}")
            scope = requested
        token = await ctx.tokens.issue_access_token(
            subject=client.client_id,
            client_id=client.client_id,
            audience=requested_audience(request, client.config),
            scope=scope,
            ttl=client.config.token.access_token_time_to_live,
            grant_id=new_grant_id(),
            dpop_jkt=request.dpop_jkt,
        )
        return TokenResponse(
            access_token=token.token, expires_in=token.expires_in, scope=scope, token_type=token_type(request.dpop_jkt)
        )
