"""Group commit: many concurrent single-row inserts written together, in one transaction.

Every token request inserts a row (the issued token's lineage record) and every token exchange an audit event.
Written one by one, each insert is a transaction of its own: on SQLite a sync of the WAL to disk
(``synchronous=FULL``) and a turn at the file's single write lock, on PostgreSQL a commit. A :class:`GroupCommit`
has at most one flush in flight: rows submitted meanwhile wait in a queue and the next flush writes all of them in
one transaction, one commit for the lot.

Each caller still awaits the durability of its own row: :meth:`GroupCommit.submit` returns only once the
transaction holding that row has committed, with what ``write`` reported for that row (whether an insert that skips
a taken key went in, say), and raises what that write raised. When a batch fails, its rows are
written again one by one, so that one bad row (a duplicate key) fails only its own caller. ``write`` must leave
nothing committed when it fails (one transaction).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Row = TypeVar("Row")
Result = TypeVar("Result")


class GroupCommit(Generic[Row, Result]):
    """Batches rows; ``write`` inserts the rows it is given in one transaction and returns one result per row."""

    def __init__(self, write: Callable[[Sequence[Row]], Awaitable[Sequence[Result]]], *, max_batch: int = 500) -> None:
        self._write = write
        self._max_batch = max_batch
        self._queue: list[tuple[Row, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, row: Row) -> Result:
        """Insert ``row`` together with whatever else is queued; return its result once it is committed. A caller
        cancelled meanwhile stops waiting; its row is written (or not) all the same."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Result] = loop.create_future()
        self._queue.append((row, done))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush_all())
            self._flusher.add_done_callback(self._flusher_done)
        return await done

    async def drain(self) -> None:
        """Wait until every queued row is written (the store calls this before it closes)."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    def _flusher_done(self, flusher: asyncio.Task[None]) -> None:
        # A flusher cancelled before its first step never ran its body: cancel its callers here, or they would
        # wait for ever and, the flusher being still set, no row submitted later would ever be written.
        if self._flusher is flusher:
            self._flusher = None
            for _, done in self._queue:
                done.cancel()
            self._queue.clear()

    async def _flush_all(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    await self._flush(batch)
                except BaseException:
                    # Cancelled (the loop is shutting down): nobody may wait for ever for a row never written.
                    for _, done in (*batch, *self._queue):
                        done.cancel()
                    self._queue.clear()
                    raise
        finally:
            self._flusher = None

    async def _flush(self, batch: list[tuple[Row, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._write([row for row, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch[0][1], exc)
                return
            # Find out whose row failed: write them one by one, each caller gets its own outcome.
            for row, done in batch:
                try:
                    (result,) = await self._write([row])
                except Exception as row_exc:
                    _fail(done, row_exc)
                else:
                    _succeed(done, result)
        else:
            for (_, done), result in zip(batch, results, strict=True):
                _succeed(done, result)


# A future whose caller was cancelled meanwhile is done already: it takes no outcome.
def _succeed(done: asyncio.Future[Result], result: Result) -> None:
    if not done.done():
        done.set_result(result)


def _fail(done: asyncio.Future[Result], error: Exception) -> None:
    if not done.done():
        done.set_exception(error)
