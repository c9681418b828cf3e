from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from joserfc.jwk import RSAKey
from tests.resource.forge import b64, claims_of, hmac_signed, unsigned
from tests.support.fake_issuer import FakeClock, FakeIssuer, free_port_url, oct_jwk

from tokensmith.resource import InvalidToken, TokenValidator, ValidatorUnavailable


@pytest.fixture
async def validator(issuer: FakeIssuer, clock: FakeClock) -> AsyncIterator[TokenValidator]:
    validator = TokenValidator(issuer=issuer.issuer, audience="user-service", clock=clock)
    yield validator
    await validator.aclose()


async def test_a_valid_token_gives_a_typed_principal(
    issuer: FakeIssuer, clock: FakeClock, validator: TokenValidator
) -> None:
    token = issuer.issue(
        {"act": {"sub": "user-service", "act": {"sub": "gateway", "iss": "https://other"}}}, now=clock.now
    )
    principal = await validator.validate(token)
    assert principal.subject == "baeldung"
    assert principal.client_id == "messaging-client"
    assert principal.scopes == frozenset({"openid", "message.read"})
    assert principal.audience == ("user-service",)
    assert principal.issuer == issuer.issuer
    assert [(a.subject, a.issuer) for a in principal.act] == [("user-service", None), ("gateway", "https://other")]
    assert principal.token == token
    assert token not in repr(principal)
    assert principal.claims["jti"] == claims_of(token)["jti"]


async def test_scope_as_json_array_and_audience_list(issuer: FakeIssuer, clock: FakeClock) -> None:
    validator = TokenValidator(issuer=issuer.issuer, audience=["user-service", "other"], clock=clock)
    token = issuer.issue({"scope": ["message.read", "message.write"], "aud": ["x", "other"]}, now=clock.now)
    principal = await validator.validate(token)
    assert principal.scopes == frozenset({"message.read", "message.write"})
    await validator.aclose()


async def test_keys_are_discovered_through_rfc8414_when_openid_is_absent(issuer: FakeIssuer, clock: FakeClock) -> None:
    issuer.discovery = "oauth"
    validator = TokenValidator(issuer=issuer.issuer, audience="user-service", clock=clock)
    await validator.validate(issuer.issue(now=clock.now))
    assert issuer.hits["/.well-known/openid-configuration"] == 1
    assert issuer.hits["/.well-known/oauth-authorization-server"] == 1
    await validator.aclose()


async def test_metadata_of_another_issuer_is_not_trusted(issuer: FakeIssuer, clock: FakeClock) -> None:
    issuer.advertised_issuer = f"{issuer.issuer}/"  # even a trailing slash is a different issuer
    validator = TokenValidator(issuer=issuer.issuer, audience="user-service", clock=clock)
    with pytest.raises(ValidatorUnavailable, match="expected exactly"):
        await validator.validate(issuer.issue(now=clock.now))
    assert issuer.hits["/jwks"] == 0
    await validator.aclose()


async def test_a_configured_jwks_uri_skips_discovery(issuer: FakeIssuer, clock: FakeClock) -> None:
    validator = TokenValidator(
        issuer=issuer.issuer, audience="user-service", jwks_uri=f"{issuer.base_url}/jwks", clock=clock
    )
    await validator.validate(issuer.issue(now=clock.now))
    assert issuer.hits["/.well-known/openid-configuration"] == 0
    await validator.aclose()


def _claims(issuer: FakeIssuer, now: float, **extra: object) -> dict[str, object]:
    return {"iss": issuer.issuer, "sub": "mallory", "aud": "user-service", "exp": int(now) + 300, **extra}


async def test_alg_none_is_rejected(issuer: FakeIssuer, clock: FakeClock, validator: TokenValidator) -> None:
    token = unsigned({"alg": "none", "kid": issuer.key().kid}, _claims(issuer, clock.now))
    with pytest.raises(InvalidToken, match="algorithm is not accepted"):
        await validator.validate(token)


async def test_hs256_keyed_with_the_rsa_public_key_is_rejected(
    issuer: FakeIssuer, clock: FakeClock, validator: TokenValidator
) -> None:
    key = issuer.key()
    for secret in (key.as_pem(private=False), str(key.as_dict()["n"]).encode()):
        token = hmac_signed({"alg": "HS256", "kid": key.kid}, _claims(issuer, clock.now), secret)
        with pytest.raises(InvalidToken, match="algorithm is not accepted"):
            await validator.validate(token)


async def test_symmetric_algorithms_cannot_even_be_configured(issuer: FakeIssuer) -> None:
    for algorithms in (["HS256"], ["none"], ["RS256", "HS512"], []):
        with pytest.raises(ValueError, match="not accepted"):
            TokenValidator(issuer=issuer.issuer, audience="user-service", algorithms=algorithms)


