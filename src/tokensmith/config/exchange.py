"""Token exchange policy (RFC 8693): who may exchange what, for which audience and which scopes.

The policy, never the requester alone, decides the issued token's audience and scope. The model is explained
with examples in ``docs/exchange-policy.md``.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from tokensmith.config.federation import TrustPolicy
from tokensmith.config.id_jag import IdJagIssuance
from tokensmith.config.types import KEBAB, Duration

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
REFRESH_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"
SAML1_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:saml1"
SAML2_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:saml2"

# Token types this server accepts as subject or actor tokens (all are JWTs).
INPUT_TOKEN_TYPES = (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, ID_TOKEN_TYPE)
# Token types this server can issue from an exchange.
ISSUABLE_TOKEN_TYPES = (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, ID_TOKEN_TYPE)

# The "issuer" entry that stands for this authorization server in `subject-token-issuers`.
SELF_ISSUER = "self"

# JWS algorithms accepted from trusted external issuers, with the key type each must use (RFC 7518 3.1,
# RFC 8037). Symmetric (HS*) algorithms and `none` are deliberately absent: a public key can never be
# used as an HMAC secret (HS/RS confusion) and an unsigned token never verifies.
EXTERNAL_KEY_TYPE_FOR_ALG = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
    "EdDSA": "OKP",
}


class AudiencePolicy(BaseModel):
    """What a client may obtain for one target audience (or resource URI)."""

    model_config = KEBAB

    # Scopes the client may be granted for this audience (together with `default-scopes`).
    scopes: tuple[str, ...] = ()
    # Scopes granted when the request names none. Empty: every scope allowed for this audience.
    default_scopes: tuple[str, ...] = ()

    @cached_property
    def allowed_scopes(self) -> tuple[str, ...]:
        # Cached: the model is frozen, and the token exchange asks for this on every request.
        return tuple(dict.fromkeys(self.scopes + self.default_scopes))


class ExchangeDPoPPolicy(BaseModel):
    """How DPoP-bound subject tokens (``cnf.jkt``, RFC 9449) may be exchanged (docs/exchange-policy.md).

    A bound subject token is always accepted with a proof by its own key. A proof by another key (the requesting
    client's own) is accepted only for subject tokens issued to a client named in ``bound-subject-token-clients``.
    Without any proof the exchange is refused, unless ``allow-bearer-from-bound`` lets such a subject token become
    a bearer token."""

    model_config = KEBAB

    bound_subject_token_clients: tuple[str, ...] = ()
    allow_bearer_from_bound: bool = False

    @model_validator(mode="after")
    def _bearer_needs_named_clients(self) -> ExchangeDPoPPolicy:
        if self.allow_bearer_from_bound and not self.bound_subject_token_clients:
            raise ValueError(
                "allow-bearer-from-bound needs bound-subject-token-clients naming whose tokens it concerns"
            )
        return self


class ExchangePolicy(BaseModel):
    """The token-exchange policy of one client (``clients.<name>.token-exchange`` in the config file)."""

    model_config = KEBAB

    # Exchange without an actor token: the new token stands for the subject alone (RFC 8693 1.1).
    impersonation: bool = True
    # Exchange with an actor token: the new token names the actor in `act` (RFC 8693 4.1).
    delegation: bool = False
    # The `aud` of the issued token when the request has neither `audience` nor `resource`.
    # None means the client's own client-id (what Spring Authorization Server does).
    default_audience: tuple[str, ...] | None = None
    # Allowed targets, keyed by audience name or resource URI, with the scopes allowed for each. The default
    # audience is always allowed; without an entry here it gets the client's registered scopes minus `openid`.
    audiences: dict[str, AudiencePolicy] = Field(default_factory=dict)
    # Which issuers' subject (and actor) tokens may be exchanged: "self" (this server) and/or the `issuer`
    # URLs of entries under the top-level `trusted-issuers`.
    subject_token_issuers: tuple[str, ...] = (SELF_ISSUER,)
    actor_token_issuers: tuple[str, ...] = (SELF_ISSUER,)
    # When set, the subject token's `aud` must contain one of these (for ID tokens: a client id).
    # Empty: any audience (the article's user-service token is exchanged by the client message-service).
    subject_token_audiences: tuple[str, ...] = ()
    requested_token_types: tuple[str, ...] = (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE)
    # How each granted scope must be backed by the subject token:
    #   none     - the policy alone decides (the article's behaviour)
    #   strict   - granted scopes must be a subset of the subject token's scopes (pure downscoping)
    #   mapping  - as strict, or reachable through `scope-mappings` (subject scope -> scopes it backs)
    scope_backing: Literal["none", "strict", "mapping"] = "none"
    scope_mappings: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # A request for scopes beyond what is allowed: "error" (invalid_scope) or "reduce" (grant the allowed part).
    excess_scope: Literal["error", "reduce"] = "error"
    # The longest `act` chain an issued token may carry (1: direct delegation only, no re-delegation).
    max_delegation_depth: int = Field(default=3, ge=1, le=16)
    # Lifetime of exchanged tokens; None: the client's access-token-time-to-live.
    token_time_to_live: Duration | None = None
    # By default an exchanged token never outlives the subject (or actor) token.
    may_outlive_subject_token: bool = False
    # Issue a refresh token with the exchanged token (RFC 8693 2.2.1), and accept requested_token_type
    # `...:refresh_token`. Off by default, as in Spring Authorization Server. The client also needs the
    # `refresh_token` grant. Refreshing re-issues a token with the same audience, scope, `act` and lineage.
    issue_refresh_token: bool = False
    # Lifetime of such refresh tokens; None: the client's refresh-token-time-to-live. Capped, like the
    # exchanged token, by the subject (and actor) token's expiry unless `may-outlive-subject-token`.
    refresh_token_time_to_live: Duration | None = None
    # DPoP-bound subject tokens (RFC 9449): whose this client may present with its own proof, or exchange for a
    # bearer token.
    dpop: ExchangeDPoPPolicy = ExchangeDPoPPolicy()
    # Identity Assertion JWT Authorization Grants (requested_token_type `...:id-jag`) this client may obtain for
    # other authorization servers; None: none (docs/exchange-policy.md, "ID-JAG").
    id_jag: IdJagIssuance | None = None

    @field_validator("requested_token_types")
    @classmethod
    def _issuable(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [t for t in value if t not in ISSUABLE_TOKEN_TYPES]
        if unknown:
            raise ValueError(f"cannot issue token type(s) {unknown}; issuable: {list(ISSUABLE_TOKEN_TYPES)}")
        return value

    @field_validator("audiences")
    @classmethod
    def _resource_uris(cls, value: dict[str, AudiencePolicy]) -> dict[str, AudiencePolicy]:
        for target in value:
            if "#" in target:
                raise ValueError(f"target {target!r} must not contain a fragment (RFC 8707 2)")
        return value

    @model_validator(mode="after")
    def _mapping_needs_mappings(self) -> ExchangePolicy:
        if self.scope_mappings and self.scope_backing != "mapping":
            raise ValueError("scope-mappings is only used with scope-backing: mapping")
        return self


class TrustedIssuer(BaseModel):
    """An external issuer whose JWTs may be exchanged (keys from its discovery document / JWKS)."""

    model_config = KEBAB

    issuer: str
    # Where its keys are; None: the `jwks_uri` of its discovery document (OpenID, then RFC 8414 location).
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
    # A token signed with an unknown `kid` refetches the keys, at most once per this interval.
    key_refetch_cool_down: Duration = timedelta(seconds=30)
    # Workload identity federation (docs/workload-federation.md): when set, a token of this issuer is accepted
    # only when one of these policies matches it (the first that does decides the issued token's subject,
    # client, scopes and claims).
    trust_policies: tuple[TrustPolicy, ...] = ()
    # JWT bearer grant (RFC 7523 2.1): an assertion must carry a `jti` (then used once), and may not expire more
    # than `max-assertion-lifetime` from now. An issuer that mints no `jti` (SPIFFE JWT-SVIDs) needs
    # `require-jti: false`; its assertions are then accepted until they expire.
    require_jti: bool = True
    max_assertion_lifetime: Duration = timedelta(hours=1)

    @field_validator("issuer", "jwks_uri")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith(("http://", "https://")) or "#" in value):
            raise ValueError("must be an http(s) URL without fragment")
        return value

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        refused = [alg for alg in value if alg not in EXTERNAL_KEY_TYPE_FOR_ALG]
        if refused:
            raise ValueError(
                f"algorithm(s) {refused} not accepted; use asymmetric ones: {list(EXTERNAL_KEY_TYPE_FOR_ALG)}"
            )
        if not value:
            raise ValueError("at least one algorithm is required")
        return value

    @field_validator("trust_policies")
    @classmethod
    def _unique_policy_names(cls, value: tuple[TrustPolicy, ...]) -> tuple[TrustPolicy, ...]:
        names = [policy.name for policy in value]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"trust policy name(s) {twice} appear more than once")
        return value
