"""GroupCommit: concurrent inserts share one write, each caller waits for its own row and gets its own error."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tokensmith.store.group_commit import GroupCommit


class RecordingWriter:
    """A write function that remembers each batch; rows named "bad" fail, and ``gate`` can hold a write."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        await self.gate.wait()
        names = [str(row["name"]) for row in rows]
        self.batches.append(names)
        if "bad" in names:
            raise ValueError("duplicate key")
        return [f"wrote {name}" for name in names]


def row(name: str) -> Mapping[str, Any]:
    return {"name": name}


async def test_concurrent_rows_are_written_in_one_batch_each_caller_getting_its_rows_result() -> None:
    writer = RecordingWriter()
    commit = GroupCommit(writer)
    results = await asyncio.gather(*(commit.submit(row(f"r{i}")) for i in range(20)))
    assert writer.batches == [[f"r{i}" for i in range(20)]]
    assert results == [f"wrote r{i}" for i in range(20)]


async def test_rows_submitted_during_a_flush_wait_for_the_next_one() -> None:
    writer = RecordingWriter()
    writer.gate.clear()
    commit = GroupCommit(writer)
    first = asyncio.ensure_future(commit.submit(row("a")))
    await asyncio.sleep(0)  # the flush of "a" starts and blocks on the gate
    later = [asyncio.ensure_future(commit.submit(row(name))) for name in ("b", "c")]
    await asyncio.sleep(0)
    assert not first.done()  # a caller returns only once its row is written
    writer.gate.set()
    await asyncio.gather(first, *later)
    assert writer.batches == [["a"], ["b", "c"]]


async def test_a_failing_row_fails_only_its_own_caller() -> None:
    writer = RecordingWriter()
    commit = GroupCommit(writer)
    results = await asyncio.gather(
        commit.submit(row("ok-1")), commit.submit(row("bad")), commit.submit(row("ok-2")), return_exceptions=True
    )
    assert results[0] == "wrote ok-1"
    assert results[2] == "wrote ok-2"
    assert isinstance(results[1], ValueError)
    # The batch failed, then each row was written alone to find whose it was.
    assert writer.batches == [["ok-1", "bad", "ok-2"], ["ok-1"], ["bad"], ["ok-2"]]


async def test_a_single_row_error_reaches_its_caller() -> None:
    commit = GroupCommit(RecordingWriter())
    with pytest.raises(ValueError, match="duplicate key"):
        await commit.submit(row("bad"))


async def test_batches_are_bounded() -> None:
    writer = RecordingWriter()
    commit = GroupCommit(writer, max_batch=3)
    await asyncio.gather(*(commit.submit(row(f"r{i}")) for i in range(7)))
    assert [len(batch) for batch in writer.batches] == [3, 3, 1]


async def test_drain_waits_for_rows_of_cancelled_callers() -> None:
    writer = RecordingWriter()
    writer.gate.clear()
    commit = GroupCommit(writer)
    caller = asyncio.ensure_future(commit.submit(row("a")))
    await asyncio.sleep(0)
    caller.cancel()
    writer.gate.set()
    await commit.drain()
    assert writer.batches == [["a"]]
    assert caller.cancelled()


async def test_a_flusher_cancelled_before_it_ran_neither_strands_its_callers_nor_later_rows() -> None:
    writer = RecordingWriter()
    commit = GroupCommit(writer)
    caller = asyncio.ensure_future(commit.submit(row("a")))
    await asyncio.sleep(0)  # "a" is queued and its flusher created, not yet started
    flusher = commit._flusher
    assert flusher is not None
    flusher.cancel()
    await asyncio.gather(flusher, return_exceptions=True)
    await asyncio.wait_for(asyncio.gather(caller, return_exceptions=True), 1)
    assert caller.cancelled()
    await asyncio.wait_for(commit.submit(row("b")), 1)
    assert writer.batches == [["b"]]
