"""Transaction Token Service settings (draft-ietf-oauth-transaction-tokens): the trust domain, the lifetime of
Transaction Tokens, and which workloads (clients) may request them, from which subject tokens, for which scopes.

The model is explained with a worked example in ``docs/transaction-tokens.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, BaseModel, Field, field_validator, model_validator

from tokensmith.config.exchange import ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, JWT_TOKEN_TYPE, SELF_ISSUER
from tokensmith.config.types import KEBAB, Duration

TXN_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:txn_token"
SELF_SIGNED_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:self_signed"
UNSIGNED_JSON_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:unsigned_json"
# The JWT `typ` of a Transaction Token (the draft's media type application/txntoken+jwt).
TXN_TOKEN_TYP = "txntoken+jwt"

# Subject token types a Transaction Token may be requested with: RFC 8693's JWT types (never a refresh token),
# a Transaction Token (a replacement), and the draft's self-signed JWT and unsigned JSON object.
TXN_SUBJECT_TOKEN_TYPES = (
    ACCESS_TOKEN_TYPE,
    JWT_TOKEN_TYPE,
    ID_TOKEN_TYPE,
    TXN_TOKEN_TYPE,
    SELF_SIGNED_TOKEN_TYPE,
    UNSIGNED_JSON_TOKEN_TYPE,
)
# The draft wants Transaction Tokens "on the order of minutes or less".
MAX_TXN_TOKEN_TIME_TO_LIVE = timedelta(hours=1)


def _short(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be positive")
    if value > MAX_TXN_TOKEN_TIME_TO_LIVE:
        raise ValueError("must be at most 1h: Transaction Tokens are short-lived (minutes or less)")
    return value


ShortDuration = Annotated[Duration, AfterValidator(_short)]


class TransactionTokenClient(BaseModel):
    """What one workload (a confidential client registered for token exchange) may request."""

    model_config = KEBAB

    # The `req_wl` of the tokens it requests; None: its client id.
    workload: str | None = None
    # Transaction Token scopes it may request. Each must also be backed by the subject token (see below).
    scopes: tuple[str, ...] = Field(min_length=1)
    subject_token_types: tuple[str, ...] = (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE)
    # Issuers of signed subject tokens (access and ID tokens): "self" and/or trusted-issuers entries.
    subject_token_issuers: tuple[str, ...] = (SELF_ISSUER,)
    # Which Transaction Token scopes a subject-token scope backs; a scope not named here backs only itself.
    scope_mappings: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # Scopes a subject token that carries no scope (an ID token, say) may back. Empty: such a token is refused,
    # since the draft forbids treating an unknown subject scope as unconstrained.
    unscoped_subject_scopes: tuple[str, ...] = ()
    # Accept request_context / request_details (into `rctx` / `tctx`).
    request_context: bool = True
    request_details: bool = True

    @field_validator("subject_token_types")
    @classmethod
    def _known_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [t for t in value if t not in TXN_SUBJECT_TOKEN_TYPES]
        if unknown:
            raise ValueError(f"unsupported subject token type(s) {unknown}; supported: {list(TXN_SUBJECT_TOKEN_TYPES)}")
        if not value:
            raise ValueError("at least one subject token type is required")
        return value

    @model_validator(mode="after")
    def _backed_scopes_are_allowed(self) -> TransactionTokenClient:
        allowed = set(self.scopes)
        for source, targets in self.scope_mappings.items():
            extra = sorted(set(targets) - allowed)
            if extra:
                raise ValueError(f"scope-mappings.{source} names scope(s) {extra} that are not under scopes")
        extra = sorted(set(self.unscoped_subject_scopes) - allowed)
        if extra:
            raise ValueError(f"unscoped-subject-scopes names scope(s) {extra} that are not under scopes")
        return self


class TransactionTokenSettings(BaseModel):
    """``transaction-tokens`` in the server config: this server as the Transaction Token Service of one trust
    domain."""

    model_config = KEBAB

    # The `aud` of every Transaction Token, and the only `audience` a request may name.
    trust_domain: str = Field(min_length=1)
    time_to_live: ShortDuration = timedelta(minutes=5)
    # The largest request_context / request_details accepted (bytes of their JSON text).
    max_context_bytes: int = Field(default=4096, ge=64, le=64 * 1024)
    # Who may request Transaction Tokens, by client id.
    clients: dict[str, TransactionTokenClient] = Field(default_factory=dict)

    @field_validator("trust_domain")
    @classmethod
    def _no_spaces(cls, value: str) -> str:
        if value != value.strip() or " " in value:
            raise ValueError("must be a trust domain name or URI without spaces")
        return value

    def client(self, client_id: str) -> TransactionTokenClient | None:
        return self.clients.get(client_id)


class RegisteredClient(Protocol):
    """What the start-up check reads of a client registration (``clients.<name>.registration``)."""

    @property
    def client_id(self) -> str: ...
    @property
    def authorization_grant_types(self) -> tuple[str, ...]: ...
    @property
    def is_public(self) -> bool: ...
    @property
    def jwks(self) -> dict[str, Any] | None: ...
    @property
    def jwks_uri(self) -> str | None: ...


def check_transaction_token_clients(
    settings: TransactionTokenSettings,
    registrations: Iterable[RegisteredClient],
    trusted_issuers: Iterable[str],
    token_exchange_grant: str,
) -> None:
    """At start: every workload named is a registered confidential client with the token-exchange grant, and every
    issuer it names is this server or a trusted issuer. The error names the key."""
    trusted = {SELF_ISSUER, *trusted_issuers}
    registered: Mapping[str, RegisteredClient] = {r.client_id: r for r in registrations}
    for client_id, policy in settings.clients.items():
        key = f"transaction-tokens.clients.{client_id}"
        client = registered.get(client_id)
        if client is None:
            raise ValueError(f"{key}: no client with client-id {client_id!r} under clients")
        if token_exchange_grant not in client.authorization_grant_types:
            raise ValueError(f"{key}: the client needs {token_exchange_grant} under authorization-grant-types")
        if client.is_public:
            raise ValueError(f"{key}: a Transaction Token is only issued to an authenticated (confidential) client")
        unknown = [i for i in policy.subject_token_issuers if i not in trusted]
        if unknown:
            raise ValueError(
                f"{key}.subject-token-issuers names issuer(s) {unknown} that are not under trusted-issuers"
            )
        if SELF_SIGNED_TOKEN_TYPE in policy.subject_token_types and client.jwks is None and client.jwks_uri is None:
            raise ValueError(
                f"{key}.subject-token-types allows self-signed tokens, but the client has no jwks or jwks-uri "
                "to verify them with"
            )


__all__ = [
    "MAX_TXN_TOKEN_TIME_TO_LIVE",
    "SELF_SIGNED_TOKEN_TYPE",
    "TXN_SUBJECT_TOKEN_TYPES",
    "TXN_TOKEN_TYP",
    "TXN_TOKEN_TYPE",
    "UNSIGNED_JSON_TOKEN_TYPE",
    "RegisteredClient",
    "TransactionTokenClient",
    "TransactionTokenSettings",
    "check_transaction_token_clients",
]
