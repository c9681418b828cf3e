"""The audit trail of token exchanges: who asked, for whom, acting as whom, for which audience and scope,
the outcome and why.

Every event, granted, refused or failed, is committed before the response goes out: a client that holds an
exchanged token can count on its event being in the database, as durable as the token's own row
(``database-durability``). The store commits concurrent inserts together (group commit), so the event costs a
place in the next transaction, not a transaction of its own. When the database refuses the event, the exchange's
outcome stays as it was and the event goes to the error log in full instead.
"""

from __future__ import annotations

import logging
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
    """Writes audit events to the store, each committed before :meth:`record` returns."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def record(self, event: AuditEvent) -> None:
        try:
            await self._store.add_audit_event(event)
        except Exception as exc:
            _log_lost(event, exc)


def _log_lost(event: AuditEvent, error: BaseException) -> None:
    # The exchange's own outcome must not change because the audit table is unavailable; the event goes to the
    # log instead, in full, so it is not lost.
    logger.error("audit event not stored: %r", event, exc_info=error)
