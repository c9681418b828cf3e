"""Identity Assertion JWT Authorization Grants (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant): the
grant's claims, built by the identity provider and checked by the resource's authorization server, and the
policy decisions of both sides.

Pure functions over plain data: no keys, no store, no clock of their own. Signature verification, the longest
lifetime accepted and replay refusal are the callers' (``grants/id_jag_exchange.py`` issues; the JWT bearer grant
and its ``grants/id_jag_bearer.py`` profile accept). Every
refusal is the ``OAuthError`` the draft and RFC 7521 5.2 name: ``invalid_grant`` for an unacceptable grant,
``invalid_target`` / ``invalid_scope`` for a refused audience, resource or scope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from tokensmith import jose
from tokensmith.config.id_jag import ID_JAG_TYP, IdJagAcceptance, IdJagIssuance, IdJagTarget
from tokensmith.errors import invalid_grant, invalid_request, invalid_scope, invalid_target

# Claims about the user's authentication carried from the ID token into the grant (draft section 3).
AUTHENTICATION_CLAIMS = ("auth_time", "acr", "amr", "email")
MAX_JTI_LENGTH = 255
OPENID = "openid"


# --- the identity provider's side --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdJagDecision:
    """What the identity provider grants: the resource authorization server (the grant's ``aud``), the client's
    identifier there, the resources and the scope."""

    audience: str
    client_id: str
    resources: tuple[str, ...]
    scope: tuple[str, ...]


def decide_id_jag(
    policy: IdJagIssuance,
    audiences: Sequence[str],
    resources: Sequence[str],
    requested_scope: Sequence[str] | None,
    excess_scope: Literal["error", "reduce"],
) -> IdJagDecision:
    """The requested ``audience`` (exactly one, an authorization server the policy names), ``resource`` values
    (each listed for it) and scope (within what it allows; beyond it per ``excess-scope``)."""
    if not audiences:
        raise invalid_request(
            "audience is required: the issuer identifier of the authorization server the ID-JAG is for"
        )
    if len(audiences) > 1:
        raise invalid_target("an ID-JAG is for exactly one authorization server: send a single audience")
    audience = audiences[0]
    target = policy.audiences.get(audience)
    if target is None:
        raise invalid_target(f"this client may not obtain an ID-JAG for {audience}")
    refused = [r for r in resources if r not in target.resources]
    if refused:
        raise invalid_target(f"this client may not obtain an ID-JAG for resource(s) {', '.join(refused)} at {audience}")
    return IdJagDecision(
        audience=audience,
        client_id=target.client_id,
        resources=tuple(resources),
        scope=_issued_scope(target, audience, requested_scope, excess_scope),
    )


def _issued_scope(
    target: IdJagTarget, audience: str, requested: Sequence[str] | None, excess: Literal["error", "reduce"]
) -> tuple[str, ...]:
    allowed = target.allowed_scopes
    if requested is None:
        return target.default_scopes or allowed
    not_allowed = [s for s in requested if s not in allowed]
    if not_allowed and excess == "error":
        raise invalid_scope(f"requested scope not allowed in an ID-JAG for {audience}: {' '.join(not_allowed)}")
    granted = tuple(s for s in requested if s in allowed)
    if requested and not granted:
        raise invalid_scope(f"none of the requested scopes can be granted in an ID-JAG for {audience}")
    return granted


def id_jag_claims(
    *,
    issuer: str,
    subject: str,
    decision: IdJagDecision,
    jti: str,
    issued_at: datetime,
    expires_at: datetime,
    subject_claims: Mapping[str, Any],
) -> dict[str, Any]:
    """The claims of an ID-JAG (draft section 3), with the authentication claims of the ID token it replaces."""
    claims: dict[str, Any] = {k: subject_claims[k] for k in AUTHENTICATION_CLAIMS if k in subject_claims}
    claims.update(
        {
            "iss": issuer,
            "sub": subject,
            "aud": decision.audience,
            "client_id": decision.client_id,
            "jti": jti,
            "iat": int(issued_at.timestamp()),
            "exp": int(expires_at.timestamp()),
        }
    )
    if decision.resources:
        claims["resource"] = decision.resources[0] if len(decision.resources) == 1 else list(decision.resources)
    if decision.scope:
        claims["scope"] = " ".join(decision.scope)
    return claims


# --- the resource authorization server's side --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdJag:
    """An ID-JAG whose claims passed every check (its signature is checked by the caller)."""

    issuer: str
    subject: str
    client_id: str
    jti: str
    expires_at: datetime
    scope: tuple[str, ...] | None  # None: the grant carries no `scope`
    resources: tuple[str, ...]
    claims: Mapping[str, Any]


def has_id_jag_typ(header: Mapping[str, Any]) -> bool:
    """RFC 8725 3.11 explicit typing; RFC 7515 4.1.9: the "application/" prefix may be omitted, case-insensitive."""
    typ = header.get("typ")
    if not isinstance(typ, str):
        return False
    typ = typ.lower()
    return typ.removeprefix("application/") == ID_JAG_TYP


def check_id_jag(
    header: Mapping[str, Any], claims: Mapping[str, Any], *, issuer: str, client_id: str, now: float, leeway: float
) -> IdJag:
    """The draft's processing rules (section 4.4.1) for an ID-JAG presented by ``client_id`` to the authorization
    server ``issuer``: typed ``oauth-id-jag+jwt``, ``aud`` this server alone, ``client_id`` the presenting client,
    in its lifetime, with ``sub`` and ``jti``."""
    if not has_id_jag_typ(header):
        raise invalid_grant(f"assertion is not an ID-JAG: its 'typ' header must be {ID_JAG_TYP!r}")
    iss = claims.get("iss")
    if not isinstance(iss, str) or not iss:
        raise invalid_grant("ID-JAG has no 'iss' claim")
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) == 1:
        aud = aud[0]
    # The issuer is kept without a trailing slash (config); an identity provider may write it with one.
    if not isinstance(aud, str) or aud.rstrip("/") != issuer.rstrip("/"):
        raise invalid_grant(f"ID-JAG is not for this authorization server: its 'aud' must be {issuer!r} alone")
    if claims.get("client_id") != client_id:
        raise invalid_grant(
            f"ID-JAG was issued for client_id {claims.get('client_id')!r}, not for the authenticated client {client_id!r}"
        )
    expires_at = _lifetime(claims, now, leeway)
    sub, jti = claims.get("sub"), claims.get("jti")
    if not isinstance(sub, str) or not sub:
        raise invalid_grant("ID-JAG has no 'sub' claim")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise invalid_grant(f"ID-JAG needs a 'jti' (a unique string of at most {MAX_JTI_LENGTH} characters)")
    return IdJag(
        issuer=iss,
        subject=sub,
        client_id=client_id,
        jti=jti,
        expires_at=expires_at,
        scope=_scope_claim(claims),
        resources=_resource_claim(claims),
        claims=dict(claims),
    )


def _lifetime(claims: Mapping[str, Any], now: float, leeway: float) -> datetime:
    if "iat" not in claims:
        raise invalid_grant("ID-JAG has no 'iat' claim")
    try:
        exp = jose.check_times(claims, now=now, leeway=leeway)
    except jose.InvalidClaims as exc:
        raise invalid_grant(f"ID-JAG {exc}") from None
    try:
        return datetime.fromtimestamp(exp, UTC)
    except (OverflowError, ValueError, OSError):
        raise invalid_grant("ID-JAG: 'exp' is out of range") from None


def _scope_claim(claims: Mapping[str, Any]) -> tuple[str, ...] | None:
    raw = claims.get("scope")
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise invalid_grant("ID-JAG 'scope' must be a space-separated string (RFC 6749 3.3)")
    return tuple(dict.fromkeys(raw.split()))


def _resource_claim(claims: Mapping[str, Any]) -> tuple[str, ...]:
    raw = claims.get("resource")
    if raw is None:
        return ()
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise invalid_grant("ID-JAG 'resource' must be a URI or an array of URIs (RFC 8707 2)")
    return tuple(dict.fromkeys(values))


def accepted_scope(acceptance: IdJagAcceptance, registered: Sequence[str], grant: IdJag) -> tuple[str, ...]:
    """The access token's scope: the grant's scope within what the policy allows (the draft lets the resource
    authorization server grant a subset), or the policy's default scopes when the grant carries none."""
    allowed = acceptance.scopes or tuple(s for s in registered if s != OPENID)
    allowed = tuple(dict.fromkeys(allowed + acceptance.default_scopes))
    if grant.scope is None:
        return acceptance.default_scopes
    granted = tuple(s for s in grant.scope if s in allowed)
    if grant.scope and not granted:
        raise invalid_scope(f"none of the ID-JAG's scopes ({' '.join(grant.scope)}) may be granted to this client")
    return granted


def accepted_audience(acceptance: IdJagAcceptance, client_id: str, grant: IdJag) -> tuple[str, ...]:
    """The access token's ``aud``: the grant's resources the policy lists, or the default audience when the grant
    names none."""
    if not grant.resources:
        return acceptance.default_audience or (client_id,)
    granted = tuple(r for r in grant.resources if r in acceptance.resources)
    if not granted:
        raise invalid_target(
            f"none of the ID-JAG's resources ({', '.join(grant.resources)}) may be granted to this client"
        )
    return granted


__all__ = [
    "AUTHENTICATION_CLAIMS",
    "IdJag",
    "IdJagDecision",
    "accepted_audience",
    "accepted_scope",
    "check_id_jag",
    "decide_id_jag",
    "has_id_jag_typ",
    "id_jag_claims",
]
