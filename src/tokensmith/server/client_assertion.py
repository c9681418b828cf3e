"""``private_key_jwt`` client authentication (RFC 7523 2.2 and 3, OpenID Connect Core 9).

The client proves its identity with a JWT it signed with its private key: ``iss`` and ``sub`` are its client id,
``aud`` names this server (the token endpoint URL or the issuer), ``exp`` is near, and ``jti`` is unique. The
signature must verify with one of the client's registered public keys under an allow-listed asymmetric algorithm
whose key type matches (never ``none`` or HS*: a public key is not an HMAC secret). Each ``jti`` is accepted once:
the store records it until the assertion expires, atomically, so a replay fails on every replica.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError

from tokensmith.config.server import CLIENT_ASSERTION_KEY_TYPES, ClientRegistration, ServerConfig
from tokensmith.errors import OAuthError, invalid_client
from tokensmith.keys import Clock
from tokensmith.server.client_keys import ClientKeys
from tokensmith.server.context import ServerContext
from tokensmith.server.metadata import register_metadata
from tokensmith.store.base import Store
from tokensmith.store.records import ClientAssertionRecord

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PRIVATE_KEY_JWT = "private_key_jwt"
# A client assertion is small (a header, six claims, a signature); anything bigger is not one.
MAX_ASSERTION_BYTES = 8 * 1024
# An assertion is made for one request: one whose `exp` lies further ahead is refused (a long-lived assertion is
# a bearer credential, and its jti would have to be kept that long).
MAX_ASSERTION_LIFETIME = timedelta(minutes=5)
MAX_JTI_LENGTH = 255


def assertion_failed(description: str) -> OAuthError:
    # RFC 7521 4.2.1: an invalid or expired assertion is invalid_client (401, as for a wrong secret).
    return invalid_client(description)


def _b64_json(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode((segment + "=" * (-len(segment) % 4)).encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError, RecursionError):
        raise assertion_failed("client_assertion is not a JWT") from None
    if not isinstance(value, dict):
        raise assertion_failed("client_assertion is not a JWT")
    return value


def peek_assertion(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, unverified: only to find the client and its key."""
    if len(assertion) > MAX_ASSERTION_BYTES:
        raise assertion_failed(f"client_assertion is larger than {MAX_ASSERTION_BYTES} bytes")
    parts = assertion.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise assertion_failed("client_assertion is not a signed JWT (three base64url parts)")
    return _b64_json(parts[0]), _b64_json(parts[1])


def assertion_subject(assertion: str) -> str:
    """The client id the assertion speaks for (its ``sub``, RFC 7523 3), before any verification."""
    _, claims = peek_assertion(assertion)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise assertion_failed("client_assertion has no 'sub' claim naming the client")
    return sub


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise assertion_failed(f"client_assertion: '{name}' must be a number")
    return float(value)


