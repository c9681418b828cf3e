from __future__ import annotations

import asyncio

import pytest
from tests.support.fake_issuer import FakeClient, FakeClock, FakeIssuer

from tokensmith.client import Registration
from tokensmith.client.flow import MAX_RESPONSE_BYTES
from tokensmith.resource import IntrospectionValidator, InvalidToken, ValidatorUnavailable


def registration(issuer: FakeIssuer, secret: str = "intro") -> Registration:
    issuer.clients["user-service"] = FakeClient("user-service", "intro", "client_secret_basic")
    return Registration(
        registration_id="introspection", client_id="user-service", client_secret=secret, issuer_uri=issuer.issuer
    )


async def test_active_token_gives_a_principal_and_is_cached_briefly(issuer: FakeIssuer, clock: FakeClock) -> None:
    validator = IntrospectionValidator(registration(issuer), audience="user-service", cache_ttl=30, clock=clock)
    token = issuer.issue()
    principals = await asyncio.gather(*(validator.validate(token) for _ in range(10)))
    assert {p.subject for p in principals} == {"baeldung"}
    assert principals[0].scopes == frozenset({"openid", "message.read"})
    assert issuer.hits["/introspect"] == 1
    issuer.revoked.add(token)
    await validator.validate(token)  # still cached
    clock.advance(31)
    with pytest.raises(InvalidToken, match="not active"):
        await validator.validate(token)
    assert issuer.hits["/introspect"] == 2
    await validator.aclose()


async def test_inactive_and_foreign_audience_tokens_are_invalid(issuer: FakeIssuer, clock: FakeClock) -> None:
    validator = IntrospectionValidator(registration(issuer), audience="user-service", clock=clock)
    with pytest.raises(InvalidToken):
        await validator.validate("opaque-and-unknown")
    with pytest.raises(InvalidToken):
        await validator.validate(issuer.issue({"aud": "billing"}))
    await validator.aclose()


async def test_introspection_failures_are_unavailable(issuer: FakeIssuer, clock: FakeClock) -> None:
    validator = IntrospectionValidator(registration(issuer, secret="wrong"), clock=clock)
    with pytest.raises(ValidatorUnavailable, match="401"):
        await validator.validate(issuer.issue())
    issuer.available = False
    other = IntrospectionValidator(registration(issuer), clock=clock)
    with pytest.raises(ValidatorUnavailable):
        await other.validate(issuer.issue())
    await validator.aclose()
    await other.aclose()


async def test_an_answer_beyond_the_size_bound_is_unavailable(issuer: FakeIssuer, clock: FakeClock) -> None:
    validator = IntrospectionValidator(registration(issuer), audience="user-service", cache_ttl=0, clock=clock)
    token = issuer.issue()
    issuer.padding = 100_000
    assert (await validator.validate(token)).subject == "baeldung"
    issuer.padding = 2 * MAX_RESPONSE_BYTES  # a few kilobytes in transit: compressed
    with pytest.raises(ValidatorUnavailable, match="ResponseTooLarge"):
        await validator.validate(token)
    await validator.aclose()
