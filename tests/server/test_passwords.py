"""Secret hashes in Spring's {id} format, and the cache of verified client secrets."""

from __future__ import annotations

import bcrypt

from tokensmith.config.server import UserConfig
from tokensmith.server.core.passwords import SecretVerifier, UserPasswordChecker, hash_password, verify_password


def test_noop_bcrypt_and_argon2() -> None:
    assert verify_password("{noop}secret", "secret")
    assert not verify_password("{noop}secret", "Secret")
    hashed = "{bcrypt}" + bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    assert verify_password(hashed, "pw")
    assert not verify_password(hashed, "px")
    assert not verify_password(hashed, "x" * 100)  # over bcrypt's 72 bytes: refused, not an exception
    argon = hash_password("pw")
    assert argon.startswith("{argon2}$argon2id$")
    assert verify_password(argon, "pw")
    assert not verify_password(argon, "px")


def test_malformed_hashes_never_match() -> None:
    assert not verify_password("{bcrypt}not-a-hash", "x")
    assert not verify_password("{argon2}not-a-hash", "x")
    assert not verify_password("{sha256}abc", "x")


async def test_unknown_user_fails() -> None:
    bob = UserConfig(username="bob", password="{noop}pw")
    checker = UserPasswordChecker([bob])
    assert not await checker.verify(None, "anything")
    assert not await checker.verify(None, "pw")
    assert await checker.verify(bob, "pw")


async def test_cache_remembers_successes_only_and_expires() -> None:
    now = [0.0]
    verifier = SecretVerifier(time_to_live=10, max_entries=2, clock=lambda: now[0])
    hashed = hash_password("s3cret")
    assert not await verifier.verify("c", hashed, "wrong")
    assert len(verifier) == 0
    assert await verifier.verify("c", hashed, "s3cret")
    assert len(verifier) == 1
    assert await verifier.verify("c", hashed, "s3cret")
    assert not await verifier.verify("c", hashed, "wrong")  # a cached success never admits another secret
    assert not await verifier.verify("other", hashed, "wrong")
    now[0] = 11.0
    assert await verifier.verify("c", hashed, "s3cret")  # expired entry: verified again, still fine
    assert await verifier.verify("d", hashed, "s3cret")
    assert await verifier.verify("e", hashed, "s3cret")
    assert len(verifier) == 2  # bounded


def test_cache_never_holds_the_secret() -> None:
    verifier = SecretVerifier()
    key = verifier._cache_key("c", "{argon2}h", "my-secret")
    assert b"my-secret" not in key
    assert key != SecretVerifier()._cache_key("c", "{argon2}h", "my-secret")  # per-process random key
