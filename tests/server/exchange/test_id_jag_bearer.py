"""The resource authorization server's side of ID-JAG: the grant presented with the JWT bearer grant (RFC 7523
2.1) by the client it names, verified with the identity provider's published keys (draft section 4.4)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from tests.server.exchange.fakes import ISSUER, FakeClock, FakeStore, client, make_context

from tokensmith.config.federation import JWT_BEARER_GRANT as JWT_BEARER
from tokensmith.config.id_jag import ID_JAG_PROFILE
from tokensmith.config.server import ServerConfig
from tokensmith.errors import OAuthError
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.grants.base import TokenRequest

IDP = "https://idp.example"
# A workload issuer (trust policies) the wiki client also trusts, with the same keys for brevity.
CI = "https://ci.example"
CHAT_API = "https://api.chat.example/"


@dataclass
class IdentityProvider:
    """The user's identity provider behind httpx.MockTransport: discovery, JWKS, and the ID-JAGs it signs."""

    clock: FakeClock
    key: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256", parameters={"kid": "idp-1"}, private=True))

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={"issuer": IDP, "jwks_uri": f"{IDP}/jwks"})
        if request.url.path == "/jwks":
            return httpx.Response(200, json={"keys": [self.key.as_dict(private=False)]})
        return httpx.Response(404)

    def id_jag(self, *, typ: str | None = "oauth-id-jag+jwt", key: ECKey | None = None, **overrides: Any) -> str:
        now = int(self.clock().timestamp())
        claims: dict[str, Any] = {
            "iss": IDP,
            "sub": "U019488227",
            "aud": ISSUER,
            "client_id": "wiki",
            "jti": f"jag-{now}-{len(overrides)}",
            "iat": now,
            "exp": now + 300,
            "scope": "chat.read chat.history",
            "resource": CHAT_API,
            "amr": ["mfa"],
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        signer = key or self.key
        header = {"alg": "ES256", "kid": signer.kid, **({"typ": typ} if typ else {})}
        return jwt.encode(header, claims, signer, algorithms=["ES256"])


def config() -> ServerConfig:
    wiki_registration = {
        "client-id": "wiki",
        "client-secret": "{noop}wiki-secret",
        "authorization-grant-types": [JWT_BEARER],
        "scopes": ["chat.read", "chat.history"],
    }
    return ServerConfig.model_validate(
        {
            "issuer": ISSUER,
            "keys": {"access-token-algorithm": "ES256", "id-token-algorithm": "ES256"},
            "trusted-issuers": [
                {"issuer": IDP, "algorithms": ["ES256"], "subject-prefix": "idp|", "copy-claims": ["amr"]},
                {
                    "issuer": CI,
                    "jwks-uri": f"{CI}/jwks",
                    "algorithms": ["ES256"],
                    "trust-policies": [
                        {"name": "wiki-ci", "conditions": {"sub": "repo:acme/wiki:*"}, "client": "wiki"}
                    ],
                },
            ],
            "clients": {
                "wiki": {
                    "registration": wiki_registration,
                    "jwt-bearer": {"issuers": [IDP, CI]},
                    "id-jag": {"scopes": ["chat.read"], "resources": [CHAT_API]},
                },
                # May present this issuer's assertions, but has no ID-JAG policy.
                "notes": {
                    "registration": {**wiki_registration, "client-id": "notes", "client-secret": "{noop}notes"},
                    "jwt-bearer": {"issuers": [IDP]},
                },
                "other": {
                    "registration": {**wiki_registration, "client-id": "other", "client-secret": "{noop}other"},
                    "jwt-bearer": {"issuers": [IDP]},
                    "id-jag": {},
                },
            },
        }
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def idp(clock: FakeClock) -> IdentityProvider:
    return IdentityProvider(clock)


@pytest.fixture
async def ctx(idp: IdentityProvider, clock: FakeClock) -> AsyncIterator[ServerContext]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(idp.handle))
    context = await make_context(config(), FakeStore(), clock, http=http)
    yield context
    await context.aclose()
    await http.aclose()


def bearer_request(assertion: str) -> TokenRequest:
    return TokenRequest(params={"grant_type": [JWT_BEARER], "assertion": [assertion]})


async def present(ctx: ServerContext, assertion: str, client_id: str = "wiki") -> dict[str, Any]:
    response = await ctx.grants[JWT_BEARER](bearer_request(assertion), client(ctx, client_id), ctx)
    return response.to_dict()


async def refusal(ctx: ServerContext, assertion: str, client_id: str = "wiki") -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        await present(ctx, assertion, client_id)
    return caught.value


def audit(ctx: ServerContext) -> FakeStore:
    store = ctx.store
    assert isinstance(store, FakeStore)
    return store


async def test_an_id_jag_becomes_an_access_token_for_its_subject(ctx: ServerContext, idp: IdentityProvider) -> None:
    body = await present(ctx, idp.id_jag())
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "chat.read"  # the policy allows only chat.read of the grant's two scopes
    assert body["resource"] == CHAT_API
    assert "refresh_token" not in body
    claims = ctx.keys.verify(body["access_token"]).claims
    assert claims["sub"] == "idp|U019488227"  # the trusted issuer's subject-prefix
    assert claims["client_id"] == "wiki"
    assert claims["aud"] == CHAT_API
    assert claims["scope"] == "chat.read"
    assert claims["amr"] == ["mfa"]  # the trusted issuer's copy-claims
    event = audit(ctx).audit[-1]
    assert (event.event, event.outcome, event.subject) == ("jwt_bearer", "granted", "idp|U019488227")
    assert event.details["assertion_typ"] == "oauth-id-jag+jwt"
    assert event.details["issued_jti"] == claims["jti"]


async def test_a_replayed_id_jag_is_refused(ctx: ServerContext, idp: IdentityProvider) -> None:
    assertion = idp.id_jag()
    await present(ctx, assertion)
    error = await refusal(ctx, assertion)
    assert error.error == "invalid_grant"
    assert "was already used" in (error.description or "")
    assert audit(ctx).audit[-1].outcome == "refused"


@pytest.mark.parametrize(
    ("make", "description"),
    [
        # The JWT bearer grant's own checks, before the ID-JAG profile.
        (lambda idp: idp.id_jag(typ="at+jwt"), "assertions of type (typ) 'at+jwt' are not accepted"),
        (lambda idp: idp.id_jag(aud="https://elsewhere.example"), "assertion is not for this server"),
        (lambda idp: idp.id_jag(exp=int(idp.clock().timestamp()) - 120), "assertion has expired"),
        (lambda idp: idp.id_jag(iss="https://stranger.example"), "not a trusted issuer"),
        (
            lambda idp: idp.id_jag(key=ECKey.generate_key("P-256", parameters={"kid": "idp-1"}, private=True)),
            "assertion is invalid",
        ),
        (lambda idp: "not-a-jwt", "assertion is not a JWT"),
        # The profile's: the draft's rules and the client's policy.
        (lambda idp: idp.id_jag(aud=[ISSUER, "https://elsewhere.example"]), "its 'aud' must be"),
        (lambda idp: idp.id_jag(aud=f"{ISSUER}/oauth2/token"), "its 'aud' must be"),
        (lambda idp: idp.id_jag(client_id="notes"), "not for the authenticated client 'wiki'"),
        (lambda idp: idp.id_jag(sub=None), "no 'sub'"),
        (lambda idp: idp.id_jag(resource="https://api.other.example/"), "none of the ID-JAG's resources"),
        (lambda idp: idp.id_jag(scope="chat.admin"), "none of the ID-JAG's scopes"),
    ],
)
async def test_hostile_grants_are_refused_with_a_reason(
    ctx: ServerContext, idp: IdentityProvider, make: Any, description: str
) -> None:
    error = await refusal(ctx, make(idp))
    assert error.error in ("invalid_grant", "invalid_target", "invalid_scope")
    assert description in (error.description or "")


async def test_a_refused_id_jag_is_audited_with_the_reason(ctx: ServerContext, idp: IdentityProvider) -> None:
    error = await refusal(ctx, idp.id_jag(client_id="notes"))
    event = audit(ctx).audit[-1]
    assert (event.event, event.outcome, event.client_id) == ("jwt_bearer", "refused", "wiki")
    assert event.reason == f"invalid_grant: {error.description}"


async def test_a_client_without_an_id_jag_policy_is_unauthorized(ctx: ServerContext, idp: IdentityProvider) -> None:
    error = await refusal(ctx, idp.id_jag(client_id="notes"), client_id="notes")
    assert error.error == "unauthorized_client"


async def test_discovery_advertises_the_profile_and_the_grant(ctx: ServerContext) -> None:
    metadata = ctx.metadata()
    assert metadata["authorization_grant_profiles_supported"] == [ID_JAG_PROFILE]
    assert JWT_BEARER in metadata["grant_types_supported"]


async def test_the_grant_needs_an_assertion(ctx: ServerContext) -> None:
    with pytest.raises(OAuthError) as caught:
        await ctx.grants[JWT_BEARER](TokenRequest(params={"grant_type": [JWT_BEARER]}), client(ctx, "wiki"), ctx)
    assert caught.value.error == "invalid_request"
    assert "'assertion'" in (caught.value.description or "")


async def test_an_unsigned_assertion_is_refused(ctx: ServerContext, idp: IdentityProvider) -> None:
    _, payload, _ = idp.id_jag().split(".")
    unsigned_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"oauth-id-jag+jwt"}').rstrip(b"=").decode()
    error = await refusal(ctx, f"{unsigned_header}.{payload}.")
    assert error.error == "invalid_grant"
    assert "not signed" in (error.description or "")


