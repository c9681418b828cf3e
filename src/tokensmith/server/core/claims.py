"""Which of a user's claims are released, and where (OpenID Connect Core 5.4 and 5.5).

A client gets claims two ways: by scope (``profile``, ``email``, ``address``, ``phone``: at the userinfo endpoint)
and by name, with the ``claims`` request parameter (5.5: for userinfo, for the ID token, or both). Both release
only what the user's configuration holds; a requested claim the user lacks is left out (5.5.1: essential claims
are a hint to the server, not a reason to refuse). Custom (non-standard) claims of a user are always released at
userinfo.

Every login here is a password login: its Authentication Context Class Reference is :data:`PASSWORD_ACR` and its
methods (RFC 8176) :data:`PASSWORD_AMR`, in the ID token of every user grant.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from tokensmith.config.server import ServerConfig, UserConfig
from tokensmith.errors import OAuthError, invalid_request

# OpenID Connect Core 5.4: the claims each standard scope releases.
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": (
        "name",
        "family_name",
        "given_name",
        "middle_name",
        "nickname",
        "preferred_username",
        "profile",
        "picture",
        "website",
        "gender",
        "birthdate",
        "zoneinfo",
        "locale",
        "updated_at",
    ),
    "email": ("email", "email_verified"),
    "address": ("address",),
    "phone": ("phone_number", "phone_number_verified"),
}
STANDARD_USER_CLAIMS = frozenset(claim for claims in SCOPE_CLAIMS.values() for claim in claims)
# What every ID token of a user grant carries (Core 2, 3.1.3.6).
ID_TOKEN_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "acr", "amr")

# The one way to sign in here: a password checked by the login page.
PASSWORD_ACR = "urn:tokensmith:acr:pwd"
PASSWORD_AMR = ("pwd",)

# The access-token claim that carries the claim names a claims request asked for at userinfo (a collision-resistant
# name, RFC 7519 4.2): userinfo answers from the token alone.
USERINFO_CLAIMS_CLAIM = "urn:tokensmith:userinfo_claims"

# The two members of a claims request (Core 5.5) and the keys of one claim's request (5.5.1).
CLAIMS_TARGETS = ("userinfo", "id_token")
_CLAIM_REQUEST_KEYS = frozenset({"essential", "value", "values"})

ClaimsRequest = dict[str, dict[str, dict[str, Any] | None]]


def parse_claims_request(raw: str | None) -> ClaimsRequest:
    """The ``claims`` authorization parameter, checked: a JSON object whose ``userinfo`` and ``id_token`` members
    map claim names to ``null`` or ``{"essential": bool, "value": ..., "values": [...]}``. Other members (such
    as ``verified_claims``, which this server does not support) are dropped."""
    if raw is None:
        return {}
    try:
        document = json.loads(raw)
    except ValueError:
        raise invalid_request("the claims parameter is not valid JSON") from None
    if not isinstance(document, dict):
        raise invalid_request("the claims parameter must be a JSON object")
    parsed: ClaimsRequest = {}
    for target in CLAIMS_TARGETS:
        members = document.get(target)
        if members is None:
            continue
        if not isinstance(members, dict):
            raise invalid_request(f"claims.{target} must be a JSON object")
        requested: dict[str, dict[str, Any] | None] = {}
        for name, spec in members.items():
            if spec is not None and not isinstance(spec, dict):
                raise invalid_request(f"claims.{target}.{name} must be null or a JSON object")
            if spec is not None:
                if "essential" in spec and not isinstance(spec["essential"], bool):
                    raise invalid_request(f"claims.{target}.{name}.essential must be true or false")
                if "values" in spec and not isinstance(spec["values"], list):
                    raise invalid_request(f"claims.{target}.{name}.values must be a JSON array")
                spec = {key: value for key, value in spec.items() if key in _CLAIM_REQUEST_KEYS}
            requested[name] = spec
        parsed[target] = requested
    return parsed


def check_acr_request(claims_request: ClaimsRequest) -> None:
    """Core 5.5.1.1: an essential ``acr`` with values this server cannot meet fails the authentication."""
    for target in CLAIMS_TARGETS:
        spec = claims_request.get(target, {}).get("acr")
        if not spec or not spec.get("essential"):
            continue
        wanted = list(spec.get("values") or ()) + ([spec["value"]] if "value" in spec else [])
        if wanted and PASSWORD_ACR not in wanted:
            raise OAuthError(
                "access_denied",
                f"the essential acr {' '.join(map(str, wanted))} cannot be met; this server signs users in with "
                f"{PASSWORD_ACR}",
            )


def requested_claim_names(claims_request: Mapping[str, Any], target: str) -> tuple[str, ...]:
    """The claim names a (stored) claims request asks for in ``target`` (``userinfo`` or ``id_token``)."""
    members = claims_request.get(target)
    return tuple(members) if isinstance(members, dict) else ()


def _user_claims(user: UserConfig, names: Iterable[str]) -> dict[str, Any]:
    claims: dict[str, Any] = {}
    for name in names:
        if name in user.claims:
            claims[name] = user.claims[name]
        elif name == "preferred_username":
            claims[name] = user.username
    return claims


def released_claims(user: UserConfig, scope: Iterable[str], requested: Iterable[str] = ()) -> dict[str, Any]:
    """The userinfo answer: standard claims for the granted scopes and those requested by name, plus the user's
    custom (non-standard) claims."""
    scope = set(scope)
    allowed = {claim for name in scope for claim in SCOPE_CLAIMS.get(name, ())} | set(requested)
    claims = {k: v for k, v in user.claims.items() if k not in STANDARD_USER_CLAIMS}
    claims.update(_user_claims(user, sorted(allowed)))
    claims["sub"] = user.username
    return claims


def id_token_user_claims(user: UserConfig | None, requested: Iterable[str]) -> dict[str, Any]:
    """The user's standard claims a claims request asks for in the ID token (Core 5.5)."""
    if user is None:
        return {}
    return _user_claims(user, (name for name in requested if name in STANDARD_USER_CLAIMS))


def supported_claims(config: ServerConfig) -> list[str]:
    """Discovery's ``claims_supported``: the ID token's claims and every user claim the configured users hold
    (``preferred_username`` always: the username stands in)."""
    user_claims = {"preferred_username"} | {name for user in config.users for name in user.claims}
    return list(ID_TOKEN_CLAIMS) + sorted(user_claims - set(ID_TOKEN_CLAIMS))
