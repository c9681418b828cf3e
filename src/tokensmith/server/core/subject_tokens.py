"""Validation of the subject and actor tokens of a token exchange (RFC 8693 2.1).

Accepted: JWTs this server issued (access tokens as ``...:access_token`` or ``...:jwt``, ID tokens as
``...:id_token``) and JWTs from the configured ``trusted-issuers``. A token is read top to bottom: parsed once
(:func:`tokensmith.jose.parse`), its ``iss`` picks the key source (our own keys, or the trusted issuer's remote
key set), its signature is verified with an allow-listed algorithm whose key type matches, then its claims are
checked: ``exp``/``nbf``/``iat`` with the configured clock skew, audience rules, for a trusted issuer's token its
trust policies (``server/core/trusted_issuers.py``), and for our own tokens revocation, the only database read on
this path.

Errors follow RFC 8693 2.2.2: a token type we do not accept, and a token that is invalid for any reason or
unacceptable by policy, are ``invalid_request`` with a description that says why (``unsupported_token_type`` is
RFC 7009's revocation error, not the token endpoint's).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from tokensmith import jose
from tokensmith.config.exchange import (
    ACCESS_TOKEN_TYPE,
    ID_TOKEN_TYPE,
    INPUT_TOKEN_TYPES,
    JWT_TOKEN_TYPE,
    REFRESH_TOKEN_TYPE,
    SELF_ISSUER,
    TrustedIssuer,
)
from tokensmith.errors import invalid_request
from tokensmith.server.clock import Clock
from tokensmith.server.core.revocation_cache import RevocationCache
from tokensmith.server.core.trusted_issuers import FederatedIdentity, Refusal, TrustedIssuers, apply_trust_policies
from tokensmith.server.keys import KeyManager
from tokensmith.store.base import Store

# A subject or actor token larger than this is refused before any parsing (a JWT of ours is well under 2 KiB).
MAX_TOKEN_BYTES = 16 * 1024

TokenRole = Literal["subject", "actor"]

# Claims that describe a token rather than its user: never copied from a subject token into a new one.
TOKEN_CLAIMS = frozenset(
    {
        "iss",
        "sub",
        "aud",
        "exp",
        "nbf",
        "iat",
        "jti",
        "client_id",
        "azp",
        "scope",
        "scp",
        "act",
        "may_act",
        "cnf",
        "nonce",
        "at_hash",
        "c_hash",
        "s_hash",
        "sid",
        "typ",
    }
)


@dataclass(frozen=True, slots=True)
class ValidatedToken:
    """A subject or actor token that passed every check."""

    token_type: str  # the `*_token_type` it was sent as
    issuer: str  # its `iss`
    subject: str  # the local subject (for a trusted issuer: prefix + mapped claim)
    issuer_subject: str  # the subject as its issuer names it (what `act` and `may_act` speak of)
    expires_at: datetime
    scopes: tuple[str, ...]
    is_local: bool  # issued by this server (so it has a lineage row and a revocation state)
    jti: str | None
    claims: Mapping[str, Any]
    # The claims that describe the user (copied into an impersonation token).
    user_claims: Mapping[str, Any] = field(default_factory=dict)
    # For a trusted issuer's token: what the trust policy that accepted it makes of it (None: no trust policies).
    federation: FederatedIdentity | None = None

    @property
    def act(self) -> Mapping[str, Any] | None:
        value = self.claims.get("act")
        return value if isinstance(value, Mapping) else None

    @property
    def may_act(self) -> Any:
        return self.claims.get("may_act")


def scopes_of(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """`scope` as a space-delimited string (RFC 9068) or a JSON array (Spring), or `scp`."""
    raw = claims.get("scope", claims.get("scp"))
    if isinstance(raw, str):
        return tuple(dict.fromkeys(raw.split()))
    if isinstance(raw, list):
        return tuple(dict.fromkeys(s for s in raw if isinstance(s, str)))
    return ()


def audiences_of(claims: Mapping[str, Any]) -> tuple[str, ...]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return (aud,)
    if isinstance(aud, list):
        return tuple(a for a in aud if isinstance(a, str))
    return ()


@dataclass(frozen=True, slots=True)
class TokenRules:
    """What the requesting client's policy accepts for one role (subject or actor)."""

    issuers: Sequence[str]  # "self" and/or trusted issuer URLs
    audiences: Sequence[str] = ()  # for our own tokens: `aud` must contain one of these (empty: any)
    # An ID token is issued to one client (its `aud`). Unless `audiences` says otherwise, only that client may
    # exchange it: another client holding a user's ID token must not turn it into access tokens.
    requesting_client: str | None = None


