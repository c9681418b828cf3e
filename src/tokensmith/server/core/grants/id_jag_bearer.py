"""The resource authorization server's side of an Identity Assertion JWT Authorization Grant (draft section 4.4):
the ``oauth-id-jag+jwt`` profile of the JWT bearer grant (RFC 7523 2.1, ``grants/jwt_bearer.py``).

The grant has already checked what every assertion gets (signature by a trusted issuer under the client's
``jwt-bearer.issuers``, one without trust policies, ``aud``, lifetime) and audits the outcome. This profile adds
the draft's rules (:func:`tokensmith.server.core.id_jag.check_id_jag`: ``aud`` this server's issuer alone,
``client_id`` the authenticated client) and the client's policy (``clients.<name>.id-jag``); once they pass, the
grant uses up the ``jti`` (so an ID-JAG refused to a client it does not name stays good for the one it names) and
the profile issues an access token for the grant's ``sub`` with the scopes and resources the policy allows. No
refresh token (draft 4.4.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokensmith.config.id_jag import ID_JAG_PROFILE, ID_JAG_TYP
from tokensmith.config.server import ServerConfig
from tokensmith.errors import unauthorized_client
from tokensmith.server.core.audit import ExchangeAttempt
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.grants.base import AuthenticatedClient, TokenRequest, TokenResponse
from tokensmith.server.core.grants.issuance import token_type as bound_token_type
from tokensmith.server.core.grants.jwt_bearer import Issuance, VerifiedAssertion
from tokensmith.server.core.id_jag import accepted_audience, accepted_scope, check_id_jag
from tokensmith.server.core.subject_tokens import TOKEN_CLAIMS


class IdJagProfile:
    """What a verified ``oauth-id-jag+jwt`` assertion is worth to the client presenting it."""

    typ: str = ID_JAG_TYP

    def metadata(self, config: ServerConfig) -> Mapping[str, Any]:
        """draft 8.2: advertised when some client may present ID-JAGs."""
        if any(c.id_jag is not None for c in config.clients.values()):
            return {"authorization_grant_profiles_supported": [ID_JAG_PROFILE]}
        return {}

    async def __call__(
        self,
        assertion: VerifiedAssertion,
        request: TokenRequest,
        client: AuthenticatedClient,
        ctx: ServerContext,
        attempt: ExchangeAttempt,
    ) -> Issuance:
        acceptance = client.config.id_jag
        if acceptance is None:
            raise unauthorized_client("this client may not present ID-JAGs (it has no id-jag policy)")
        if client.method == "none":
            # Draft 9.1: the client must prove it is the one the grant names.
            raise unauthorized_client("an ID-JAG is only accepted from an authenticated (confidential) client")
        grant = check_id_jag(
            assertion.token.header,
            assertion.claims,
            issuer=ctx.issuer,
            client_id=client.client_id,
            now=ctx.clock().timestamp(),
            leeway=ctx.config.tokens.clock_skew.total_seconds(),
        )
        trusted = assertion.issuer
        subject = trusted.subject_prefix + grant.subject
        attempt.subject = subject
        audience = accepted_audience(acceptance, client.client_id, grant)
        scope = accepted_scope(acceptance, client.config.registration.scopes, grant)
        attempt.audience, attempt.scope = audience, scope

        async def issue() -> TokenResponse:
            issued = await ctx.tokens.issue_access_token(
                subject=subject,
                client_id=client.client_id,
                audience=audience,
                scope=scope,
                ttl=acceptance.token_time_to_live or client.config.token.access_token_time_to_live,
                extra_claims={
                    k: grant.claims[k] for k in trusted.copy_claims if k in grant.claims and k not in TOKEN_CLAIMS
                },
                dpop_jkt=request.dpop_jkt,
            )
            attempt.details["issued_jti"] = issued.jti
            response = TokenResponse(
                access_token=issued.token,
                expires_in=issued.expires_in,
                scope=scope or None,
                token_type=bound_token_type(request.dpop_jkt),
            )
            if grant.resources:
                # draft 4.4.1: the granted resources are part of the response.
                response.extra["resource"] = audience[0] if len(audience) == 1 else list(audience)
            return response

        return issue


__all__ = ["IdJagProfile"]
