from __future__ import annotations

import time

from joserfc import jwt
from joserfc.jwk import RSAKey
from tests.support.fake_issuer import FakeIssuer

from tokensmith.resource import TokenValidator


async def test_validating_with_a_cached_key_costs_about_joserfcs_own_verify(issuer: FakeIssuer) -> None:
    """No I/O, key parsing or registry building per call: within 1.5x of ``jwt.decode`` with a parsed key.

    Interleaved rounds, best of each, so that a busy machine slows both sides alike.
    """
    validator = TokenValidator(issuer=issuer.issuer, audience="user-service")
    token = issuer.issue()
    await validator.validate(token)  # fetches and parses the keys once
    key = RSAKey.import_key(issuer.key().as_dict(private=False))
    rounds, calls = 7, 100
    ours, theirs = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            jwt.decode(token, key, algorithms=["RS256"])
        theirs.append(time.perf_counter() - started)
        started = time.perf_counter()
        for _ in range(calls):
            await validator.validate(token)
        ours.append(time.perf_counter() - started)
    assert issuer.hits["/jwks"] == 1
    assert min(ours) < 1.5 * min(theirs), (min(ours), min(theirs))
    await validator.aclose()
