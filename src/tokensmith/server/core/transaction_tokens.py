"""The Transaction Token Service profile of the token exchange (draft-ietf-oauth-transaction-tokens).

A workload (a confidential client listed under ``transaction-tokens.clients``) sends a token exchange with
``requested_token_type`` ``urn:ietf:params:oauth:token-type:txn_token``, its trust domain as ``audience``, the
transaction's ``scope``, a subject token (an access or ID token, a self-signed JWT, an unsigned JSON object, or a
Transaction Token to replace, as its policy allows) and optionally ``request_context`` / ``request_details``
(JSON objects that become the ``rctx`` / ``tctx`` claims). The answer is a short-lived JWT with ``typ``
``txntoken+jwt``, ``token_type`` ``N_A`` and never a refresh token.

Scope is never widened: each requested scope must be allowed by the workload's policy and backed by the subject
token's own scope (directly or through ``scope-mappings``); a subject token without scope backs only the policy's
``unscoped-subject-scopes``. A replacement keeps ``txn``, ``sub`` and ``aud``, may only narrow ``scope``, may add to
(never change) ``rctx`` and ``tctx``, never outlives the token it replaces, and records the workloads that
requested the earlier tokens of the transaction in ``rctx.req_wl_chain``.

A self-signed subject token is single use: it must carry a ``jti``, recorded in the store (as the JWT bearer grant
records an assertion's, atomically, so that a replay fails on every replica) once every check has passed and kept
until the token expires.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tokensmith import jose
from tokensmith.config.exchange import ID_TOKEN_TYPE, REFRESH_TOKEN_TYPE
from tokensmith.config.transaction_tokens import (
    SELF_SIGNED_TOKEN_TYPE,
    TXN_SUBJECT_TOKEN_TYPES,
    TXN_TOKEN_TYP,
    TXN_TOKEN_TYPE,
    UNSIGNED_JSON_TOKEN_TYPE,
    TransactionTokenClient,
    TransactionTokenSettings,
)
from tokensmith.errors import invalid_request, invalid_scope, invalid_target, unauthorized_client
from tokensmith.server.core.audit import ExchangeAttempt
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.digest import digest
from tokensmith.server.core.grants.base import AuthenticatedClient, TokenRequest, TokenResponse
from tokensmith.server.core.policy import exchange_binding
from tokensmith.server.core.principals import check_exchange_input
from tokensmith.server.core.subject_tokens import (
    MAX_TOKEN_BYTES,
    SubjectTokenValidator,
    TokenRules,
    scopes_of,
    verifying,
)
from tokensmith.store.records import ClientAssertionRecord

# RFC 8693 2.2.1: the token_type of an issued token that is not an access token.
NOT_APPLICABLE = "N_A"
# A self-signed subject token is made for one request: one issued longer ago than this is refused.
MAX_SELF_SIGNED_AGE = timedelta(minutes=5)
# The rctx member where a replacement keeps the workloads that requested the earlier tokens of the transaction.
CHAIN_MEMBER = "req_wl_chain"
MAX_JTI_LENGTH = 255


@dataclass(frozen=True, slots=True)
class TransactionSubject:
    """The validated subject token, reduced to what a Transaction Token needs."""

    subject: str
    # The scope the subject token carries; None when it carries none (the policy must then say what it backs).
    scopes: tuple[str, ...] | None
    # The claims of the Transaction Token being replaced; None for a first token.
    replaced: Mapping[str, Any] | None = None
    expires_at: datetime | None = None
    # A self-signed subject token's jti, used up once the request is accepted.
    single_use: ClientAssertionRecord | None = None


class TransactionTokenService:
    """Issues Transaction Tokens for the token-exchange grant; one per server, configured by
    ``transaction-tokens`` (None there: every request for a Transaction Token is refused)."""

    def __init__(self, settings: TransactionTokenSettings | None, validator: SubjectTokenValidator) -> None:
        self.settings = settings
        self.validator = validator

    def metadata(self) -> dict[str, list[str]]:
        """The token types this adds to the token-exchange discovery fields (none when not configured)."""
        if self.settings is None or not self.settings.clients:
            return {}
        subject_types = {t for c in self.settings.clients.values() for t in c.subject_token_types}
        return {
            "token_exchange_subject_token_types_supported": [t for t in TXN_SUBJECT_TOKEN_TYPES if t in subject_types],
            "token_exchange_requested_token_types_supported": [TXN_TOKEN_TYPE],
        }

    async def issue(
        self, request: TokenRequest, client: AuthenticatedClient, ctx: ServerContext, attempt: ExchangeAttempt
    ) -> TokenResponse:
        """The whole Txn-Token Request: every check, then one signed Transaction Token (or an OAuthError)."""
        attempt.details["mode"] = "transaction_token"
        attempt.details["requested_token_type"] = TXN_TOKEN_TYPE
        settings = self.settings
        if settings is None:
            raise invalid_request("this server does not issue Transaction Tokens (requested_token_type txn_token)")
        policy = settings.client(client.client_id)
        if policy is None:
            raise unauthorized_client("this client may not request Transaction Tokens")
        workload = policy.workload or client.client_id
        attempt.details["req_wl"] = workload
        if request.get("actor_token") is not None or request.get("actor_token_type") is not None:
            raise invalid_request("a Transaction Token request takes no actor_token")
        if request.get_all("resource"):
            raise invalid_target("a Transaction Token request names its trust domain as audience, not resource")
        audiences = tuple(dict.fromkeys(request.get_all("audience")))
        if not audiences:
            raise invalid_request("missing required parameter 'audience' (the trust domain)")
        attempt.audience = audiences
        if audiences != (settings.trust_domain,):
            raise invalid_target(f"Transaction Tokens are only issued for the trust domain {settings.trust_domain!r}")
        requested = request.scopes()
        if not requested:
            raise invalid_request("missing required parameter 'scope' (the purpose of the transaction)")
        attempt.scope = requested
        subject_token = request.require("subject_token")
        subject_token_type = request.require("subject_token_type")
        attempt.details["subject_token_type"] = subject_token_type
        context = _json_object(request, "request_context", policy.request_context, settings.max_context_bytes)
        if context is not None and CHAIN_MEMBER in context:
            raise invalid_request(f"request_context may not set {CHAIN_MEMBER}: this service keeps the call chain")
        details = _json_object(request, "request_details", policy.request_details, settings.max_context_bytes)

        subject = await self._subject(
            subject_token, subject_token_type, policy, client, ctx, settings, request.dpop_jkt
        )
        attempt.subject = subject.subject
        _check_scope(requested, subject, policy)

        now = ctx.clock().replace(microsecond=0)
        expires_at = now + settings.time_to_live
        claims: dict[str, Any] = {
            "iss": ctx.issuer,
            "iat": int(now.timestamp()),
            "aud": settings.trust_domain,
            "sub": subject.subject,
            "scope": " ".join(requested),
            "req_wl": workload,
        }
        rctx: dict[str, Any] = dict(context or {})
        tctx: dict[str, Any] = dict(details or {})
        if subject.replaced is None:
            claims["txn"] = str(uuid.uuid4())
        else:
            old = subject.replaced
            claims["txn"] = old["txn"]
            rctx = _extended(old.get("rctx"), rctx, "request_context", "rctx")
            tctx = _extended(old.get("tctx"), tctx, "request_details", "tctx")
            rctx[CHAIN_MEMBER] = _call_chain(old)
            if subject.expires_at is not None:
                # A replacement never outlives the token it replaces, so replacing cannot extend a transaction.
                expires_at = min(expires_at, subject.expires_at)
            attempt.details["replaced"] = True
        if expires_at <= now:
            raise invalid_request("the Transaction Token to replace has no lifetime left")
        if subject.single_use is not None and not await ctx.store.use_client_assertion(subject.single_use):
            raise invalid_request("the self-signed subject_token was already used (its jti was seen before)")
        claims["exp"] = int(expires_at.timestamp())
        if rctx:
            claims["rctx"] = rctx
        if tctx:
            claims["tctx"] = tctx
        token = ctx.keys.sign(claims, alg=ctx.config.keys.access_token_algorithm, typ=TXN_TOKEN_TYP)
        attempt.details["txn"] = claims["txn"]
        attempt.details["issued_token_type"] = TXN_TOKEN_TYPE
        return TokenResponse(
            access_token=token,
            expires_in=int((expires_at - now).total_seconds()),
            token_type=NOT_APPLICABLE,
            issued_token_type=TXN_TOKEN_TYPE,
        )

    async def _subject(
        self,
        token: str,
        token_type: str,
        policy: TransactionTokenClient,
        client: AuthenticatedClient,
        ctx: ServerContext,
        settings: TransactionTokenSettings,
        request_jkt: str | None,
    ) -> TransactionSubject:
        if token_type == REFRESH_TOKEN_TYPE:
            raise invalid_request("a refresh token never yields a Transaction Token; send an access or ID token")
        if token_type not in policy.subject_token_types:
            raise invalid_request(
                f"subject_token_type {token_type!r} is not accepted for this client; accepted: "
                f"{', '.join(policy.subject_token_types)}"
            )
        if len(token) > MAX_TOKEN_BYTES:
            raise invalid_request(f"subject_token is larger than {MAX_TOKEN_BYTES} bytes")
        if token_type == TXN_TOKEN_TYPE:
            return await _replaced_token(token, ctx, settings)
        if token_type == SELF_SIGNED_TOKEN_TYPE:
            return await _self_signed(token, policy, client, ctx)
        if token_type == UNSIGNED_JSON_TOKEN_TYPE:
            return _unsigned_json(token)
        validated = await self.validator.validate(
            token,
            token_type,
            role="subject",
            rules=TokenRules(issuers=policy.subject_token_issuers, requesting_client=client.client_id),
        )
        await check_exchange_input(ctx, validated, "subject")
        # A DPoP-bound subject token needs the possession the exchange asks for (its key's proof, or the client's
        # own where its token-exchange policy names the holder): the Transaction Token itself is not bound.
        exchange_binding(client.config.token_exchange, validated, None, request_jkt)
        # An ID token speaks of the user, not of any grant: it carries no scope even if it has a `scope` claim.
        scopes = validated.scopes if token_type != ID_TOKEN_TYPE else ()
        return TransactionSubject(subject=validated.subject, scopes=scopes or None, expires_at=validated.expires_at)


def _json_object(request: TokenRequest, name: str, accepted: bool, limit: int) -> dict[str, Any] | None:
    raw = request.get(name)
    if raw is None:
        return None
    if not accepted:
        raise invalid_request(f"{name} is not accepted from this client")
    if len(raw.encode()) > limit:
        raise invalid_request(f"{name} is larger than {limit} bytes")
    try:
        value = json.loads(raw)
    except ValueError:
        raise invalid_request(f"{name} is not valid JSON") from None
    if not isinstance(value, dict):
        raise invalid_request(f"{name} must be a JSON object")
    return value


def _call_chain(replaced: Mapping[str, Any]) -> list[str]:
    """The workloads that requested the earlier tokens of the transaction, oldest first, then the replaced one's."""
    rctx = replaced.get("rctx")
    earlier = rctx.get(CHAIN_MEMBER) if isinstance(rctx, dict) else None
    chain = [w for w in earlier if isinstance(w, str)] if isinstance(earlier, list) else []
    requester = replaced.get("req_wl")
    return [*chain, requester] if isinstance(requester, str) else chain


