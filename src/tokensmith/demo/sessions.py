"""The client app's server-side sessions: the browser holds only a random id in an HttpOnly cookie.

Tokens never reach the browser. In memory and bounded: the demo is one process, and a restart logs everyone out.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from tokensmith.demo.oidc_rp import PendingLogin

COOKIE_NAME = "demo_client_session"  # not the authorization server's cookie: both live on "localhost"
SESSION_TTL_SECONDS = 8 * 3600
MAX_SESSIONS = 10_000
# Only a few logins may be pending at once per browser (several tabs), so state stays small.
MAX_PENDING_LOGINS = 5


@dataclass(slots=True)
class Session:
    sid: str
    created: float
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    pending: dict[str, PendingLogin] = field(default_factory=dict)  # state -> login in flight
    access_token: str | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    id_claims: dict[str, Any] = field(default_factory=dict)
    # One refresh at a time per session: tokensmith rotates refresh tokens and treats a second use of one as theft
    # (the whole login is revoked), so two tabs refreshing at once must not both spend the same token.
    refreshing: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def logged_in(self) -> bool:
        return self.access_token is not None

    def sign_out_locally(self) -> None:
        """Forget the tokens (not the session): the next protected page starts a login."""
        self.access_token = None
        self.refresh_token = None
        self.id_token = None
        self.id_claims = {}

    def remember(self, pending: PendingLogin) -> None:
        self.pending[pending.state] = pending
        while len(self.pending) > MAX_PENDING_LOGINS:
            self.pending.pop(next(iter(self.pending)))


class SessionStore:
    def __init__(self, ttl_seconds: float = SESSION_TTL_SECONDS, max_sessions: int = MAX_SESSIONS) -> None:
        self._ttl = ttl_seconds
        self._max = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        session = self._sessions.get(sid)
        if session is None:
            return None
        if time.monotonic() - session.created > self._ttl:
            del self._sessions[sid]
            return None
        return session

    def create(self) -> Session:
        session = Session(sid=secrets.token_urlsafe(32), created=time.monotonic())
        self._sessions[session.sid] = session
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return session

    def delete(self, sid: str) -> None:
        self._sessions.pop(sid, None)
