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
from typing import Final, Generic, Protocol, TypeVar

Row = TypeVar("Row")


class _Waiter(Protocol):
    """Who waits for one queued row: an ``asyncio.Future`` (:meth:`GroupCommit.submit`) or a :class:`_Slot`."""

    def done(self) -> bool: ...
    def set_result(self, result: None, /) -> None: ...
    def set_exception(self, exception: BaseException, /) -> None: ...
    def cancel(self) -> bool: ...


_PENDING: Final = object()


class _Batch:
    """The rows of one :meth:`GroupCommit.submit_many`: their outcomes, in order, and one future set once every
    row's outcome is known. One future and one wake-up for the whole batch: a future per row gathered together
    cost its caller (the audit log's write-behind buffer) a Python callback per row."""

    __slots__ = ("future", "outcomes", "remaining")

    def __init__(self, future: asyncio.Future[list[BaseException | None]], size: int) -> None:
        self.future = future
        self.outcomes: list[object] = [_PENDING] * size
        self.remaining = size

    def settle(self, index: int, outcome: BaseException | None) -> None:
        if self.outcomes[index] is not _PENDING:
            return
        self.outcomes[index] = outcome
        self.remaining -= 1
        if self.remaining == 0 and not self.future.done():
            self.future.set_result(self.outcomes)  # type: ignore[arg-type]  # no _PENDING is left


class _Slot:
    """The waiter of one row of a :class:`_Batch`: what a future would be told goes into the batch's list (a
    cancelled row's outcome is a ``CancelledError``, as ``asyncio.gather(..., return_exceptions=True)`` reports)."""

    __slots__ = ("_batch", "_index")

    def __init__(self, batch: _Batch, index: int) -> None:
        self._batch = batch
        self._index = index

    def done(self) -> bool:
        # A caller cancelled meanwhile waits no more, like a cancelled future.
        return self._batch.outcomes[self._index] is not _PENDING or self._batch.future.done()

    def set_result(self, result: None, /) -> None:
        self._batch.settle(self._index, None)

    def set_exception(self, exception: BaseException, /) -> None:
        self._batch.settle(self._index, exception)

    def cancel(self) -> bool:
        self._batch.settle(self._index, asyncio.CancelledError())
        return True


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
        self._queue: list[tuple[Row, _Waiter]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, row: Row) -> None:
        """Insert ``row`` together with whatever else is queued; return once it is committed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._enqueue(row, done, loop)
        await done

    async def submit_many(self, rows: Sequence[Row]) -> list[BaseException | None]:
        """Insert ``rows`` like as many :meth:`submit` calls at once; return once all are settled, each row's
        error (or None) in order. One future for all of them, no task per row."""
        if not rows:
            return []
        loop = asyncio.get_running_loop()
        batch = _Batch(loop.create_future(), len(rows))
        for index, row in enumerate(rows):
            self._enqueue(row, _Slot(batch, index), loop)
        # Cancelled, the caller stops waiting; its rows are written (or not) all the same, as with submit.
        return await batch.future

    def _enqueue(self, row: Row, done: _Waiter, loop: asyncio.AbstractEventLoop) -> None:
        self._queue.append((row, done))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush_all())
            self._flusher.add_done_callback(self._flusher_done)

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

    async def _flush(self, batch: list[tuple[Row, _Waiter]]) -> None:
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


def _settle(done: _Waiter, error: BaseException | None) -> None:
    # A caller that was cancelled meanwhile no longer waits; its row is written (or not) all the same.
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