class ClientAssertionVerifier:
    """Verifies client assertions; one per server (it holds the clients' key caches and an HTTP client)."""

    def __init__(
        self,
        *,
        issuer: str,
        store: Store,
        clock: Clock,
        clock_skew: timedelta,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._issuer = issuer
        # RFC 7523 3: `aud` identifies the authorization server; the token endpoint URL is what OIDC Core 9 names.
        self._audiences = frozenset({issuer, f"{issuer}/oauth2/token"})
        self._store = store
        self._clock = clock
        self._skew = clock_skew
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        self._keys: dict[str, ClientKeys] = {}

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def verify(self, registration: ClientRegistration, assertion: str) -> None:
        """Accept the assertion for this client, or raise ``invalid_client`` saying why."""
        header, _ = peek_assertion(assertion)
        alg, kid = header.get("alg"), header.get("kid")
        allowed = registration.token_endpoint_authentication_signing_algorithms
        if not isinstance(alg, str) or alg not in CLIENT_ASSERTION_KEY_TYPES or alg not in allowed:
            raise assertion_failed(f"client_assertion algorithm {alg!r} is not accepted; use one of {list(allowed)}")
        if kid is not None and not isinstance(kid, str):
            raise assertion_failed("client_assertion: 'kid' must be a string")
        claims = await self._verified_claims(registration, assertion, alg, kid)
        client_id = registration.client_id
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise assertion_failed("client_assertion 'iss' and 'sub' must both be the client_id")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not self._audiences & {a for a in audiences if isinstance(a, str)}:
            raise assertion_failed(f"client_assertion 'aud' must contain {self._issuer}/oauth2/token or {self._issuer}")
        expires_at = self._check_times(claims)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
            raise assertion_failed("client_assertion needs a 'jti' (a unique string of at most 255 characters)")
        if not await self._store.use_client_assertion(ClientAssertionRecord(client_id, jti, expires_at)):
            raise assertion_failed("client_assertion was already used (its jti was seen before)")

    async def _verified_claims(
        self, registration: ClientRegistration, assertion: str, alg: str, kid: str | None
    ) -> dict[str, Any]:
        keys = self._keys.get(registration.client_id)
        if keys is None or keys.registration is not registration:  # a new configuration brings new keys
            keys = self._keys[registration.client_id] = ClientKeys(registration, self._http, self._clock)
        candidates = await keys.candidates(kid, alg)
        if not candidates:
            raise assertion_failed(f"no registered key of this client fits the client_assertion (kid {kid!r}, {alg})")
        for key in candidates:
            try:
                return dict(jwt.decode(assertion, key, algorithms=[alg]).claims)
            except (JoseError, ValueError, TypeError):
                continue
        raise assertion_failed("client_assertion signature does not verify with the client's registered keys")

    def _check_times(self, claims: dict[str, Any]) -> datetime:
        now = self._clock().timestamp()
        skew = self._skew.total_seconds()
        exp = _number(claims, "exp")
        if exp is None:
            raise assertion_failed("client_assertion has no 'exp' claim")
        if exp <= now - skew:
            raise assertion_failed("client_assertion has expired")
        if exp > now + (MAX_ASSERTION_LIFETIME.total_seconds() + skew):
            raise assertion_failed(
                f"client_assertion expires too far in the future (at most {int(MAX_ASSERTION_LIFETIME.total_seconds())} s)"
            )
        nbf = _number(claims, "nbf")
        if nbf is not None and nbf > now + skew:
            raise assertion_failed("client_assertion is not valid yet ('nbf' is in the future)")
        iat = _number(claims, "iat")
        if iat is not None and iat > now + skew:
            raise assertion_failed("client_assertion was issued in the future ('iat')")
        # Keep the jti at least until the assertion could no longer be accepted (exp plus the skew).
        return datetime.fromtimestamp(exp + skew, UTC)


def client_assertion_verifier(ctx: ServerContext) -> ClientAssertionVerifier:
    """This server's verifier, created on first use and kept in the context."""
    if ctx.client_assertions is None:
        ctx.client_assertions = ClientAssertionVerifier(
            issuer=ctx.issuer, store=ctx.store, clock=ctx.clock, clock_skew=ctx.config.tokens.clock_skew
        )
    return ctx.client_assertions


async def close_client_assertion_verifier(ctx: ServerContext) -> None:
    if ctx.client_assertions is not None:
        await ctx.client_assertions.aclose()
        ctx.client_assertions = None


@register_metadata
def client_assertion_metadata(config: ServerConfig) -> dict[str, Any]:
    """RFC 8414 2: the signing algorithms accepted for private_key_jwt at each endpoint that authenticates clients."""
    algorithms = sorted(
        {
            alg
            for client in config.clients.values()
            if PRIVATE_KEY_JWT in client.registration.client_authentication_methods
            for alg in client.registration.token_endpoint_authentication_signing_algorithms
        }
    )
    if not algorithms:
        return {}
    return {
        "token_endpoint_auth_signing_alg_values_supported": algorithms,
        "introspection_endpoint_auth_signing_alg_values_supported": algorithms,
        "revocation_endpoint_auth_signing_alg_values_supported": algorithms,
    }