async def test_a_public_client_may_not_use_the_grant(ctx: ServerContext, idp: IdentityProvider) -> None:
    with pytest.raises(OAuthError) as caught:
        await ctx.grants[JWT_BEARER](bearer_request(idp.id_jag()), client(ctx, "wiki", method="none"), ctx)
    assert caught.value.error == "unauthorized_client"


async def test_a_stolen_id_jag_refused_to_another_client_stays_usable_by_its_own(
    ctx: ServerContext, idp: IdentityProvider
) -> None:
    assertion = idp.id_jag()  # names wiki as its client
    # Refused to clients it does not name (one without an ID-JAG policy, one with): its jti is not used up.
    assert (await refusal(ctx, assertion, client_id="notes")).error == "unauthorized_client"
    error = await refusal(ctx, assertion, client_id="other")
    assert "not for the authenticated client 'other'" in (error.description or "")
    body = await present(ctx, assertion)
    assert body["scope"] == "chat.read"
    # Once granted, it is used up.
    assert "was already used" in ((await refusal(ctx, assertion)).description or "")


@pytest.mark.parametrize("typ", ["JWT", None])
async def test_a_plain_jwt_of_an_identity_provider_is_no_workload_assertion(
    ctx: ServerContext, idp: IdentityProvider, typ: str | None
) -> None:
    # The identity provider is trusted for ID-JAGs; without trust policies its other JWTs are worth nothing here.
    error = await refusal(ctx, idp.id_jag(typ=typ))
    assert error.error == "invalid_grant"
    assert f"{IDP} has no trust policies" in (error.description or "")


async def test_an_id_jag_of_a_workload_issuer_is_refused(ctx: ServerContext, idp: IdentityProvider) -> None:
    # The workload issuer's own tokens pass its trust policies...
    body = await present(ctx, idp.id_jag(iss=CI, typ="JWT", sub="repo:acme/wiki:ref:refs/heads/main"))
    assert ctx.keys.verify(body["access_token"]).claims["sub"] == "repo:acme/wiki:ref:refs/heads/main"
    # ...but it cannot assert a user's identity with an ID-JAG.
    error = await refusal(ctx, idp.id_jag(iss=CI))
    assert error.error == "invalid_grant"
    assert f"{CI} has trust policies" in (error.description or "")
