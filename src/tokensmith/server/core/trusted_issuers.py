"""Trusted issuers: external JWT issuers whose tokens this server accepts, as subject and actor tokens of the token
exchange and as assertions of the JWT bearer grant, and their trust policies (workload identity federation).

One :class:`TrustedIssuers` per server holds one remote key set per issuer, shared by both grants. A trust policy
(``config/federation.py``) decides whether a verified token is accepted and what the issued token says; a refusal
names the policy and the claims that did not match, never the values a policy expects (a caller learns what to
fix in its own token, not the shape of the configuration). The model is in ``docs/workload-federation.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx

from tokensmith import jose
from tokensmith.config.exchange import TrustedIssuer
from tokensmith.config.federation import PLACEHOLDER, TrustPolicy, claim_value
from tokensmith.errors import OAuthError, invalid_scope
from tokensmith.server.clock import Clock

Refusal = Callable[[str], OAuthError]


@dataclass(frozen=True, slots=True)
class FederatedIdentity:
    """What the trust policy that accepted a token makes of it."""

    policy: str  # the policy's name
    subject: str  # the issued token's `sub`
    client: str | None  # the only client the policy serves (None: any)
    scopes: tuple[str, ...] | None  # the scope ceiling (None: none beyond the client's own rules)
    claims: Mapping[str, Any] = field(default_factory=dict)  # claims mapped into the issued token
    token_time_to_live: timedelta | None = None


class TrustedIssuers:
    """The configured trusted issuers and their key sets (keys fetched on first use, cached, refetched when an
    unknown ``kid`` shows up; see :class:`tokensmith.jose.RemoteKeySet`)."""

    def __init__(
        self, issuers: Sequence[TrustedIssuer], *, clock: Clock, http: httpx.AsyncClient | None = None
    ) -> None:
        # Given, or opened (and closed) here when a key set is fetched: a server with no trusted issuer has none.
        self._http = http
        self._own_http = False
        self._issuers = {t.issuer: t for t in issuers}
        self._keys = {
            t.issuer: jose.RemoteKeySet(
                http=self._fetcher(),
                algorithms=t.algorithms,
                jwks_uri=t.jwks_uri,
                issuer=t.issuer,
                max_age=t.key_cache_time_to_live.total_seconds(),
                cooldown=t.key_refetch_cool_down.total_seconds(),
                clock=lambda: clock().timestamp(),
            )
            for t in issuers
        }

    def _fetcher(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
            self._own_http = True
        return self._http

    def get(self, iss: object) -> TrustedIssuer | None:
        return self._issuers.get(iss) if isinstance(iss, str) else None

    async def verify(self, token: jose.CompactJWS, issuer: TrustedIssuer) -> None:
        """Verify ``token``'s signature with ``issuer``'s keys under its algorithm allow-list. Raises
        :class:`jose.KeysUnavailable`, :class:`jose.UnknownKey` or another :class:`jose.InvalidJWT`."""
        jose.verify(token, await self._keys[issuer.issuer].keys_for(token))

    async def aclose(self) -> None:
        for keys in self._keys.values():
            await keys.aclose()
        if self._own_http and self._http is not None:
            await self._http.aclose()


def _matches(value: object, patterns: Iterable[Any]) -> bool:
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, int):
        value = str(value)
    if isinstance(value, str):
        return any(pattern.fullmatch(value) for pattern in patterns)
    if isinstance(value, list):
        return any(isinstance(item, str) and _matches(item, patterns) for item in value)
    return False


def render(template: str, claims: Mapping[str, Any], policy: str, refuse: Refusal) -> str:
    """``template`` with each ``{claim}`` replaced by the token's claim (a string or an integer)."""

    def value(match: Any) -> str:
        name = match.group(1)
        found = claim_value(dict(claims), name)
        if isinstance(found, int) and not isinstance(found, bool):
            found = str(found)
        if not isinstance(found, str) or not found:
            raise refuse(f"trust policy {policy!r} maps claim {name!r}, which the token lacks (or is not a string)")
        return found

    return PLACEHOLDER.sub(value, template)


def apply_trust_policies(
    issuer: TrustedIssuer, claims: Mapping[str, Any], *, client_id: str | None, refuse: Refusal
) -> FederatedIdentity | None:
    """The identity the first matching trust policy of ``issuer`` gives the token (None when the issuer has no
    trust policies); when none matches, ``refuse`` says for each policy which claims did not match."""
    if not issuer.trust_policies:
        return None
    misses: list[str] = []
    for policy in issuer.trust_policies:
        if policy.client is not None and policy.client != client_id:
            misses.append(f"{policy.name!r}: not for this client")
            continue
        unmatched = [
            name for name, patterns in policy.matchers.items() if not _matches(claim_value(claims, name), patterns)
        ]
        if unmatched:
            misses.append(f"{policy.name!r}: claim {', '.join(repr(n) for n in unmatched)} does not match")
            continue
        return _identity(policy, issuer, claims, refuse)
    raise refuse(f"no trust policy of {issuer.issuer} accepts this token ({'; '.join(misses)})")


def _identity(
    policy: TrustPolicy, issuer: TrustedIssuer, claims: Mapping[str, Any], refuse: Refusal
) -> FederatedIdentity:
    if policy.subject is not None:
        subject = render(policy.subject, claims, policy.name, refuse)
    else:
        subject = issuer.subject_prefix + render(f"{{{issuer.subject_claim}}}", claims, policy.name, refuse)
    return FederatedIdentity(
        policy=policy.name,
        subject=subject,
        client=policy.client,
        scopes=policy.scopes,
        claims={name: render(template, claims, policy.name, refuse) for name, template in policy.claims.items()},
        token_time_to_live=policy.token_time_to_live,
    )


def within_ceiling(
    identity: FederatedIdentity | None, granted: Sequence[str], requested: Sequence[str] | None
) -> tuple[str, ...]:
    """``granted`` cut to the trust policy's scope ceiling; a scope the request named beyond it is
    ``invalid_scope``."""
    if identity is None or identity.scopes is None:
        return tuple(granted)
    ceiling = identity.scopes
    beyond = [s for s in requested or () if s not in ceiling]
    if beyond:
        raise invalid_scope(f"trust policy {identity.policy!r} does not allow scope {' '.join(beyond)}")
    return tuple(s for s in granted if s in ceiling)


__all__ = [
    "FederatedIdentity",
    "TrustedIssuers",
    "apply_trust_policies",
    "render",
    "within_ceiling",
]
