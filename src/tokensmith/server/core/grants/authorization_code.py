"""The authorization code grant (RFC 6749 4.1.3) with PKCE (RFC 7636) and OpenID Connect ID tokens.

A code is single-use in the database. A replayed code is a sign that it leaked, so the replay also revokes
everything the first redemption issued (RFC 6749 4.1.2 and RFC 9700 4.5). A code whose user was removed from the
configuration since it was issued is refused.
"""

from __future__ import annotations

from tokensmith.config.server import AUTHORIZATION_CODE
from tokensmith.errors import invalid_grant, invalid_request
from tokensmith.server.core.context import GrantHandler, ServerContext
from tokensmith.server.core.digest import digest
from tokensmith.server.core.dpop import invalid_dpop_proof
from tokensmith.server.core.grants.base import AuthenticatedClient, TokenRequest, TokenResponse
from tokensmith.server.core.grants.issuance import UserGrant, issue_for_user
from tokensmith.server.core.pkce import is_valid_verifier, verifier_matches
from tokensmith.server.core.principals import removed_principal


class AuthorizationCodeGrant(GrantHandler):
    grant_type = AUTHORIZATION_CODE

    async def __call__(self, request: TokenRequest, client: AuthenticatedClient, ctx: ServerContext) -> TokenResponse:
        code = request.require("code")
        redirect_uri = request.require("redirect_uri")
        verifier = request.get("code_verifier")
        if verifier is not None and not is_valid_verifier(verifier):
            raise invalid_request("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636 4.1)")

        now = ctx.clock()
        consumed = await ctx.store.consume_authorization_code(digest(code), now)
        record = consumed.record
        if record is None:
            raise invalid_grant("the authorization code is invalid")
        if not consumed.first_use:
            await ctx.store.revoke_grant(record.grant_id, now)
            raise invalid_grant("the authorization code was already used; tokens issued with it are revoked")
        if record.client_id != client.client_id:
            raise invalid_grant("the authorization code was issued to another client")
        if record.expires_at <= now:
            raise invalid_grant("the authorization code has expired")
        removed = removed_principal(ctx.config, subject=record.subject, client_id=None, for_user=True)
        if removed is not None:
            raise invalid_grant(f"the authorization code is no longer valid: {removed}")
        if record.redirect_uri != redirect_uri:
            raise invalid_grant("redirect_uri does not match the one of the authorization request")
        if record.code_challenge is not None:
            if verifier is None:
                raise invalid_grant("code_verifier is required: the authorization request had a code_challenge")
            if not verifier_matches(verifier, record.code_challenge):
                raise invalid_grant("code_verifier does not match the code_challenge")
        elif client.method == "none" or client.config.require_proof_key:
            # The authorization endpoint already insists on PKCE for these clients; checked again here so that a
            # configuration change cannot turn an old challenge-less code into a usable one.
            raise invalid_grant("this client must use PKCE, and the code was issued without a code_challenge")
        elif verifier is not None:
            # A verifier for a code issued without a challenge: refuse, or PKCE could be stripped (downgrade).
            raise invalid_grant("code_verifier sent, but the authorization request had no code_challenge")

        if record.dpop_jkt is not None and record.dpop_jkt != request.dpop_jkt:
            # RFC 9449 10: the code is bound to the key of the authorization request's dpop_jkt.
            raise invalid_dpop_proof(
                "the authorization code is bound to a DPoP key (dpop_jkt): send a DPoP proof by that key"
            )
        grant = UserGrant(
            grant_id=record.grant_id,
            family_id=record.grant_id,
            subject=record.subject,
            scope=record.scope,
            auth_time=record.auth_time,
            nonce=record.nonce,
            claims_request=record.claims_request,
            # RFC 9449 5: a public client's refresh tokens are bound to its DPoP key.
            refresh_jkt=request.dpop_jkt if client.method == "none" else None,
            resources=record.resource,
        )
        return await issue_for_user(ctx, client.config, grant, request)
