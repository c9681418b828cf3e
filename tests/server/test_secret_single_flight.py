"""SecretVerifier: concurrent first requests with one hashed secret share a single bcrypt/argon2 check."""

from __future__ import annotations

import asyncio

import pytest

from tokensmith.server.core import passwords
from tokensmith.server.core.passwords import SecretVerifier, hash_password


@pytest.fixture
def hash_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    presented: list[str] = []
    original = passwords.verify_password

    def counting(encoded: str, secret: str) -> bool:
        presented.append(secret)
        return original(encoded, secret)

    monkeypatch.setattr(passwords, "verify_password", counting)
    return presented


async def test_concurrent_misses_of_one_credential_hash_once(hash_checks: list[str]) -> None:
    verifier = SecretVerifier()
    encoded = hash_password("s3cret")
    results = await asyncio.gather(*(verifier.verify("c", encoded, "s3cret") for _ in range(8)))
    assert results == [True] * 8
    assert hash_checks == ["s3cret"]
    assert await verifier.verify("c", encoded, "s3cret")  # then the cache answers
    assert hash_checks == ["s3cret"]


async def test_different_secrets_are_checked_separately(hash_checks: list[str]) -> None:
    verifier = SecretVerifier()
    encoded = hash_password("s3cret")
    results = await asyncio.gather(
        verifier.verify("c", encoded, "s3cret"),
        verifier.verify("c", encoded, "wrong"),
        verifier.verify("c", encoded, "wrong"),
    )
    assert results == [True, False, False]
    assert sorted(hash_checks) == ["s3cret", "wrong"]
    # A failure is not remembered: the next attempt is checked again.
    assert not await verifier.verify("c", encoded, "wrong")
    assert sorted(hash_checks) == ["s3cret", "wrong", "wrong"]


async def test_a_cancelled_request_does_not_cancel_the_shared_check(hash_checks: list[str]) -> None:
    verifier = SecretVerifier()
    encoded = hash_password("s3cret")
    first = asyncio.ensure_future(verifier.verify("c", encoded, "s3cret"))
    second = asyncio.ensure_future(verifier.verify("c", encoded, "s3cret"))
    await asyncio.sleep(0)
    first.cancel()
    assert await second
    assert hash_checks == ["s3cret"]
