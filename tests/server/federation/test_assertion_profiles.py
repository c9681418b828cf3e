"""The JWT bearer grant's extension point: assertion profiles registered for a header `typ`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from tests.server.exchange.fakes import FakeClock, FakeStore, make_context

from tokensmith.config.server import ServerConfig
from tokensmith.errors import OAuthError
from tokensmith.server.core.audit import AuditLog, ExchangeAttempt
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.grants.base import AuthenticatedClient, TokenRequest, TokenResponse
from tokensmith.server.core.grants.jwt_bearer import JWT_BEARER_GRANT, Issuance, JwtBearerGrant, VerifiedAssertion
from tokensmith.store.records import ClientAssertionRecord

IDP = "https://idp.example"
ISSUER = "http://localhost:9001"
PROFILE_TYP = "example-assertion+jwt"
KEY = ECKey.generate_key("P-256", parameters={"kid": "k1", "alg": "ES256"})


class ReplayStore(FakeStore):
    def __init__(self) -> None:
        super().__init__()
        self.assertions: set[tuple[str, str]] = set()

    async def use_client_assertion(self, assertion: ClientAssertionRecord) -> bool:
        key = (assertion.client_id, assertion.jti)
        if key in self.assertions:
            return False
        self.assertions.add(key)
        return True


class RecordingProfile:
    typ = PROFILE_TYP

    def __init__(self) -> None:
        self.seen: list[VerifiedAssertion] = []

    def metadata(self, config: ServerConfig) -> dict[str, Any]:
        return {}

    async def __call__(
        self,
        assertion: VerifiedAssertion,
        request: TokenRequest,
        client: AuthenticatedClient,
        ctx: ServerContext,
        attempt: ExchangeAttempt,
    ) -> Issuance:
        self.seen.append(assertion)
        attempt.subject = str(assertion.claims["sub"])
        if assertion.claims.get("refuse"):
            raise OAuthError("invalid_grant", "refused by the profile")

        async def issue() -> TokenResponse:
            return TokenResponse(access_token="issued-by-profile", expires_in=60)

        return issue


def jwks(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"keys": [KEY.as_dict(private=False)]})


@pytest.fixture
async def ctx() -> AsyncIterator[ServerContext]:
    config = ServerConfig.model_validate(
        {
            "issuer": ISSUER,
            "trusted-issuers": [{"issuer": IDP, "jwks-uri": f"{IDP}/jwks"}],
            "clients": {
                "app": {
                    "registration": {
                        "client-id": "app",
                        "client-secret": "{noop}s",
                        "authorization-grant-types": [JWT_BEARER_GRANT],
                        "scopes": ["read"],
                    },
                    "jwt-bearer": {"issuers": [IDP]},
                }
            },
        }
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(jwks)) as http:
        context = await make_context(config, ReplayStore(), FakeClock(), http=http)
        yield context
        await context.aclose()


def assertion(ctx: ServerContext, typ: str | None, **claims: Any) -> str:
    now = int(ctx.clock().timestamp())
    body = {"iss": IDP, "sub": "workload", "aud": ISSUER, "iat": now, "exp": now + 60, "jti": f"j-{typ}", **claims}
    header = {"alg": "ES256", "kid": "k1", **({"typ": typ} if typ else {})}
    return jwt.encode(header, body, KEY, algorithms=["ES256"])


def request(token: str) -> TokenRequest:
    return TokenRequest(params={"grant_type": [JWT_BEARER_GRANT], "assertion": [token]})


async def test_a_registered_typ_goes_to_its_profile(ctx: ServerContext) -> None:
    registered = ctx.grants[JWT_BEARER_GRANT]
    assert isinstance(registered, JwtBearerGrant)
    profile = RecordingProfile()
    grant = JwtBearerGrant(registered.trusted, AuditLog(ctx.store), profiles=[profile])
    app = AuthenticatedClient(config=ctx.config.clients["app"], method="client_secret_basic")

    response = await grant(request(assertion(ctx, "application/Example-Assertion+JWT")), app, ctx)
    assert response.access_token == "issued-by-profile"
    (seen,) = profile.seen
    assert seen.typ == PROFILE_TYP
    assert seen.issuer.issuer == IDP
    assert seen.jti == "j-application/Example-Assertion+JWT"

    # Verified before dispatch: the profile never sees an assertion for another server.
    with pytest.raises(OAuthError, match="not for this server"):
        await grant(request(assertion(ctx, PROFILE_TYP, aud="https://other.example", jti="j2")), app, ctx)
    assert len(profile.seen) == 1

    # Without that profile (the server as wired), the same typ is refused.
    with pytest.raises(OAuthError, match="'example-assertion\\+jwt' are not accepted"):
        await registered(request(assertion(ctx, PROFILE_TYP, jti="j3")), app, ctx)
    # An identity token (no typ) goes to the workload profile, which needs trust policies this issuer lacks.
    with pytest.raises(OAuthError, match="has no trust policies"):
        await registered(request(assertion(ctx, None, jti="j4")), app, ctx)


async def test_the_jti_is_used_up_only_once_the_profile_accepts(ctx: ServerContext) -> None:
    registered = ctx.grants[JWT_BEARER_GRANT]
    assert isinstance(registered, JwtBearerGrant)
    grant = JwtBearerGrant(registered.trusted, AuditLog(ctx.store), profiles=[RecordingProfile()])
    app = AuthenticatedClient(config=ctx.config.clients["app"], method="client_secret_basic")
    with pytest.raises(OAuthError, match="refused by the profile"):
        await grant(request(assertion(ctx, PROFILE_TYP, jti="once", refuse=True)), app, ctx)
    response = await grant(request(assertion(ctx, PROFILE_TYP, jti="once")), app, ctx)
    assert response.access_token == "issued-by-profile"
    with pytest.raises(OAuthError, match="already used"):
        await grant(request(assertion(ctx, PROFILE_TYP, jti="once")), app, ctx)


def test_a_typ_is_registered_once(ctx: ServerContext) -> None:
    registered = ctx.grants[JWT_BEARER_GRANT]
    assert isinstance(registered, JwtBearerGrant)
    with pytest.raises(ValueError, match="registered twice"):
        JwtBearerGrant(registered.trusted, AuditLog(ctx.store), profiles=[RecordingProfile(), RecordingProfile()])
