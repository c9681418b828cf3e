"""Who a validated token speaks for: subject, client, scopes, the delegation (``act``) chain, raw claims."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tokensmith.resource.errors import InsufficientScope


@dataclass(frozen=True, slots=True)
class Actor:
    """One link of an RFC 8693 ``act`` chain."""

    subject: str | None
    issuer: str | None = None
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller. ``act`` lists the current actor first, then whoever it acted for, and so on."""

    subject: str | None
    client_id: str | None
    scopes: frozenset[str]
    audience: tuple[str, ...]
    issuer: str | None
    expires_at: float | None
    claims: Mapping[str, Any]
    token: str = field(repr=False)
    act: tuple[Actor, ...] = ()

    def has_scopes(self, *required: str) -> bool:
        return self.scopes.issuperset(required)

    def require_scopes(self, *required: str) -> None:
        """Raise :class:`InsufficientScope` naming every required scope unless all are granted."""
        if not self.scopes.issuperset(required):
            raise InsufficientScope(required)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], token: str) -> Principal:
        aud = claims.get("aud")
        exp = claims.get("exp")
        subject = claims.get("sub")
        issuer = claims.get("iss")
        return cls(
            subject=subject if isinstance(subject, str) else None,
            client_id=client_id_of(claims),
            scopes=scopes_of(claims),
            audience=(aud,)
            if isinstance(aud, str)
            else tuple(a for a in aud if isinstance(a, str))
            if isinstance(aud, list)
            else (),
            issuer=issuer if isinstance(issuer, str) else None,
            expires_at=float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None,
            claims=claims,
            token=token,
            act=actor_chain(claims.get("act")),
        )


def client_id_of(claims: Mapping[str, Any]) -> str | None:
    # RFC 9068 names it client_id; OpenID ID-token style servers use azp; some (Okta) use cid.
    for name in ("client_id", "azp", "cid"):
        value = claims.get(name)
        if isinstance(value, str):
            return value
    return None


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    """``scope`` (RFC 8693/9068, space-delimited) or ``scp``; a string or a JSON array (Spring writes arrays)."""
    value = claims.get("scope", claims.get("scp"))
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(_strings(value))
    return frozenset()


def _strings(values: Iterable[Any]) -> Iterable[str]:
    return (item for item in values if isinstance(item, str))


def actor_chain(act: Any, limit: int = 16) -> tuple[Actor, ...]:
    """RFC 8693 4.1: ``act`` nests, the outermost is the current actor. Depth is capped against hostile tokens."""
    chain: list[Actor] = []
    while isinstance(act, Mapping) and len(chain) < limit:
        sub, iss, cid = act.get("sub"), act.get("iss"), act.get("client_id")
        chain.append(
            Actor(
                subject=sub if isinstance(sub, str) else None,
                issuer=iss if isinstance(iss, str) else None,
                client_id=cid if isinstance(cid, str) else None,
            )
        )
        act = act.get("act")
    return tuple(chain)