async def test_an_oct_key_in_the_jwks_is_never_used(issuer: FakeIssuer, clock: FakeClock) -> None:
    issuer.extra_jwks.append(oct_jwk(b"0123456789abcdef0123456789abcdef", "shared"))
    validator = TokenValidator(issuer=issuer.issuer, audience="user-service", algorithms=["RS256"], clock=clock)
    token = hmac_signed(
        {"alg": "RS256", "kid": "shared"}, _claims(issuer, clock.now), b"0123456789abcdef0123456789abcdef"
    )
    with pytest.raises(InvalidToken, match="unknown key"):
        await validator.validate(token)
    await validator.aclose()


async def test_key_type_must_match_the_algorithm(
    issuer: FakeIssuer, clock: FakeClock, validator: TokenValidator
) -> None:
    rsa_kid = issuer.key().kid
    ec_kid = issuer.add_key("ES256")
    token = issuer.issue(kid=ec_kid, now=clock.now, header={"kid": rsa_kid})  # ES256 signature naming the RSA key
    with pytest.raises(InvalidToken, match="unknown key"):
        await validator.validate(token)
    assert (await validator.validate(issuer.issue(kid=ec_kid, now=clock.now))).subject == "baeldung"


async def test_a_forged_signature_is_rejected(issuer: FakeIssuer, clock: FakeClock, validator: TokenValidator) -> None:
    genuine_kid = issuer.key().kid
    assert genuine_kid is not None
    mallory = RSAKey.generate_key(2048, parameters={"kid": genuine_kid, "alg": "RS256"})
    issuer.signing_keys.append(mallory)
    forged = issuer.issue(kid=None, now=clock.now)  # signed by mallory's key under the genuine kid
    issuer.signing_keys.remove(mallory)
    with pytest.raises(InvalidToken, match="signature does not verify"):
        await validator.validate(forged)
    header, _payload, signature = issuer.issue(now=clock.now).split(".")
    tampered = f"{header}.{issuer.issue({'sub': 'admin'}, now=clock.now).split('.')[1]}.{signature}"
    with pytest.raises(InvalidToken, match="signature does not verify"):
        await validator.validate(tampered)


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"iss": "https://evil.example"}, "another issuer"),
        ({"aud": "message-service"}, "audience"),
        ({"aud": ["message-service", "billing"]}, "audience"),
        ({"aud": None}, "audience"),
        ({"exp": None}, "no expiry"),
        ({"exp": "tomorrow"}, "no expiry"),
        ({"nbf": "soon"}, "nbf"),
    ],
)
async def test_claims_are_checked(
    issuer: FakeIssuer, clock: FakeClock, validator: TokenValidator, claims: dict[str, object], message: str
) -> None:
    token = issuer.issue(claims, now=clock.now)
    with pytest.raises(InvalidToken, match=message):
        await validator.validate(token)


async def test_expiry_and_not_before_allow_the_leeway_only(
    issuer: FakeIssuer, clock: FakeClock, validator: TokenValidator
) -> None:
    token = issuer.issue(now=clock.now, lifetime=60)
    clock.advance(60 + 29)
    await validator.validate(token)  # expired 29 s ago: within the 30 s leeway
    clock.advance(1)
    with pytest.raises(InvalidToken, match="expired"):
        await validator.validate(token)
    early = issuer.issue({"nbf": int(clock.now) + 31}, now=clock.now)
    with pytest.raises(InvalidToken, match="not valid yet"):
        await validator.validate(early)
    clock.advance(1)
    await validator.validate(early)


async def test_required_typ(issuer: FakeIssuer, clock: FakeClock) -> None:
    validator = TokenValidator(issuer=issuer.issuer, audience="user-service", required_typ="at+jwt", clock=clock)
    await validator.validate(issuer.issue(typ="at+jwt", now=clock.now))
    await validator.validate(issuer.issue(typ="application/AT+JWT", now=clock.now))
    for typ in ("JWT", None):
        with pytest.raises(InvalidToken, match="type is not accepted"):
            await validator.validate(issuer.issue(typ=typ, now=clock.now))
    await validator.aclose()