def _extended(old: object, new: dict[str, Any], parameter: str, claim: str) -> dict[str, Any]:
    """The replaced token's ``rctx``/``tctx`` with the new members added; changing an existing one is refused."""
    kept = dict(old) if isinstance(old, dict) else {}
    for key, value in new.items():
        if key in kept and kept[key] != value:
            raise invalid_request(f"{parameter} may not change {claim}.{key} of the Transaction Token it replaces")
        kept[key] = value
    return kept


def _check_scope(requested: Sequence[str], subject: TransactionSubject, policy: TransactionTokenClient) -> None:
    refused = [s for s in requested if s not in policy.scopes]
    if refused:
        raise invalid_scope(f"this client may not request Transaction Tokens with scope {' '.join(refused)}")
    if subject.replaced is not None:
        assert subject.scopes is not None  # a replaced token always has its scope (checked when it was read)
        wider = [s for s in requested if s not in subject.scopes]
        if wider:
            raise invalid_scope(
                f"a replacement may only narrow the scope; {' '.join(wider)} is not in the token it replaces"
            )
        return
    if subject.scopes is None:
        if not policy.unscoped_subject_scopes:
            raise invalid_request(
                "the subject_token carries no scope, so the requested scope cannot be checked against it"
            )
        backed = set(policy.unscoped_subject_scopes)
    else:
        backed = set(subject.scopes)
        for scope in subject.scopes:
            backed.update(policy.scope_mappings.get(scope, ()))
    unbacked = [s for s in requested if s not in backed]
    if unbacked:
        raise invalid_scope(f"the subject_token does not back scope {' '.join(unbacked)}")


