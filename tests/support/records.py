"""Store records for tests: one fixed instant, a clock standing at it, an issued access token around it, a
token-exchange audit event, and a record's parameters for a statement as its driver takes them (query plans)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tokensmith.store.records import AuditEvent, IssuedTokenRecord

if TYPE_CHECKING:
    from sqlalchemy.sql import ClauseElement

    from tokensmith.store.sql import SqlStore

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def issued_token(jti: str, *, parent: str | None = None, expires_in: int = 300) -> IssuedTokenRecord:
    return IssuedTokenRecord(
        jti=jti,
        kind="access_token",
        client_id="client-1",
        subject="alice",
        issued_at=NOW,
        expires_at=NOW + timedelta(seconds=expires_in),
        parent_jti=parent,
    )


def audit_event(number: int = 0, *, occurred_at: datetime = NOW, reason: str | None = None) -> AuditEvent:
    """A granted exchange's event (refused when it has a ``reason``), told apart by ``details["number"]``."""
    return AuditEvent(
        occurred_at=occurred_at,
        event="token_exchange",
        outcome="granted" if reason is None else "refused",
        client_id="client-1",
        subject="alice",
        audience=("message-service",),
        scope=("message.read",),
        reason=reason,
        details={"number": number},
    )


class SetClock:
    """A clock at :data:`NOW` that stays where a test sets it (``clock.now = ...``)."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def driver_sql(statement: ClauseElement, store: SqlStore, record: IssuedTokenRecord) -> tuple[str, tuple[Any, ...]]:
    """``statement``'s SQL for the store's driver and ``record``'s values as its positional parameters (times as
    naive UTC text on SQLite): what ``EXPLAIN`` needs to show the plan the store's execution gets."""
    from sqlalchemy.sql.compiler import SQLCompiler

    compiled = statement.compile(dialect=store.engine.dialect)
    assert isinstance(compiled, SQLCompiler)
    values: dict[str, Any] = asdict(record)
    if store.dialect == "sqlite":
        values = {
            name: value.astimezone(UTC).replace(tzinfo=None).isoformat(" ") if isinstance(value, datetime) else value
            for name, value in values.items()
        }
    return compiled.string, tuple(values[name] for name in compiled.positiontup or ())
