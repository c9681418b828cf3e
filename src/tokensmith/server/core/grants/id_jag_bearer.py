"""The resource authorization server's side of an Identity Assertion JWT Authorization Grant (draft section 4.4):
an ID-JAG presented with the JWT bearer grant (RFC 7523 2.1) by the client it names, for an access token.

Read top to bottom: the client's policy (``clients.<name>.id-jag``) names the identity provider, whose key set
(the trusted issuer's, shared with the token exchange) verifies the signature; the claims are checked
(:func:`tokensmith.server.core.id_jag.check_id_jag`); the ``jti`` is recorded until the grant expires, so a replay
fails on every replica; the access token is for the grant's ``sub`` with the scopes and resources the policy
allows. No refresh token (draft 4.4.3). Every attempt, granted or refused, leaves an ``id_jag`` audit event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokensmith import jose
from tokensmith.config.id_jag import ID_JAG_PROFILE, ID_JAG_TYP, JWT_BEARER
from tokensmith.config.server import ServerConfig
from tokensmith.errors import OAuthError, invalid_grant, unauthorized_client
from tokensmith.server.core.audit import FAILED, GRANTED, REFUSED, AuditLog, ExchangeAttempt
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.digest import digest
from tokensmith.server.core.grants.base import AuthenticatedClient, TokenRequest, TokenResponse
from tokensmith.server.core.grants.issuance import token_type as bound_token_type
from tokensmith.server.core.id_jag import accepted_audience, accepted_scope, check_id_jag, refusal_reason
from tokensmith.server.core.subject_tokens import TOKEN_CLAIMS, SubjectTokenValidator
from tokensmith.store.records import ClientAssertionRecord

ID_JAG_EVENT = "id_jag"


class IdJagProfile:
    """The ``oauth-id-jag+jwt`` profile of the JWT bearer grant."""

    types: tuple[str, ...] = (ID_JAG_TYP,)

    def __init__(self, validator: SubjectTokenValidator, audit: AuditLog) -> None:
        self.validator = validator
        self.audit = audit

    async def __call__(
        self, assertion: jose.CompactJWS, request: TokenRequest, client: AuthenticatedClient, ctx: ServerContext
    ) -> TokenResponse:
        attempt = ExchangeAttempt(client_id=client.client_id, event_name=ID_JAG_EVENT)
        try:
            response = await self._accept(assertion, request, client, ctx, attempt)
        except OAuthError as exc:
            await self.audit.record(attempt.event(REFUSED, ctx.clock(), refusal_reason(exc)))
            raise
        except Exception as exc:
            await self.audit.record(attempt.event(FAILED, ctx.clock(), f"server_error: {type(exc).__name__}"))
            raise
        await self.audit.record(attempt.event(GRANTED, ctx.clock()))
        return response

    def metadata(self, config: ServerConfig) -> Mapping[str, Any]:
        """draft 8.2: advertised when some client may present ID-JAGs."""
        if any(c.id_jag is not None for c in config.clients.values()):
            return {"authorization_grant_profiles_supported": [ID_JAG_PROFILE]}
        return {}

    async def _accept(
        self,
        assertion: jose.CompactJWS,
        request: TokenRequest,
        client: AuthenticatedClient,
        ctx: ServerContext,
        attempt: ExchangeAttempt,
    ) -> TokenResponse:
        acceptance = client.config.id_jag
        if acceptance is None:
            raise unauthorized_client("this client may not present ID-JAGs (no id-jag policy)")
        iss = assertion.claims.get("iss")
        attempt.details["issuer"] = iss if isinstance(iss, str) else None
        if not isinstance(iss, str) or iss not in acceptance.issuers:
            raise invalid_grant(f"ID-JAG issuer {iss!r} is not an identity provider this client may present")
        found = self.validator.trusted_issuer(iss)
        if found is None:  # the configuration forbids it (issuers must be trusted issuers)
            raise invalid_grant(f"ID-JAG issuer {iss!r} is not a trusted issuer")
        trusted, keys = found
        try:
            jose.verify(assertion, await keys.keys_for(assertion))
        except jose.KeysUnavailable as exc:
            raise invalid_grant(f"ID-JAG cannot be verified: {exc}") from None
        except jose.UnknownKey:
            raise invalid_grant("ID-JAG is signed with a key its issuer does not publish") from None
        except jose.InvalidJWT as exc:
            raise invalid_grant(f"ID-JAG is invalid: {exc}") from None
        skew = ctx.config.tokens.clock_skew
        grant = check_id_jag(
            assertion.header,
            assertion.claims,
            issuer=ctx.issuer,
            client_id=client.client_id,
            now=ctx.clock().timestamp(),
            leeway=skew.total_seconds(),
        )
        subject = trusted.subject_prefix + grant.subject
        attempt.subject = subject
        attempt.details["id_jag_jti"] = grant.jti
        audience = accepted_audience(acceptance, client.client_id, grant)
        scope = accepted_scope(acceptance, client.config.registration.scopes, grant)
        attempt.audience, attempt.scope = audience, scope
        # One use per grant (RFC 7523 3, item 7), recorded until it could no longer be accepted, once every other
        # check passed. The digest keeps the issuer's jti apart from this client's own client-assertion jtis in
        # the same single-use table.
        jti_key = digest(f"{JWT_BEARER} {iss} {grant.jti}")
        if not await ctx.store.use_client_assertion(
            ClientAssertionRecord(client.client_id, jti_key, grant.expires_at + skew)
        ):
            raise invalid_grant("ID-JAG was already used (its jti was seen before); obtain a new one")
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
            # draft 4.4.2: the granted resources are part of the response.
            response.extra["resource"] = audience[0] if len(audience) == 1 else list(audience)
        return response


__all__ = ["ID_JAG_EVENT", "IdJagProfile"]
