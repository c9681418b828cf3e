"""Browser sessions at the authorization server, kept in the store (so every replica sees them).

The cookie carries a random session id; the store keeps only its digest. Each session has its own CSRF secret
for the forms shown to a signed-in user (consent, logout). A session of a user no longer in the configuration
is ended the next time it is presented (:func:`signed_in_session`).
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

from tokensmith.config.server import ServerConfig
from tokensmith.server.core.digest import digest, new_secret
from tokensmith.store.base import Store
from tokensmith.store.records import SessionRecord

SESSION_COOKIE = "tokensmith_session"
# Set before login: the login form echoes it back (double-submit CSRF protection for a not-yet-signed-in user).
LOGIN_CSRF_COOKIE = "tokensmith_login_csrf"


async def start_session(store: Store, subject: str, *, now: datetime, time_to_live: timedelta) -> str:
    """Create a session for ``subject`` and return the cookie value."""
    session_id = new_secret()
    await store.save_session(
        SessionRecord(
            session_hash=digest(session_id),
            subject=subject,
            auth_time=now,
            expires_at=now + time_to_live,
            csrf_secret=new_secret(),
        )
    )
    return session_id


async def current_session(store: Store, cookie: str | None, now: datetime) -> SessionRecord | None:
    if not cookie or len(cookie) > 256:
        return None
    session = await store.get_session(digest(cookie), now)
    if session is None or session.expires_at <= now:
        return None
    return session


async def signed_in_session(
    store: Store, config: ServerConfig, cookie: str | None, now: datetime
) -> SessionRecord | None:
    """The current session, if its user still exists; the session of a removed user is ended (sign in again)."""
    session = await current_session(store, cookie, now)
    if session is not None and config.user_by_name(session.subject) is None:
        await end_session(store, cookie)
        return None
    return session


async def end_session(store: Store, cookie: str | None) -> None:
    if cookie and len(cookie) <= 256:
        await store.delete_session(digest(cookie))


def csrf_matches(expected: str | None, presented: str | None) -> bool:
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8"))
