"""Password and client-secret hashes in Spring's ``DelegatingPasswordEncoder`` format.

``{noop}plain`` (demos), ``{bcrypt}$2b$...`` and ``{argon2}$argon2id$...``. New hashes are argon2id.

bcrypt and argon2 cost tens of milliseconds by design. A confidential client authenticates on every token
request, so successful (client, secret) checks are remembered for a few minutes in a small cache keyed by an
HMAC of the presented secret under a per-process random key: the cache never holds a secret, and a different
secret can never hit an entry.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error, InvalidHashError

_ARGON2 = PasswordHasher()  # argon2id with the library's RFC 9106 "low memory" defaults


def hash_password(password: str) -> str:
    """A new ``{argon2}`` hash, the format the configuration file expects."""
    return "{argon2}" + _ARGON2.hash(password)


def verify_password(encoded: str, presented: str) -> bool:
    """True when ``presented`` matches the ``{scheme}hash`` string. Unknown schemes and bad hashes never match."""
    if encoded.startswith("{noop}"):
        return hmac.compare_digest(encoded[len("{noop}") :].encode("utf-8"), presented.encode("utf-8"))
    if encoded.startswith("{bcrypt}"):
        try:
            return bcrypt.checkpw(presented.encode("utf-8"), encoded[len("{bcrypt}") :].encode("utf-8"))
        except ValueError:  # malformed hash, or a password bcrypt refuses (over 72 bytes)
            return False
    if encoded.startswith("{argon2}"):
        try:
            return _ARGON2.verify(encoded[len("{argon2}") :], presented)
        except (Argon2Error, InvalidHashError):
            return False
    return False


# A real argon2 hash to check against when the username is unknown, so that an unknown user costs as much
# time as a wrong password and response times do not reveal which usernames exist.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


async def verify_user_password(encoded: str | None, presented: str) -> bool:
    """Verify off the event loop; ``encoded=None`` (unknown user) spends the same effort and fails."""
    if encoded is None:
        await asyncio.to_thread(verify_password, _DUMMY_HASH, presented)
        return False
    if encoded.startswith("{noop}"):
        return verify_password(encoded, presented)
    return await asyncio.to_thread(verify_password, encoded, presented)


class SecretVerifier:
    """Verifies client secrets, remembering recent successes (bounded size, short lifetime)."""

    def __init__(
        self,
        *,
        max_entries: int = 1024,
        time_to_live: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = secrets.token_bytes(32)
        self._max_entries = max_entries
        self._ttl = time_to_live
        self._clock = clock
        self._verified: OrderedDict[bytes, float] = OrderedDict()

    def _cache_key(self, client_id: str, encoded: str, presented: str) -> bytes:
        # The stored hash is part of the key: a changed configuration never reuses an old success.
        message = "\x00".join((client_id, encoded, presented)).encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    async def verify(self, client_id: str, encoded: str, presented: str) -> bool:
        if encoded.startswith("{noop}"):
            return verify_password(encoded, presented)
        key = self._cache_key(client_id, encoded, presented)
        now = self._clock()
        expires = self._verified.get(key)
        if expires is not None and expires > now:
            return True
        ok = await asyncio.to_thread(verify_password, encoded, presented)
        if ok:
            self._verified[key] = now + self._ttl
            self._verified.move_to_end(key)
            while len(self._verified) > self._max_entries:
                self._verified.popitem(last=False)
        return ok

    def __len__(self) -> int:
        return len(self._verified)
