"""The audit trail of token exchanges: who asked, for whom, acting as whom, for which audience and scope,
the outcome and why.

Cost on the hot path: a granted exchange already makes one database write (the issued token's lineage row),
so its audit event is buffered and written right after the response by a background task, never dropped
(a full buffer writes inline instead). A refused exchange is audited before the error goes out: refusals
are what an investigation needs, and they are not on the hot path. Events still buffered when the server
stops are written by :meth:`AuditLog.aclose`. The store commits concurrent inserts together (group commit), so a
drain of many events, or a refusal next to a batch of grants, costs one transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tokensmith.store.base import Store
from tokensmith.store.records import AuditEvent

logger = logging.getLogger(__name__)

TOKEN_EXCHANGE_EVENT = "token_exchange"
GRANTED = "granted"
REFUSED = "refused"
FAILED = "failed"  # the server failed (a bug or the database), not the request


@dataclass(slots=True)
class ExchangeAttempt:
    """What is known about one exchange so far; filled in step by step so that a refusal at any step is
    audited with everything learned before it."""

    client_id: str | None = None
    subject: str | None = None
    actor: str | None = None
    audience: tuple[str, ...] = ()
    scope: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def event(self, outcome: str, occurred_at: datetime, reason: str | None = None) -> AuditEvent:
        return AuditEvent(
            occurred_at=occurred_at,
            event=TOKEN_EXCHANGE_EVENT,
            outcome=outcome,
            client_id=self.client_id,
            subject=self.subject,
            actor=self.actor,
            audience=self.audience,
            scope=self.scope,
            reason=reason,
            details=dict(self.details),
        )


class AuditLog:
    """Writes audit events to the store: refusals inline, grants through a small write-behind buffer."""

    def __init__(self, store: Store, *, max_pending: int = 1000) -> None:
        self._store = store
        self._max_pending = max_pending
        self._pending: deque[AuditEvent] = deque()
        self._writer: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def record(self, event: AuditEvent) -> None:
        if event.outcome != GRANTED or len(self._pending) >= self._max_pending:
            await self._write(event)
            return
        self._pending.append(event)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    async def flush(self) -> None:
        """Wait until every buffered event is written."""
        writer = self._writer
        if writer is not None and not writer.done() and writer.get_loop() is asyncio.get_running_loop():
            await writer
        await self._drain()

    async def aclose(self) -> None:
        await self.flush()

    async def _drain(self) -> None:
        # All at once: the store commits the batch together with whatever else is queued, one transaction.
        while self._pending:
            batch = list(self._pending)
            self._pending.clear()
            try:
                outcomes: Sequence[BaseException | None] = await self._store.add_audit_events(batch)
            except Exception as exc:
                outcomes = [exc] * len(batch)
            for event, outcome in zip(batch, outcomes, strict=True):
                if outcome is not None:
                    _log_lost(event, outcome)

    async def _write(self, event: AuditEvent) -> None:
        try:
            await self._store.add_audit_event(event)
        except Exception as exc:
            _log_lost(event, exc)


def _log_lost(event: AuditEvent, error: BaseException) -> None:
    # The exchange's own outcome must not change because the audit table is unavailable; the event goes to the
    # log instead, in full, so it is not lost.
    logger.error("audit event not stored: %r", event, exc_info=error)
