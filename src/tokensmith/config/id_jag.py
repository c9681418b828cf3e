"""Identity Assertion JWT Authorization Grants (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant): the two
policies, one per role of this server.

* As the user's identity provider, ``clients.<name>.token-exchange.id-jag`` (:class:`IdJagIssuance`) says for
  which other authorization servers the client may exchange a user's ID token for an ID-JAG, under which
  ``client_id`` the client is known there, and which scopes and resources the grant may carry.
* As a resource's authorization server, ``clients.<name>.id-jag`` (:class:`IdJagAcceptance`) says whose ID-JAGs
  the client may present with the JWT bearer grant (RFC 7523 2.1) and what access token it gets for them.

The model is explained with a worked example in ``docs/exchange-policy.md``.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field, field_validator

from tokensmith.config.types import KEBAB, Duration

# The token type a client asks the identity provider for (draft section 4.3), and the JWT `typ` of the grant.
ID_JAG_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
ID_JAG_TYP = "oauth-id-jag+jwt"
# Advertised by a resource authorization server that accepts ID-JAGs (draft section 8.2).
ID_JAG_PROFILE = "urn:ietf:params:oauth:grant-profile:id-jag"


def _absolute_uri(value: str) -> str:
    if not value.startswith(("http://", "https://")) or "#" in value:
        raise ValueError(f"{value!r} must be an http(s) URL without fragment")
    return value


class IdJagTarget(BaseModel):
    """What the client may obtain in an ID-JAG for one resource authorization server."""

    model_config = KEBAB

    # The client's identifier at that authorization server: the ID-JAG's `client_id` claim (draft section 6).
    client_id: str = Field(min_length=1, max_length=200)
    # Scopes the ID-JAG may carry (with `default-scopes`), and those it carries when the request names none
    # (empty: every allowed scope).
    scopes: tuple[str, ...] = ()
    default_scopes: tuple[str, ...] = ()
    # Resource identifiers (RFC 8707) the client may name with `resource`; none listed, none accepted.
    resources: tuple[str, ...] = ()

    @field_validator("resources")
    @classmethod
    def _resource_uris(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_absolute_uri(v) for v in value)

    @property
    def allowed_scopes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.scopes + self.default_scopes))


class IdJagIssuance(BaseModel):
    """``clients.<name>.token-exchange.id-jag``: the ID-JAGs this client may obtain here, keyed by the issuer
    identifier (RFC 8414) of each resource authorization server, which becomes the grant's `aud`."""

    model_config = KEBAB

    audiences: dict[str, IdJagTarget] = Field(min_length=1)
    # Lifetime of an issued ID-JAG; never longer than the ID token it was exchanged for.
    time_to_live: Duration = timedelta(minutes=5)

    @field_validator("audiences")
    @classmethod
    def _issuer_identifiers(cls, value: dict[str, IdJagTarget]) -> dict[str, IdJagTarget]:
        for issuer in value:
            _absolute_uri(issuer)
            if "?" in issuer:
                raise ValueError(f"{issuer!r} must be an issuer identifier, without query (RFC 8414 2)")
        return value


class IdJagAcceptance(BaseModel):
    """``clients.<name>.id-jag``: the ID-JAGs this client may present here with the JWT bearer grant, from the
    identity providers under its ``jwt-bearer.issuers``."""

    model_config = KEBAB

    # Scopes an access token may get from an ID-JAG's `scope` (empty: the client's registered scopes but `openid`),
    # and those it gets when the ID-JAG carries none.
    scopes: tuple[str, ...] = ()
    default_scopes: tuple[str, ...] = ()
    # Resource identifiers an ID-JAG's `resource` may name; they become the access token's `aud`.
    resources: tuple[str, ...] = ()
    # The access token's `aud` when the ID-JAG names no resource; None: the client's own client-id.
    default_audience: tuple[str, ...] | None = None
    # Lifetime of the access token; None: the client's access-token-time-to-live.
    token_time_to_live: Duration | None = None

    @field_validator("resources")
    @classmethod
    def _resource_uris(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_absolute_uri(v) for v in value)


__all__ = [
    "ID_JAG_PROFILE",
    "ID_JAG_TOKEN_TYPE",
    "ID_JAG_TYP",
    "IdJagAcceptance",
    "IdJagIssuance",
    "IdJagTarget",
]
