"""The token endpoint's hot-path inserts, compiled once per dialect and run as the driver's own ``executemany``.

Every token request appends an issued-token row and usually an audit event (group-committed, group_commit.py).
Run as ``connection.execute(statement, list_of_dicts)``, SQLAlchemy does its work per row of every flush: it turns
each dict into positional parameters and runs each value through its type's bind processor, on top of a fixed
cost per statement (execution context, result, and on aiosqlite three thread hops: cursor, execute, close). That
came to about a hundred microseconds of event-loop CPU per token request.

An :class:`Append` does the per-statement work once: the statement is compiled for the engine's dialect (driver
SQL and the order of its parameters, repeated ones included) and each record becomes a tuple in that order through
encoders chosen once per column. They produce exactly what SQLAlchemy's bind processors produce (a test compares
them), so every read path sees the same values: on SQLite a time is naive UTC text in SQLAlchemy's DATETIME format,
on PostgreSQL an aware UTC datetime; JSON is ``json.dumps`` text on both (PostgreSQL casts it, ``$n::JSON``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from sqlalchemy import JSON
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import StatementError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

from tokensmith.json_text import json_dumper
from tokensmith.store.tables import UTCDateTime, aware_utc

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Record = TypeVar("Record", bound="DataclassInstance")
Encoder = Callable[[Any], Any]

# SQLAlchemy's SQLite DATETIME storage format, microseconds always written: isoformat(" ", "microseconds") gives
# the same text (a test holds them equal), several times faster than the %-format SQLAlchemy uses.
_SQLITE_TIMESPEC: Final = "microseconds"


def _sqlite_datetime(value: datetime | None) -> str | None:
    """Naive UTC text, the format SQLite stores and compares (``expires_at < :now`` is a text comparison)."""
    if value is None:
        return None
    if value.tzinfo is UTC and type(value) is datetime:
        if value.microsecond:
            # A time read from the clock (an audit event's): never seen twice, so not worth a cache entry (a miss
            # costs twice the formatting). Its UTC offset is "+00:00", cut off rather than removed by replace().
            return value.isoformat(" ", _SQLITE_TIMESPEC)[:-_UTC_OFFSET_LENGTH]
        return _utc_text(value)
    return aware_utc(value).replace(tzinfo=None).isoformat(" ", _SQLITE_TIMESPEC)


_UTC_OFFSET_LENGTH: Final = len("+00:00")


# Tokens' issued_at/expires_at are whole seconds and repeat across the rows of a flush, so their text is
# remembered. Only exact `datetime`s whose tzinfo is the UTC singleton come here: datetimes compare equal (and hash
# alike) by instant across time zones but by wall time within one zone, ignoring `fold`, so a DST-ambiguous local
# time and its other reading would share a key; within UTC, equal means the same instant, and the text depends on
# nothing else. Bounded: a few seconds' worth of distinct values.
@functools.lru_cache(maxsize=256)
def _utc_text(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat(" ", _SQLITE_TIMESPEC)


def _native_datetime(value: datetime | None) -> datetime | None:
    """An aware UTC datetime, for drivers with a native ``timestamptz`` (asyncpg). Not cached: for the UTC
    values of the hot path it is an identity check, cheaper than a cache lookup."""
    return None if value is None else aware_utc(value)


# json.dumps with its default arguments, its C encoder built once (see tokensmith.json_text).
_fast_json_dumps: Final = json_dumper()


def _json_encoder(dialect: Dialect) -> Encoder:
    # The serializer the engine was created with, as SQLAlchemy's JSON type would use it; None stays SQL NULL
    # (the columns are JSON(none_as_null=True)).
    configured: Callable[[Any], str] | None = getattr(dialect, "_json_serializer", None)
    serialize = _fast_json_dumps if configured in (None, json.dumps) else configured

    # An audit event's audience and scope are tuples of strings, the same few over and over: their text is
    # remembered. Only all-string tuples go in, so a hit is always right: a tuple equal to one of them holds
    # strings (or str subclasses, which JSON writes alike) equal to its strings. Bounded; full, it stops growing.
    remembered: dict[tuple[str, ...], str] = {}

    def encode(value: Any) -> str | None:
        if value is None:
            return None
        if type(value) is not tuple:
            return serialize(value)
        try:
            text = remembered.get(value)
        except TypeError:  # an unhashable member
            return serialize(value)
        if text is None:
            text = serialize(value)
            if len(remembered) < _REMEMBERED_TUPLES and all(type(item) is str for item in value):
                remembered[value] = text
        return text

    return encode


_REMEMBERED_TUPLES: Final = 256


def _encoder(type_: TypeEngine[Any], dialect: Dialect) -> Encoder | None:
    """How a value of ``type_`` goes to the driver; ``None`` when it goes as it is."""
    if isinstance(type_, UTCDateTime):
        return _sqlite_datetime if dialect.name == "sqlite" else _native_datetime
    if isinstance(type_, JSON):
        return _json_encoder(dialect)
    # Any other type: SQLAlchemy's own processor (None for strings and integers on both dialects).
    return type_.dialect_impl(dialect).bind_processor(dialect)


class Append(Generic[Record]):
    """One INSERT of the hot path, compiled for one dialect: ``sql`` and ``encode(record) -> parameters``."""

    __slots__ = ("_copies", "_encoders", "_get", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect, *, column_keys: Sequence[str] | None = None) -> None:
        # for_executemany: no RETURNING of the generated key (PostgreSQL would add one for a single-row insert).
        compiled = statement.compile(dialect=dialect, column_keys=column_keys, for_executemany=True)
        assert isinstance(compiled, SQLCompiler)
        names = compiled.positiontup
        if not names or compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError(f"not a plain positional statement: {compiled.string}")
        self.sql: str = compiled.string
        # One C call reads every parameter off the record, in order (a repeated name is read twice, which is free).
        self._get: Callable[[Record], tuple[Any, ...]] = (
            attrgetter(*names) if len(names) > 1 else lambda record: (attrgetter(names[0])(record),)
        )
        first: dict[str, int] = {}
        encoders: list[tuple[int, Encoder]] = []
        copies: list[tuple[int, int]] = []
        for position, name in enumerate(names):
            if name in first:
                copies.append((position, first[name]))  # a repeated parameter is encoded once
                continue
            first[name] = position
            encoder = _encoder(compiled.binds[name].type, dialect)
            if encoder is not None:
                encoders.append((position, encoder))
        self._encoders = tuple(encoders)
        encoded = {position for position, _ in encoders}
        self._copies = tuple((position, source) for position, source in copies if source in encoded)

    def encode(self, record: Record) -> tuple[Any, ...]:
        """The record's parameters for :attr:`sql`; a value no column type accepts (a naive datetime) raises
        ``StatementError`` here, in its caller, as SQLAlchemy would have raised it at execution."""
        values = self._get(record)
        if not self._encoders:
            return values
        params = list(values)
        try:
            for position, encoder in self._encoders:
                params[position] = encoder(params[position])
        except (TypeError, ValueError, RecursionError) as exc:
            raise StatementError(str(exc), self.sql, None, exc, hide_parameters=True) from exc
        for position, source in self._copies:
            params[position] = params[source]
        return tuple(params)
