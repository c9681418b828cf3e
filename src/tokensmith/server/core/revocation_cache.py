"""The token exchange's revocation check, answered from memory.

Every exchange must refuse a revoked subject (or actor) token, and asking the database on every exchange costs a
round trip that, under load, waits behind the writers. A :class:`RevocationCache` holds the jtis of the revoked,
unexpired tokens instead: loaded at first use, then brought up to date by a cheap incremental poll (the tokens
revoked since the last look, on an index) once ``refresh_interval`` has passed, and at once after this process
commits a revocation of its own (the store counts them). The poll is single flight and awaited by the checks
that find the set stale, so an answer never rests on data older than the interval.

What this trades: a revocation committed by *another* replica takes effect here within ``refresh_interval``
(default 1 s; 0 queries the database on every check). Introspection, userinfo and revocation keep reading the
database itself (``Store.is_token_revoked``).

The poll asks for revocations since the previous poll's start minus :data:`POLL_OVERLAP`: ``revoked_at`` is
stamped by the revoking replica's clock before its transaction commits, so a revocation may land in the table
with a time a little before our last look. The overlap covers transactions that slow and clocks that far apart.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Final

from tokensmith.server.clock import Clock
from tokensmith.store.base import Store

# How far back each poll looks beyond the previous one (slow revoking transactions, replicas' clock skew).
POLL_OVERLAP: Final = timedelta(seconds=60)
_BEGINNING: Final = datetime(1970, 1, 1, tzinfo=UTC)


class RevocationCache:
    def __init__(self, store: Store, *, refresh_interval: timedelta, clock: Clock) -> None:
        self._store = store
        self._interval = refresh_interval.total_seconds()
        self._clock = clock
        self._revoked: dict[str, datetime] = {}  # jti -> expires_at
        self._loaded = False
        self._watermark = _BEGINNING  # the start of the last successful poll, by our clock
        self._next_poll = 0.0  # time.monotonic() after which the set is stale
        self._commits_seen = -1  # the store's revocation count the last poll saw
        self._poll: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self._interval > 0

    async def is_revoked(self, jti: str) -> bool:
        if not self.enabled:
            return await self._store.is_token_revoked(jti)
        # Twice at most: a poll already in flight may have started before this process's latest revocation.
        for _ in range(2):
            if not self._stale():
                break
            await self._refresh()
        return jti in self._revoked

    def _stale(self) -> bool:
        return (
            not self._loaded
            or time.monotonic() >= self._next_poll
            or self._store.revocations_committed != self._commits_seen
        )

    async def _refresh(self) -> None:
        if self._poll is None:
            self._poll = asyncio.get_running_loop().create_task(self._poll_once())
        # Shielded: one cancelled request must not cancel the poll the others wait for.
        await asyncio.shield(self._poll)

    async def _poll_once(self) -> None:
        try:
            commits = self._store.revocations_committed
            started = self._clock()
            since = self._watermark - POLL_OVERLAP if self._loaded else _BEGINNING
            for record in await self._store.list_revoked_tokens(since, started):
                self._revoked[record.jti] = record.expires_at
            # An expired token is refused for its expiry before its revocation is looked at.
            expired = [jti for jti, expires_at in self._revoked.items() if expires_at <= started]
            for jti in expired:
                del self._revoked[jti]
            self._watermark = started
            self._commits_seen = commits
            self._loaded = True
            self._next_poll = time.monotonic() + self._interval
        finally:
            self._poll = None
