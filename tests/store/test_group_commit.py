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

    async def __call__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        await self.gate.wait()
        names = [str(row["name"]) for row in rows]
        self.batches.append(names)
        if "bad" in names:
            raise ValueError("duplicate key")


def row(name: str) -> Mapping[str, Any]:
    return {"name": name}


async def test_concurrent_rows_are_written_in_one_batch() -> None:
    writer = RecordingWriter()
    commit = GroupCommit(writer)
    await asyncio.gather(*(commit.submit(row(f"r{i}")) for i in range(20)))
    assert writer.batches == [[f"r{i}" for i in range(20)]]


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
    assert results[0] is None
    assert results[2] is None
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


async def test_rows_of_a_failed_batch_are_written_again_by_the_careful_writer() -> None:
    fast = RecordingWriter()
    alone: list[str] = []

    async def write_alone(one: Mapping[str, Any]) -> None:
        alone.append(str(one["name"]))
        if one["name"] == "bad":
            raise KeyError("reported by the careful writer")

    commit = GroupCommit(fast, write_alone=write_alone)
    results = await asyncio.gather(
        commit.submit(row("ok-1")), commit.submit(row("bad")), commit.submit(row("ok-2")), return_exceptions=True
    )
    assert results[0] is None
    assert results[2] is None
    # The caller gets the careful writer's error, not the fast one's (ValueError).
    assert isinstance(results[1], KeyError)
    assert fast.batches == [["ok-1", "bad", "ok-2"]]
    assert alone == ["ok-1", "bad", "ok-2"]


async def test_a_failed_batch_of_one_is_written_again_by_the_careful_writer() -> None:
    alone: list[str] = []

    async def write_alone(one: Mapping[str, Any]) -> None:
        alone.append(str(one["name"]))

    fast = RecordingWriter()
    commit = GroupCommit(fast, write_alone=write_alone)
    await commit.submit(row("bad"))  # the fast write failed, the careful one succeeded
    assert fast.batches == [["bad"]]
    assert alone == ["bad"]
    await commit.submit(row("good"))
    assert fast.batches == [["bad"], ["good"]]
    assert alone == ["bad"]


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


async def test_submit_many_reports_each_rows_outcome_in_order_with_the_rows_of_other_callers() -> None:
    writer = RecordingWriter()
    commit = GroupCommit(writer)
    many, alone = await asyncio.gather(
        commit.submit_many([row("m-1"), row("bad"), row("m-2")]), commit.submit(row("s")), return_exceptions=True
    )
    assert alone is None
    assert isinstance(many, list)
    assert many[0] is None
    assert isinstance(many[1], ValueError)
    assert many[2] is None
    # One batch with the other caller's row, then each row alone to find whose failed.
    assert writer.batches == [["m-1", "bad", "m-2", "s"], ["m-1"], ["bad"], ["m-2"], ["s"]]


async def test_submit_many_of_nothing_writes_nothing() -> None:
    writer = RecordingWriter()
    assert await GroupCommit(writer).submit_many([]) == []
    assert writer.batches == []


async def test_submit_many_whose_caller_gave_up_still_writes_its_rows() -> None:
    writer = RecordingWriter()
    writer.gate.clear()
    commit = GroupCommit(writer)
    caller = asyncio.ensure_future(commit.submit_many([row("a"), row("b")]))
    await asyncio.sleep(0)
    caller.cancel()
    await asyncio.gather(caller, return_exceptions=True)
    assert caller.cancelled()
    writer.gate.set()
    await asyncio.wait_for(commit.drain(), 1)
    assert writer.batches == [["a", "b"]]


async def test_submit_many_reports_rows_its_cancelled_flusher_never_wrote_as_cancelled() -> None:
    writer = RecordingWriter()
    commit = GroupCommit(writer)
    caller = asyncio.ensure_future(commit.submit_many([row("a"), row("b")]))
    await asyncio.sleep(0)  # queued, the flusher created but not started
    flusher = commit._flusher
    assert flusher is not None
    flusher.cancel()
    await asyncio.gather(flusher, return_exceptions=True)
    outcomes = await asyncio.wait_for(caller, 1)
    assert [type(outcome) for outcome in outcomes] == [asyncio.CancelledError, asyncio.CancelledError]
    assert writer.batches == []
