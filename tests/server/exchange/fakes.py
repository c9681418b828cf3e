"""In-memory stand-ins for the token-exchange unit tests: a store that counts its reads and writes, a clock
that tests move by hand, and builders for the article's configuration, tokens and requests."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx

from tokensmith.config.exchange import ACCESS_TOKEN_TYPE
from tokensmith.config.server import TOKEN_EXCHANGE, ServerConfig
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.grants.base import AuthenticatedClient, TokenRequest, TokenResponse
from tokensmith.server.core.tokens import IssuedToken
from tokensmith.server.core.wiring import build_context
from tokensmith.server.key_encryption import KeyEncryptionKey
from tokensmith.server.keys import KeyManager
from tokensmith.store.base import Store
from tokensmith.store.records import (
    AuditEvent,
    ClientAssertionRecord,
    IssuedTokenRecord,
    RevokedTokenRecord,
    SigningKeyRecord,
)

ISSUER = "http://localhost:9001"
START = datetime(2026, 5, 12, 9, 0, tzinfo=UTC)

# context_factory(policy=None, *, http=None, **config_overrides) -> the article's context with that message-service policy
ContextFactory = Callable[..., Awaitable[ServerContext]]


class FakeClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FakeStore:
    """The parts of the Store protocol the exchange touches, in memory, counting calls by name."""

    def __init__(self) -> None:
        self.keys: list[SigningKeyRecord] = []
        self.encryption_key = KeyEncryptionKey.generate()  # the keys' sealing key, as long as the "database" lives
        self.tokens: dict[str, IssuedTokenRecord] = {}
        self.audit: list[AuditEvent] = []
        self.calls: list[str] = []
        self.fail_audit = False
        self.revocations_committed = 0
        self.used_assertions: set[tuple[str, str]] = set()

    async def list_signing_keys(self) -> Sequence[SigningKeyRecord]:
        return tuple(self.keys)

    async def list_plaintext_signing_keys(self) -> Sequence[object]:
        return ()

    async def add_signing_key(self, key: SigningKeyRecord) -> bool:
        self.keys.append(key)
        return True

    async def record_issued_token(self, token: IssuedTokenRecord) -> None:
        self.calls.append("record_issued_token")
        self.tokens[token.jti] = token

    async def get_issued_token(self, jti: str) -> IssuedTokenRecord | None:
        self.calls.append("get_issued_token")
        return self.tokens.get(jti)

    async def is_token_revoked(self, jti: str) -> bool:
        self.calls.append("is_token_revoked")
        record = self.tokens.get(jti)
        return record is not None and record.revoked_at is not None

    async def revoke_token_lineage(self, jti: str, now: datetime) -> Sequence[str]:
        revoked: list[str] = []
        frontier = [jti]
        while frontier:
            current = frontier.pop()
            record = self.tokens.get(current)
            if record is None or current in revoked:
                continue
            self.tokens[current] = dataclasses.replace(record, revoked_at=now)
            revoked.append(current)
            frontier.extend(t.jti for t in self.tokens.values() if current in (t.parent_jti, t.actor_jti))
        self.revocations_committed += 1
        return revoked

    async def list_revoked_tokens(self, revoked_since: datetime, now: datetime) -> Sequence[RevokedTokenRecord]:
        self.calls.append("list_revoked_tokens")
        return [
            RevokedTokenRecord(jti=t.jti, revoked_at=t.revoked_at, expires_at=t.expires_at)
            for t in self.tokens.values()
            if t.revoked_at is not None and t.revoked_at >= revoked_since and t.expires_at > now
        ]

    async def use_client_assertion(self, assertion: ClientAssertionRecord) -> bool:
        self.calls.append("use_client_assertion")
        key = (assertion.client_id, assertion.jti)
        if key in self.used_assertions:
            return False
        self.used_assertions.add(key)
        return True

    async def add_audit_event(self, event: AuditEvent) -> None:
        self.calls.append("add_audit_event")
        if self.fail_audit:
            raise OSError("audit table unavailable")
        self.audit.append(event)

    async def list_audit_events(self, limit: int = 100) -> Sequence[AuditEvent]:
        return tuple(reversed(self.audit))[:limit]


def article_config(**overrides: Any) -> ServerConfig:
    """The article's authorization server: client message-service ({noop}token, client_secret_basic,
    token exchange, scopes openid + message.read), plus the front-end client whose users' tokens get exchanged."""
    message_service: dict[str, Any] = {
        "registration": {
            "client-id": "message-service",
            "client-secret": "{noop}token",
            "client-authentication-methods": ["client_secret_basic"],
            "authorization-grant-types": [TOKEN_EXCHANGE],
            "scopes": ["openid", "message.read"],
        }
    }
    policy = overrides.pop("policy", None)
    if policy is not None:
        message_service["token-exchange"] = policy
    data: dict[str, Any] = {
        "issuer": ISSUER,
        # One EC key for both token kinds: RSA key generation would dominate these tests' run time.
        "keys": {"access-token-algorithm": "ES256", "id-token-algorithm": "ES256"},
        "clients": {
            "message-service": message_service,
            "messaging-client-oidc": {
                "registration": {
                    "client-id": "messaging-client-oidc",
                    "client-secret": "{noop}secret",
                    "authorization-grant-types": ["authorization_code", "refresh_token"],
                    "redirect-uris": ["http://127.0.0.1:8080/login/oauth2/code/messaging-client-oidc"],
                    "scopes": ["openid", "profile", "user.read"],
                },
                "audiences": ["user-service"],
            },
            # The services whose own tokens serve as actor tokens (a token of a client not configured is void).
            **{
                name: {
                    "registration": {
                        "client-id": name,
                        "client-secret": "{noop}secret",
                        "authorization-grant-types": ["client_credentials"],
                    }
                }
                for name in ("user-service", "svc", "a", "b")
            },
        },
        "users": [{"username": "baeldung", "password": "{noop}password"}],
    }
    data.update(overrides)
    return ServerConfig.model_validate(data)


