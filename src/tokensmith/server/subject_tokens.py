"""Validation of the subject and actor tokens of a token exchange (RFC 8693 2.1).

Accepted: JWTs this server issued (access tokens as ``...:access_token`` or ``...:jwt``, ID tokens as
``...:id_token``) and JWTs from the configured ``trusted-issuers``, whose keys are fetched from their discovery
document / JWKS and cached. Each token is fully validated: size, shape, signature with an allow-listed
algorithm whose key type matches, ``iss``, ``exp``/``nbf``/``iat`` with the configured clock skew, audience
rules, and (for our own tokens) revocation, the only database read on this path.

Errors follow RFC 8693 2.2.2: a token type we do not accept is ``unsupported_token_type``; a token that is
invalid for any reason, or unacceptable by policy, is ``invalid_request`` with a description that says why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from tokensmith import jose_fast
from tokensmith.config.exchange import (
    ACCESS_TOKEN_TYPE,
    EXTERNAL_KEY_TYPE_FOR_ALG,
    ID_TOKEN_TYPE,
    INPUT_TOKEN_TYPES,
    JWT_TOKEN_TYPE,
    REFRESH_TOKEN_TYPE,
    SELF_ISSUER,
    TrustedIssuer,
)
from tokensmith.errors import invalid_request, unsupported_token_type
from tokensmith.jose_fast import CompactJWT, MalformedJWT, UnacceptableJWT
from tokensmith.keys import Clock, KeyManager, SignatureError
from tokensmith.server.revocations import RevocationCache
from tokensmith.store.base import Store

logger = logging.getLogger(__name__)

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

PublicKey = RSAKey | ECKey | OKPKey


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


def peek(token: str, role: TokenRole) -> CompactJWT:
    """A compact JWS parsed once, unverified: its header and claims choose the issuer and the key, then the same
    parse is verified (never decoded a second time)."""
    try:
        parsed = jose_fast.parse(token)
    except MalformedJWT as exc:
        raise invalid_request(f"{role}_token {exc}") from None
    alg = parsed.header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none" or not parsed.signature:
        raise invalid_request(f"{role}_token is not signed (alg {alg!r}); unsigned tokens are never accepted")
    return parsed


class KeyFetchError(Exception):
    """A trusted issuer's keys could not be fetched and none are cached."""