class SubjectTokenValidator:
    """Validates subject and actor tokens; one per server. ``trusted`` (the trusted issuers and their key sets) is
    shared with the JWT bearer grant."""

    def __init__(
        self,
        *,
        issuer: str,
        keys: KeyManager,
        store: Store,
        trusted: TrustedIssuers,
        clock: Clock,
        clock_skew: timedelta,
        revocations: RevocationCache | None = None,
    ) -> None:
        self._issuer = issuer
        self._keys = keys
        self._store = store
        # Without a cache, every check reads the database (a refresh interval of 0).
        self._revocations = revocations or RevocationCache(store, refresh_interval=timedelta(0), clock=clock)
        self._clock = clock
        self._skew = clock_skew
        self.trusted = trusted

    async def aclose(self) -> None:
        await self.trusted.aclose()

    async def validate(self, token: str, token_type: str, *, role: TokenRole, rules: TokenRules) -> ValidatedToken:
        """Parse the token once, pick the key source by its ``iss``, verify the signature, check the claims."""
        self._check_type(token_type, role)
        if len(token) > MAX_TOKEN_BYTES:
            raise invalid_request(f"{role}_token is larger than {MAX_TOKEN_BYTES} bytes")
        parsed = parse_signed(token, f"{role}_token", invalid_request)
        iss = parsed.claims.get("iss")
        trusted = self._issuer_of(iss, role, rules)
        await self._verify(parsed, trusted, role)
        if trusted is None:
            return await self._local_token(parsed.claims, token_type, role, rules)
        return self._external_token(parsed.claims, token_type, role, trusted, rules)

    @staticmethod
    def _check_type(token_type: str, role: TokenRole) -> None:
        if token_type in INPUT_TOKEN_TYPES:
            return
        if token_type == REFRESH_TOKEN_TYPE:
            raise invalid_request(
                f"{role}_token_type {token_type} is not accepted: exchange an access token or an ID token "
                "(use the refresh_token grant to refresh)"
            )
        raise invalid_request(
            f"{role}_token_type {token_type!r} is not supported; supported: {', '.join(INPUT_TOKEN_TYPES)}"
        )

    def _issuer_of(self, iss: object, role: TokenRole, rules: TokenRules) -> TrustedIssuer | None:
        """The key source by ``iss``: None for this server's own keys, else the trusted issuer."""
        if not isinstance(iss, str):
            raise invalid_request(f"{role}_token has no 'iss' claim")
        if iss == self._issuer:
            if SELF_ISSUER not in rules.issuers:
                raise invalid_request(f"this client may not exchange {role} tokens issued by this server")
            return None
        trusted = self.trusted.get(iss)
        if trusted is None:
            raise invalid_request(f"{role}_token was issued by {iss!r}, which is not a trusted issuer")
        if iss not in rules.issuers:
            raise invalid_request(f"this client may not exchange {role} tokens issued by {iss!r}")
        return trusted

    async def _verify(self, token: jose.CompactJWS, trusted: TrustedIssuer | None, role: TokenRole) -> None:
        with verifying(f"{role}_token", invalid_request):
            if trusted is None:
                await self._keys.verify_or_refresh(token)
            else:
                await self.trusted.verify(token, trusted)

    async def _local_token(
        self, claims: dict[str, Any], token_type: str, role: TokenRole, rules: TokenRules
    ) -> ValidatedToken:
        expires_at = self._check_times(claims, role)
        # RFC 9068 access tokens carry `client_id`; ID tokens carry `azp` and never `client_id`.
        is_access_token = "client_id" in claims
        if token_type == ID_TOKEN_TYPE and is_access_token:
            raise invalid_request(f"{role}_token is an access token, but {role}_token_type says ID token")
        if token_type in (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE) and not is_access_token:
            raise invalid_request(f"{role}_token is an ID token: send it with {role}_token_type {ID_TOKEN_TYPE}")
        if rules.audiences and not set(audiences_of(claims)) & set(rules.audiences):
            raise invalid_request(f"{role}_token is not for an audience this client may exchange")
        if (
            not is_access_token
            and not rules.audiences
            and rules.requesting_client is not None
            and rules.requesting_client not in audiences_of(claims)
        ):
            raise invalid_request(
                f"{role}_token is an ID token issued to another client; only its audience may exchange it"
            )
        subject, jti = claims.get("sub"), claims.get("jti")
        if not isinstance(subject, str) or not subject:
            raise invalid_request(f"{role}_token has no 'sub' claim")
        if not isinstance(jti, str) or not jti:
            raise invalid_request(f"{role}_token has no 'jti' claim")
        if await self._revocations.is_revoked(jti):
            raise invalid_request(f"{role}_token has been revoked")
        return ValidatedToken(
            token_type=token_type,
            issuer=self._issuer,
            subject=subject,
            issuer_subject=subject,
            expires_at=expires_at,
            scopes=scopes_of(claims),
            is_local=True,
            jti=jti,
            claims=claims,
            user_claims={k: v for k, v in claims.items() if k not in TOKEN_CLAIMS},
        )

    def _external_token(
        self, claims: dict[str, Any], token_type: str, role: TokenRole, trusted: TrustedIssuer, rules: TokenRules
    ) -> ValidatedToken:
        expires_at = self._check_times(claims, role)
        accepted = trusted.audiences or (self._issuer,)
        if not set(audiences_of(claims)) & set(accepted):
            raise invalid_request(f"{role}_token is not for this server (its 'aud' names none of {list(accepted)})")
        federation = apply_trust_policies(
            trusted,
            claims,
            client_id=rules.requesting_client,
            refuse=lambda why: invalid_request(f"{role}_token: {why}"),
        )
        raw_subject = claims.get(trusted.subject_claim)
        if isinstance(raw_subject, int) and not isinstance(raw_subject, bool):
            raw_subject = str(raw_subject)
        if not isinstance(raw_subject, str) or not raw_subject:
            raise invalid_request(f"{role}_token has no {trusted.subject_claim!r} claim")
        jti = claims.get("jti")
        user_claims = {k: claims[k] for k in trusted.copy_claims if k in claims and k not in TOKEN_CLAIMS}
        if federation is not None:
            user_claims.update(federation.claims)
        return ValidatedToken(
            token_type=token_type,
            issuer=trusted.issuer,
            subject=federation.subject if federation is not None else trusted.subject_prefix + raw_subject,
            issuer_subject=raw_subject,
            expires_at=expires_at,
            scopes=scopes_of(claims),
            is_local=False,
            jti=jti if isinstance(jti, str) else None,
            claims=claims,
            user_claims=user_claims,
            federation=federation,
        )

    def _check_times(self, claims: Mapping[str, Any], role: TokenRole) -> datetime:
        try:
            exp = jose.check_times(claims, now=self._clock().timestamp(), leeway=self._skew.total_seconds())
            return datetime.fromtimestamp(exp, UTC)
        except jose.InvalidClaims as exc:
            raise invalid_request(f"{role}_token {exc}") from None
        except (OverflowError, ValueError, OSError):
            raise invalid_request(f"{role}_token: 'exp' is out of range") from None


