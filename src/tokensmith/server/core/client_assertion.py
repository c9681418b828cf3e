"""``private_key_jwt`` client authentication (RFC 7523 2.2 and 3, OpenID Connect Core 9).

The client proves its identity with a JWT it signed with its private key: ``iss`` and ``sub`` are its client id,
``aud`` names this server (the token endpoint URL or the issuer), ``exp`` is near, and ``jti`` is unique. The
signature must verify with one of the client's registered public keys under an allow-listed asymmetric algorithm
whose key type matches (never ``none`` or HS*: a public key is not an HMAC secret). Each ``jti`` is accepted once:
the store records it until the assertion expires, atomically, so a replay fails on every replica.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tokensmith import jose
from tokensmith.config.server import CLIENT_ASSERTION_KEY_TYPES, ClientRegistration, ServerConfig
from tokensmith.errors import OAuthError, invalid_client
from tokensmith.server.clock import Clock
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


def parse_assertion(assertion: str) -> jose.CompactJWS:
    """The assertion parsed, unverified: its claims find the client, its header the key."""
    if len(assertion) > MAX_ASSERTION_BYTES:
        raise assertion_failed(f"client_assertion is larger than {MAX_ASSERTION_BYTES} bytes")
    try:
        return jose.parse(assertion)
    except jose.MalformedJWT as exc:
        raise assertion_failed(f"client_assertion {exc}") from None
    except jose.InvalidJWT as exc:
        raise assertion_failed(f"client_assertion is invalid: {exc}") from None


def assertion_subject(assertion: str) -> str:
    """The client id the assertion speaks for (its ``sub``, RFC 7523 3), before any verification."""
    sub = parse_assertion(assertion).claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise assertion_failed("client_assertion has no 'sub' claim naming the client")
    return sub


@dataclass(frozen=True, slots=True)
class ClientKeys:
    """The verification keys of one client: its inline ``jwks`` and the key set at its ``jwks-uri``."""

    registration: ClientRegistration
    inline: jose.KeySet
    remote: jose.RemoteKeySet | None

    async def keys_for(self, token: jose.CompactJWS) -> list[jose.Key]:
        found = self.inline.find(token.kid, token.alg)
        if found or self.remote is None:
            return found
        try:
            return await self.remote.keys_for(token)
        except (jose.InvalidJWT, jose.KeysUnavailable):
            return []


class ClientAssertionVerifier:
    """Verifies client assertions; one per server (it holds the clients' key sets and an HTTP client)."""

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
        # Given, or opened (and closed) here for the first client whose keys are at a jwks_uri.
        self._http = http
        self._own_http = False
        self._keys: dict[str, ClientKeys] = {}

    def metadata(self, config: ServerConfig) -> dict[str, Any]:
        """What private_key_jwt adds to discovery: :func:`client_assertion_metadata`."""
        return client_assertion_metadata(config)

    async def aclose(self) -> None:
        for keys in self._keys.values():
            if keys.remote is not None:
                await keys.remote.aclose()
        if self._own_http and self._http is not None:
            await self._http.aclose()

    def _fetcher(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
            self._own_http = True
        return self._http

    async def verify(self, registration: ClientRegistration, assertion: str) -> None:
        """Accept the assertion for this client, or raise ``invalid_client`` saying why."""
        token = parse_assertion(assertion)
        alg, kid = token.alg, token.kid
        allowed = registration.token_endpoint_authentication_signing_algorithms
        if alg not in CLIENT_ASSERTION_KEY_TYPES or alg not in allowed:
            raise assertion_failed(f"client_assertion algorithm {alg!r} is not accepted; use one of {list(allowed)}")
        keys = await self._client_keys(registration).keys_for(token)
        if not keys:
            raise assertion_failed(f"no registered key of this client fits the client_assertion (kid {kid!r}, {alg})")
        try:
            jose.verify(token, keys)
        except jose.BadSignature:
            raise assertion_failed(
                "client_assertion signature does not verify with the client's registered keys"
            ) from None
        claims = token.claims
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

    async def keys_for(self, registration: ClientRegistration, token: jose.CompactJWS) -> list[jose.Key]:
        """The client's registered keys that fit ``token`` (by ``kid`` and ``alg``): for other JWTs the client
        signs, such as a self-signed subject token of a Transaction Token request."""
        return await self._client_keys(registration).keys_for(token)

    def _client_keys(self, registration: ClientRegistration) -> ClientKeys:
        keys = self._keys.get(registration.client_id)
        if keys is not None and keys.registration is registration:
            return keys
        # A new configuration brings new keys.
        algorithms = registration.token_endpoint_authentication_signing_algorithms
        source = f"client {registration.client_id}"
        remote = None
        if registration.jwks_uri is not None:
            remote = jose.RemoteKeySet(
                http=self._fetcher(),
                algorithms=algorithms,
                jwks_uri=registration.jwks_uri,
                max_age=registration.jwks_cache_time_to_live.total_seconds(),
                cooldown=registration.jwks_refetch_cool_down.total_seconds(),
                clock=lambda: self._clock().timestamp(),
            )
        inline = jose.KeySet.from_jwks(registration.jwks or {"keys": []}, algorithms, source=source)
        keys = self._keys[registration.client_id] = ClientKeys(registration, inline, remote)
        return keys

    def _check_times(self, claims: dict[str, Any]) -> datetime:
        now = self._clock().timestamp()
        skew = self._skew.total_seconds()
        try:
            exp = jose.check_times(claims, now=now, leeway=skew)
        except jose.InvalidClaims as exc:
            raise assertion_failed(f"client_assertion {exc}") from None
        if exp > now + (MAX_ASSERTION_LIFETIME.total_seconds() + skew):
            raise assertion_failed(
                f"client_assertion expires too far in the future (at most {int(MAX_ASSERTION_LIFETIME.total_seconds())} s)"
            )
        # Keep the jti at least until the assertion could no longer be accepted (exp plus the skew).
        return datetime.fromtimestamp(exp + skew, UTC)


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