async def _replaced_token(token: str, ctx: ServerContext, settings: TransactionTokenSettings) -> TransactionSubject:
    """A Transaction Token of ours, still valid in this trust domain."""
    with verifying("subject_token", invalid_request, "is not a Transaction Token of this server (unknown key)"):
        parsed = await ctx.keys.verify_or_refresh(jose.parse(token))
    claims = parsed.claims
    if parsed.header.get("typ") != TXN_TOKEN_TYP or claims.get("iss") != ctx.issuer:
        raise invalid_request(f"subject_token is not a Transaction Token of this server (typ {TXN_TOKEN_TYP})")
    if claims.get("aud") != settings.trust_domain:
        raise invalid_request("subject_token is a Transaction Token of another trust domain")
    try:
        # No leeway: the draft forbids replacing an expired Transaction Token.
        exp = jose.check_times(claims, now=ctx.clock().timestamp(), leeway=0)
    except jose.InvalidClaims as exc:
        raise invalid_request(f"subject_token {exc}") from None
    subject, txn = claims.get("sub"), claims.get("txn")
    scopes = scopes_of(claims)
    if not isinstance(subject, str) or not isinstance(txn, str) or not scopes:
        raise invalid_request("subject_token lacks the 'sub', 'txn' or 'scope' of a Transaction Token")
    return TransactionSubject(
        subject=subject, scopes=scopes, replaced=claims, expires_at=datetime.fromtimestamp(exp, UTC)
    )


