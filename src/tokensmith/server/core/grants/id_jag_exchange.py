"""The identity provider's side of an Identity Assertion JWT Authorization Grant (draft section 4.3): a token
exchange of the user's ID token, by the client it was issued to, for an ID-JAG aimed at another authorization
server (``requested_token_type=urn:ietf:params:oauth:token-type:id-jag``).

The token exchange grant hands such a request here after parsing it; the exchange's audit event records the
outcome as for any other exchange.
"""

from __future__ import annotations

from datetime import timedelta

from tokensmith.config.exchange import ID_TOKEN_TYPE
from tokensmith.config.id_jag import ID_JAG_TOKEN_TYPE, ID_JAG_TYP
from tokensmith.errors import invalid_request
from tokensmith.server.core.audit import ExchangeAttempt
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.grants.base import AuthenticatedClient, TokenResponse
from tokensmith.server.core.id_jag import decide_id_jag, id_jag_claims
from tokensmith.server.core.principals import check_exchange_input
from tokensmith.server.core.subject_tokens import SubjectTokenValidator, TokenRules, audiences_of
from tokensmith.server.core.tokens import new_jti

# RFC 8693 2.2.1: an ID-JAG is not an access token.
NOT_APPLICABLE = "N_A"


async def exchange_for_id_jag(
    *,
    subject_token: str,
    subject_token_type: str,
    audiences: tuple[str, ...],
    resources: tuple[str, ...],
    scope: tuple[str, ...] | None,
    has_actor_token: bool,
    client: AuthenticatedClient,
    ctx: ServerContext,
    validator: SubjectTokenValidator,
    attempt: ExchangeAttempt,
) -> TokenResponse:
    """Every check of the draft's processing rules (section 4.3.3), then one signed ID-JAG."""
    policy = client.config.token_exchange
    issuance = policy.id_jag
    if issuance is None:
        raise invalid_request(f"requested_token_type {ID_JAG_TOKEN_TYPE} is not allowed for this client")
    if has_actor_token:
        raise invalid_request("actor_token is not accepted with requested_token_type id-jag")
    if subject_token_type != ID_TOKEN_TYPE:
        raise invalid_request(f"an ID-JAG is issued for the user's ID token: send subject_token_type {ID_TOKEN_TYPE}")
    subject = await validator.validate(
        subject_token,
        subject_token_type,
        role="subject",
        rules=TokenRules(issuers=policy.subject_token_issuers, requesting_client=client.client_id),
    )
    # Draft 4.3.3: the ID token's audience must be the client that authenticated this request.
    if client.client_id not in audiences_of(subject.claims):
        raise invalid_request(
            "subject_token is an ID token issued to another client; only its audience may exchange it"
        )
    await check_exchange_input(ctx, subject, "subject")
    attempt.subject = subject.subject
    attempt.details["subject_issuer"] = subject.issuer
    if subject.jti is not None:
        attempt.details["subject_jti"] = subject.jti

    decision = decide_id_jag(issuance, audiences, resources, scope, policy.excess_scope)
    attempt.audience = (decision.audience,)
    attempt.scope = decision.scope
    attempt.details["id_jag_client_id"] = decision.client_id
    if decision.resources:
        attempt.details["resource"] = list(decision.resources)

    now = ctx.clock().replace(microsecond=0)
    expires_at = now + issuance.time_to_live
    if not policy.may_outlive_subject_token:
        expires_at = min(expires_at, subject.expires_at.replace(microsecond=0))
    if expires_at <= now:
        raise invalid_request("the subject_token has no lifetime left")
    jti = new_jti()
    claims = id_jag_claims(
        issuer=ctx.issuer,
        subject=subject.subject,
        decision=decision,
        jti=jti,
        issued_at=now,
        expires_at=expires_at,
        subject_claims=subject.claims,
    )
    token = ctx.keys.sign(
        claims,
        alg=client.config.token.id_token_signature_algorithm or ctx.config.keys.id_token_algorithm,
        typ=ID_JAG_TYP,
    )
    attempt.details["issued_jti"] = jti
    attempt.details["issued_token_type"] = ID_JAG_TOKEN_TYPE
    # RFC 8693 2.2.1: scope is sent when it differs from the request (or the request named none).
    show_scope = bool(decision.scope) and (scope is None or set(scope) != set(decision.scope))
    return TokenResponse(
        access_token=token,
        expires_in=max(int((expires_at - now) / timedelta(seconds=1)), 0),
        token_type=NOT_APPLICABLE,
        scope=decision.scope if show_scope else None,
        issued_token_type=ID_JAG_TOKEN_TYPE,
    )


__all__ = ["exchange_for_id_jag"]
