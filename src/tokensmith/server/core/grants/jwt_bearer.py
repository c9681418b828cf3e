"""The JWT bearer grant (RFC 7523 2.1): ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` with an
``assertion``, a JWT of a trusted issuer, in exchange for an access token.

Every assertion gets the same checks first (RFC 7523 3), whatever it is: at most ``MAX_ASSERTION_BYTES``; signed
(never ``alg: none``) with an algorithm of its issuer's allow-list, verified with the issuer's published keys;
``iss`` a trusted issuer the client may present assertions from (``clients.<name>.jwt-bearer.issuers``); ``aud``
naming this server (its issuer URL or token endpoint, or the issuer's configured ``audiences``); ``exp`` required
and no further ahead than the issuer's ``max-assertion-lifetime``; ``nbf`` and ``iat`` within the clock skew; a
``jti`` (unless the issuer has ``require-jti: false``). A public client may use the grant only when its
``jwt-bearer.allow-unauthenticated`` says so. Every failure is ``invalid_grant`` with a description saying why.

**Extension point.** What the verified assertion is worth is then decided by the :class:`AssertionProfile`
registered for its header ``typ`` (compared case-insensitively, without an ``application/`` prefix, RFC 7515
4.1.9). Without ``typ``, or with ``JWT``, the assertion is a workload's identity token and
:class:`WorkloadAssertion` applies the issuer's trust policies (workload identity federation). Any other ``typ``
(``at+jwt``, ``dpop+jwt``, ...) is refused unless a profile for it was registered in ``core/wiring.py``: a token
made for another purpose never passes as an assertion (RFC 8725 3.11). An issuer's trust policies decide which
path it may take: an issuer with trust policies is a workload issuer, whose assertions are only workload
assertions; an issuer without them (an identity provider) is trusted only for the registered profiles (ID-JAG),
so neither its plain JWTs nor another issuer's profile-typed tokens pass for what they are not.

**Single use.** The assertion's ``jti`` is recorded in the store (until it expires, so that a replay fails on
every replica) only once every check that can refuse it has passed, the profile's included, and before the token
is issued: an assertion refused to one client (a stolen ID-JAG presented by a client it does not name) stays
usable by the client it was made for.

Each request, granted or refused, leaves an audit event (``jwt_bearer``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from tokensmith import jose
from tokensmith.config.exchange import TrustedIssuer
from tokensmith.config.federation import JWT_BEARER_GRANT
from tokensmith.config.server import ServerConfig
from tokensmith.errors import OAuthError, invalid_grant, invalid_scope, unauthorized_client
from tokensmith.server.core.audit import FAILED, GRANTED, REFUSED, AuditLog, ExchangeAttempt
from tokensmith.server.core.context import GrantHandler, ServerContext
from tokensmith.server.core.digest import digest
from tokensmith.server.core.grants.base import AuthenticatedClient, TokenRequest, TokenResponse
from tokensmith.server.core.grants.issuance import OPENID, new_grant_id, requested_audience, token_type
from tokensmith.server.core.subject_tokens import TOKEN_CLAIMS, audiences_of, parse_signed, verifying
from tokensmith.server.core.trusted_issuers import TrustedIssuers, apply_trust_policies, within_ceiling
from tokensmith.store.records import ClientAssertionRecord

JWT_BEARER_EVENT = "jwt_bearer"
# An assertion is a JWT of some claims; a GitHub Actions or Kubernetes token is 1-2 KiB.
MAX_ASSERTION_BYTES = 16 * 1024
MAX_JTI_LENGTH = 255
# The header `typ` values of an identity token (or none at all): the workload federation profile.
WORKLOAD_TYPS = frozenset({"", "jwt"})


def normalized_typ(header: Mapping[str, Any]) -> str:
    """The header ``typ``, lower-cased and without ``application/`` (RFC 7515 4.1.9); "" when absent."""
    typ = header.get("typ")
    if not isinstance(typ, str):
        return ""
    typ = typ.lower()
    return typ.removeprefix("application/")


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    """An assertion that passed the checks every assertion gets: signature, issuer, audience, times (its ``jti``
    is not yet used: the grant records it once the profile has accepted the assertion)."""

    token: jose.CompactJWS
    issuer: TrustedIssuer
    typ: str  # normalized (see normalized_typ); "" when absent
    expires_at: datetime
    jti: str | None

    @property
    def claims(self) -> dict[str, Any]:
        return self.token.claims


# What an accepted assertion gets: issues the token (called once the assertion's jti is used up).
Issuance = Callable[[], Awaitable[TokenResponse]]


class AssertionProfile(Protocol):
    """What an assertion of one ``typ`` is worth: the extension point of the grant. Register an implementation
    in ``core/wiring.py`` (``JwtBearerGrant(..., profiles=[...])``); it receives an assertion already verified by
    :class:`JwtBearerGrant`, makes every check that can refuse it (raising an ``OAuthError``, ``invalid_grant``
    for a refused assertion) and returns the :data:`Issuance` that issues the token, which must not refuse: the
    grant uses the assertion's ``jti`` up between the two. ``attempt`` is the audit record: fill in subject,
    audience, scope and details."""

    # The header `typ` it handles, normalized (lower case, no `application/`), e.g. "oauth-id-jag+jwt".
    typ: str

    def metadata(self, config: ServerConfig) -> Mapping[str, Any]:
        """What the profile adds to the discovery documents (RFC 8414 2), e.g. a grant profile it implements."""
        ...

    async def __call__(
        self,
        assertion: VerifiedAssertion,
        request: TokenRequest,
        client: AuthenticatedClient,
        ctx: ServerContext,
        attempt: ExchangeAttempt,
    ) -> Issuance: ...


class JwtBearerGrant(GrantHandler):
    """``urn:ietf:params:oauth:grant-type:jwt-bearer`` at the token endpoint."""

    grant_type = JWT_BEARER_GRANT

    def __init__(self, trusted: TrustedIssuers, audit: AuditLog, *, profiles: Iterable[AssertionProfile] = ()) -> None:
        self.trusted = trusted
        self.audit = audit
        self.workload = WorkloadAssertion()
        self.profiles: dict[str, AssertionProfile] = {}
        for profile in profiles:
            if profile.typ in WORKLOAD_TYPS or profile.typ in self.profiles:
                raise ValueError(f"an assertion profile for typ {profile.typ!r} is registered twice")
            self.profiles[profile.typ] = profile

    async def __call__(self, request: TokenRequest, client: AuthenticatedClient, ctx: ServerContext) -> TokenResponse:
        attempt = ExchangeAttempt(client_id=client.client_id)
        try:
            response = await self._grant(request, client, ctx, attempt)
        except OAuthError as exc:
            reason = f"{exc.error}: {exc.description}" if exc.description else exc.error
            await self._record(attempt, REFUSED, ctx, reason)
            raise
        except Exception as exc:
            await self._record(attempt, FAILED, ctx, f"server_error: {type(exc).__name__}")
            raise
        await self._record(attempt, GRANTED, ctx)
        return response

    async def _record(
        self, attempt: ExchangeAttempt, outcome: str, ctx: ServerContext, reason: str | None = None
    ) -> None:
        await self.audit.record(
            dataclasses.replace(attempt.event(outcome, ctx.clock(), reason), event=JWT_BEARER_EVENT)
        )

    async def _grant(
        self, request: TokenRequest, client: AuthenticatedClient, ctx: ServerContext, attempt: ExchangeAttempt
    ) -> TokenResponse:
        if client.method == "none" and not client.config.jwt_bearer.allow_unauthenticated:
            raise unauthorized_client("this client must authenticate to use the jwt-bearer grant")
        assertion = await self.verify(request.require("assertion"), client, ctx)
        attempt.details.update(assertion_issuer=assertion.issuer.issuer, assertion_typ=assertion.typ or None)
        if assertion.jti is not None:
            attempt.details["assertion_jti"] = assertion.jti
        profile = self._profile(assertion)
        issue = await profile(assertion, request, client, ctx, attempt)
        await self._use_once(assertion, ctx)
        return await issue()

    def _profile(self, assertion: VerifiedAssertion) -> AssertionProfile | WorkloadAssertion:
        if assertion.typ in WORKLOAD_TYPS:
            # It refuses an issuer without trust policies.
            return self.workload
        profile = self.profiles.get(assertion.typ)
        if profile is None:
            raise invalid_grant(f"assertions of type (typ) {assertion.typ!r} are not accepted")
        if assertion.issuer.trust_policies:
            raise invalid_grant(
                f"assertion issuer {assertion.issuer.issuer} has trust policies: it is trusted for workload "
                f"assertions (typ JWT) only, not for {assertion.typ!r}"
            )
        return profile

    @staticmethod
    async def _use_once(assertion: VerifiedAssertion, ctx: ServerContext) -> None:
        """Record the ``jti`` until the assertion can no longer be accepted; a second use is refused, atomically
        by the store, on every replica. Keyed by issuer: two issuers may use the same jti."""
        if assertion.jti is None:
            return
        record = ClientAssertionRecord(
            f"jwt-bearer:{digest(assertion.issuer.issuer)}",
            assertion.jti,
            assertion.expires_at + ctx.config.tokens.clock_skew,
        )
        if not await ctx.store.use_client_assertion(record):
            raise invalid_grant("assertion was already used (its jti was seen before)")

    async def verify(self, raw: str, client: AuthenticatedClient, ctx: ServerContext) -> VerifiedAssertion:
        """The checks every assertion gets (module docstring); ``invalid_grant`` else. Its ``jti`` is not used up
        here: the grant does it once the assertion is accepted."""
        if len(raw) > MAX_ASSERTION_BYTES:
            raise invalid_grant(f"assertion is larger than {MAX_ASSERTION_BYTES} bytes")
        token = parse_signed(raw, "assertion", invalid_grant)
        iss = token.claims.get("iss")
        if not isinstance(iss, str) or not iss:
            raise invalid_grant("assertion has no 'iss' claim")
        issuer = self.trusted.get(iss)
        if issuer is None:
            raise invalid_grant(f"assertion was issued by {iss!r}, which is not a trusted issuer")
        if iss not in client.config.jwt_bearer.issuers:
            raise invalid_grant(f"this client may not present assertions issued by {iss!r}")
        with verifying("assertion", invalid_grant):
            await self.trusted.verify(token, issuer)
        claims = token.claims
        # RFC 7523 3: `aud` identifies this server: its issuer or token endpoint, unless configured for the issuer.
        accepted = issuer.audiences or (ctx.issuer, f"{ctx.issuer}/oauth2/token")
        if not set(audiences_of(claims)) & set(accepted):
            raise invalid_grant(f"assertion is not for this server (its 'aud' names none of {list(accepted)})")
        expires_at = self._check_times(claims, issuer, ctx)
        jti = claims.get("jti")
        if jti is not None and (not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH):
            raise invalid_grant(f"assertion 'jti' must be a non-empty string of at most {MAX_JTI_LENGTH} characters")
        if jti is None and issuer.require_jti:
            raise invalid_grant("assertion has no 'jti' claim (this issuer's assertions must be single-use)")
        return VerifiedAssertion(token, issuer, normalized_typ(token.header), expires_at, jti)

    @staticmethod
    def _check_times(claims: Mapping[str, Any], issuer: TrustedIssuer, ctx: ServerContext) -> datetime:
        if "exp" not in claims:
            raise invalid_grant("assertion has no 'exp' claim")
        now = ctx.clock().timestamp()
        skew = ctx.config.tokens.clock_skew.total_seconds()
        try:
            exp = jose.check_times(claims, now=now, leeway=skew)
        except jose.InvalidClaims as exc:
            raise invalid_grant(f"assertion {exc}") from None
        limit = issuer.max_assertion_lifetime.total_seconds()
        if exp > now + limit + skew:
            raise invalid_grant(f"assertion expires too far in the future (at most {int(limit)} s from now)")
        try:
            return datetime.fromtimestamp(exp, UTC)
        except (OverflowError, ValueError, OSError):
            raise invalid_grant("assertion 'exp' is out of range") from None

    def metadata(self, config: ServerConfig) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for profile in self.profiles.values():
            merged.update(profile.metadata(config))
        return merged

    async def aclose(self) -> None:
        # Shared with the token exchange's validator; closing twice is harmless.
        await self.trusted.aclose()


class WorkloadAssertion:
    """The assertion is a workload's identity token (GitHub Actions, Kubernetes, SPIFFE, any OpenID provider):
    its issuer's trust policies decide the access token's subject, scope ceiling and claims; an issuer without
    trust policies is refused (it is trusted for other purposes, ID-JAGs or subject tokens). For the client that
    asked: ``aud`` is its audience, scope at most its registered scopes, lifetime its access-token lifetime (or
    the policy's) and never past the assertion's ``exp``. No refresh token: the workload asks again."""

    typ = ""

    async def __call__(
        self,
        assertion: VerifiedAssertion,
        request: TokenRequest,
        client: AuthenticatedClient,
        ctx: ServerContext,
        attempt: ExchangeAttempt,
    ) -> Issuance:
        issuer, claims = assertion.issuer, assertion.claims
        identity = apply_trust_policies(issuer, claims, client_id=client.client_id, refuse=invalid_grant)
        if identity is None:
            raise invalid_grant(
                f"assertion issuer {issuer.issuer} has no trust policies, so its JWTs (typ JWT or none) are not "
                "accepted as workload assertions"
            )
        subject = identity.subject
        attempt.details["trust_policy"] = identity.policy
        attempt.subject = subject
        if assertion.expires_at <= ctx.clock():
            # Accepted within the clock skew, but no time left to give a token.
            raise invalid_grant("assertion has no lifetime left")
        registered = tuple(s for s in client.config.registration.scopes if s != OPENID)
        requested = request.scopes()
        if requested is not None:
            refused = [s for s in requested if s not in registered]
            if refused:
                raise invalid_scope(f"scope not allowed for this client: {' '.join(refused)}")
        scope = within_ceiling(identity, requested if requested is not None else registered, requested)
        attempt.scope = scope
        audience = requested_audience(request, client.config)
        attempt.audience = audience
        extra = {k: claims[k] for k in issuer.copy_claims if k in claims and k not in TOKEN_CLAIMS}
        extra.update(identity.claims)
        ttl = identity.token_time_to_live or client.config.token.access_token_time_to_live

        async def issue() -> TokenResponse:
            issued = await ctx.tokens.issue_access_token(
                subject=subject,
                client_id=client.client_id,
                audience=audience,
                scope=scope,
                ttl=ttl,
                extra_claims=extra,
                grant_id=new_grant_id(),
                not_after=assertion.expires_at,
                dpop_jkt=request.dpop_jkt,
            )
            attempt.details["issued_jti"] = issued.jti
            show_scope = bool(scope) and (requested is None or set(requested) != set(scope))
            return TokenResponse(
                access_token=issued.token,
                expires_in=issued.expires_in,
                scope=scope if show_scope else None,
                token_type=token_type(request.dpop_jkt),
            )

        return issue


__all__ = [
    "JWT_BEARER_EVENT",
    "JWT_BEARER_GRANT",
    "MAX_ASSERTION_BYTES",
    "AssertionProfile",
    "Issuance",
    "JwtBearerGrant",
    "VerifiedAssertion",
    "WorkloadAssertion",
    "normalized_typ",
]