async def _self_signed(
    token: str, policy: TransactionTokenClient, client: AuthenticatedClient, ctx: ServerContext
) -> TransactionSubject:
    """A JWT the requesting workload signed with one of its registered keys (the draft's self-signed type)."""
    try:
        parsed = jose.parse(token)
        keys = await ctx.client_assertions.keys_for(client.config.registration, parsed)
        if not keys:
            raise invalid_request("subject_token is not signed with a key registered for this client")
        jose.verify(parsed, keys)
    except jose.InvalidJWT as exc:
        raise invalid_request(f"subject_token is invalid: {exc}") from None
    claims = parsed.claims
    if claims.get("iss") not in {client.client_id, policy.workload or client.client_id}:
        raise invalid_request("a self-signed subject_token's 'iss' must name the requesting workload")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if ctx.issuer not in audiences:
        raise invalid_request(f"a self-signed subject_token's 'aud' must name this server ({ctx.issuer})")
    now = ctx.clock().timestamp()
    skew = ctx.config.tokens.clock_skew.total_seconds()
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool) or "exp" not in claims:
        raise invalid_request("a self-signed subject_token needs 'iat' and 'exp'")
    if iat < now - MAX_SELF_SIGNED_AGE.total_seconds() - skew:
        raise invalid_request(
            f"a self-signed subject_token must be fresh ('iat' at most {int(MAX_SELF_SIGNED_AGE.total_seconds())} s ago)"
        )
    try:
        exp = jose.check_times(claims, now=now, leeway=skew)
    except jose.InvalidClaims as exc:
        raise invalid_request(f"subject_token {exc}") from None
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise invalid_request(
            f"a self-signed subject_token needs a 'jti' (a unique string of at most {MAX_JTI_LENGTH} characters)"
        )
    try:
        # Accepted until it expires or is no longer fresh, whichever comes first.
        accepted_until = datetime.fromtimestamp(min(exp, iat + MAX_SELF_SIGNED_AGE.total_seconds()), UTC)
    except (OverflowError, ValueError, OSError):
        raise invalid_request("subject_token 'exp' is out of range") from None
    # Keyed by the workload (two workloads may use the same jti); kept until the token can no longer be accepted.
    single_use = ClientAssertionRecord(
        f"txn-self-signed:{digest(client.client_id)}", jti, accepted_until + ctx.config.tokens.clock_skew
    )
    return dataclasses.replace(_claimed_subject(claims), single_use=single_use)


def _unsigned_json(token: str) -> TransactionSubject:
    """The draft's unsigned JSON object: only as trustworthy as the authenticated workload that sent it."""
    try:
        claims = json.loads(token)
    except ValueError:
        raise invalid_request("subject_token is not valid JSON (subject_token_type unsigned_json)") from None
    if not isinstance(claims, dict):
        raise invalid_request("subject_token must be a JSON object (subject_token_type unsigned_json)")
    return _claimed_subject(claims)


def _claimed_subject(claims: Mapping[str, Any]) -> TransactionSubject:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise invalid_request("subject_token has no 'sub'")
    return TransactionSubject(subject=subject, scopes=scopes_of(claims) or None)


__all__ = ["NOT_APPLICABLE", "TransactionSubject", "TransactionTokenService"]
