"""Building and signing tokens: JWT access tokens (RFC 9068) and OpenID Connect ID tokens.

Each access token is recorded (one insert) so that it can be revoked, introspected and followed through the
exchange lineage.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tokensmith.config.server import ServerConfig
from tokensmith.server.clock import Clock
from tokensmith.server.keys import KeyManager
from tokensmith.store.base import Store
from tokensmith.store.records import IssuedTokenRecord


def new_jti() -> str:
    """A token id: 32 hex digits, the milliseconds since the epoch (48 bits) then 80 random bits.

    Time first, as in UUIDv7 (RFC 9562 5.7): every issued token is a row keyed by its jti, and random keys land on a
    random leaf of the primary-key B-tree, so a group commit of N tokens wrote N index pages; ids that grow with
    time are appended to the same few pages. The time part says nothing the token's `iat` does not; the random
    part keeps ids unguessable and unique (a collision needs 2^40 tokens in one millisecond)."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    jti: str
    claims: dict[str, Any]
    issued_at: datetime
    expires_at: datetime

    @property
    def expires_in(self) -> int:
        return max(int((self.expires_at - self.issued_at).total_seconds()), 0)


def at_hash(access_token: str) -> str:
    """OpenID Connect Core 3.1.3.6: left half of the SHA-256 of the token, base64url (for ES256 and RS256)."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


class TokenIssuer:
    def __init__(self, config: ServerConfig, keys: KeyManager, store: Store, clock: Clock) -> None:
        self._config = config
        self._keys = keys
        self._store = store
        self._clock = clock

    def access_token_typ(self, audience: Sequence[str]) -> str:
        """The JWT `typ` header for tokens aimed at ``audience`` (RFC 9068 `at+jwt` unless overridden)."""
        overrides = self._config.tokens.access_token_typ_by_audience
        for aud in audience:
            if aud in overrides:
                return overrides[aud]
        return self._config.tokens.access_token_typ

    async def issue_access_token(
        self,
        *,
        subject: str,
        client_id: str,
        audience: Sequence[str],
        scope: Sequence[str],
        ttl: timedelta,
        extra_claims: Mapping[str, Any] | None = None,
        grant_id: str | None = None,
        parent_jti: str | None = None,
        actor_jti: str | None = None,
        scope_format: str | None = None,
        not_after: datetime | None = None,
        dpop_jkt: str | None = None,
    ) -> IssuedToken:
        """Sign an RFC 9068 access token and record it. ``not_after`` caps the expiry (exchanged tokens);
        ``dpop_jkt`` binds it to a DPoP key (RFC 9449 6.1: ``cnf.jkt``)."""
        now = self._clock().replace(microsecond=0)
        expires_at = now + ttl
        if not_after is not None and not_after < expires_at:
            expires_at = not_after
        jti = new_jti()
        claims: dict[str, Any] = dict(extra_claims or {})
        claims.update(
            {
                "iss": self._config.issuer,
                "sub": subject,
                "aud": audience[0] if len(audience) == 1 else list(audience),
                "client_id": client_id,
                "iat": int(now.timestamp()),
                "nbf": int(now.timestamp()),
                "exp": int(expires_at.timestamp()),
                "jti": jti,
            }
        )
        if dpop_jkt is not None:
            claims["cnf"] = {"jkt": dpop_jkt}
        if scope:
            fmt = scope_format or self._config.tokens.scope_claim_format
            claims["scope"] = list(scope) if fmt == "array" else " ".join(scope)
        token = self._keys.sign(
            claims, alg=self._config.keys.access_token_algorithm, typ=self.access_token_typ(audience)
        )
        issued = IssuedToken(token=token, jti=jti, claims=claims, issued_at=now, expires_at=expires_at)
        await self._record(issued, "access_token", client_id, subject, grant_id, parent_jti, actor_jti)
        return issued

    async def issue_id_token(
        self,
        *,
        subject: str,
        client_id: str,
        ttl: timedelta,
        nonce: str | None = None,
        auth_time: datetime | None = None,
        access_token: str | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        algorithm: str | None = None,
        grant_id: str | None = None,
        record: bool = True,
        parent_jti: str | None = None,
        actor_jti: str | None = None,
    ) -> IssuedToken:
        now = self._clock().replace(microsecond=0)
        expires_at = now + ttl
        jti = new_jti()
        claims: dict[str, Any] = dict(extra_claims or {})
        claims.update(
            {
                "iss": self._config.issuer,
                "sub": subject,
                "aud": client_id,
                "azp": client_id,
                "iat": int(now.timestamp()),
                "exp": int(expires_at.timestamp()),
                "jti": jti,
            }
        )
        if nonce is not None:
            claims["nonce"] = nonce
        if auth_time is not None:
            claims["auth_time"] = int(auth_time.timestamp())
        if access_token is not None:
            claims["at_hash"] = at_hash(access_token)
        token = self._keys.sign(claims, alg=algorithm or self._config.keys.id_token_algorithm, typ="JWT")
        issued = IssuedToken(token=token, jti=jti, claims=claims, issued_at=now, expires_at=expires_at)
        if record:
            await self._record(issued, "id_token", client_id, subject, grant_id, parent_jti, actor_jti)
        return issued

    async def _record(
        self,
        issued: IssuedToken,
        kind: str,
        client_id: str,
        subject: str,
        grant_id: str | None,
        parent_jti: str | None,
        actor_jti: str | None,
    ) -> None:
        """The one write per issued token: what revocation, introspection and the exchange lineage read."""
        await self._store.record_issued_token(
            IssuedTokenRecord(
                jti=issued.jti,
                kind=kind,
                client_id=client_id,
                subject=subject,
                issued_at=issued.issued_at,
                expires_at=issued.expires_at,
                grant_id=grant_id,
                parent_jti=parent_jti,
                actor_jti=actor_jti,
            )
        )
