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
from collections.abc import Callable, Iterable

import bcrypt
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import Argon2Error, InvalidHashError

from tokensmith.config.server import UserConfig

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


# The argon2 hash to check against when no configured user has a real hash (see UserPasswordChecker).
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def _dummy_like(encoded: str) -> str | None:
    """A hash of a random password with the scheme and cost parameters of ``encoded`` (None if unreadable)."""
    throwaway = secrets.token_urlsafe(16)
    try:
        if encoded.startswith("{argon2}"):
            hasher = PasswordHasher.from_parameters(extract_parameters(encoded[len("{argon2}") :]))
            return "{argon2}" + hasher.hash(throwaway)
        if encoded.startswith("{bcrypt}"):
            rounds = int(encoded[len("{bcrypt}") :].split("$")[2])
            return "{bcrypt}" + bcrypt.hashpw(throwaway.encode(), bcrypt.gensalt(rounds=rounds)).decode("ascii")
    except (ValueError, IndexError, InvalidHashError):
        return None
    return None


class UserPasswordChecker:
    """Checks users' passwords so that every failed login costs about the same, whoever the username names.

    An unknown username is checked against a dummy hash with the scheme and cost of the configured users'
    hashes; a ``{noop}`` user (demos) is checked in constant time *and* against that dummy. Otherwise the time of
    a failed login would tell an attacker which usernames exist.
    """

    def __init__(self, users: Iterable[UserConfig]) -> None:
        hashed = (user.password for user in users if not user.password.startswith("{noop}"))
        self.dummy_hash = next((d for d in map(_dummy_like, hashed) if d is not None), _DUMMY_HASH)

    async def verify(self, user: UserConfig | None, presented: str) -> bool:
        """Verify off the event loop; ``user=None`` (unknown username) spends the same effort and fails."""
        if user is None or user.password.startswith("{noop}"):
            await asyncio.to_thread(verify_password, self.dummy_hash, presented)
            return user is not None and verify_password(user.password, presented)
        return await asyncio.to_thread(verify_password, user.password, presented)


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
        # Checks under way, by cache key: concurrent first requests with one credential share one hash check
        # instead of each paying bcrypt/argon2 (single flight).
        self._in_flight: dict[bytes, asyncio.Task[bool]] = {}

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
        check = self._in_flight.get(key)
        if check is None:
            check = asyncio.ensure_future(asyncio.to_thread(verify_password, encoded, presented))
            self._in_flight[key] = check
            check.add_done_callback(lambda _: self._in_flight.pop(key, None))
        # Shielded: a cancelled request must not cancel the check the others wait for.
        ok = await asyncio.shield(check)
        if ok:
            self._verified[key] = self._clock() + self._ttl
            self._verified.move_to_end(key)
            while len(self._verified) > self._max_entries:
                self._verified.popitem(last=False)
        return ok

    def __len__(self) -> int:
        return len(self._verified)