class TrustedIssuerKeys:
    """The public keys of one trusted issuer: fetched with httpx, cached for ``key-cache-time-to-live``.

    A token signed with an unknown ``kid`` triggers a refetch (key rotation at the issuer), at most once per
    ``key-refetch-cool-down``, so a flood of forged kids cannot turn us into a load generator. Concurrent
    misses share one fetch. When the issuer is unreachable the cached keys keep serving.
    """

    def __init__(self, trusted: TrustedIssuer, http: httpx.AsyncClient, clock: Clock) -> None:
        self._trusted = trusted
        self._http = http
        self._clock = clock
        self._jwks_uri = trusted.jwks_uri
        self._keys: dict[str | None, list[PublicKey]] = {}
        self._fetched_at: datetime | None = None
        self._attempted_at: datetime | None = None
        self._last_error = "never fetched"
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str | None, alg: str) -> PublicKey | None:
        """The key for a token's ``kid`` and ``alg``; None when the issuer does not publish one.

        Raises :class:`KeyFetchError` when no keys could ever be fetched.
        """
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at > self._trusted.key_cache_time_to_live
        if stale and self._may_fetch(now):
            await self._refresh()
        key = self._pick(kid, alg)
        if key is None and self._may_fetch(self._clock()):
            await self._refresh()  # maybe the issuer rotated its keys
            key = self._pick(kid, alg)
        if key is None and not self._keys:
            raise KeyFetchError(self._last_error)
        return key

    def _may_fetch(self, now: datetime) -> bool:
        # Failed attempts count too: an unreachable issuer is not asked again on every request.
        return self._attempted_at is None or now - self._attempted_at >= self._trusted.key_refetch_cool_down

    def _pick(self, kid: str | None, alg: str) -> PublicKey | None:
        kty = EXTERNAL_KEY_TYPE_FOR_ALG.get(alg)
        # The key type must match the algorithm, and a key that names its `alg` only serves that one.
        candidates = [
            key
            for key in self._keys.get(kid, [])
            if key.key_type == kty and key.get("alg") in (None, alg) and key.get("use") in (None, "sig")
        ]
        # Without a `kid` the key must be unambiguous.
        return candidates[0] if len(candidates) == 1 or (kid is not None and candidates) else None

    async def _refresh(self) -> None:
        async with self._lock:
            now = self._clock()
            if not self._may_fetch(now):
                return  # another task fetched while this one waited for the lock: use its result
            self._attempted_at = now
            try:
                self._keys = self._index(await self._fetch_jwks())
                self._fetched_at = now
            except (httpx.HTTPError, ValueError, TypeError) as exc:
                # Cached keys (if any) keep serving; the next attempt waits for the cool-down.
                self._last_error = str(exc) or type(exc).__name__
                logger.warning("cannot fetch the keys of trusted issuer %s: %s", self._trusted.issuer, exc)

    async def _fetch_jwks(self) -> Mapping[str, Any]:
        if self._jwks_uri is None:
            self._jwks_uri = await self._discover_jwks_uri()
        response = await self._http.get(self._jwks_uri)
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
            raise ValueError(f"{self._jwks_uri} is not a JWK Set")
        return body

    async def _discover_jwks_uri(self) -> str:
        issuer = self._trusted.issuer.rstrip("/")
        parts = urlsplit(issuer)
        origin, path = f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")
        # OpenID Connect Discovery 4, then RFC 8414 3 (the well-known segment goes before the issuer's path).
        candidates = [
            f"{issuer}/.well-known/openid-configuration",
            f"{origin}/.well-known/oauth-authorization-server{path}",
        ]
        last_error = f"no discovery document for {issuer}"
        for url in candidates:
            response = await self._http.get(url)
            if response.status_code != 200:
                last_error = f"{url} answered {response.status_code}"
                continue
            metadata = response.json()
            if not isinstance(metadata, dict):
                raise ValueError(f"{url} is not a JSON object")
            if metadata.get("issuer") != self._trusted.issuer:
                # RFC 8414 3.3 / OpenID Discovery 4.3: the document must be about exactly this issuer.
                raise ValueError(f"{url} names issuer {metadata.get('issuer')!r}, not {self._trusted.issuer!r}")
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise ValueError(f"{url} has no jwks_uri")
            return jwks_uri
        raise ValueError(last_error)

    @staticmethod
    def _index(jwks: Mapping[str, Any]) -> dict[str | None, list[PublicKey]]:
        by_kid: dict[str | None, list[PublicKey]] = {}
        for entry in jwks["keys"]:
            # Only asymmetric public keys: a symmetric ("oct") key in a JWKS is never used.
            if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC", "OKP"):
                continue
            public = {k: v for k, v in entry.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
            try:
                key = KeySet.import_key_set({"keys": [public]}).keys[0]
            except (JoseError, ValueError, TypeError, KeyError):
                logger.warning("skipping an unreadable key (kid %r) in a trusted issuer's JWKS", entry.get("kid"))
                continue
            if isinstance(key, RSAKey | ECKey | OKPKey):
                kid = entry.get("kid") if isinstance(entry.get("kid"), str) else None
                by_kid.setdefault(kid, []).append(key)
                if kid is not None:
                    by_kid.setdefault(None, []).append(key)
        return by_kid


@dataclass(frozen=True, slots=True)
class TokenRules:
    """What the requesting client's policy accepts for one role (subject or actor)."""

    issuers: Sequence[str]  # "self" and/or trusted issuer URLs
    audiences: Sequence[str] = ()  # for our own tokens: `aud` must contain one of these (empty: any)
    # An ID token is issued to one client (its `aud`). Unless `audiences` says otherwise, only that client may
    # exchange it: another client holding a user's ID token must not turn it into access tokens.
    requesting_client: str | None = None


class SubjectTokenValidator:
    """Validates subject and actor tokens; one per server (it holds the trusted issuers' key caches)."""

    def __init__(
        self,
        *,
        issuer: str,
        keys: KeyManager,
        store: Store,
        trusted_issuers: Sequence[TrustedIssuer],
        clock: Clock,
        clock_skew: timedelta,
        http: httpx.AsyncClient | None = None,
        revocations: RevocationCache | None = None,
    ) -> None:
        self._issuer = issuer
        self._keys = keys
        self._store = store
        # Without a cache, every check reads the database (a refresh interval of 0).
        self._revocations = revocations or RevocationCache(store, refresh_interval=timedelta(0), clock=clock)
        self._clock = clock
        self._skew = clock_skew
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        self._trusted = {t.issuer: t for t in trusted_issuers}
        self._trusted_keys = {t.issuer: TrustedIssuerKeys(t, self._http, clock) for t in trusted_issuers}

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def validate(self, token: str, token_type: str, *, role: TokenRole, rules: TokenRules) -> ValidatedToken:
        self._check_type(token_type, role)
        if len(token) > MAX_TOKEN_BYTES:
            raise invalid_request(f"{role}_token is larger than {MAX_TOKEN_BYTES} bytes")
        parsed = peek(token, role)
        iss = jose_fast.payload_claims(parsed).get("iss")  # decoded by peek already: no second pass
        if not isinstance(iss, str):
            raise invalid_request(f"{role}_token has no 'iss' claim")
        if iss == self._issuer:
            if SELF_ISSUER not in rules.issuers:
                raise invalid_request(f"this client may not exchange {role} tokens issued by this server")
            return await self._validate_local(parsed, token_type, role, rules)
        trusted = self._trusted.get(iss)
        if trusted is None:
            raise invalid_request(f"{role}_token was issued by {iss!r}, which is not a trusted issuer")
        if iss not in rules.issuers:
            raise invalid_request(f"this client may not exchange {role} tokens issued by {iss!r}")
        return await self._validate_external(parsed, token_type, role, trusted)

    @staticmethod
    def _check_type(token_type: str, role: TokenRole) -> None:
        if token_type in INPUT_TOKEN_TYPES:
            return
        if token_type == REFRESH_TOKEN_TYPE:
            raise unsupported_token_type(
                f"{role}_token_type {token_type} is not accepted: exchange an access token or an ID token "
                "(use the refresh_token grant to refresh)"
            )
        raise unsupported_token_type(
            f"{role}_token_type {token_type!r} is not supported; supported: {', '.join(INPUT_TOKEN_TYPES)}"
        )

    async def _validate_local(
        self, token: CompactJWT, token_type: str, role: TokenRole, rules: TokenRules
    ) -> ValidatedToken:
        try:
            verified = await self._keys.verify_or_refresh(token)
        except SignatureError as exc:
            raise invalid_request(f"{role}_token is invalid: {exc}") from None
        claims = verified.claims
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

    async def _validate_external(
        self, token: CompactJWT, token_type: str, role: TokenRole, trusted: TrustedIssuer
    ) -> ValidatedToken:
        alg, kid = token.header.get("alg"), token.header.get("kid")
        if not isinstance(alg, str) or alg not in trusted.algorithms:
            raise invalid_request(f"{role}_token: algorithm {alg!r} is not accepted for issuer {trusted.issuer}")
        if kid is not None and not isinstance(kid, str):
            raise invalid_request(f"{role}_token: 'kid' must be a string")
        try:
            key = await self._trusted_keys[trusted.issuer].key_for(kid, alg)
        except KeyFetchError as exc:
            raise invalid_request(
                f"{role}_token cannot be verified: keys of {trusted.issuer} unavailable ({exc})"
            ) from None
        if key is None:
            raise invalid_request(f"{role}_token is signed with a key {trusted.issuer} does not publish")
        try:
            # The parse peek made, verified after joserfc's header and key checks (jose_fast).
            verifies = jose_fast.verify_signature(token, alg, key)
        except UnacceptableJWT as exc:
            raise invalid_request(f"{role}_token is invalid: {exc}") from None
        except (JoseError, ValueError, TypeError) as exc:
            raise invalid_request(f"{role}_token is invalid: signature does not verify ({exc})") from None
        if not verifies:
            raise invalid_request(f"{role}_token is invalid: signature does not verify")
        claims = dict(jose_fast.payload_claims(token))
        if claims.get("iss") != trusted.issuer:
            raise invalid_request(f"{role}_token has the wrong 'iss'")
        expires_at = self._check_times(claims, role)
        accepted = trusted.audiences or (self._issuer,)
        if not set(audiences_of(claims)) & set(accepted):
            raise invalid_request(f"{role}_token is not for this server (its 'aud' names none of {list(accepted)})")
        raw_subject = claims.get(trusted.subject_claim)
        if isinstance(raw_subject, int) and not isinstance(raw_subject, bool):
            raw_subject = str(raw_subject)
        if not isinstance(raw_subject, str) or not raw_subject:
            raise invalid_request(f"{role}_token has no {trusted.subject_claim!r} claim")
        jti = claims.get("jti")
        return ValidatedToken(
            token_type=token_type,
            issuer=trusted.issuer,
            subject=trusted.subject_prefix + raw_subject,
            issuer_subject=raw_subject,
            expires_at=expires_at,
            scopes=scopes_of(claims),
            is_local=False,
            jti=jti if isinstance(jti, str) else None,
            claims=claims,
            user_claims={k: claims[k] for k in trusted.copy_claims if k in claims and k not in TOKEN_CLAIMS},
        )

    def _check_times(self, claims: Mapping[str, Any], role: TokenRole) -> datetime:
        now = self._clock().timestamp()
        skew = self._skew.total_seconds()
        exp = _numeric(claims, "exp", role)
        if exp is None:
            raise invalid_request(f"{role}_token has no 'exp' claim")
        if exp <= now - skew:
            raise invalid_request(f"{role}_token has expired")
        nbf = _numeric(claims, "nbf", role)
        if nbf is not None and nbf > now + skew:
            raise invalid_request(f"{role}_token is not valid yet ('nbf' is in the future)")
        iat = _numeric(claims, "iat", role)
        if iat is not None and iat > now + skew:
            raise invalid_request(f"{role}_token was issued in the future ('iat')")
        try:
            return datetime.fromtimestamp(exp, UTC)
        except (OverflowError, ValueError, OSError):
            raise invalid_request(f"{role}_token: 'exp' is out of range") from None


def _numeric(claims: Mapping[str, Any], name: str, role: TokenRole) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_request(f"{role}_token: '{name}' must be a number")
    return float(value)


__all__ = [
    "MAX_TOKEN_BYTES",
    "CompactJWT",
    "SubjectTokenValidator",
    "TokenRules",
    "TrustedIssuerKeys",
    "ValidatedToken",
    "audiences_of",
    "peek",
    "scopes_of",
]