async def make_context(
    config: ServerConfig,
    store: FakeStore | None = None,
    clock: FakeClock | None = None,
    *,
    http: httpx.AsyncClient | None = None,
) -> ServerContext:
    """The context the server would build over this store and clock (close it with ``aclose``)."""
    store = store or FakeStore()
    clock = clock or FakeClock()
    typed_store = cast(Store, store)
    keys = KeyManager(typed_store, config.keys, clock, encryption_key=store.encryption_key)
    await keys.load()
    return build_context(config, typed_store, keys, clock, http=http)


async def exchange_grant(request: TokenRequest, client: AuthenticatedClient, ctx: ServerContext) -> TokenResponse:
    """The token-exchange grant as the context registered it."""
    return await ctx.grants[TOKEN_EXCHANGE](request, client, ctx)


def fake_store(ctx: ServerContext) -> FakeStore:
    return cast(FakeStore, ctx.store)


async def user_token(
    ctx: ServerContext,
    *,
    subject: str = "baeldung",
    audience: Sequence[str] = ("user-service",),
    scope: Sequence[str] = ("openid", "profile", "user.read"),
    ttl: timedelta = timedelta(minutes=5),
    extra_claims: Mapping[str, Any] | None = None,
    client_id: str = "messaging-client-oidc",
) -> IssuedToken:
    """An access token like the one the article's user brings to user-service."""
    return await ctx.tokens.issue_access_token(
        subject=subject,
        client_id=client_id,
        audience=audience,
        scope=scope,
        ttl=ttl,
        extra_claims=extra_claims,
    )


def exchange_request(
    subject_token: str | None,
    subject_token_type: str | None = ACCESS_TOKEN_TYPE,
    **params: str | Sequence[str],
) -> TokenRequest:
    values: dict[str, list[str]] = {"grant_type": [TOKEN_EXCHANGE]}
    if subject_token is not None:
        values["subject_token"] = [subject_token]
    if subject_token_type is not None:
        values["subject_token_type"] = [subject_token_type]
    for name, value in params.items():
        values[name] = [value] if isinstance(value, str) else list(value)
    return TokenRequest(params=values)


def client(
    ctx: ServerContext, client_id: str = "message-service", method: str = "client_secret_basic"
) -> AuthenticatedClient:
    config = ctx.config.client_by_id(client_id)
    assert config is not None
    return AuthenticatedClient(config=config, method=method)
