"""Secrets handed to clients and browsers (codes, refresh tokens, session ids) are stored only as digests."""

from __future__ import annotations

import hashlib
import secrets

# 32 random bytes: 256 bits, far beyond guessing, and URL-safe so it travels in query strings and cookies.
_SECRET_BYTES = 32


def new_secret() -> str:
    return secrets.token_urlsafe(_SECRET_BYTES)


def digest(secret: str) -> str:
    """SHA-256 hex digest: what the store keeps and looks records up by (a leaked database reveals no secret)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
