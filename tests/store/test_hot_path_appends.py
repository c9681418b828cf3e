"""The token endpoint's group-committed inserts (issued tokens, audit events) go to the driver as precompiled SQL and
tuples (store/appends.py): they must store exactly what SQLAlchemy's own execution stores, read back identically
through every read path on both databases, and keep the group commit's per-caller outcomes."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.dialects.sqlite.aiosqlite import dialect as aiosqlite_dialect
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError, StatementError
from tests.support.store_batches import batch_with_one_duplicate

from tokensmith.store.appends import (
    _REMEMBERED_TUPLES,
    Append,
    _fast_json_dumps,
    _json_encoder,
    _sqlite_datetime,
    _utc_text,
)
from tokensmith.store.engine import transactional
from tokensmith.store.records import AuditEvent, IssuedTokenRecord
from tokensmith.store.sql import SqlStore, _insert_audit_events, _insert_issued_tokens
from tokensmith.store.tables import audit_events, issued_tokens

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)  # microsecond 0: SQLite's text must still carry ".000000"
PLUS_TWO = timezone(timedelta(hours=2))

# Times as callers may hand them over: UTC with and without microseconds, other offsets, a named zone, old dates.
TIMES = [
    NOW,
    datetime(2026, 11, 26, 14, 30, 5, 250000, tzinfo=PLUS_TWO),
    datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=ZoneInfo("Europe/Paris")),
    datetime(2026, 11, 1, 1, 30, 0, 1, tzinfo=ZoneInfo("America/New_York")),
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
]


def token(jti: str, issued_at: datetime = NOW, **changes: Any) -> IssuedTokenRecord:
    record = IssuedTokenRecord(
        jti=jti,
        kind="access_token",
        client_id="client-é",
        subject="alice",
        issued_at=issued_at,
        expires_at=utc(issued_at) + timedelta(minutes=5),
        grant_id="grant-1",
        parent_jti=None,
        actor_jti=None,
    )
    return replace(record, **changes)


def audit(number: int, occurred_at: datetime = NOW, **changes: Any) -> AuditEvent:
    event = AuditEvent(
        occurred_at=occurred_at,
        event="token_exchange",
        outcome="granted",
        client_id="client-1",
        subject="ålice",
        actor="svc" if number % 2 else None,
        audience=("message-service", "ünïcode") if number % 3 else (),
        scope=("message.read",),
        reason=None if number % 2 else 'refused: "quoted" \\ reason',
        details={"number": number, "ratio": 0.1, "big": 2**70, "flag": True, "none": None, "nested": {"a": ["é"]}},
    )
    return replace(event, **changes)


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def in_utc(record: Any) -> Any:
    """The record with its times in UTC, as the store returns them (and comparable with ==: an aware datetime in
    an ambiguous or skipped local hour never equals one in another zone)."""
    return replace(
        record, **{name: utc(value) for name, value in asdict(record).items() if isinstance(value, datetime)}
    )


# --- encoders: what SQLAlchemy's bind processors would produce, without a database --------------------------


@pytest.mark.parametrize("dialect", [aiosqlite_dialect(), asyncpg_dialect()], ids=["sqlite", "postgresql"])
def test_encoded_parameters_equal_sqlalchemys_bind_processing(dialect: Dialect) -> None:
    cases: list[tuple[Append[Any], Any]] = []
    tokens = Append[IssuedTokenRecord](_insert_issued_tokens, dialect)
    audit_keys = [name for name in asdict(audit(0)) if name != "id"]
    audits = Append[AuditEvent](_insert_audit_events, dialect, column_keys=audit_keys)
    for number, when in enumerate(TIMES):
        cases.append((tokens, token(f"t{number}", when, parent_jti="p", revoked_at=when + timedelta(seconds=1))))
        cases.append((tokens, token(f"u{number}", when)))
        cases.append((audits, audit(number, when)))
    compiled_statements = {
        id(tokens): _insert_issued_tokens.compile(dialect=dialect, for_executemany=True),
        id(audits): _insert_audit_events.compile(dialect=dialect, column_keys=audit_keys, for_executemany=True),
    }
    for append, record in cases:
        compiled = compiled_statements[id(append)]
        assert append.sql == compiled.string
        expected = []
        for name in compiled.positiontup or ():
            bind_type = compiled.binds[name].type
            process = bind_type.dialect_impl(dialect).bind_processor(dialect)
            value = getattr(record, name)
            expected.append(process(value) if process is not None else value)
        encoded = append.encode(record)
        assert encoded == tuple(expected)
        # Same types too (str stays str, an aware datetime stays aware, in UTC).
        assert [type(value) for value in encoded] == [type(value) for value in expected]
        assert [getattr(value, "tzinfo", None) for value in encoded] == [
            getattr(value, "tzinfo", None) for value in expected
        ]


def test_sqlite_times_are_text_in_sqlalchemys_storage_format() -> None:
    tokens = Append[IssuedTokenRecord](_insert_issued_tokens, aiosqlite_dialect())
    encoded = tokens.encode(token("t", TIMES[1]))
    assert "2026-11-26 12:30:05.250000" in encoded
    assert "2026-11-26 12:00:00.000000" in tokens.encode(token("t", NOW))


def test_sqlite_time_text_depends_only_on_the_instant_whatever_was_cached_before() -> None:
    utc = datetime(2026, 11, 26, 12, 30, 5, tzinfo=UTC)
    same_instants = [
        utc,
        utc.astimezone(PLUS_TWO),
        utc.astimezone(ZoneInfo("America/New_York")),
        datetime(2026, 11, 26, 12, 30, 5, tzinfo=timezone(timedelta(0))),  # UTC, but not the UTC singleton
    ]
    for order in (same_instants, same_instants[::-1]):
        _utc_text.cache_clear()
        assert {_sqlite_datetime(value) for value in order} == {"2026-11-26 12:30:05.000000"}
    # Another instant that compares unequal gets its own text, cached or not.
    assert _sqlite_datetime(utc + timedelta(microseconds=1)) == "2026-11-26 12:30:05.000001"


def test_equal_datetimes_of_different_instants_never_share_a_cached_text() -> None:
    # 02:30 on the night clocks go back in Berlin happens twice: fold=0 is 00:30 UTC, fold=1 is 01:30 UTC. Python
    # holds the two equal (same zone: wall time compared, fold ignored) and hashes them alike, so a cache keyed by
    # such datetimes would give the second the first's text; only UTC datetimes are cached.
    berlin = ZoneInfo("Europe/Berlin")
    first, second = datetime(2026, 10, 25, 2, 30, tzinfo=berlin), datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=berlin)
    assert first == second
    assert hash(first) == hash(second)
    for _ in range(2):
        assert _sqlite_datetime(first) == "2026-10-25 00:30:00.000000"
        assert _sqlite_datetime(second) == "2026-10-25 01:30:00.000000"


def test_a_datetime_subclass_is_not_served_a_cached_text() -> None:
    class Shifted(datetime):
        def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
            return "shifted"

    _utc_text.cache_clear()
    value = Shifted(2026, 11, 26, 12, 0, tzinfo=UTC)
    expected = _sqlite_datetime(value)  # whatever the uncached path makes of it, as before
    assert _utc_text.cache_info().currsize == 0
    assert _sqlite_datetime(NOW) == "2026-11-26 12:00:00.000000"  # equal to `value`, cached from a plain one
    assert _sqlite_datetime(value) == expected


def test_the_sqlite_time_text_cache_is_bounded() -> None:
    _utc_text.cache_clear()
    maxsize = _utc_text.cache_info().maxsize
    assert maxsize is not None
    for second in range(maxsize * 3):
        value = NOW + timedelta(seconds=second)
        assert _sqlite_datetime(value) == value.replace(tzinfo=None).isoformat(" ", "microseconds")
    assert _utc_text.cache_info().currsize == maxsize


@pytest.mark.parametrize(
    "value",
    [
        (),
        ("a", "ünïcode", 'quo"te', "back\\slash", "\u2028"),
        {"number": 1, "ratio": 0.1, "inf": float("inf"), "big": 2**70, "flag": False, "none": None},
        {"nested": {"list": [1, [2, {"é": "ß"}]]}, 3: "int key"},
        "just a string",
        None,
    ],
)
def test_fast_json_is_json_dumps(value: Any) -> None:
    assert _fast_json_dumps(value) == json.dumps(value)


def test_values_json_cannot_encode_are_refused_like_sqlalchemy_does() -> None:
    audits = Append[AuditEvent](_insert_audit_events, aiosqlite_dialect(), column_keys=["occurred_at", "details"])
    with pytest.raises(StatementError) as caught:
        audits.encode(audit(1, details={"not json": object()}))
    assert isinstance(caught.value.orig, TypeError)


# --- on both databases ----------------------------------------------------------------------------------------


async def test_issued_tokens_round_trip_through_every_read_path(store: SqlStore) -> None:
    records = []
    for number, when in enumerate(TIMES):
        records.append(token(f"live-{number}", when))
        records.append(token(f"revoked-{number}", when, revoked_at=when + timedelta(seconds=30), parent_jti="x"))
    await asyncio.gather(*(store.record_issued_token(record) for record in records))
    records = [in_utc(record) for record in records]

    for record in records:
        stored = await store.get_issued_token(record.jti)
        assert stored == record
        assert stored is not None
        assert stored.issued_at.tzinfo == UTC
        assert stored.revoked_at is None or stored.revoked_at.tzinfo == UTC
        assert await store.is_token_revoked(record.jti) is (record.revoked_at is not None)

    # list_revoked_tokens compares the stored times with bound ones (text on SQLite): the formats must agree.
    revoked = await store.list_revoked_tokens(datetime(900, 1, 1, tzinfo=UTC), datetime(900, 1, 1, tzinfo=UTC))
    assert {(r.jti, r.revoked_at, r.expires_at) for r in revoked} == {
        (r.jti, r.revoked_at, r.expires_at) for r in records if r.revoked_at is not None
    }
    since = utc(TIMES[1]) + timedelta(seconds=30)
    recent = await store.list_revoked_tokens(since, datetime(900, 1, 1, tzinfo=UTC))
    assert {r.jti for r in recent} == {r.jti for r in records if r.revoked_at is not None and r.revoked_at >= since}
    # The purge compares expires_at the same way.
    assert await store.purge_expired(utc(TIMES[1]) + timedelta(minutes=5)) == sum(
        1 for r in records if r.expires_at <= utc(TIMES[1]) + timedelta(minutes=5)
    )


async def test_audit_events_round_trip(store: SqlStore) -> None:
    events = [audit(number, when) for number, when in enumerate(TIMES)]
    for event in events:  # one at a time: ids follow the order
        await store.add_audit_event(event)
    stored = list(reversed(await store.list_audit_events(limit=100)))
    assert [replace(event, id=None) for event in stored] == [in_utc(event) for event in events]
    assert all(event.occurred_at.tzinfo == UTC for event in stored)
    assert all(isinstance(event.id, int) for event in stored)


async def test_stored_values_are_those_sqlalchemy_would_store(store: SqlStore) -> None:
    """The same record written through SQLAlchemy's ordinary execution and through the fast path: the raw column
    values (text and JSON text on SQLite) are identical."""
    for number, when in enumerate(TIMES):
        fast = token(f"fast-{number}", when, revoked_at=when, parent_jti="p", actor_jti="a")
        await store.record_issued_token(fast)
        await store.add_audit_event(audit(number, when, client_id=f"fast-{number}"))
        async with store.engine.begin() as connection:
            await connection.execute(insert(issued_tokens), asdict(replace(fast, jti=f"slow-{number}")))
            slow_event = asdict(audit(number, when, client_id=f"slow-{number}"))
            del slow_event["id"]
            await connection.execute(insert(audit_events), slow_event)

    columns = ", ".join(c.name for c in issued_tokens.c if c.name != "jti")
    audit_columns = ", ".join(c.name for c in audit_events.c if c.name not in ("id", "client_id"))
    async with store.engine.connect() as connection:
        for number in range(len(TIMES)):
            # text(): the driver's values as stored, without SQLAlchemy's result processing.
            fast_row, slow_row = [
                tuple(
                    (
                        await connection.execute(
                            text(f"SELECT {columns} FROM issued_tokens WHERE jti = :jti"), {"jti": jti}
                        )
                    ).one()
                )
                for jti in (f"fast-{number}", f"slow-{number}")
            ]
            assert fast_row == slow_row
            fast_audit, slow_audit = [
                tuple(
                    (
                        await connection.execute(
                            text(f"SELECT {audit_columns} FROM audit_events WHERE client_id = :client"),
                            {"client": client},
                        )
                    ).one()
                )
                for client in (f"fast-{number}", f"slow-{number}")
            ]
            assert fast_audit == slow_audit
    if store.dialect == "sqlite":
        assert isinstance(fast_row[3], str)  # issued_at, as text
        assert isinstance(fast_audit[5], str)  # audience, as JSON text


async def test_a_duplicate_jti_fails_only_its_own_caller_and_the_rest_of_the_batch_commits(
    store: SqlStore, store_url: str
) -> None:
    await store.record_issued_token(token("taken"))
    tokens = [token(f"t{i}") for i in range(10)]
    events = [audit(i, client_id=f"c{i}") for i in range(10)]
    results = await asyncio.gather(
        *(store.record_issued_token(t) for t in tokens[:5]),
        store.record_issued_token(token("taken", kind="id_token")),
        *(store.add_audit_event(e) for e in events),
        *(store.record_issued_token(t) for t in tokens[5:]),
        return_exceptions=True,
    )
    failures = [result for result in results if result is not None]
    assert len(failures) == 1
    assert results[5] is failures[0]
    assert isinstance(failures[0], IntegrityError)

    # Committed, as seen from another engine (no transaction left open on the pooled connection).
    other = SqlStore(store_url)
    try:
        for t in tokens:
            assert await other.get_issued_token(t.jti) == t
        taken = await other.get_issued_token("taken")
        assert taken is not None
        assert taken.kind == "access_token"  # the first one stays
        assert sorted(e.client_id or "" for e in await other.list_audit_events()) == sorted(f"c{i}" for i in range(10))
    finally:
        await other.close()
    # The store goes on writing after the failed batch.
    await asyncio.gather(store.record_issued_token(token("after-1")), store.record_issued_token(token("after-2")))
    assert await store.get_issued_token("after-2") == token("after-2")


async def test_a_naive_datetime_fails_its_caller_alone(store: SqlStore) -> None:
    results = await asyncio.gather(
        store.record_issued_token(token("ok-1")),
        store.record_issued_token(token("naive", issued_at=datetime(2026, 1, 1))),
        store.add_audit_event(audit(1, occurred_at=datetime(2026, 1, 1))),
        store.add_audit_event(audit(2)),
        store.record_issued_token(token("ok-2")),
        return_exceptions=True,
    )
    assert results[0] is None
    assert results[3] is None
    assert results[4] is None
    for failure in (results[1], results[2]):
        assert isinstance(failure, StatementError)
        assert isinstance(failure.orig, ValueError)
        assert "naive datetime" in str(failure.orig)
    assert await store.get_issued_token("ok-2") == token("ok-2")
    assert await store.get_issued_token("naive") is None
    assert [e.details["number"] for e in await store.list_audit_events()] == [2]


async def test_a_token_exchanged_from_a_revoked_actor_is_revoked_at_birth_in_a_batch(store: SqlStore) -> None:
    await store.record_issued_token(token("actor"))
    await store.record_issued_token(token("subject"))
    await store.revoke_token_lineage("actor", NOW)
    late = NOW + timedelta(seconds=3)
    await asyncio.gather(
        store.record_issued_token(token("via-actor", late, parent_jti="subject", actor_jti="actor")),
        store.record_issued_token(token("via-subject", late, parent_jti="subject")),
    )
    via_actor = await store.get_issued_token("via-actor")
    assert via_actor is not None
    assert via_actor.revoked_at == late
    assert await store.is_token_revoked("via-subject") is False


async def test_a_failed_batch_keeps_an_in_memory_database() -> None:
    # The single connection of ":memory:" is the database: a failed batch must roll back, not drop it.
    store = SqlStore("sqlite+aiosqlite:///:memory:")
    await store.initialize()
    try:
        await batch_with_one_duplicate(store, token("fresh"), token("taken"), audit(7))
        assert await store.get_issued_token("taken") == token("taken")
        assert await store.get_issued_token("fresh") == token("fresh")
        assert [e.details["number"] for e in await store.list_audit_events()] == [7]
    finally:
        await store.close()


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 6, 10])
async def test_a_flush_cancelled_mid_write_leaves_no_transaction_open(
    store: SqlStore, store_url: str, steps: int
) -> None:
    await store.record_issued_token(token("before"))
    writing = asyncio.ensure_future(store.record_issued_token(token("cancelled")))
    for _ in range(steps):  # into the flush: checkout, BEGIN, executemany, COMMIT...
        await asyncio.sleep(0)
    flusher = store._token_appends._flusher
    if flusher is not None:
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
    await asyncio.gather(writing, return_exceptions=True)
    # Whatever became of that row, the store writes on in committed transactions that others see, and no
    # transaction was left open on a pooled connection (on SQLite it would hold the write lock: "locked").
    await asyncio.gather(store.record_issued_token(token("after-1")), store.add_audit_event(audit(1)))
    other = SqlStore(store_url)
    try:
        await other.record_issued_token(token("from-other"))
        assert await other.get_issued_token("after-1") == token("after-1")
        assert await other.get_issued_token("before") == token("before")
    finally:
        await other.close()
    await store.record_issued_token(token("after-2"))
    assert await store.get_issued_token("from-other") == token("from-other")


async def test_a_flush_cancelled_while_its_insert_waits_for_a_lock_is_rolled_back(
    store: SqlStore, store_url: str
) -> None:
    # Another connection holds what the insert needs (SQLite: the write lock; PostgreSQL: the same primary key,
    # uncommitted), so the flush is cancelled inside the driver's executemany.
    other = SqlStore(store_url)
    try:
        async with transactional(other.engine).connect() as blocker:
            await blocker.execute(insert(issued_tokens), asdict(token("contended")))
            writing = asyncio.ensure_future(
                asyncio.gather(store.record_issued_token(token("contended")), store.add_audit_event(audit(5)))
            )
            await asyncio.sleep(0.3)
            flusher = store._token_appends._flusher
            assert flusher is not None
            assert not writing.done()
            flusher.cancel()
            await asyncio.sleep(0.1)
            await blocker.rollback()
        await asyncio.wait_for(asyncio.gather(flusher, writing, return_exceptions=True), 20)
        assert writing.cancelled() or isinstance(writing.exception(), asyncio.CancelledError)
        # Nothing of the cancelled flush was committed, and the store writes on.
        await asyncio.wait_for(store.record_issued_token(token("after")), 20)
        assert await other.get_issued_token("after") == token("after")
        assert await other.get_issued_token("contended") is None
        # On SQLite the event was in the cancelled flush; on PostgreSQL each table has flushes of its own.
        committed_events = [event.details["number"] for event in await other.list_audit_events()]
        assert committed_events == ([] if store.dialect == "sqlite" else [5])
        await other.record_issued_token(token("from-other"))
    finally:
        await other.close()


async def test_audit_events_added_together_commit_in_order_and_fail_alone(store: SqlStore) -> None:
    events = [audit(1), audit(2, occurred_at=datetime(2026, 1, 1)), audit(3), audit(4)]
    outcomes = await store.add_audit_events(events)
    assert [outcome is None for outcome in outcomes] == [True, False, True, True]
    assert isinstance(outcomes[1], StatementError)
    assert "naive datetime" in str(outcomes[1])
    stored = list(reversed(await store.list_audit_events()))
    assert [e.details["number"] for e in stored] == [1, 3, 4]
    assert [replace(e, id=None) for e in stored] == [in_utc(events[i]) for i in (0, 2, 3)]
    assert await store.add_audit_events([]) == []


@pytest.mark.postgres
async def test_a_connection_the_database_dropped_costs_one_retried_flush_and_no_row(
    postgres_database_url: str,
) -> None:
    # PostgreSQL's flushes use connections without the pre-ping (one round trip each, engine.py): when the server
    # has dropped one, its flush fails, the connection is discarded, and the rows are written again through the
    # main engine, which pings before use. The callers see nothing of it.
    store = SqlStore(postgres_database_url)
    await store.initialize()
    try:
        await asyncio.gather(store.record_issued_token(token("warm")), store.add_audit_event(audit(1)))
        async with store.engine.connect() as connection:
            dropped = await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            assert dropped.all(), "no pooled connection to drop"
        await asyncio.gather(store.record_issued_token(token("after-drop")), store.add_audit_event(audit(2)))
        await asyncio.gather(store.record_issued_token(token("later")), store.add_audit_event(audit(3)))
        for jti in ("warm", "after-drop", "later"):
            assert await store.get_issued_token(jti) == token(jti)
        assert sorted(e.details["number"] for e in await store.list_audit_events()) == [1, 2, 3]
    finally:
        await store.close()


def test_clock_times_with_microseconds_are_formatted_without_filling_the_cache() -> None:
    _utc_text.cache_clear()
    for micro in (1, 250_000, 999_999):
        value = NOW + timedelta(microseconds=micro)
        assert _sqlite_datetime(value) == value.replace(tzinfo=None).isoformat(" ", "microseconds")
    assert _utc_text.cache_info().currsize == 0


class Tag(str):
    """A str subclass: JSON writes it as the string it holds."""


def test_json_of_string_tuples_is_remembered_and_always_what_json_dumps_writes() -> None:
    encode = _json_encoder(aiosqlite_dialect())
    values: list[object] = [
        ("message-service",),
        ("message-service",),  # remembered now
        (Tag("message-service"),),  # equal to the remembered tuple, written alike
        ("a", "b"),
        (1,),  # not strings: never remembered, so True (equal to 1) cannot be served its text
        (True,),
        (1.0,),
        (["unhashable"],),
        {"mode": "impersonation"},
        [],
        (),
    ]
    for value in values:
        assert encode(value) == json.dumps(value)
    assert encode(None) is None


def test_the_remembered_json_of_tuples_is_bounded() -> None:
    encode = _json_encoder(aiosqlite_dialect())
    for number in range(3 * _REMEMBERED_TUPLES):
        value = (f"audience-{number}",)
        assert encode(value) == json.dumps(value)
