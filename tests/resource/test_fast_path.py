"""Validation with cached keys does no I/O per call: the key set is fetched once, then every token is checked
against the keys already held (the cost itself is measured by `make bench`, not here)."""

from __future__ import annotations

from tests.support.fake_issuer import FakeIssuer

from tokensmith.resource import TokenValidator


async def test_validating_many_tokens_fetches_the_key_set_once(issuer: FakeIssuer) -> None:
    validator = TokenValidator(issuer=issuer.issuer, audience="user-service")
    try:
        for _ in range(50):
            principal = await validator.validate(issuer.issue())
            assert principal.subject
        assert issuer.hits["/jwks"] == 1
    finally:
        await validator.aclose()