async def test_hostile_header_and_payload_shapes_are_invalid(
    issuer: FakeIssuer, clock: FakeClock, validator: TokenValidator
) -> None:
    claims = _claims(issuer, clock.now)
    kid = issuer.key().kid
    for header in ({"alg": ["RS256"], "kid": kid}, {"alg": {"x": 1}}, {"alg": "RS256", "kid": {"k": 1}}, {"kid": kid}):
        with pytest.raises(InvalidToken):
            await validator.validate(unsigned(header, claims))
    array_payload = unsigned({"alg": "RS256", "kid": kid}, claims).split(".")
    with pytest.raises(InvalidToken):
        await validator.validate(f"{array_payload[0]}.{b64(b'[1, 2]')}.")


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "ä.b.c", "eyJhbGciOiJSUzI1NiJ9.e30", "x" * 200_000])
async def test_malformed_tokens_are_invalid(validator: TokenValidator, token: str) -> None:
    with pytest.raises(InvalidToken):
        await validator.validate(token)


async def test_key_rotation_while_running(issuer: FakeIssuer, clock: FakeClock, validator: TokenValidator) -> None:
    old_kid = issuer.key().kid
    old_token = issuer.issue(now=clock.now)
    await validator.validate(old_token)
    assert issuer.hits["/jwks"] == 1
    new_kid = issuer.add_key()
    new_tokens = [issuer.issue(kid=new_kid, now=clock.now) for _ in range(20)]
    await asyncio.gather(*(validator.validate(t) for t in new_tokens))
    assert issuer.hits["/jwks"] == 2  # the new kid was fetched once, for all twenty
    await validator.validate(old_token)  # the old key is still published: its tokens stay valid
    await validator.validate(issuer.issue(kid=old_kid, now=clock.now))
    assert issuer.hits["/jwks"] == 2


async def test_unknown_kid_storm_costs_one_fetch_per_cooldown(
    issuer: FakeIssuer, clock: FakeClock, validator: TokenValidator
) -> None:
    await validator.refresh_keys()
    assert issuer.hits["/jwks"] == 1
    clock.advance(31)
    mallory = RSAKey.generate_key(2048, parameters={"alg": "RS256"})
    issuer.signing_keys.append(mallory)
    storm = [issuer.issue(kid=None, now=clock.now, header={"kid": f"forged-{n}"}) for n in range(50)]
    issuer.signing_keys.remove(mallory)
    results = await asyncio.gather(*(validator.validate(t) for t in storm), return_exceptions=True)
    assert all(isinstance(r, InvalidToken) for r in results)
    assert issuer.hits["/jwks"] == 2  # one shared refetch
    for token in storm:
        with pytest.raises(InvalidToken, match="unknown key"):
            await validator.validate(token)
    assert issuer.hits["/jwks"] == 2  # within the cool-down: no more fetches
    clock.advance(30)
    with pytest.raises(InvalidToken):
        await validator.validate(storm[0])
    assert issuer.hits["/jwks"] == 3


async def test_cached_keys_keep_working_when_the_authorization_server_is_down(
    issuer: FakeIssuer, clock: FakeClock, validator: TokenValidator
) -> None:
    await validator.validate(issuer.issue(now=clock.now))
    issuer.available = False
    clock.advance(301)  # keys are stale: a background refresh fails, the cached keys still verify
    await validator.validate(issuer.issue(now=clock.now))
    for _ in range(500):
        if validator.keys.last_error is not None:
            break
        await asyncio.sleep(0.01)
    assert validator.keys.last_error is not None  # the refresh failed...
    for _ in range(3):
        await validator.validate(issuer.issue(now=clock.now))  # ...and the cached key still verifies
    assert issuer.hits["/jwks"] == 2
    unknown = issuer.add_key()
    with pytest.raises(ValidatorUnavailable):
        await validator.validate(issuer.issue(kid=unknown, now=clock.now))


async def test_stale_keys_are_refreshed_in_the_background(
    issuer: FakeIssuer, clock: FakeClock, validator: TokenValidator
) -> None:
    old_kid = issuer.key().kid
    assert old_kid is not None
    token = issuer.issue(now=clock.now)
    await validator.validate(token)
    issuer.add_key()
    issuer.remove_key(old_kid)  # the issuer withdrew the key
    clock.advance(301)
    await validator.validate(token)  # served from the cache; a background refresh starts
    for _ in range(500):
        if old_kid not in validator.keys.kids:
            break
        await asyncio.sleep(0.01)
    assert old_kid not in validator.keys.kids
    assert validator.keys.fetch_count == 2
    with pytest.raises(InvalidToken, match="unknown key"):
        await validator.validate(token)


async def test_an_unreachable_authorization_server_is_unavailable_not_invalid(clock: FakeClock) -> None:
    validator = TokenValidator(issuer=free_port_url(), audience="user-service", clock=clock, timeout=2)
    token = hmac_signed({"alg": "RS256", "kid": "k"}, {"exp": int(time.time()) + 60}, b"x")
    with pytest.raises(ValidatorUnavailable):
        await validator.validate(token)
    await validator.aclose()
