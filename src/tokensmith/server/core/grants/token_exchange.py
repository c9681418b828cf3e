"""The token exchange grant (RFC 8693): a subject token (and, for delegation, an actor token) in, a new token
for the policy-approved audience and scope out.

Hot path cost: one database read per token of ours (its revocation state) and two writes, both committed before
the response: the new token's lineage row and the exchange's audit event (every exchange, granted or refused,
leaves one; see ``server/core/audit.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tokensmith.config.exchange import ID_TOKEN_TYPE, INPUT_TOKEN_TYPES, ISSUABLE_TOKEN_TYPES, REFRESH_TOKEN_TYPE
from tokensmith.config.id_jag import ID_JAG_TOKEN_TYPE
from tokensmith.config.server import TOKEN_EXCHANGE, ServerConfig
from tokensmith.config.transaction_tokens import TXN_TOKEN_TYPE
from tokensmith.errors import OAuthError, invalid_request, invalid_scope, invalid_target, unauthorized_client
from tokensmith.server.core.audit import FAILED, GRANTED, REFUSED, AuditLog, ExchangeAttempt
from tokensmith.server.core.context import GrantHandler, ServerContext
from tokensmith.server.core.grants.base import MAX_TARGETS, AuthenticatedClient, TokenRequest, TokenResponse
from tokensmith.server.core.grants.exchange_refresh import (
    ExchangedContext,
    ExchangeLineage,
    new_exchange_lineage,
    save_exchange_refresh_token,
)
from tokensmith.server.core.grants.id_jag_exchange import exchange_for_id_jag
from tokensmith.server.core.grants.issuance import token_type as bound_token_type
from tokensmith.server.core.policy import (
    build_act,
    check_may_act,
    check_mode,
    decide_scopes,
    exchange_binding,
    issued_token_type,
    resolve_targets,
    token_lifetime,
)
from tokensmith.server.core.principals import check_exchange_input
from tokensmith.server.core.subject_tokens import SubjectTokenValidator, TokenRules, ValidatedToken
from tokensmith.server.core.transaction_tokens import TransactionTokenService
from tokensmith.server.core.trusted_issuers import within_ceiling

# RFC 8693 2.2.1: the token_type of an issued token that is not an access token.
NOT_APPLICABLE = "N_A"
# RFC 6749 A.4: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "\\"}


def token_exchange_metadata(config: ServerConfig) -> dict[str, Any]:
    """RFC 8693 defines no metadata for token types, so these names are ours (documented in
    docs/exchange-policy.md); they appear only when some client may use the grant."""
    exchangers = [c for c in config.clients.values() if TOKEN_EXCHANGE in c.registration.authorization_grant_types]
    if not exchangers:
        return {}
    requested = {t for c in exchangers for t in c.token_exchange.requested_token_types}
    if any(c.token_exchange.issue_refresh_token for c in exchangers):
        requested.add(REFRESH_TOKEN_TYPE)
    issues_id_jag = any(c.token_exchange.id_jag is not None for c in exchangers)
    if issues_id_jag:
        requested.add(ID_JAG_TOKEN_TYPE)
    metadata: dict[str, Any] = {
        "token_exchange_subject_token_types_supported": list(INPUT_TOKEN_TYPES),
        "token_exchange_actor_token_types_supported": list(INPUT_TOKEN_TYPES),
        "token_exchange_requested_token_types_supported": [
            t for t in (*ISSUABLE_TOKEN_TYPES, REFRESH_TOKEN_TYPE, ID_JAG_TOKEN_TYPE) if t in requested
        ],
    }
    if issues_id_jag:
        # draft-ietf-oauth-identity-assertion-authz-grant 8.1 (defined by draft-ietf-oauth-identity-chaining).
        metadata["identity_chaining_requested_token_types_supported"] = [ID_JAG_TOKEN_TYPE]
    return metadata


@dataclass(frozen=True, slots=True)
class ExchangeRequest:
    """The RFC 8693 2.1 parameters, parsed and checked for shape (not yet for meaning)."""

    subject_token: str
    subject_token_type: str
    actor_token: str | None
    actor_token_type: str | None
    requested_token_type: str | None
    audiences: tuple[str, ...]
    resources: tuple[str, ...]
    scope: tuple[str, ...] | None


def parse_exchange_request(request: TokenRequest) -> ExchangeRequest:
    subject_token = request.require("subject_token")
    subject_token_type = request.require("subject_token_type")
    actor_token, actor_token_type = request.get("actor_token"), request.get("actor_token_type")
    # RFC 8693 2.1: actor_token_type is REQUIRED when actor_token is present and MUST NOT be sent without it.
    if actor_token is not None and actor_token_type is None:
        raise invalid_request("actor_token_type is required with actor_token")
    if actor_token is None and actor_token_type is not None:
        raise invalid_request("actor_token_type must not be sent without actor_token")
    audiences = tuple(dict.fromkeys(request.get_all("audience")))
    resources = request.resources()
    if len(audiences) + len(resources) > MAX_TARGETS:
        raise invalid_target(f"at most {MAX_TARGETS} audience and resource values per request")
    scope = request.scopes()
    if scope is not None:
        bad = [s for s in scope if not set(s) <= _SCOPE_CHARS]
        if bad:
            raise invalid_scope("scope contains characters RFC 6749 3.3 does not allow")
    return ExchangeRequest(
        subject_token=subject_token,
        subject_token_type=subject_token_type,
        actor_token=actor_token,
        actor_token_type=actor_token_type,
        requested_token_type=request.get("requested_token_type"),
        audiences=audiences,
        resources=resources,
        scope=scope,
    )


class TokenExchangeGrant(GrantHandler):
    """``urn:ietf:params:oauth:grant-type:token-exchange`` at the token endpoint, with its per-server state: the
    validator of subject and actor tokens (the trusted issuers' key caches) and the audit trail."""

    grant_type = TOKEN_EXCHANGE

    def __init__(
        self,
        validator: SubjectTokenValidator,
        audit: AuditLog,
        transaction_tokens: TransactionTokenService | None = None,
    ) -> None:
        self.validator = validator
        self.audit = audit
        # The Transaction Token Service profile (requested_token_type txn_token); None: such requests are refused.
        self.transaction_tokens = transaction_tokens or TransactionTokenService(None, validator)

    async def __call__(self, request: TokenRequest, client: AuthenticatedClient, ctx: ServerContext) -> TokenResponse:
        attempt = ExchangeAttempt(client_id=client.client_id)
        try:
            response = await exchange(request, client, ctx, self.validator, attempt, self.transaction_tokens)
        except OAuthError as exc:
            reason = f"{exc.error}: {exc.description}" if exc.description else exc.error
            await self.audit.record(attempt.event(REFUSED, ctx.clock(), reason))
            raise
        except Exception as exc:
            await self.audit.record(attempt.event(FAILED, ctx.clock(), f"server_error: {type(exc).__name__}"))
            raise
        await self.audit.record(attempt.event(GRANTED, ctx.clock()))
        return response

    def metadata(self, config: ServerConfig) -> dict[str, Any]:
        """What the grant adds to discovery: :func:`token_exchange_metadata`, with the Transaction Token types."""
        fields = token_exchange_metadata(config)
        for name, values in self.transaction_tokens.metadata().items():
            fields[name] = list(dict.fromkeys([*fields.get(name, ()), *values]))
        return fields

    async def aclose(self) -> None:
        await self.validator.aclose()


async def exchange(
    request: TokenRequest,
    client: AuthenticatedClient,
    ctx: ServerContext,
    validator: SubjectTokenValidator,
    attempt: ExchangeAttempt,
    transaction_tokens: TransactionTokenService | None = None,
) -> TokenResponse:
    """The exchange itself: every check, then one token issued (or an OAuthError naming what failed)."""
    registration = client.config.registration
    if TOKEN_EXCHANGE not in registration.authorization_grant_types:
        raise unauthorized_client("this client is not registered for the token-exchange grant")
    if client.method == "none":
        # A public client would let anyone holding a token swap it for another: exchange needs a confidential one.
        raise unauthorized_client("token exchange needs a confidential client")
    if request.get("requested_token_type") == TXN_TOKEN_TYPE:
        # A Txn-Token Request follows its own profile and policy (server/core/transaction_tokens.py).
        attempt.details["mode"] = "transaction_token"
        parse_exchange_request(request)  # RFC 8693's shape checks (scope characters, targets) hold here too
        service = transaction_tokens or TransactionTokenService(None, validator)
        return await service.issue(request, client, ctx, attempt)
    policy = client.config.token_exchange
    parsed = parse_exchange_request(request)
    attempt.details["subject_token_type"] = parsed.subject_token_type
    if parsed.requested_token_type is not None:
        attempt.details["requested_token_type"] = parsed.requested_token_type
    if parsed.requested_token_type == ID_JAG_TOKEN_TYPE:
        return await exchange_for_id_jag(
            subject_token=parsed.subject_token,
            subject_token_type=parsed.subject_token_type,
            audiences=parsed.audiences,
            resources=parsed.resources,
            scope=parsed.scope,
            has_actor_token=parsed.actor_token is not None,
            client=client,
            ctx=ctx,
            validator=validator,
            attempt=attempt,
        )
    delegation = parsed.actor_token is not None
    attempt.details["mode"] = "delegation" if delegation else "impersonation"
    check_mode(policy, delegation=delegation)
    token_type = issued_token_type(policy, parsed.requested_token_type)

    subject = await validator.validate(
        parsed.subject_token,
        parsed.subject_token_type,
        role="subject",
        rules=TokenRules(
            issuers=policy.subject_token_issuers,
            audiences=policy.subject_token_audiences,
            requesting_client=client.client_id,
        ),
    )
    await check_exchange_input(ctx, subject, "subject")
    attempt.subject = subject.subject
    attempt.details["subject_issuer"] = subject.issuer
    if subject.federation is not None:
        attempt.details["trust_policy"] = subject.federation.policy
    if subject.jti is not None:
        attempt.details["subject_jti"] = subject.jti

    actor: ValidatedToken | None = None
    if parsed.actor_token is not None and parsed.actor_token_type is not None:
        actor = await validator.validate(
            parsed.actor_token,
            parsed.actor_token_type,
            role="actor",
            rules=TokenRules(issuers=policy.actor_token_issuers, requesting_client=client.client_id),
        )
        await check_exchange_input(ctx, actor, "actor")
        attempt.actor = actor.issuer_subject
        attempt.details["actor_issuer"] = actor.issuer
        if actor.jti is not None:
            attempt.details["actor_jti"] = actor.jti
        check_may_act(subject, actor, ctx.issuer)
    act = build_act(policy, subject, actor)
    dpop_jkt = exchange_binding(policy, subject, actor, request.dpop_jkt)
    if dpop_jkt is not None:
        attempt.details["dpop_jkt"] = dpop_jkt

    targets = resolve_targets(policy, client.config, parsed.audiences, parsed.resources)
    attempt.audience = targets
    bounds = [subject] if actor is None else [subject, actor]
    ttl, not_after = token_lifetime(policy, client.config, bounds)
    now = ctx.clock()
    if not_after is not None and not_after <= now:
        # Accepted within the clock skew, but no time left to give a new token.
        raise invalid_request("the subject_token (or actor_token) has no lifetime left")

    # Lineage: only our own tokens have rows; a foreign jti could collide with one of ours.
    parent_jti = subject.jti if subject.is_local else None
    actor_jti = actor.jti if actor is not None and actor.is_local else None
    claims = dict(subject.user_claims)
    if act is not None:
        claims["act"] = act

    if token_type == ID_TOKEN_TYPE:
        return await _issue_id_token(
            ctx, client, parsed, subject, claims, _capped(ttl, not_after, now), parent_jti, actor_jti, attempt
        )

    scope = within_ceiling(
        subject.federation, decide_scopes(policy, client.config, targets, parsed.scope, subject.scopes), parsed.scope
    )
    attempt.scope = scope
    # RFC 8693 2.2.1: scope is OPTIONAL when identical to the request; always sent otherwise (and when the
    # request had none, so the client learns what it got); no scope granted, no scope sent.
    show_scope = bool(scope) and (parsed.scope is None or set(parsed.scope) != set(scope))
    # A refresh token (only where the policy allows it) re-issues this same context later; its family is one
    # new grant, so reuse detection revokes the access tokens issued under it as well.
    refresh_lineage = new_exchange_lineage(parent_jti, actor_jti, dpop_jkt) if policy.issue_refresh_token else None
    context = ExchangedContext(audience=targets, claims=claims, not_after=not_after)
    if token_type == REFRESH_TOKEN_TYPE and refresh_lineage is not None:
        return await _issue_refresh_token(ctx, client, subject, scope, context, refresh_lineage, show_scope, attempt)

    issued = await ctx.tokens.issue_access_token(
        subject=subject.subject,
        client_id=client.client_id,
        audience=targets,
        scope=scope,
        ttl=ttl,
        extra_claims=claims,
        grant_id=refresh_lineage.grant_id if refresh_lineage is not None else None,
        parent_jti=parent_jti,
        actor_jti=actor_jti,
        not_after=not_after,
        dpop_jkt=dpop_jkt,
    )
    attempt.details["issued_jti"] = issued.jti
    attempt.details["issued_token_type"] = token_type
    response = TokenResponse(
        access_token=issued.token,
        expires_in=issued.expires_in,
        scope=scope if show_scope else None,
        issued_token_type=token_type,
        token_type=bound_token_type(dpop_jkt),
    )
    if refresh_lineage is not None:
        response.refresh_token, _ = await save_exchange_refresh_token(
            ctx, client.config, subject=subject.subject, scope=scope, context=context, lineage=refresh_lineage
        )
        attempt.details["refresh_token"] = True
    return response


async def _issue_refresh_token(
    ctx: ServerContext,
    client: AuthenticatedClient,
    subject: ValidatedToken,
    scope: tuple[str, ...],
    context: ExchangedContext,
    lineage: ExchangeLineage,
    show_scope: bool,
    attempt: ExchangeAttempt,
) -> TokenResponse:
    """requested_token_type refresh_token: the refresh token is the issued token (RFC 8693 2.2.1 puts it in
    `access_token`, with token_type N_A); the client redeems it with the refresh_token grant."""
    token, expires_at = await save_exchange_refresh_token(
        ctx, client.config, subject=subject.subject, scope=scope, context=context, lineage=lineage
    )
    attempt.details["issued_token_type"] = REFRESH_TOKEN_TYPE
    return TokenResponse(
        access_token=token,
        expires_in=max(int((expires_at - ctx.clock()).total_seconds()), 0),
        token_type=NOT_APPLICABLE,
        scope=scope if show_scope else None,
        issued_token_type=REFRESH_TOKEN_TYPE,
    )


async def _issue_id_token(
    ctx: ServerContext,
    client: AuthenticatedClient,
    parsed: ExchangeRequest,
    subject: ValidatedToken,
    claims: dict[str, object],
    ttl: timedelta,
    parent_jti: str | None,
    actor_jti: str | None,
    attempt: ExchangeAttempt,
) -> TokenResponse:
    # An ID token is about the user for the client that asked (OpenID Connect: `aud` is that client's id),
    # so the only target it can have is the requesting client itself.
    others = [t for t in (*parsed.audiences, *parsed.resources) if t != client.client_id]
    if others:
        raise invalid_target(f"an ID token is only issued for the requesting client, not for {', '.join(others)}")
    attempt.audience = (client.client_id,)
    issued = await ctx.tokens.issue_id_token(
        subject=subject.subject,
        client_id=client.client_id,
        ttl=ttl,
        extra_claims=claims,
        algorithm=client.config.token.id_token_signature_algorithm,
        parent_jti=parent_jti,
        actor_jti=actor_jti,
    )
    attempt.details["issued_jti"] = issued.jti
    attempt.details["issued_token_type"] = ID_TOKEN_TYPE
    return TokenResponse(
        access_token=issued.token,
        expires_in=issued.expires_in,
        token_type=NOT_APPLICABLE,
        issued_token_type=ID_TOKEN_TYPE,
    )


def _capped(ttl: timedelta, not_after: datetime | None, now: datetime) -> timedelta:
    if not_after is None:
        return ttl
    return min(ttl, not_after.replace(microsecond=0) - now.replace(microsecond=0))


__all__ = [
    "ExchangeRequest",
    "TokenExchangeGrant",
    "exchange",
    "parse_exchange_request",
    "token_exchange_metadata",
]
