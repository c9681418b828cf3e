"""Token exchange policy (RFC 8693): who may exchange what, for which audience and which scopes.

The policy, never the requester alone, decides the issued token's audience and scope.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, Field

from tokensmith.config.types import KEBAB, Duration

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
REFRESH_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"


class AudiencePolicy(BaseModel):
    """What a client may obtain for one target audience (or resource URI)."""

    model_config = KEBAB

    # Scopes the client may be granted for this audience. Empty: none beyond what `default-scopes` lists.
    scopes: tuple[str, ...] = ()
    # Scopes granted when the request names none.
    default_scopes: tuple[str, ...] = ()


class ExchangePolicy(BaseModel):
    """The token-exchange policy of one client."""

    model_config = KEBAB

    impersonation: bool = True
    delegation: bool = False
    # The `aud` of the issued token when the request has neither `audience` nor `resource`.
    # None means the client's own client-id (what Spring Authorization Server does).
    default_audience: tuple[str, ...] | None = None
    # Allowed targets, keyed by audience name or resource URI. Empty: only the default audience, with the
    # client's registered scopes.
    audiences: dict[str, AudiencePolicy] = Field(default_factory=dict)
    # Which issuers' subject tokens may be exchanged: "self" (this server) and/or trusted issuer URLs.
    subject_token_issuers: tuple[str, ...] = ("self",)
    requested_token_types: tuple[str, ...] = (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE)
    # How each granted scope must be backed by the subject token:
    #   none     - the policy alone decides (the article's behaviour)
    #   strict   - granted scopes must be a subset of the subject token's scopes (pure downscoping)
    #   mapping  - as strict, or reachable through `scope-mappings` (subject scope -> scopes it backs)
    scope_backing: Literal["none", "strict", "mapping"] = "none"
    scope_mappings: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # A request for scopes beyond what is allowed: "error" (invalid_scope) or "reduce" (grant the allowed part).
    excess_scope: Literal["error", "reduce"] = "error"
    max_delegation_depth: int = Field(default=3, ge=1, le=16)
    token_time_to_live: Duration | None = None
    # By default an exchanged token never outlives the subject token.
    may_outlive_subject_token: bool = False
    issue_refresh_token: bool = False


class TrustedIssuer(BaseModel):
    """An external issuer whose JWTs may be exchanged (keys from its discovery document / JWKS)."""

    model_config = KEBAB

    issuer: str
    jwks_uri: str | None = None
    # The external token's `aud` must contain one of these (empty: this server's issuer URL).
    audiences: tuple[str, ...] = ()
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    # The claim that names the user at that issuer, and how it becomes a local subject.
    subject_claim: str = "sub"
    subject_prefix: str = ""
    # Claims copied from the external token into exchanged tokens.
    copy_claims: tuple[str, ...] = ()
    key_cache_time_to_live: Duration = timedelta(minutes=10)
