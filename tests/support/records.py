"""Store records for tests: one fixed instant, a clock standing at it, and an issued access token around it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tokensmith.store.records import IssuedTokenRecord

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


class SetClock:
    """A clock at :data:`NOW` that stays where a test sets it (``clock.now = ...``)."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now
