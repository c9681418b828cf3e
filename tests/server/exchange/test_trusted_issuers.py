"""Subject tokens from trusted external issuers: keys from discovery/JWKS, cached, refetched on rotation."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry
from tests.server.exchange.fakes import (
    ISSUER,
    ContextFactory,
    FakeClock,
    client,
    exchange_grant,
    exchange_request,
    fake_store,
)

from tokensmith.config.exchange import JWT_TOKEN_TYPE
from tokensmith.errors import OAuthError
from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.grants.base import TokenRequest

IDP = "https://idp.example"


@dataclass
class FakeIdP:
    """An external OpenID provider behind httpx.MockTransport: discovery, JWKS, request counts."""

    clock: FakeClock
    keys: list[RSAKey | ECKey] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    up: bool = True
    discovery_names: str = IDP  # what its discovery document says the issuer is

    def __post_init__(self) -> None:
        self.rotate()

    def rotate(self) -> RSAKey | ECKey:
        key = RSAKey.generate_key(2048, parameters={"kid": f"k{len(self.keys)}", "use": "sig"}, private=True)
        self.keys.append(key)
        return key

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        if not self.up:
            raise httpx.ConnectError("down", request=request)
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={"issuer": self.discovery_names, "jwks_uri": f"{IDP}/jwks"})
        if request.url.path == "/jwks":
            return httpx.Response(200, json={"keys": [k.as_dict(private=False) for k in self.keys]})
        return httpx.Response(404)

    def token(self, claims: dict[str, Any], *, key: RSAKey | ECKey | None = None, alg: str = "RS256") -> str:
        key = key or self.keys[-1]
        now = int(self.clock().timestamp())
        body = {"iss": IDP, "sub": "alice", "aud": ISSUER, "iat": now, "exp": now + 300, **claims}
        return jwt.encode({"alg": alg, "kid": key.kid}, body, key, algorithms=[alg])


TRUSTED = {
    "trusted-issuers": [
        {"issuer": IDP, "subject-prefix": "idp|", "copy-claims": ["email"], "key-refetch-cool-down": "30s"}
    ]
}
POLICY = {"subject-token-issuers": ["self", IDP]}


@pytest.fixture
def idp(clock: FakeClock) -> FakeIdP:
    return FakeIdP(clock)


@pytest.fixture
async def ctx(context_factory: ContextFactory, idp: FakeIdP) -> AsyncIterator[ServerContext]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: idp.handle(request)))
    yield await context_factory(POLICY, http=http, **TRUSTED)
    await http.aclose()


async def refusal(ctx: ServerContext, request: TokenRequest) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        await exchange_grant(request, client(ctx), ctx)
    return caught.value


async def test_a_trusted_issuers_token_is_exchanged_with_its_subject_mapped(ctx: ServerContext, idp: FakeIdP) -> None:
    token = idp.token({"email": "alice@example.com", "groups": ["admin"]})
    response = await exchange_grant(exchange_request(token, JWT_TOKEN_TYPE), client(ctx), ctx)
    claims = ctx.keys.verify(response.access_token).claims
    assert claims["sub"] == "idp|alice"
    assert claims["iss"] == ISSUER
    assert claims["email"] == "alice@example.com"
    assert "groups" not in claims  # only copy-claims cross the trust boundary
    # No lineage row for a foreign token: its jti is not ours.
    assert fake_store(ctx).tokens[claims["jti"]].parent_jti is None


async def test_keys_are_discovered_once_and_cached(ctx: ServerContext, idp: FakeIdP) -> None:
    for _ in range(3):
        await exchange_grant(exchange_request(idp.token({})), client(ctx), ctx)
    assert idp.requests == ["/.well-known/openid-configuration", "/jwks"]


async def test_an_unknown_kid_refetches_the_keys_once_per_cool_down(
    ctx: ServerContext, idp: FakeIdP, clock: FakeClock
) -> None:
    await exchange_grant(exchange_request(idp.token({})), client(ctx), ctx)
    clock.advance(seconds=31)
    rotated = idp.rotate()
    await exchange_grant(exchange_request(idp.token({}, key=rotated)), client(ctx), ctx)
    assert idp.requests.count("/jwks") == 2
    # Forged kids within the cool-down do not make us fetch again.
    stranger = RSAKey.generate_key(2048, parameters={"kid": "forged"}, private=True)
    for _ in range(3):
        error = await refusal(ctx, exchange_request(idp.token({}, key=stranger)))
        assert error.error == "invalid_request"
        assert "does not publish" in error.description
    assert idp.requests.count("/jwks") == 2


async def test_cached_keys_keep_working_when_the_issuer_is_down(
    ctx: ServerContext, idp: FakeIdP, clock: FakeClock
) -> None:
    await exchange_grant(exchange_request(idp.token({})), client(ctx), ctx)
    idp.up = False
    clock.advance(minutes=11)  # past key-cache-time-to-live: a refresh is attempted and fails
    response = await exchange_grant(exchange_request(idp.token({})), client(ctx), ctx)
    assert response.access_token


async def test_unreachable_keys_are_invalid_request(ctx: ServerContext, idp: FakeIdP) -> None:
    idp.up = False
    error = await refusal(ctx, exchange_request(idp.token({})))
    assert error.error == "invalid_request"
    assert "unavailable" in error.description


async def test_an_algorithm_not_allowed_for_the_issuer_is_refused(ctx: ServerContext, idp: FakeIdP) -> None:
    ec = ECKey.generate_key("P-384", parameters={"kid": "ec"}, private=True)
    idp.keys.append(ec)
    error = await refusal(ctx, exchange_request(idp.token({}, key=ec, alg="ES384")))
    assert error.error == "invalid_request"
    assert "ES384" in error.description


async def test_a_key_of_the_wrong_type_for_the_alg_is_never_used(ctx: ServerContext, idp: FakeIdP) -> None:
    # An EC key published under the kid the token names, while the token says RS256.
    ec = ECKey.generate_key("P-256", parameters={"kid": "shared"}, private=True)
    idp.keys.append(ec)
    forged = jwt.encode({"alg": "ES256", "kid": "shared"}, {"iss": IDP}, ec, algorithms=["ES256"])
    header = forged.split(".")[0]
    rs_header = base64.urlsafe_b64encode(b'{"alg":"RS256","kid":"shared"}').rstrip(b"=").decode()
    error = await refusal(ctx, exchange_request(forged.replace(header, rs_header, 1)))
    assert error.error == "invalid_request"


async def test_a_token_not_for_this_server_is_refused(ctx: ServerContext, idp: FakeIdP) -> None:
    error = await refusal(ctx, exchange_request(idp.token({"aud": "some-other-app"})))
    assert error.error == "invalid_request"
    assert "not for this server" in error.description


async def test_a_trusted_issuer_the_clients_policy_does_not_list_is_refused(
    context_factory: ContextFactory, idp: FakeIdP
) -> None:
    ctx = await context_factory(None, **TRUSTED)
    error = await refusal(ctx, exchange_request(idp.token({})))
    assert error.error == "invalid_request"
    assert "may not exchange subject tokens issued by" in error.description


async def test_a_discovery_document_for_another_issuer_is_refused(ctx: ServerContext, idp: FakeIdP) -> None:
    idp.discovery_names = "https://other.example"
    error = await refusal(ctx, exchange_request(idp.token({})))
    assert error.error == "invalid_request"
    assert "unavailable" in error.description
    assert "/jwks" not in idp.requests


async def test_an_unreachable_issuer_is_not_asked_again_on_every_request(
    ctx: ServerContext, idp: FakeIdP, clock: FakeClock
) -> None:
    idp.up = False
    for _ in range(3):
        assert (await refusal(ctx, exchange_request(idp.token({})))).error == "invalid_request"
    assert len(idp.requests) == 1
    idp.up = True
    clock.advance(seconds=31)
    assert (await exchange_grant(exchange_request(idp.token({})), client(ctx), ctx)).access_token


async def test_an_unreadable_key_in_the_jwks_is_skipped(
    ctx: ServerContext, idp: FakeIdP, caplog: pytest.LogCaptureFixture
) -> None:
    original = idp.handle

    def with_junk(request: httpx.Request) -> httpx.Response:
        response = original(request)
        if request.url.path == "/jwks":
            keys = response.json()["keys"]
            return httpx.Response(200, json={"keys": [{"kty": "RSA", "kid": "junk", "n": "!"}, *keys]})
        return response

    idp.handle = with_junk  # type: ignore[method-assign]
    assert (await exchange_grant(exchange_request(idp.token({})), client(ctx), ctx)).access_token
    assert "skipping an unreadable key (kid 'junk')" in caplog.text


async def test_a_tampered_external_token_is_refused(ctx: ServerContext, idp: FakeIdP) -> None:
    header, payload, signature = idp.token({}).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged_payload = base64.urlsafe_b64encode(json.dumps({**claims, "sub": "root"}).encode()).rstrip(b"=").decode()
    error = await refusal(ctx, exchange_request(f"{header}.{forged_payload}.{signature}"))
    assert error.error == "invalid_request"
    assert "signature does not verify" in error.description


async def test_an_external_token_with_a_crit_header_is_refused_even_when_validly_signed(
    ctx: ServerContext, idp: FakeIdP, clock: FakeClock
) -> None:
    key = idp.keys[-1]
    now = int(clock().timestamp())
    body = {"iss": IDP, "sub": "alice", "aud": ISSUER, "iat": now, "exp": now + 300}

    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    signing_input = f"{segment({'alg': 'RS256', 'kid': key.kid, 'crit': ['kid']})}.{segment(body)}"
    signature = JWSRegistry.algorithms["RS256"].sign(signing_input.encode(), key)
    token = f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    error = await refusal(ctx, exchange_request(token))
    assert error.error == "invalid_request"
    assert "'crit'" in error.description
    # Without `crit`, the same key and claims are exchanged: only the header was refused.
    assert (await exchange_grant(exchange_request(idp.token({})), client(ctx), ctx)).access_token


async def test_an_ec_key_on_another_curve_is_never_used_for_es256(ctx: ServerContext, idp: FakeIdP) -> None:
    # A P-384 key published under the kid of an ES256 token: joserfc's key check refuses the curve.
    p384 = ECKey.generate_key("P-384", parameters={"kid": "p384", "use": "sig"}, private=True)
    idp.keys.append(p384)
    now = int(idp.clock().timestamp())
    body = {"iss": IDP, "sub": "alice", "aud": ISSUER, "iat": now, "exp": now + 300}
    token = jwt.encode({"alg": "ES384", "kid": "p384"}, body, p384, algorithms=["ES384"])
    es256_header = base64.urlsafe_b64encode(b'{"alg":"ES256","kid":"p384"}').rstrip(b"=").decode()
    error = await refusal(ctx, exchange_request(token.replace(token.split(".")[0], es256_header, 1)))
    assert error.error == "invalid_request"
    assert "does not publish" in error.description  # no key of that kid suits ES256
