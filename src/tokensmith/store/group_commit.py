"""Group commit: many concurrent single-row inserts written together, in one transaction.

Under load every request of the token endpoint inserts a row (the issued token's lineage record) and many add an
audit event. Written one by one, each insert pays a pool checkout, a thread hop (aiosqlite), BEGIN and COMMIT
(an fsync on SQLite), and on SQLite the writers of one process queue for the file's single write lock, sleeping
in its busy handler. A :class:`GroupCommit` has at most one flush in flight: rows submitted meanwhile wait in a
queue and the next flush writes all of them in one transaction (one ``executemany`` per table).

Each caller still awaits the durability of its own row: :meth:`GroupCommit.submit` returns only once the
transaction holding that row has committed, and raises what that write raised. When a batch fails, its rows are
written again one by one, so that one bad row (a duplicate key) fails only its own caller. A failed batch must
have left nothing committed (one transaction).

The rows written again one by one may go through a different writer (``write_alone``): the batch writer can then be
a fast path that leaves error reporting to a slower, careful one, which runs only when something failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Row = TypeVar("Row")


class GroupCommit(Generic[Row]):
    """Batches rows; ``write`` inserts the rows it is given in one transaction."""

    def __init__(
        self,
        write: Callable[[Sequence[Row]], Awaitable[None]],
        *,
        write_alone: Callable[[Row], Awaitable[None]] | None = None,
        max_batch: int = 500,
    ) -> None:
        self._write = write
        self._write_alone = write_alone
        self._max_batch = max_batch
        self._queue: list[tuple[Row, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, row: Row) -> None:
        """Insert ``row`` together with whatever else is queued; return once it is committed."""
        await self._enqueue(row, asyncio.get_running_loop())

    async def submit_many(self, rows: Sequence[Row]) -> list[BaseException | None]:
        """Insert ``rows`` like as many :meth:`submit` calls at once; return once all are settled, each row's
        error (or None) in order. Cheaper than gathering ``submit`` coroutines: no task per row."""
        loop = asyncio.get_running_loop()
        waiting = [self._enqueue(row, loop) for row in rows]
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        return [outcome if isinstance(outcome, BaseException) else None for outcome in outcomes]

    def _enqueue(self, row: Row, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        done: asyncio.Future[None] = loop.create_future()
        self._queue.append((row, done))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush_all())
            self._flusher.add_done_callback(self._flusher_done)
        return done

    async def drain(self) -> None:
        """Wait until every queued row is written (the store calls this before it closes)."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    def _flusher_done(self, flusher: asyncio.Task[None]) -> None:
        # A flusher cancelled before its first step never ran its body (whose `finally` forgets it and whose
        # `except` cancels the waiting callers): without this, its callers would wait forever and, the flusher
        # being still set, no row submitted later would ever be written.
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
                    # Cancelled (the loop is shutting down): nobody may wait forever for a row never written.
                    for _, done in (*batch, *self._queue):
                        done.cancel()
                    self._queue.clear()
                    raise
        finally:
            self._flusher = None

    async def _flush(self, batch: list[tuple[Row, asyncio.Future[None]]]) -> None:
        try:
            await self._write([row for row, _ in batch])
        except Exception as exc:
            if len(batch) == 1 and self._write_alone is None:
                _settle(batch[0][1], exc)
                return
            # Find out whose row failed: write them one by one, each caller gets its own outcome.
            for row, done in batch:
                try:
                    if self._write_alone is None:
                        await self._write([row])
                    else:
                        await self._write_alone(row)
                except Exception as row_exc:
                    _settle(done, row_exc)
                else:
                    _settle(done, None)
        else:
            for _, done in batch:
                _settle(done, None)


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    # A caller that was cancelled meanwhile no longer waits; its row is written (or not) all the same.
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