def parse_signed(raw: str, name: str, refuse: Refusal) -> jose.CompactJWS:
    """A JWT received as input (``name`` says which, for the error), parsed once and unverified: its claims choose
    the key source, then this same parse is verified. An unsigned one is refused at once."""
    try:
        parsed = jose.parse(raw)
    except jose.MalformedJWT as exc:
        raise refuse(f"{name} {exc}") from None
    except jose.InvalidJWT as exc:
        raise refuse(f"{name} is invalid: {exc}") from None
    if parsed.alg.lower() == "none" or not parsed.signature:
        raise refuse(f"{name} is not signed (alg {parsed.alg!r}); unsigned tokens are never accepted")
    return parsed


@contextmanager
def verifying(
    name: str, refuse: Refusal, unknown_key: str = "is signed with a key its issuer does not publish"
) -> Iterator[None]:
    """Turns the JOSE layer's verification failures of the JWT ``name`` into ``refuse``'s OAuth error."""
    try:
        yield
    except jose.KeysUnavailable as exc:
        raise refuse(f"{name} cannot be verified: {exc}") from None
    except jose.UnknownKey:
        raise refuse(f"{name} {unknown_key}") from None
    except jose.InvalidJWT as exc:
        raise refuse(f"{name} is invalid: {exc}") from None


__all__ = [
    "MAX_TOKEN_BYTES",
    "SubjectTokenValidator",
    "TokenRules",
    "ValidatedToken",
    "audiences_of",
    "parse_signed",
    "scopes_of",
    "verifying",
]
